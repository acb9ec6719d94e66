//! The only way EcomDrive code makes an outbound HTTP request.
//!
//! Both privacy policies promise that data goes to no one but the listed processors (POLICY E11,
//! A12). That promise is kept here, in one place: [`OutboundHttp`] checks every URL against an
//! [`AllowList`] *before* a connection is opened, follows redirects only to hosts on the same list,
//! sends no `Referer` (it could carry a token in a query string) and ignores proxy settings from the
//! environment. Its errors never contain the URL, because Meta's URLs carry access tokens.
//!
//! Production allows HTTPS to Meta's Graph API, Facebook's login dialog and attachment CDNs, Amazon's
//! SP-API and LWA endpoints and report document bucket, Seller Central India's consent page and our
//! Cognito user pool, on the default port only. The local stack adds plain-HTTP loopback with
//! [`AllowList::with_loopback`], never on by default.

use crate::error::PlatformError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{StatusCode, redirect};
use serde::Serialize;
use url::{Host, Url};

/// The HTTP method type of [`OutboundHttp::request`], re-exported so callers need no reqwest import.
pub use reqwest::Method;

const USER_AGENT: &str = "EcomDrive/0.1";

/// Enough for the CDN hops of a Messenger attachment; a longer chain is a loop or a trick.
const MAX_REDIRECTS: usize = 5;

/// The longest a whole document download may take ([`OutboundHttp::download`]). The client's
/// total timeout is made for API calls; a settlement report of a few hundred MB needs minutes,
/// and a Lambda has 15 at most.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// One host rule of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// Exactly this host name.
    Exact(&'static str),
    /// Any host name ending with this suffix (which starts with a dot), never the bare domain.
    Suffix(&'static str),
}

impl HostRule {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(name) => host == *name,
            HostRule::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

/// The processors of POLICY E11/A12, as host rules. Adding a host here is a policy change.
const PRODUCTION_HOSTS: &[HostRule] = &[
    // Meta: Graph API (OAuth code exchange, Pages, webhooks subscription, Send API).
    HostRule::Exact("graph.facebook.com"),
    // Meta: the login dialog the merchant's browser is sent to (we build the URL, never fetch it,
    // but the client validates every base URL it is configured with).
    HostRule::Exact("www.facebook.com"),
    // Meta: Messenger attachment URLs (expiring, signed) live on these CDNs.
    HostRule::Suffix(".fbcdn.net"),
    HostRule::Suffix(".fbsbx.com"),
    // Amazon: SP-API regional endpoints (Europe incl. India, North America, Far East).
    HostRule::Exact("sellingpartnerapi-eu.amazon.com"),
    HostRule::Exact("sellingpartnerapi-na.amazon.com"),
    HostRule::Exact("sellingpartnerapi-fe.amazon.com"),
    // Amazon: Login with Amazon token endpoint.
    HostRule::Exact("api.amazon.com"),
    // Amazon: Seller Central India, where the seller's browser is sent to authorise our app (we
    // build the consent URL, never fetch it, but the client validates every base URL it is given).
    HostRule::Exact("sellercentral.amazon.in"),
    // AWS: our Cognito user pool (JWKS for bearer tokens), in the region the data stays in.
    HostRule::Exact("cognito-idp.ap-south-1.amazonaws.com"),
    // Amazon: report documents (the seller's settlement reports). getReportDocument answers with
    // a presigned S3 URL on Amazon's own report bucket of the SP-API region; Amazon does not
    // publish the list, these are the hosts its URLs use (EU serves India). Exact names only:
    // other buckets on S3 are not Amazon's processor, so `*.amazonaws.com` stays refused.
    HostRule::Exact("tortuga-prod-eu.s3-eu-west-1.amazonaws.com"),
    HostRule::Exact("tortuga-prod-na.s3.amazonaws.com"),
    HostRule::Exact("tortuga-prod-na.s3-external-1.amazonaws.com"),
    HostRule::Exact("tortuga-prod-fe.s3-us-west-2.amazonaws.com"),
];

/// Which loopback ports the local stack may reach over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopbackPorts {
    Any,
    Only(Vec<u16>),
}

/// The hosts outbound HTTP may reach. See the module docs for why it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<HostRule>,
    loopback: Option<LoopbackPorts>,
}

