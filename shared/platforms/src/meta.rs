//! Meta's Graph API, as the Messenger inbox uses it: Facebook Login (manual flow), the merchant's
//! Pages, webhook subscription of a Page, and the Send API.
//!
//! Why it looks the way it does:
//! - every call goes through [`OutboundHttp`], so only allow-listed hosts are reached (POLICY E11);
//! - every call that carries an access token also carries `appsecret_proof`, so a stolen token is
//!   useless without our app secret (Meta's "Securing Graph API requests");
//! - tokens are [`Secret`]s and no error, `Debug` or log line of this module contains one
//!   (POLICY E14): reqwest errors lose their URL, Meta's messages are scrubbed, and decode errors
//!   keep only a position, never the offending value;
//! - [`PlatformError::Timeout`] is its own variant because a Send API call that timed out may have been
//!   delivered: the caller must not treat it like a refusal.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ecomdrive_core::Secret;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use time::OffsetDateTime;
use url::Url;

use crate::error::PlatformError;
use crate::outbound::{OutboundHttp, OutboundRequest};

/// The permissions the login dialog asks for, the fewest a Messenger inbox works with:
/// - `pages_show_list`: list the Pages the merchant manages (`/me/accounts`) so they pick some (E1);
/// - `pages_manage_metadata`: subscribe our app to a Page's webhooks (`/{page-id}/subscribed_apps`);
/// - `pages_messaging`: receive the Page's messages and answer them with the Send API.
///
/// Not asked: `pages_read_engagement` (we read no posts or comments; the Page name comes with
/// `/me/accounts`) and `business_management` (we manage no Business Manager assets).
pub const MESSENGER_INBOX_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_manage_metadata",
    "pages_messaging",
];

/// The webhook fields a Page is subscribed to: messages and their echoes (replies sent from
/// Meta's own inbox), delivery and read receipts (message status, E5), postbacks and reactions.
pub const MESSENGER_WEBHOOK_FIELDS: &[&str] = &[
    "messages",
    "message_echoes",
    "message_deliveries",
    "message_reads",
    "messaging_postbacks",
    "message_reactions",
];

/// The Send API's "2000 character limit" on message text; one number for the API and the client.
pub const MAX_TEXT_CHARS: usize = ecomdrive_core::inbox::MAX_REPLY_CHARS;
/// Meta's limit on `message.metadata`.
pub const MAX_METADATA_CHARS: usize = 1000;

/// `/me/accounts` pages asked for and followed at most: 20 × 100 Pages is far beyond any merchant,
/// and a paging loop must end even if Meta's answer never does.
const PAGE_LIST_LIMIT: u32 = 100;
const MAX_PAGE_LIST_REQUESTS: usize = 20;

/// A Graph API answer is small JSON; anything bigger is refused rather than held in memory.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Meta's error messages are short; a longer one is cut so logs stay readable.
const MAX_ERROR_MESSAGE_CHARS: usize = 500;

/// Where Meta is and who we are to it.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// `https://graph.facebook.com` in production; the Meta sandbox's loopback URL locally.
    pub graph_base: String,
    /// `https://www.facebook.com` in production (the login dialog).
    pub dialog_base: String,
    /// Graph API version, e.g. `v23.0`.
    pub version: String,
    pub app_id: String,
    pub app_secret: Secret,
}

impl MetaConfig {
    pub fn production(app_id: impl Into<String>, app_secret: Secret) -> Self {
        Self {
            graph_base: "https://graph.facebook.com".into(),
            dialog_base: "https://www.facebook.com".into(),
            version: "v23.0".into(),
            app_id: app_id.into(),
            app_secret,
        }
    }
}

/// A Page the merchant manages, with the Page token our app may use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAccess {
    pub id: String,
    pub name: String,
    pub access_token: Secret,
}

/// Why a message is sent: as an answer inside the 24-hour window, or tagged outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagingType {
    /// `RESPONSE`: inside the standard messaging window.
    Response,
    /// `MESSAGE_TAG`: outside it; needs a [`MessageTag`].
    MessageTag,
}

