//! Amazon for an Indian seller: Login with Amazon (LWA) and the Selling Partner API (Orders v0,
//! Solicitations v1, Reports 2021-06-30 for settlement reports).
//!
//! Why it looks the way it does:
//! - every call goes through [`OutboundHttp`], so only allow-listed hosts are reached (POLICY E11);
//! - tokens are [`Secret`]s and no error, `Debug` or log line of this module contains one
//!   (POLICY E14): reqwest errors lose their URL, Amazon's messages are scrubbed, decode errors keep
//!   only a position, and the access-token cache is keyed by a hash of the refresh token;
//! - retries are bounded and live in one place (`retry.rs`): a throttled call is retried, a GET is
//!   retried after a 5xx, and the review request (a POST that Amazon may have acted on) never is:
//!   its 5xx or timeout comes back with [`PlatformError::outcome_unknown`] true.

mod lwa;
mod model;
mod reports;
mod retry;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ecomdrive_core::Secret;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::PlatformError;
use crate::outbound::{Method, OutboundHttp};
use lwa::{CachedToken, TokenCache};
use model::{Envelope, ErrorList, OrderItemsList, OrdersList, SolicitationActions};
use retry::{Operation, send_with_retries};

pub use model::{AmazonOrder, AmazonOrderItem, Money, OrdersPage, OrdersQuery};
pub use reports::{
    MAX_REPORT_DOCUMENT_BYTES, Report, ReportDocument, ReportsPage, SETTLEMENT_REPORT_TYPE,
};
pub use retry::RetryPolicy;

/// Amazon.in.
pub const INDIA_MARKETPLACE_ID: &str = "A21TJRUUN4KGV";

/// The solicitation EcomDrive sends: Amazon's own "review and seller feedback" request email.
pub const PRODUCT_REVIEW_AND_SELLER_FEEDBACK: &str = "productReviewAndSellerFeedback";

/// Amazon asks for `AppName/Version (Language=...)` in the user agent of SP-API calls.
const SPAPI_USER_AGENT: &str = concat!("EcomDrive/", env!("CARGO_PKG_VERSION"), " (Language=Rust)");

/// The order-items list of one order ends long before this; a paging loop must end even if
/// Amazon's answer never does.
const MAX_ORDER_ITEM_PAGES: usize = 20;

/// getOrders takes at most 50 marketplaces.
const MAX_MARKETPLACES: usize = 50;

/// Amazon's messages are short; a longer one is cut so logs stay readable.
const MAX_ERROR_MESSAGE_CHARS: usize = 500;

// The documented rates (requests per second) of the operations used, for a 429 without
// `x-amzn-RateLimit-Limit`.
const GET_ORDERS: Operation = Operation {
    name: "getOrders",
    rate: Some(0.0167),
    repeatable: true,
};
const GET_ORDER_ITEMS: Operation = Operation {
    name: "getOrderItems",
    rate: Some(0.5),
    repeatable: true,
};
const GET_SOLICITATION_ACTIONS: Operation = Operation {
    name: "getSolicitationActionsForOrder",
    rate: Some(1.0),
    repeatable: true,
};
const CREATE_REVIEW_SOLICITATION: Operation = Operation {
    name: "createProductReviewAndSellerFeedbackSolicitation",
    rate: Some(1.0),
    // A second request after an unknown outcome could ask the buyer twice (or fail as
    // "not available" and hide that the first one worked).
    repeatable: false,
};
const GET_REPORTS: Operation = Operation {
    name: "getReports",
    rate: Some(0.0222),
    repeatable: true,
};
const GET_REPORT_DOCUMENT: Operation = Operation {
    name: "getReportDocument",
    rate: Some(0.0167),
    repeatable: true,
};