/// Why a URL was refused. Its text names the host at most, never the path or query (tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a valid absolute URL ({0})")]
    InvalidUrl(String),
    #[error("scheme `{scheme}` is not allowed, only https (and http on loopback)")]
    Scheme { scheme: String },
    #[error("URLs with user info (`user@host`) are not allowed")]
    UserInfo,
    #[error("the URL has no host")]
    NoHost,
    #[error("IP address {ip} is not allowed, only listed host names")]
    IpLiteral { ip: String },
    #[error("host {host} is not on the allow-list")]
    HostNotAllowed { host: String },
    #[error("host {host} must be reached over https")]
    NotHttps { host: String },
    #[error("port {port} of host {host} is not allowed")]
    Port { host: String, port: u16 },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

impl AllowList {
    /// The processors of the privacy policies, HTTPS on port 443 only.
    pub fn production() -> Self {
        Self {
            rules: PRODUCTION_HOSTS.to_vec(),
            loopback: None,
        }
    }

    /// Also allow `127.0.0.1`, `localhost` and `[::1]` over http or https on these ports, for the
    /// local stack and tests (the sandboxes of Meta and Amazon listen on loopback).
    pub fn with_loopback(mut self, ports: LoopbackPorts) -> Self {
        self.loopback = Some(ports);
        self
    }

    /// Parses `url` and checks it; the parsed URL is what must be used for the request.
    pub fn check(&self, url: &str) -> Result<Url, Refusal> {
        // The parse error's text never repeats the input, so it is safe to keep.
        let parsed = Url::parse(url).map_err(|e| Refusal::InvalidUrl(e.to_string()))?;
        self.check_url(&parsed)?;
        Ok(parsed)
    }

    /// Checks an already parsed URL (used for redirect targets too).
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(Refusal::Scheme {
                scheme: scheme.to_owned(),
            });
        }
        // `https://graph.facebook.com@evil.com` parses with host evil.com; whatever the host,
        // credentials in a URL are never something we mean to send.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::UserInfo);
        }
        let host = url.host().ok_or(Refusal::NoHost)?;
        let is_loopback = match &host {
            Host::Domain(name) => *name == "localhost",
            Host::Ipv4(ip) => *ip == Ipv4Addr::LOCALHOST,
            Host::Ipv6(ip) => ip.is_loopback(),
        };
        if let (true, Some(ports)) = (is_loopback, &self.loopback) {
            return check_loopback_port(url, ports);
        }
        let name = match host {
            Host::Domain(name) => name,
            Host::Ipv4(ip) => return Err(ip_refusal(IpAddr::V4(ip))),
            Host::Ipv6(ip) => return Err(ip_refusal(IpAddr::V6(ip))),
        };
        if !self.rules.iter().any(|rule| rule.matches(name)) {
            return Err(Refusal::HostNotAllowed {
                host: name.to_owned(),
            });
        }
        if scheme != "https" {
            return Err(Refusal::NotHttps {
                host: name.to_owned(),
            });
        }
        // `url` drops an explicit :443 for https, so any port left is a non-standard one.
        if let Some(port) = url.port() {
            return Err(Refusal::Port {
                host: name.to_owned(),
                port,
            });
        }
        Ok(())
    }
}

fn ip_refusal(ip: IpAddr) -> Refusal {
    Refusal::IpLiteral { ip: ip.to_string() }
}

fn check_loopback_port(url: &Url, ports: &LoopbackPorts) -> Result<(), Refusal> {
    let port = url.port_or_known_default().unwrap_or(0);
    match ports {
        LoopbackPorts::Any => Ok(()),
        LoopbackPorts::Only(allowed) if allowed.contains(&port) => Ok(()),
        LoopbackPorts::Only(_) => Err(Refusal::Port {
            host: url.host_str().unwrap_or_default().to_owned(),
            port,
        }),
    }
}

/// Time limits of outbound calls. The total covers connecting, sending and reading the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    /// 3 s to connect, 10 s in all: Meta waits 20 s for a webhook answer and Lambda bills by the ms.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            total: Duration::from_secs(10),
        }
    }
}

impl PlatformError {
    /// Maps a reqwest error, dropping the URL it carries (it may hold an access token).
    fn from_reqwest(error: reqwest::Error) -> Self {
        let error = error.without_url();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            if let Some(refusal) = cause.downcast_ref::<Refusal>() {
                return PlatformError::Refused(refusal.clone());
            }
            source = cause.source();
        }
        if error.is_connect() {
            PlatformError::Connect(describe(&error))
        } else if error.is_timeout() {
            PlatformError::Timeout
        } else {
            PlatformError::Transport(describe(&error))
        }
    }
}