impl MessagingType {
    fn as_meta(self) -> &'static str {
        match self {
            MessagingType::Response => "RESPONSE",
            MessagingType::MessageTag => "MESSAGE_TAG",
        }
    }
}

/// The only tag the inbox uses: a human agent answering within 7 days (POLICY E12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTag {
    HumanAgent,
}

impl MessageTag {
    fn as_meta(self) -> &'static str {
        match self {
            MessageTag::HumanAgent => "HUMAN_AGENT",
        }
    }
}

/// A text reply to a customer (identified by their Page-scoped id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub recipient_psid: String,
    pub messaging_type: MessagingType,
    /// Required with [`MessagingType::MessageTag`], refused with [`MessagingType::Response`].
    pub tag: Option<MessageTag>,
    pub text: String,
    /// Comes back in the `message_echoes` webhook: we put our own message id here to match echoes.
    pub metadata: Option<String>,
}

/// What Meta answered to a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: String,
    pub recipient_id: String,
}

/// `appsecret_proof` of Meta's "Securing Graph API requests": hex HMAC-SHA256 of the access token,
/// keyed with the app secret.
pub fn appsecret_proof(app_secret: &Secret, access_token: &Secret) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(access_token.expose().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The Graph API client. Cheap to clone.
#[derive(Clone)]
pub struct MetaClient {
    http: OutboundHttp,
    config: MetaConfig,
    graph_base: Url,
    dialog_base: Url,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaClient")
            .field("graph_base", &self.graph_base.as_str())
            .field("version", &self.config.version)
            .field("app_id", &self.config.app_id)
            .finish_non_exhaustive()
    }
}

impl MetaClient {
    /// Checks the configured base URLs against the allow-list now, so a misconfigured function
    /// fails at start-up instead of at its first message.
    pub fn new(http: OutboundHttp, config: MetaConfig) -> Result<Self, PlatformError> {
        let graph_base = http.check(&config.graph_base)?;
        let dialog_base = http.check(&config.dialog_base)?;
        if !is_graph_version(&config.version) {
            return Err(PlatformError::InvalidInput(format!(
                "Graph API version `{}` is not of the form v23.0",
                config.version
            )));
        }
        Ok(Self {
            http,
            config,
            graph_base,
            dialog_base,
        })
    }