/// Where Amazon is and who we are to it.
#[derive(Debug, Clone)]
pub struct AmazonConfig {
    /// `https://api.amazon.com/auth/o2/token` in production.
    pub lwa_token_url: String,
    /// The SP-API region: `https://sellingpartnerapi-eu.amazon.com` for India.
    pub spapi_base: String,
    /// Seller Central of the marketplace: `https://sellercentral.amazon.in`.
    pub consent_base: String,
    /// The app's id in the Solution Provider Portal, `amzn1.sp.solution.…`.
    pub application_id: String,
    /// The LWA client id and secret of the app.
    pub client_id: String,
    pub client_secret: Secret,
    /// A draft (unpublished) app must add `version=beta` to its consent URL.
    pub draft_app: bool,
}

impl AmazonConfig {
    /// Production endpoints for sellers on Amazon.in (India is served by the EU region).
    pub fn india(
        application_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Self {
        Self {
            lwa_token_url: "https://api.amazon.com/auth/o2/token".into(),
            spapi_base: "https://sellingpartnerapi-eu.amazon.com".into(),
            consent_base: "https://sellercentral.amazon.in".into(),
            application_id: application_id.into(),
            client_id: client_id.into(),
            client_secret,
            draft_app: false,
        }
    }
}

/// The Seller Central page where the seller authorises our app (OAuth website workflow, step 1).
///
/// `state` must be an unguessable value the callback checks (CSRF). `redirect_uri` must be one of
/// the app's registered redirect URIs; an empty one is left out (Amazon then uses the first).
pub fn consent_url(config: &AmazonConfig, state: &str, redirect_uri: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("application_id", &config.application_id)
        .append_pair("state", state);
    if !redirect_uri.is_empty() {
        query.append_pair("redirect_uri", redirect_uri);
    }
    if config.draft_app {
        query.append_pair("version", "beta");
    }
    format!(
        "{}/apps/authorize/consent?{}",
        config.consent_base.trim_end_matches('/'),
        query.finish()
    )
}

/// The LWA and SP-API client. Cheap to clone; clones share the access-token cache.
#[derive(Clone)]
pub struct AmazonClient {
    http: OutboundHttp,
    config: Arc<AmazonConfig>,
    lwa_token_url: Url,
    spapi_base: Url,
    retry: RetryPolicy,
    tokens: Arc<TokenCache>,
    /// See [`AmazonClient::with_report_document_limit`].
    max_report_document_bytes: u64,
}

impl fmt::Debug for AmazonClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmazonClient")
            .field("spapi_base", &self.spapi_base.as_str())
            .field("application_id", &self.config.application_id)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl AmazonClient {
    /// Checks the configured URLs against the allow-list now, so a misconfigured function fails at
    /// start-up instead of at its first order.
    pub fn new(http: OutboundHttp, config: AmazonConfig) -> Result<Self, PlatformError> {
        let lwa_token_url = http.check(&config.lwa_token_url)?;
        let spapi_base = http.check(&config.spapi_base)?;
        http.check(&config.consent_base)?;
        Ok(Self {
            http,
            config: Arc::new(config),
            lwa_token_url,
            spapi_base,
            retry: RetryPolicy::default(),
            tokens: Arc::default(),
            max_report_document_bytes: MAX_REPORT_DOCUMENT_BYTES,
        })
    }

    /// The configuration (the consent URL is built from it).
    pub fn config(&self) -> &AmazonConfig {
        &self.config
    }

    /// Replaces the default [`RetryPolicy`] (tests use tiny delays).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// OAuth website workflow, step 3: exchanges the `spapi_oauth_code` of the consent callback for
    /// the seller's refresh token. `redirect_uri` must be the one of the consent URL.
    ///
    /// The access token LWA gives with it is cached, so the first SP-API call needs no LWA call.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Secret, PlatformError> {
        let secret = self.config.client_secret.expose();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", secret),
        ];
        let answer = lwa::grant(
            &self.http,
            &self.lwa_token_url,
            &self.retry,
            &lwa::AUTHORIZATION_CODE,
            &form,
            &[secret, code],
        )
        .await?;
        let refresh_token = answer.refresh_token.ok_or_else(|| {
            PlatformError::Decode("Login with Amazon gave no refresh token for the code".into())
        })?;
        self.tokens.store(
            &refresh_token,
            CachedToken::new(answer.access_token, answer.expires_in),
        );
        Ok(refresh_token)
    }

    /// An access token for this seller, from the cache while it has more than a minute left.
    ///
    /// Concurrent callers for one seller share one LWA call.
    pub async fn access_token(&self, refresh_token: &Secret) -> Result<Secret, PlatformError> {
        let entry = self.tokens.entry(refresh_token);
        let mut cached = entry.lock().await;
        if let Some(token) = cached.as_ref().and_then(CachedToken::fresh) {
            return Ok(token.clone());
        }
        let secret = self.config.client_secret.expose();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", secret),
        ];
        let answer = lwa::grant(
            &self.http,
            &self.lwa_token_url,
            &self.retry,
            &lwa::REFRESH,
            &form,
            &[secret, refresh_token.expose()],
        )
        .await?;
        let token = answer.access_token.clone();
        *cached = Some(CachedToken::new(answer.access_token, answer.expires_in));
        Ok(token)
    }

    /// Drops the cached access token of this seller (on disconnect). The client does it itself
    /// after a 401, or a 403 `Unauthorized`, from the SP-API.
    pub fn forget_access_token(&self, refresh_token: &Secret) {
        self.tokens.forget(refresh_token);
    }

    /// One page of getOrders: the orders changed after `query.last_updated_after`, 100 a page.
    ///
    /// getOrders allows one request a minute (with a burst of 20), so a 429 is usually returned as
    /// [`PlatformError::RateLimited`] rather than waited for.
    pub async fn get_orders(
        &self,
        refresh_token: &Secret,
        query: &OrdersQuery,
    ) -> Result<OrdersPage, PlatformError> {
        if query.marketplace_ids.is_empty() || query.marketplace_ids.len() > MAX_MARKETPLACES {
            return Err(PlatformError::InvalidInput(
                "getOrders takes 1 to 50 marketplace ids".into(),
            ));
        }
        for id in &query.marketplace_ids {
            check_id("marketplace id", id)?;
        }
        let marketplaces = query.marketplace_ids.join(",");
        let after = model::amazon_timestamp(query.last_updated_after)?;
        // With a NextToken, Amazon remembers the other filters and wants only the marketplaces.
        let params = match query.next_token.as_deref().filter(|t| !t.is_empty()) {
            Some(next) => vec![
                ("MarketplaceIds", marketplaces.as_str()),
                ("NextToken", next),
            ],
            None => vec![
                ("MarketplaceIds", marketplaces.as_str()),
                ("LastUpdatedAfter", after.as_str()),
                ("MaxResultsPerPage", "100"),
            ],
        };
        let body = self
            .spapi(
                &GET_ORDERS,
                refresh_token,
                Method::GET,
                &["orders", "v0", "orders"],
                &params,
                "application/json",
            )
            .await?;
        let list: Envelope<OrdersList> = decode(&body)?;
        Ok(list.payload.into())
    }

    /// All the items of one order (getOrderItems, following its NextToken).
    pub async fn get_order_items(
        &self,
        refresh_token: &Secret,
        order_id: &str,
    ) -> Result<Vec<AmazonOrderItem>, PlatformError> {
        check_id("order id", order_id)?;
        let path = ["orders", "v0", "orders", order_id, "orderItems"];
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_ORDER_ITEM_PAGES {
            let params: Vec<(&str, &str)> = next
                .as_deref()
                .map(|token| ("NextToken", token))
                .into_iter()
                .collect();
            let body = self
                .spapi(
                    &GET_ORDER_ITEMS,
                    refresh_token,
                    Method::GET,
                    &path,
                    &params,
                    "application/json",
                )
                .await?;
            let page: Envelope<OrderItemsList> = decode(&body)?;
            items.extend(page.payload.order_items);
            match model::non_empty(page.payload.next_token) {
                Some(token) => next = Some(token),
                None => return Ok(items),
            }
        }
        Err(PlatformError::Decode(format!(
            "the items of an order did not end after {MAX_ORDER_ITEM_PAGES} pages"
        )))
    }

    /// The solicitations Amazon allows for this order now, by name (e.g.
    /// [`PRODUCT_REVIEW_AND_SELLER_FEEDBACK`]); empty outside the 5–30 days after delivery or once
    /// one was sent.
    pub async fn solicitation_actions(
        &self,
        refresh_token: &Secret,
        order_id: &str,
        marketplace_id: &str,
    ) -> Result<Vec<String>, PlatformError> {
        check_id("order id", order_id)?;
        check_id("marketplace id", marketplace_id)?;
        let body = self
            .spapi(
                &GET_SOLICITATION_ACTIONS,
                refresh_token,
                Method::GET,
                &["solicitations", "v1", "orders", order_id],
                &[("marketplaceIds", marketplace_id)],
                "application/hal+json",
            )
            .await?;
        let actions: SolicitationActions = decode(&body)?;
        Ok(actions
            .links
            .actions
            .into_iter()
            .map(|action| action.name)
            .collect())
    }

    /// Asks Amazon to send the buyer its review-and-feedback request (Amazon answers 201).
    ///
    /// Never retried once it may have reached Amazon: on a 5xx or a timeout the error's
    /// [`PlatformError::outcome_unknown`] is true, and [`AmazonClient::solicitation_actions`] tells
    /// later whether it was sent (the action is no longer offered).
    pub async fn request_review(
        &self,
        refresh_token: &Secret,
        order_id: &str,
        marketplace_id: &str,
    ) -> Result<(), PlatformError> {
        check_id("order id", order_id)?;
        check_id("marketplace id", marketplace_id)?;
        self.spapi(
            &CREATE_REVIEW_SOLICITATION,
            refresh_token,
            Method::POST,
            &[
                "solicitations",
                "v1",
                "orders",
                order_id,
                "solicitations",
                PRODUCT_REVIEW_AND_SELLER_FEEDBACK,
            ],
            &[("marketplaceIds", marketplace_id)],
            "application/hal+json",
        )
        .await?;
        Ok(())
    }

    /// One SP-API operation with the seller's access token, retried as `retry.rs` says. Returns the
    /// 2xx body, or Amazon's error.
    async fn spapi(
        &self,
        operation: &Operation,
        refresh_token: &Secret,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        accept: &'static str,
    ) -> Result<Bytes, PlatformError> {
        let token = self.access_token(refresh_token).await?;
        let headers = spapi_headers(&token, accept)?;
        let mut url = self.spapi_base.clone();
        url.set_query(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        let answer = send_with_retries(&self.retry, operation, || {
            Ok(self
                .http
                .request(method.clone(), url.as_str())?
                .query(query)
                .headers(headers.clone()))
        })
        .await?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        let error = spapi_error(
            answer.status.as_u16(),
            &answer.body,
            &[token.expose(), refresh_token.expose()],
        );
        if token_refused(&error) {
            // The next call gets a fresh token rather than the one Amazon just refused.
            self.forget_access_token(refresh_token);
        }
        Err(error)
    }
}