/// The error and its causes on one line ("error sending request: connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The allow-listed HTTP client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct OutboundHttp {
    client: reqwest::Client,
    allow: Arc<AllowList>,
}

impl OutboundHttp {
    pub fn new(allow: AllowList, timeouts: Timeouts) -> Result<Self, PlatformError> {
        let allow = Arc::new(allow);
        let for_redirects = Arc::clone(&allow);
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refusal::TooManyRedirects);
            }
            match for_redirects.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .redirect(redirects)
            .referer(false)
            .no_proxy()
            .build()
            .map_err(|e| PlatformError::Setup(describe(&e.without_url())))?;
        Ok(Self { client, allow })
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// Checks `url` against the allow-list without sending anything.
    pub fn check(&self, url: &str) -> Result<Url, PlatformError> {
        Ok(self.allow.check(url)?)
    }

    /// Starts a request, or refuses it before any connection if `url` is off the allow-list.
    pub fn request(&self, method: Method, url: &str) -> Result<OutboundRequest, PlatformError> {
        let url = self.check(url)?;
        Ok(OutboundRequest {
            inner: self.client.request(method, url),
        })
    }

    pub fn get(&self, url: &str) -> Result<OutboundRequest, PlatformError> {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: &str) -> Result<OutboundRequest, PlatformError> {
        self.request(Method::POST, url)
    }

    pub fn delete(&self, url: &str) -> Result<OutboundRequest, PlatformError> {
        self.request(Method::DELETE, url)
    }

    /// GETs `url` and reads at most `max_bytes` of its body, with its content type.
    ///
    /// Made for Messenger attachments: their URLs expire, so they are copied at once, and a sender
    /// controls their size, so reading stops with [`PlatformError::TooLarge`] as soon as the body
    /// passes the limit (announced by `Content-Length` or not). A non-2xx answer is
    /// [`PlatformError::UnexpectedStatus`].
    pub async fn fetch_bounded(
        &self,
        url: &str,
        max_bytes: usize,
    ) -> Result<(Bytes, Option<String>), PlatformError> {
        let response = self.get(url)?.send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(PlatformError::UnexpectedStatus(status.as_u16()));
        }
        let content_type = response.content_type();
        let body = response.bytes_bounded(max_bytes).await?;
        Ok((body, content_type))
    }

    /// GETs `url` and hands its body to `on_chunk` piece by piece as it arrives, never holding it
    /// whole; returns the number of bytes received.
    ///
    /// Made for report documents (presigned URLs, possibly gigabytes). The same rules as every
    /// request: allow-listed URL and redirects, no URL in any error. A non-2xx answer is
    /// [`PlatformError::UnexpectedStatus`] (its body is not read); more than `max_bytes` (announced
    /// by `Content-Length` or not) stops with [`PlatformError::TooLarge`]; an error of `on_chunk`
    /// stops the download and is returned as it is. Nothing is retried: `on_chunk` may have
    /// written part of the body already. The whole download may take up to 10 minutes.
    pub async fn download(
        &self,
        url: &str,
        max_bytes: u64,
        mut on_chunk: impl FnMut(&[u8]) -> Result<(), PlatformError>,
    ) -> Result<u64, PlatformError> {
        let too_large = || PlatformError::TooLarge {
            limit: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        };
        let mut response = self.get(url)?.timeout(DOWNLOAD_TIMEOUT).send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(PlatformError::UnexpectedStatus(status.as_u16()));
        }
        if response.inner.content_length().unwrap_or(0) > max_bytes {
            return Err(too_large());
        }
        let mut received: u64 = 0;
        while let Some(chunk) = response
            .inner
            .chunk()
            .await
            .map_err(PlatformError::from_reqwest)?
        {
            received = received.saturating_add(chunk.len() as u64);
            if received > max_bytes {
                return Err(too_large());
            }
            on_chunk(&chunk)?;
        }
        Ok(received)
    }
}

/// A request whose URL passed the allow-list. The URL cannot be changed any more.
pub struct OutboundRequest {
    inner: reqwest::RequestBuilder,
}

impl fmt::Debug for OutboundRequest {
    // The builder's own Debug prints the URL and so possibly a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutboundRequest { .. }")
    }
}