    /// The login dialog URL the merchant's browser is sent to. `state` must be an unguessable
    /// value the callback checks (CSRF); `redirect_uri` must match the one given to
    /// [`MetaClient::exchange_code`] exactly.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let mut url = versioned(
            &self.dialog_base,
            &self.config.version,
            &["dialog", "oauth"],
        );
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("scope", &MESSENGER_INBOX_SCOPES.join(","));
        url.into()
    }

    /// Exchanges the `code` of the login callback for a (short-lived) user token.
    ///
    /// This call and the next carry `client_secret` itself, as Meta documents, and no
    /// `appsecret_proof` (there is no access token yet to prove).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Secret, PlatformError> {
        let request = self
            .http
            .get(self.graph_url(&["oauth", "access_token"]).as_str())?;
        let request = request.query(&[
            ("client_id", self.config.app_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("client_secret", self.config.app_secret.expose()),
            ("code", code),
        ]);
        let answer: TokenAnswer = self
            .call(request, &[self.config.app_secret.expose(), code])
            .await?;
        Ok(answer.access_token)
    }

    /// Exchanges a short-lived user token for a long-lived one (about 60 days). Page tokens got
    /// with a long-lived user token do not expire.
    pub async fn long_lived_user_token(&self, short: &Secret) -> Result<Secret, PlatformError> {
        let request = self
            .http
            .get(self.graph_url(&["oauth", "access_token"]).as_str())?;
        let request = request.query(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", self.config.app_id.as_str()),
            ("client_secret", self.config.app_secret.expose()),
            ("fb_exchange_token", short.expose()),
        ]);
        let answer: TokenAnswer = self
            .call(request, &[self.config.app_secret.expose(), short.expose()])
            .await?;
        Ok(answer.access_token)
    }

    /// The Facebook user behind a user token: their app-scoped id and name (`GET /me`). Meta's
    /// data deletion and deauthorize callbacks name the user by this id, so the OAuth callback
    /// keeps it with the authorization.
    pub async fn me(&self, user_token: &Secret) -> Result<FacebookUser, PlatformError> {
        let url = self.graph_url(&["me"]);
        let proof = self.proof(user_token);
        let request = self.http.get(url.as_str())?.query(&[
            ("fields", "id,name"),
            ("access_token", user_token.expose()),
            ("appsecret_proof", proof.as_str()),
        ]);
        let user: FacebookUser = self.call(request, &[user_token.expose()]).await?;
        if !is_app_scoped_id(&user.id) {
            return Err(PlatformError::Decode(
                "Meta answered /me with an id that is not an app-scoped user id".into(),
            ));
        }
        Ok(user)
    }

    /// The Pages the user manages, with their Page tokens, following Meta's cursors to the end.
    ///
    /// A Page listed without an `access_token` (the user has no task on it that allows one) cannot
    /// be connected, so it is left out.
    pub async fn pages(&self, user_token: &Secret) -> Result<Vec<PageAccess>, PlatformError> {
        let url = self.graph_url(&["me", "accounts"]);
        let proof = self.proof(user_token);
        let limit = PAGE_LIST_LIMIT.to_string();
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGE_LIST_REQUESTS {
            let mut query = vec![
                ("fields", "id,name,access_token"),
                ("limit", limit.as_str()),
                ("access_token", user_token.expose()),
                ("appsecret_proof", proof.as_str()),
            ];
            if let Some(cursor) = after.as_deref() {
                query.push(("after", cursor));
            }
            let request = self.http.get(url.as_str())?.query(&query);
            let answer: AccountsAnswer = self.call(request, &[user_token.expose()]).await?;
            pages.extend(answer.data.into_iter().filter_map(|page| {
                Some(PageAccess {
                    access_token: page.access_token?,
                    id: page.id,
                    name: page.name,
                })
            }));
            // Meta leaves out `next` on the last page; the cursor is what we follow (the `next`
            // URL would repeat the token and lacks our appsecret_proof).
            match answer.paging.and_then(Paging::next_cursor) {
                Some(cursor) => after = Some(cursor),
                None => return Ok(pages),
            }
        }
        Err(PlatformError::Decode(format!(
            "the list of Pages did not end after {MAX_PAGE_LIST_REQUESTS} requests"
        )))
    }

    /// Subscribes our app to the Page's webhook `fields` (usually [`MESSENGER_WEBHOOK_FIELDS`]).
    pub async fn subscribe_page(
        &self,
        page_id: &str,
        page_token: &Secret,
        fields: &[&str],
    ) -> Result<(), PlatformError> {
        if fields.is_empty() {
            return Err(PlatformError::InvalidInput(
                "at least one webhook field is needed".into(),
            ));
        }
        let url = self.page_url(page_id, "subscribed_apps")?;
        let proof = self.proof(page_token);
        let request = self.http.post(url.as_str())?.form(&[
            ("subscribed_fields", fields.join(",").as_str()),
            ("access_token", page_token.expose()),
            ("appsecret_proof", proof.as_str()),
        ]);
        let answer: SuccessAnswer = self.call(request, &[page_token.expose()]).await?;
        answer.into_result("subscribe the Page")
    }

    /// Removes our app's webhook subscription from the Page (disconnect, E15).
    pub async fn unsubscribe_page(
        &self,
        page_id: &str,
        page_token: &Secret,
    ) -> Result<(), PlatformError> {
        let url = self.page_url(page_id, "subscribed_apps")?;
        let proof = self.proof(page_token);
        let request = self.http.delete(url.as_str())?.query(&[
            ("access_token", page_token.expose()),
            ("appsecret_proof", proof.as_str()),
        ]);
        let answer: SuccessAnswer = self.call(request, &[page_token.expose()]).await?;
        answer.into_result("unsubscribe the Page")
    }

    /// Sends a text message with the Send API (`POST /me/messages` with the Page token, as the
    /// form fields Meta documents). The window rules are the caller's (domain) job; this checks
    /// only what Meta would refuse anyway, before spending a call.
    pub async fn send_message(
        &self,
        page_token: &Secret,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, PlatformError> {
        check_outgoing(message)?;
        let recipient = serde_json::json!({ "id": message.recipient_psid }).to_string();
        let mut content = serde_json::json!({ "text": message.text });
        if let Some(metadata) = &message.metadata {
            content["metadata"] = serde_json::Value::String(metadata.clone());
        }
        let content = content.to_string();
        let proof = self.proof(page_token);
        let mut form = vec![
            ("recipient", recipient.as_str()),
            ("messaging_type", message.messaging_type.as_meta()),
            ("message", content.as_str()),
            ("access_token", page_token.expose()),
            ("appsecret_proof", proof.as_str()),
        ];
        if let Some(tag) = message.tag {
            form.push(("tag", tag.as_meta()));
        }
        let url = self.graph_url(&["me", "messages"]);
        let request = self.http.post(url.as_str())?.form(&form);
        let answer: SendAnswer = self.call(request, &[page_token.expose()]).await?;
        Ok(SentMessage {
            message_id: answer.message_id,
            // Meta always returns it for a PSID recipient; if it ever did not, the message was
            // still sent, so it must not turn into an error.
            recipient_id: answer
                .recipient_id
                .unwrap_or_else(|| message.recipient_psid.clone()),
        })
    }

    fn proof(&self, access_token: &Secret) -> String {
        appsecret_proof(&self.config.app_secret, access_token)
    }

    fn graph_url(&self, segments: &[&str]) -> Url {
        versioned(&self.graph_base, &self.config.version, segments)
    }

    fn page_url(&self, page_id: &str, edge: &str) -> Result<Url, PlatformError> {
        // Meta's ids are digits; the sandbox may use letters. Never `/`, `.` or `?`: an id must not
        // be able to point the request at another path.
        let valid = !page_id.is_empty()
            && page_id.len() <= 64
            && page_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(PlatformError::InvalidInput(
                "a Page id is letters, digits, `_` or `-`".into(),
            ));
        }
        Ok(self.graph_url(&[page_id, edge]))
    }

    /// Sends, reads a bounded body, and turns it into `T` or a [`PlatformError`]. `secrets` are the
    /// credentials this request carried: they are scrubbed from Meta's error message.
    async fn call<T: DeserializeOwned>(
        &self,
        request: OutboundRequest,
        secrets: &[&str],
    ) -> Result<T, PlatformError> {
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes_bounded(MAX_ANSWER_BYTES).await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body, secrets));
        }
        serde_json::from_slice(&body).map_err(|e| {
            // serde_json's message can quote the offending value (maybe a token): keep its kind
            // and position only.
            PlatformError::Decode(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }
}

/// The Facebook user a user token belongs to, as `GET /me?fields=id,name` answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FacebookUser {
    /// The app-scoped user id (digits at Meta).
    pub id: String,
    /// The user's name; empty if Meta leaves it out.
    #[serde(default)]
    pub name: String,
}