fn spapi_headers(access_token: &Secret, accept: &'static str) -> Result<HeaderMap, PlatformError> {
    let mut token = HeaderValue::from_str(access_token.expose()).map_err(|_| {
        PlatformError::Decode("Login with Amazon gave an access token that is not a header".into())
    })?;
    // Keeps it out of any Debug of the headers (and out of HTTP/2 header compression tables).
    token.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-amz-access-token"), token);
    headers.insert(USER_AGENT, HeaderValue::from_static(SPAPI_USER_AGENT));
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    Ok(headers)
}

/// 401, or 403 `Unauthorized`: what Amazon answers to an expired or revoked access token (and, with
/// the same code, to a missing role or an unavailable solicitation: forgetting costs one LWA call).
fn token_refused(error: &PlatformError) -> bool {
    match error {
        PlatformError::SpApi {
            http_status, code, ..
        } => *http_status == 401 || (*http_status == 403 && code == "Unauthorized"),
        PlatformError::UnexpectedStatus(status) => *status == 401,
        _ => false,
    }
}

/// Amazon's error list as [`PlatformError::SpApi`] (the first error), or the bare status if the
/// body is not one (a load balancer's page).
fn spapi_error(http_status: u16, body: &[u8], secrets: &[&str]) -> PlatformError {
    let Ok(ErrorList { errors }) = serde_json::from_slice(body) else {
        return PlatformError::UnexpectedStatus(http_status);
    };
    let Some(first) = errors.into_iter().next() else {
        return PlatformError::UnexpectedStatus(http_status);
    };
    let message = scrub(&first.message, secrets);
    let message = match first.details.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(details) => format!("{message} ({})", scrub(details, secrets)),
        None => message,
    };
    PlatformError::SpApi {
        http_status,
        code: scrub(&first.code, secrets),
        message,
    }
}