impl OutboundRequest {
    /// Adds query parameters (URL-encoded).
    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> Self {
        Self {
            inner: self.inner.query(query),
        }
    }

    /// Sets an `application/x-www-form-urlencoded` body.
    pub fn form<T: Serialize + ?Sized>(self, form: &T) -> Self {
        Self {
            inner: self.inner.form(form),
        }
    }

    /// Sets a JSON body.
    pub fn json<T: Serialize + ?Sized>(self, json: &T) -> Self {
        Self {
            inner: self.inner.json(json),
        }
    }

    pub fn headers(self, headers: HeaderMap) -> Self {
        Self {
            inner: self.inner.headers(headers),
        }
    }

    /// Overrides the client's total timeout for this request.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.timeout(timeout),
        }
    }

    pub async fn send(self) -> Result<OutboundResponse, PlatformError> {
        let inner = self
            .inner
            .send()
            .await
            .map_err(PlatformError::from_reqwest)?;
        Ok(OutboundResponse { inner })
    }
}

/// An answer whose body is read with a size limit, and whose errors carry no URL.
pub struct OutboundResponse {
    inner: reqwest::Response,
}

impl fmt::Debug for OutboundResponse {
    // reqwest's Debug prints the URL; the status is what a reader needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundResponse")
            .field("status", &self.inner.status())
            .finish_non_exhaustive()
    }
}