// ---- signed_request ---------------------------------------------------------------------------
//
// Meta's data deletion and deauthorize callbacks POST `signed_request=<sig>.<payload>`: both parts
// base64url, the signature an HMAC-SHA256 of the *still-encoded* payload keyed with the app secret,
// the payload JSON `{"algorithm": "HMAC-SHA256", "issued_at": ..., "user_id": "<app-scoped id>"}`
// ("Data Deletion Request Callback", "Deauthorize Callback"). Meta's own sample decodes with or
// without `=` padding, so both are accepted.

/// The largest `signed_request` read. Meta's are a few hundred bytes; anything near this limit is
/// not from Meta, and is refused before any decoding or hashing.
pub const MAX_SIGNED_REQUEST_BYTES: usize = 8 * 1024;

/// How far in the future `issued_at` may be: clocks drift, but a request "issued" later than
/// this was not made by Meta now.
pub const SIGNED_REQUEST_MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// base64url, padding optional (Meta sends none; its sample accepts both).
const BASE64URL_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a verified `signed_request` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped id of the Facebook user who removed the app or asked for deletion.
    pub user_id: String,
    pub issued_at: OffsetDateTime,
}

#[derive(Deserialize)]
struct SignedRequestClaims {
    algorithm: String,
    /// Meta sends a string; a number is read too (older samples show one).
    user_id: serde_json::Value,
    issued_at: i64,
}