/// Ids go into the URL path: Amazon's are letters, digits and `-` (the sandbox uses `_`). Never
/// `/`, `.` or `?`, so an id cannot point the request at another path.
fn check_id(what: &str, id: &str) -> Result<(), PlatformError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(PlatformError::InvalidInput(format!(
            "an Amazon {what} is letters, digits, `-` or `_`"
        )))
    }
}

/// Reads a 2xx body. serde_json's message can quote the offending value (maybe a token): only its
/// kind and position are kept.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, PlatformError> {
    serde_json::from_slice(body).map_err(|e| {
        PlatformError::Decode(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Removes the request's credentials and anything that looks like a token from Amazon's text, and
/// cuts it to a readable length.
fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut text = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    // LWA tokens (`Atza|…`, `Atzr|…`) are long runs without spaces; Amazon's words are short.
    let words: Vec<&str> = text
        .split(' ')
        .map(|word| if looks_like_token(word) { "***" } else { word })
        .collect();
    let text = words.join(" ");
    match text.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn looks_like_token(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    core.len() >= 32
        && core.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'|' | b'.' | b'+' | b'/' | b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_is_app_name_version_and_language() {
        assert_eq!(SPAPI_USER_AGENT, "EcomDrive/0.1.0 (Language=Rust)");
    }

    #[test]
    fn ids_cannot_leave_their_path_segment() {
        assert!(check_id("order id", "402-1234567-1234567").is_ok());
        assert!(check_id("order id", "TEST_CASE_200").is_ok());
        for bad in ["", "../orders", "1?x=1", "a/b", "a.b", &"1".repeat(65)] {
            assert!(check_id("order id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amazon_errors_keep_the_first_error_with_its_details_and_lose_tokens() {
        let body = br#"{"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":"The access token you provided has expired: Atza|IQEBLjAsAhRmHjNgHpi0U-Dme37rR6CuUpSREXAMPLE"},{"code":"Other","message":"x"}]}"#;
        let error = spapi_error(403, body, &[]);
        match &error {
            PlatformError::SpApi {
                http_status,
                code,
                message,
            } => {
                assert_eq!((*http_status, code.as_str()), (403, "Unauthorized"));
                assert_eq!(
                    message,
                    "Access to requested resource is denied. (The access token you provided has expired: ***)"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(token_refused(&error));
        assert!(matches!(
            spapi_error(502, b"<html>Bad Gateway</html>", &[]),
            PlatformError::UnexpectedStatus(502)
        ));
    }
}