impl OutboundResponse {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    pub fn content_type(&self) -> Option<String> {
        self.inner
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// Reads the whole body, or stops with [`PlatformError::TooLarge`] once it passes `max_bytes`.
    pub async fn bytes_bounded(mut self, max_bytes: usize) -> Result<Bytes, PlatformError> {
        let too_large = PlatformError::TooLarge { limit: max_bytes };
        let announced = self.inner.content_length().unwrap_or(0);
        if announced > max_bytes as u64 {
            return Err(too_large);
        }
        // Trust the announced length only as a hint for the first allocation, never beyond the limit.
        let mut body = BytesMut::with_capacity(announced as usize);
        while let Some(chunk) = self
            .inner
            .chunk()
            .await
            .map_err(PlatformError::from_reqwest)?
        {
            if body.len() + chunk.len() > max_bytes {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> AllowList {
        AllowList::production()
    }

    #[test]
    fn policy_e11_outbound_http_refuses_every_host_off_the_allow_list() {
        let refused = [
            ("https://example.com/", "HostNotAllowed"),
            (
                "https://graph.facebook.com.evil.com/v23.0/me",
                "HostNotAllowed",
            ),
            ("https://evilgraph.facebook.com/", "HostNotAllowed"),
            ("https://facebook.com/", "HostNotAllowed"),
            ("https://fbcdn.net/", "HostNotAllowed"),
            ("https://evilfbcdn.net/x.jpg", "HostNotAllowed"),
            ("https://fbcdn.net.evil.com/x.jpg", "HostNotAllowed"),
            ("https://www.google-analytics.com/collect", "HostNotAllowed"),
            ("https://graph.facebook.com@evil.com/", "UserInfo"),
            ("https://user:pass@graph.facebook.com/", "UserInfo"),
            ("http://graph.facebook.com/v23.0/me", "NotHttps"),
            ("https://graph.facebook.com:8443/v23.0/me", "Port"),
            ("https://157.240.1.35/", "IpLiteral"),
            ("https://[2a03:2880:f12f:83:face:b00c:0:25de]/", "IpLiteral"),
            // 127.0.0.1 written as one number: `url` normalises it, and loopback is off by default.
            ("http://2130706433/", "IpLiteral"),
            ("http://127.0.0.1:9000/", "IpLiteral"),
            ("http://localhost:9000/", "HostNotAllowed"),
            ("ftp://graph.facebook.com/", "Scheme"),
            ("file:///etc/passwd", "Scheme"),
            ("graph.facebook.com/v23.0/me", "InvalidUrl"),
        ];
        for (url, expected) in refused {
            let refusal = production()
                .check(url)
                .expect_err(&format!("{url} must be refused"));
            let kind = format!("{refusal:?}");
            assert!(
                kind.starts_with(expected),
                "{url}: expected {expected}, got {kind}"
            );
        }
    }

    #[test]
    fn policy_a12_only_the_listed_processors_are_reachable() {
        let allowed = [
            "https://graph.facebook.com/v23.0/me/accounts?access_token=x",
            "https://www.facebook.com/v23.0/dialog/oauth",
            "https://scontent.xx.fbcdn.net/v/t1.15752-9/abc.jpg?oh=1",
            "https://cdn.fbsbx.com/v/t59.2708-21/file.pdf",
            "https://sellingpartnerapi-eu.amazon.com/orders/v0/orders",
            "https://sellingpartnerapi-na.amazon.com/",
            "https://sellingpartnerapi-fe.amazon.com/",
            "https://api.amazon.com/auth/o2/token",
            "https://sellercentral.amazon.in/apps/authorize/consent",
            "https://cognito-idp.ap-south-1.amazonaws.com/pool/.well-known/jwks.json",
            "https://tortuga-prod-eu.s3-eu-west-1.amazonaws.com/%2FNinetyDays/amzn1.tortuga.4.eu.T1?X-Amz-Signature=x",
            "https://tortuga-prod-na.s3.amazonaws.com/doc",
            "https://tortuga-prod-na.s3-external-1.amazonaws.com/doc",
            "https://tortuga-prod-fe.s3-us-west-2.amazonaws.com/doc",
            // Host names are case-insensitive and an explicit default port is the default port.
            "https://GRAPH.Facebook.com:443/v23.0/me",
        ];
        for url in allowed {
            assert!(production().check(url).is_ok(), "{url} must be allowed");
        }
        // Processors in other regions, or other Amazon/AWS hosts, are not on the list.
        for url in [
            "https://cognito-idp.us-east-1.amazonaws.com/",
            "https://s3.amazonaws.com/",
            "https://tortuga-prod-eu.s3.amazonaws.com/",
            "https://evil.s3-eu-west-1.amazonaws.com/",
            "https://tortuga-prod-eu.s3-eu-west-1.amazonaws.com.evil.com/",
            "https://www.amazon.com/",
            "https://sellercentral.amazon.com/",
        ] {
            assert!(production().check(url).is_err(), "{url} must be refused");
        }
    }

    #[test]
    fn loopback_is_allowed_only_when_asked_and_only_on_the_listed_ports() {
        let local = production().with_loopback(LoopbackPorts::Only(vec![4010]));
        assert!(local.check("http://127.0.0.1:4010/v23.0/me").is_ok());
        assert!(local.check("http://localhost:4010/").is_ok());
        assert!(local.check("http://[::1]:4010/").is_ok());
        assert_eq!(
            local.check("http://127.0.0.1:4011/"),
            Err(Refusal::Port {
                host: "127.0.0.1".into(),
                port: 4011
            })
        );
        // Other private addresses stay refused: loopback means this machine only.
        assert!(matches!(
            local.check("http://10.0.0.1:4010/"),
            Err(Refusal::IpLiteral { .. })
        ));
        let any = production().with_loopback(LoopbackPorts::Any);
        assert!(any.check("http://127.0.0.1:1/").is_ok());
        // Production hosts still need https when loopback is on.
        assert!(matches!(
            any.check("http://graph.facebook.com/"),
            Err(Refusal::NotHttps { .. })
        ));
    }

    #[test]
    fn a_refusal_names_the_host_but_never_the_query() {
        let refusal = production()
            .check("https://example.com/path?access_token=EAAB-secret-token")
            .unwrap_err();
        let text = format!("{refusal} {refusal:?}");
        assert!(text.contains("example.com"));
        assert!(!text.contains("EAAB"), "{text}");
        let invalid = production()
            .check("not a url access_token=EAAB-secret-token")
            .unwrap_err();
        assert!(!format!("{invalid} {invalid:?}").contains("EAAB"));
    }

    #[tokio::test]
    async fn an_off_list_request_is_refused_before_any_connection() {
        // A listener on a loopback port that is NOT on the list: it must never see a connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let allowed_port = if port == 65535 { port - 1 } else { port + 1 };
        let http = OutboundHttp::new(
            production().with_loopback(LoopbackPorts::Only(vec![allowed_port])),
            Timeouts::default(),
        )
        .unwrap();

        let error = http
            .fetch_bounded(&format!("http://127.0.0.1:{port}/secret"), 1024)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            PlatformError::Refused(Refusal::Port { .. })
        ));
        assert!(matches!(
            http.get("https://example.com/"),
            Err(PlatformError::Refused(Refusal::HostNotAllowed { .. }))
        ));
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a refused URL must not be connected to");
    }
}