/// Verifies and reads Meta's `signed_request` at the current time. See
/// [`parse_signed_request_at`].
pub fn parse_signed_request(
    raw: &str,
    app_secret: &Secret,
) -> Result<SignedRequest, PlatformError> {
    parse_signed_request_at(raw, app_secret, OffsetDateTime::now_utc())
}

/// Verifies and reads Meta's `signed_request`: the signature first (in constant time, over the
/// payload exactly as sent), so nothing unauthenticated is decoded; then the algorithm, the
/// app-scoped user id and `issued_at` (not later than `now` plus
/// [`SIGNED_REQUEST_MAX_CLOCK_SKEW`]). Every refusal is [`PlatformError::InvalidInput`] naming
/// what was wrong, never quoting the input or the secret.
pub fn parse_signed_request_at(
    raw: &str,
    app_secret: &Secret,
    now: OffsetDateTime,
) -> Result<SignedRequest, PlatformError> {
    let refuse = |why: &str| PlatformError::InvalidInput(format!("signed_request: {why}"));
    if raw.len() > MAX_SIGNED_REQUEST_BYTES {
        return Err(refuse("longer than Meta ever sends"));
    }
    let (encoded_signature, payload) = raw
        .split_once('.')
        .filter(|(sig, payload)| !sig.is_empty() && !payload.is_empty())
        .ok_or_else(|| refuse("not of the form <signature>.<payload>"))?;
    let signature = BASE64URL_ANY_PADDING
        .decode(encoded_signature)
        .map_err(|_| refuse("the signature is not base64url"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(payload.as_bytes());
    // `verify_slice` compares in constant time (`subtle`) and refuses a tag of another length.
    mac.verify_slice(&signature)
        .map_err(|_| refuse("the signature does not match"))?;

    let json = BASE64URL_ANY_PADDING
        .decode(payload)
        .map_err(|_| refuse("the payload is not base64url"))?;
    let claims: SignedRequestClaims = serde_json::from_slice(&json)
        .map_err(|_| refuse("the payload lacks algorithm, user_id or issued_at"))?;
    // Meta writes `HMAC-SHA256`; the comparison ignores case as Meta's own sample does.
    if !claims.algorithm.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(refuse("the algorithm is not HMAC-SHA256"));
    }
    let user_id = match claims.user_id {
        serde_json::Value::String(id) => id,
        serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err(refuse("user_id is not an id")),
    };
    if !is_app_scoped_id(&user_id) {
        return Err(refuse("user_id is not an app-scoped user id"));
    }
    let issued_at = OffsetDateTime::from_unix_timestamp(claims.issued_at)
        .map_err(|_| refuse("issued_at is not a time"))?;
    if issued_at > now + SIGNED_REQUEST_MAX_CLOCK_SKEW {
        return Err(refuse("issued_at is in the future"));
    }
    Ok(SignedRequest { user_id, issued_at })
}

/// An app-scoped user id as Meta makes them (digits; the sandbox's too), bounded: it ends up in
/// our keys (`FBUSER#<id>`), so nothing but letters and digits gets through.
fn is_app_scoped_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_graph_version(version: &str) -> bool {
    let Some(number) = version.strip_prefix('v') else {
        return false;
    };
    let mut parts = number.split('.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// `base` + `/{version}/{segments...}`, each segment percent-encoded.
fn versioned(base: &Url, version: &str, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push(version).extend(segments);
    }
    url
}

fn check_outgoing(message: &OutgoingMessage) -> Result<(), PlatformError> {
    let invalid = |why: &str| Err(PlatformError::InvalidInput(why.to_owned()));
    if message.recipient_psid.trim().is_empty() {
        return invalid("the recipient's Page-scoped id is empty");
    }
    if message.text.trim().is_empty() {
        return invalid("the message text is empty");
    }
    if message.text.chars().count() > MAX_TEXT_CHARS {
        return invalid("the message text is longer than 2000 characters");
    }
    let metadata_chars = message.metadata.as_deref().map_or(0, |m| m.chars().count());
    if metadata_chars > MAX_METADATA_CHARS {
        return invalid("the message metadata is longer than 1000 characters");
    }
    match (message.messaging_type, message.tag) {
        (MessagingType::MessageTag, None) => invalid("MESSAGE_TAG needs a tag"),
        (MessagingType::Response, Some(_)) => invalid("a RESPONSE carries no tag"),
        _ => Ok(()),
    }
}

/// Meta's error object, or a transport error if the body is not one (a proxy's 502 page...).
fn api_error(http_status: u16, body: &[u8], secrets: &[&str]) -> PlatformError {
    match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(ErrorAnswer { error }) => PlatformError::Api {
            http_status,
            code: error.code,
            subcode: error.error_subcode,
            message: scrub(&error.message, secrets),
        },
        Err(_) => PlatformError::Transport(format!(
            "HTTP {http_status} without a Graph API error object"
        )),
    }
}

/// Removes the request's credentials and anything that looks like a token from Meta's message,
/// and cuts it to a readable length.
fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut text = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    // Tokens are long runs of letters, digits and a few symbols; Meta's words are short.
    let scrubbed: Vec<&str> = text
        .split(' ')
        .map(|word| if looks_like_token(word) { "***" } else { word })
        .collect();
    let text = scrubbed.join(" ");
    match text.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn looks_like_token(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    core.len() >= 32
        && core
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'|' | b'.'))
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
}

#[derive(Deserialize)]
struct AccountsAnswer {
    #[serde(default)]
    data: Vec<AccountEntry>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct AccountEntry {
    id: String,
    #[serde(default)]
    name: String,
    access_token: Option<Secret>,
}

#[derive(Deserialize)]
struct Paging {
    cursors: Option<Cursors>,
    next: Option<String>,
}

impl Paging {
    fn next_cursor(self) -> Option<String> {
        self.next.as_ref()?;
        self.cursors?.after.filter(|after| !after.is_empty())
    }
}

#[derive(Deserialize)]
struct Cursors {
    after: Option<String>,
}

#[derive(Deserialize)]
struct SuccessAnswer {
    success: bool,
}

impl SuccessAnswer {
    fn into_result(self, what: &str) -> Result<(), PlatformError> {
        if self.success {
            Ok(())
        } else {
            Err(PlatformError::Decode(format!(
                "Meta answered success=false to the request to {what}"
            )))
        }
    }
}

#[derive(Deserialize)]
struct SendAnswer {
    message_id: String,
    recipient_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    code: i64,
    error_subcode: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_hex_hmac_sha256_of_the_token_keyed_by_the_app_secret() {
        // Reference value: printf 'token' | openssl dgst -sha256 -hmac 'secret'
        let proof = appsecret_proof(&Secret::new("secret"), &Secret::new("token"));
        assert_eq!(
            proof,
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
        );
    }

    #[test]
    fn scrub_removes_the_request_credentials_and_token_like_words() {
        let message = "Invalid OAuth access token EAABsbCS1iHgBAKZCZCw1234567890abcdefghijk. \
                       Also secret-code-123 was wrong";
        let scrubbed = scrub(message, &["secret-code-123"]);
        assert_eq!(
            scrubbed,
            "Invalid OAuth access token *** Also *** was wrong"
        );
    }

    #[test]
    fn scrub_keeps_meta_messages_readable_and_short() {
        let message = "(#10) This message is sent outside of allowed window.";
        assert_eq!(scrub(message, &[]), message);
        let long = "word ".repeat(200);
        let cut = scrub(&long, &[]);
        assert_eq!(cut.chars().count(), MAX_ERROR_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn graph_versions_must_look_like_meta_versions() {
        assert!(is_graph_version("v23.0"));
        assert!(is_graph_version("v9.10"));
        for bad in ["23.0", "v23", "v23.0/../me", "v.0", "v23.0.1", ""] {
            assert!(!is_graph_version(bad), "{bad}");
        }
    }

    #[test]
    fn outgoing_messages_that_meta_would_refuse_are_refused_before_a_call() {
        let ok = OutgoingMessage {
            recipient_psid: "24001".into(),
            messaging_type: MessagingType::Response,
            tag: None,
            text: "Your order ships today".into(),
            metadata: Some("msg-01".into()),
        };
        assert!(check_outgoing(&ok).is_ok());
        let tagged = OutgoingMessage {
            messaging_type: MessagingType::MessageTag,
            tag: Some(MessageTag::HumanAgent),
            ..ok.clone()
        };
        assert!(check_outgoing(&tagged).is_ok());
        let longest = OutgoingMessage {
            text: "x".repeat(MAX_TEXT_CHARS),
            ..ok.clone()
        };
        assert!(check_outgoing(&longest).is_ok());

        let cases = [
            OutgoingMessage {
                text: "  ".into(),
                ..ok.clone()
            },
            OutgoingMessage {
                text: "x".repeat(MAX_TEXT_CHARS + 1),
                ..ok.clone()
            },
            OutgoingMessage {
                recipient_psid: String::new(),
                ..ok.clone()
            },
            OutgoingMessage {
                metadata: Some("m".repeat(1001)),
                ..ok.clone()
            },
            OutgoingMessage {
                messaging_type: MessagingType::MessageTag,
                tag: None,
                ..ok.clone()
            },
            OutgoingMessage {
                tag: Some(MessageTag::HumanAgent),
                ..ok.clone()
            },
        ];
        for case in cases {
            assert!(
                matches!(check_outgoing(&case), Err(PlatformError::InvalidInput(_))),
                "{case:?}"
            );
        }
    }
    // ---- signed_request: vectors made outside this code (Python's hmac and base64 modules),
    // keyed with `local-fake-app-secret`, so the parser is checked against Meta's scheme rather
    // than against itself.
    const SECRET: &str = "local-fake-app-secret";
    /// Meta's sample payload (with `expires`), unpadded as Meta sends it.
    const UNPADDED: &str = "b4gMha5T8X30580P0EfT83In_FSUiXYH_IgXu_agVKc.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImV4cGlyZXMiOjEyOTE4NDA0MDAsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MSJ9";
    /// user_id 2184712, both parts with `=` padding (the HMAC covers the padded payload).
    const PADDED: &str = "EUnKA9DG21VFvzbdTDzGps8N9ddW5sXWbQqwU9Ngdlk=.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MTIifQ==";
    const WRONG_ALGORITHM: &str = "sGdTVxZP_15vsGuG-JostfZQ4MgmCZpc2DkkhiGvlzQ.eyJhbGdvcml0aG0iOiJITUFDLVNIQTEiLCJpc3N1ZWRfYXQiOjEyOTE4MzY4MDAsInVzZXJfaWQiOiIyMTg0NzEifQ";
    const NO_USER: &str = "qOYxbCih0s8cJZqSHhe0dvaHlorqSt4ijNwg0D9sSbI.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMH0";
    /// issued_at 2100-01-01.
    const FUTURE: &str = "H6ADabYOb5NFNfs32UQdHsAfYk-IR42L5UShEsyYplY.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6NDEwMjQ0NDgwMCwidXNlcl9pZCI6IjIxODQ3MSJ9";
    /// algorithm in lower case, user_id as a JSON number.
    const LOWER_CASE_NUMERIC_ID: &str = "gI6Il5ODRrqVCOFRtNF6YCJkU2gGXUaNQF4n8hebC9s.eyJhbGdvcml0aG0iOiJobWFjLXNoYTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6MjE4NDcxfQ";
    /// user_id `21#8`: our key separator.
    const BAD_USER_ID: &str = "SO3MS65CqcA-or1L89g69ZROa9JfDsqLp0y65RNQ40s.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxIzgifQ";

    fn parse(raw: &str) -> Result<SignedRequest, PlatformError> {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        parse_signed_request_at(raw, &Secret::new(SECRET), now)
    }

    fn refusal(raw: &str) -> String {
        match parse(raw) {
            Err(PlatformError::InvalidInput(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_signed_request_as_meta_sends_it_is_read() {
        let request = parse(UNPADDED).expect("valid");
        assert_eq!(request.user_id, "218471");
        assert_eq!(request.issued_at.unix_timestamp(), 1_291_836_800);
    }

    #[test]
    fn padded_base64url_is_accepted_too() {
        assert_eq!(parse(PADDED).expect("valid").user_id, "2184712");
        // The padded signature with its `=` stripped is the same signature.
        let (sig, payload) = PADDED.split_once('.').unwrap();
        let mixed = format!("{}.{payload}", sig.trim_end_matches('='));
        assert_eq!(parse(&mixed).expect("valid").user_id, "2184712");
    }

    #[test]
    fn the_algorithm_is_compared_without_case_and_a_numeric_user_id_is_read() {
        assert_eq!(
            parse(LOWER_CASE_NUMERIC_ID).expect("valid").user_id,
            "218471"
        );
    }

    #[test]
    fn a_tampered_payload_or_signature_is_refused() {
        let (sig, payload) = UNPADDED.split_once('.').unwrap();
        // Another user id, re-encoded, under the original signature.
        let forged_payload = BASE64URL_ANY_PADDING
            .encode(br#"{"algorithm":"HMAC-SHA256","issued_at":1291836800,"user_id":"999"}"#);
        let mut flipped_sig = sig.to_owned();
        flipped_sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        let unpadded_payload = PADDED.split_once('.').unwrap().1.trim_end_matches('=');
        for (raw, why) in [
            (format!("{sig}.{forged_payload}"), "does not match"),
            (format!("{flipped_sig}.{payload}"), "does not match"),
            // The signature covers the payload as sent: dropping its padding changes it.
            (
                format!("{}.{unpadded_payload}", PADDED.split_once('.').unwrap().0),
                "does not match",
            ),
            (format!("{}.{payload}", &sig[..20]), "does not match"),
        ] {
            assert!(refusal(&raw).contains(why), "{raw}");
        }
        let other_secret = parse_signed_request_at(
            UNPADDED,
            &Secret::new("another-secret"),
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        );
        assert!(matches!(other_secret, Err(PlatformError::InvalidInput(_))));
    }

    #[test]
    fn a_wrong_algorithm_a_missing_field_or_a_bad_id_is_refused() {
        assert!(refusal(WRONG_ALGORITHM).contains("HMAC-SHA256"));
        assert!(refusal(NO_USER).contains("lacks"));
        assert!(refusal(BAD_USER_ID).contains("user_id"));
        assert!(refusal(FUTURE).contains("future"));
    }

    #[test]
    fn garbage_and_oversize_input_is_refused_without_echoing_it_or_the_secret() {
        let huge = format!(
            "{}.{}",
            "a".repeat(43),
            "b".repeat(MAX_SIGNED_REQUEST_BYTES)
        );
        for raw in [
            "",
            ".",
            "no-dot-at-all",
            "abc.",
            ".abc",
            "!!!.eyJ9",
            "b4gMha5T8X30580P0EfT83In_FSUiXYH_IgXu_agVKc.%%%",
            huge.as_str(),
        ] {
            let why = refusal(raw);
            assert!(!why.contains(SECRET), "{why}");
            assert!(raw.len() < 8 || !why.contains(raw), "{why}");
        }
    }
}
