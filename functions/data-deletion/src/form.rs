//! The public data-deletion form (POLICY E15, A19; issue 5 §4): anyone can ask for their account
//! to be deleted, without being able to delete someone else's or to learn who has an account.
//!
//! 1. `GET /data-deletion`: the form (plain HTML, no script), with a double-submit CSRF token.
//! 2. `POST /data-deletion` (`email`, `csrf_token`): CSRF-checked and rate limited per IP address
//!    and per e-mail; always the same answer. Only when a user has that address does an e-mail go
//!    out, with a link to step 3 signed with the form's key and valid for 24 hours.
//! 3. `GET /data-deletion/confirm?token=`: uses the link (once), records a deletion receipt
//!    (subject: that user; channel: form), queues the [`DeletionJob`] and redirects to step 4.
//! 4. `GET /data-deletion/status/{confirmation_code}`: the receipt's status, as HTML or, with
//!    `Accept: application/json`, as JSON. Meta's callbacks point here too ([`status_url`]).

pub mod pages;
pub mod tokens;

use crate::DeletionState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use ecomdrive_aws::AwsError;
use ecomdrive_aws::store::deletion_links::{DeletionLink, TakenLink};
use ecomdrive_aws::store::rate_limit::RateDecision;
use ecomdrive_core::data_rights::{DeletionChannel, DeletionJob, DeletionReceipt, DeletionSubject};
use ecomdrive_core::ids::DeletionId;
use ecomdrive_core::merchant::normalize_email;
use ecomdrive_runtime::client::ClientInfo;
use ecomdrive_runtime::error::RuntimeError;
use ecomdrive_runtime::problem::Problem;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use std::time::Duration;
use time::OffsetDateTime;
use tokens::TokenError;

/// The largest POST body read: an address and a token fit many times over.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Requests per IP address per hour: enough for typos, too few to probe addresses.
pub const IP_LIMIT: u32 = 5;
pub const IP_WINDOW_SECS: i64 = 60 * 60;
/// Requests per e-mail address per day: nobody's mailbox is flooded through the form.
pub const EMAIL_LIMIT: u32 = 3;
pub const EMAIL_WINDOW_SECS: i64 = 24 * 60 * 60;
/// Every accepted POST answers no sooner than this: sending the e-mail (only done when an
/// account exists) takes time, and the answer's timing must not tell whether it was sent.
pub const RESPONSE_FLOOR: Duration = Duration::from_millis(400);

/// The rate-limit scopes (stored only as a keyed hash with the value limited).
const IP_SCOPE: &str = "deletion-form-ip";
const EMAIL_SCOPE: &str = "deletion-form-email";

const FORM_PATH: &str = "/data-deletion";

pub fn routes() -> Router<DeletionState> {
    Router::new()
        .route(FORM_PATH, get(show_form).post(submit))
        .route("/data-deletion/confirm", get(confirm))
        .route("/data-deletion/status/{confirmation_code}", get(status))
}

/// The status page's path for a confirmation code.
pub fn status_path(id: &DeletionId) -> String {
    format!("/data-deletion/status/{id}")
}

/// The status page's full URL, as Meta's data deletion callback answers it.
pub fn status_url(public_base_url: &str, id: &DeletionId) -> String {
    format!(
        "{}{}",
        public_base_url.trim_end_matches('/'),
        status_path(id)
    )
}

/// The e-mailed confirmation link.
pub fn confirm_url(public_base_url: &str, token: &str) -> String {
    // The token is base64url and '.', nothing a query string must escape.
    format!(
        "{}/data-deletion/confirm?token={token}",
        public_base_url.trim_end_matches('/')
    )
}

/// The CSRF cookie is `Secure` except when the pages are served over plain HTTP on loopback (the
/// local stack), where a browser would drop a `Secure` cookie. The same rule as the API's.
pub fn cookie_secure(public_base_url: &str) -> bool {
    !(public_base_url.starts_with("http://127.0.0.1")
        || public_base_url.starts_with("http://localhost"))
}

/// What can fail that is not the visitor's doing: the store, the queue, the form's secret.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Secret(#[from] RuntimeError),
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "data-deletion form unavailable");
        pages::respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again later",
            &pages::back_to_form(
                "Please try again in a few minutes",
                "Something went wrong on our side and nothing was done. Please try again later.",
            ),
        )
    }
}

/// The form's signing key (Secrets Manager, cached).
async fn signing_key(state: &DeletionState) -> Result<Vec<u8>, FormError> {
    let secrets = state.form_secrets.get().await?;
    Ok(secrets.form_signing_key.expose().as_bytes().to_vec())
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A nonce we could have made: 43 base64url characters (256 bits).
fn plausible_nonce(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn csrf_cookie(nonce: &str, secure: bool) -> HeaderValue {
    let mut c = format!(
        "{}={nonce}; Path={FORM_PATH}; Max-Age={}; HttpOnly; SameSite=Strict",
        tokens::CSRF_COOKIE,
        tokens::CSRF_LIFETIME_SECS
    );
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("base64url and literals are a valid header value")
}

/// The form page for this browser: its CSRF cookie is kept when it has one (a second tab must not
/// spoil the first), else a new one is set; the hidden field is signed for that cookie.
fn form_response(
    state: &DeletionState,
    key: &[u8],
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let nonce = cookie(headers, tokens::CSRF_COOKIE)
        .filter(|n| plausible_nonce(n))
        .map(str::to_owned)
        .unwrap_or_else(tokens::random_token);
    let token = tokens::csrf_token(key, &nonce, OffsetDateTime::now_utc().unix_timestamp());
    let title = if error.is_some() {
        "Check the address"
    } else {
        "Delete my data"
    };
    let mut res = pages::respond(status, title, &pages::form(&token, email, error));
    res.headers_mut().insert(
        header::SET_COOKIE,
        csrf_cookie(&nonce, cookie_secure(&state.config.public_base_url)),
    );
    res
}

async fn show_form(
    State(state): State<DeletionState>,
    headers: HeaderMap,
) -> Result<Response, FormError> {
    let key = signing_key(&state).await?;
    Ok(form_response(
        &state,
        &key,
        &headers,
        StatusCode::OK,
        "",
        None,
    ))
}

#[derive(Deserialize)]
struct FormFields {
    email: Option<String>,
    csrf_token: Option<String>,
}

fn refused(status: StatusCode, heading: &str, text: &str) -> Response {
    pages::respond(status, heading, &pages::back_to_form(heading, text))
}

fn too_many(retry_after_secs: u64) -> Response {
    let mut res = refused(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        "Too many deletion requests came from here or for this address. Please try again later.",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

fn is_form_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn submit(
    State(state): State<DeletionState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FormError> {
    let started = tokio::time::Instant::now();
    if !is_form_content_type(&headers) {
        return Ok(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Please use the form",
            "This address takes the data deletion form only.",
        ));
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Ok(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Please use the form",
            "What was sent is larger than the form could ever send.",
        ));
    };
    let Ok(fields) = serde_urlencoded::from_bytes::<FormFields>(&bytes) else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "Please use the form",
            "What was sent could not be read as the form.",
        ));
    };
    let key = signing_key(&state).await?;
    let now = OffsetDateTime::now_utc();
    if let Err(e) = tokens::check_csrf(
        &key,
        cookie(&headers, tokens::CSRF_COOKIE),
        fields.csrf_token.as_deref(),
        now.unix_timestamp(),
    ) {
        tracing::info!(reason = %e, "deletion form: CSRF check refused");
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "Please reload the form",
            "This request did not come from a current copy of our form (it may have been open \
             too long, or cookies are off). Nothing was done. Reload the form and try again.",
        ));
    }

    // Every checked POST counts against its IP address, valid address or not.
    let ip = client.ip.as_deref().unwrap_or("unknown");
    if let RateDecision::Limited { retry_after_secs } = state
        .store
        .form_rate_limit(
            IP_SCOPE,
            &tokens::rate_key(&key, ip),
            IP_LIMIT,
            IP_WINDOW_SECS,
            now,
        )
        .await?
    {
        return Ok(too_many(retry_after_secs));
    }
    let typed = fields.email.unwrap_or_default();
    let email = match normalize_email(&typed) {
        Ok(e) => e,
        Err(why) => {
            let shown: String = typed.chars().take(254).collect();
            return Ok(form_response(
                &state,
                &key,
                &headers,
                StatusCode::BAD_REQUEST,
                &shown,
                Some(&format!("Please enter your e-mail address ({why}).")),
            ));
        }
    };
    if let RateDecision::Limited { retry_after_secs } = state
        .store
        .form_rate_limit(
            EMAIL_SCOPE,
            &tokens::rate_key(&key, &email),
            EMAIL_LIMIT,
            EMAIL_WINDOW_SECS,
            now,
        )
        .await?
    {
        return Ok(too_many(retry_after_secs));
    }

    // The same reads and writes whether or not an account has the address; only the e-mail
    // differs, and the response floor covers its time.
    let user_id = state.store.user_id_by_email(&email).await?;
    let expires_at = now.unix_timestamp() + tokens::LINK_LIFETIME_SECS;
    let link = DeletionLink {
        link_id: tokens::random_token(),
        user_id,
        created_at: now,
        expires_at,
        used: false,
        used_at: None,
    };
    state.store.create_deletion_link(&link).await?;
    if link.user_id.is_some() {
        let url = confirm_url(
            &state.config.public_base_url,
            &tokens::link_token(&key, &link.link_id, expires_at),
        );
        // A failure is logged, not answered: a different answer would say the account exists.
        if let Err(e) = state
            .mailer
            .send_text(
                &email,
                "Confirm the deletion of your EcomDrive data",
                &mail_text(&url),
            )
            .await
        {
            tracing::error!(error = %e, "deletion form: the confirmation e-mail was not sent");
        }
    }
    tokio::time::sleep_until(started + RESPONSE_FLOOR).await;
    Ok(pages::respond(
        StatusCode::OK,
        "Check your e-mail",
        &pages::sent(),
    ))
}

/// The confirmation e-mail (plain text).
fn mail_text(url: &str) -> String {
    format!(
        "Someone, hopefully you, asked to delete the EcomDrive data of this e-mail address.\n\n\
         To confirm, open this link within 24 hours:\n\n{url}\n\n\
         What will be deleted: {what}\n\n\
         If you did not ask for this, ignore this e-mail: nothing is deleted without the link.\n",
        what = pages::WHAT_IS_DELETED
    )
}

#[derive(Deserialize)]
struct ConfirmQuery {
    token: Option<String>,
}

fn invalid_link() -> Response {
    refused(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "This confirmation link is not one we sent, or it was cut short. Nothing was deleted. \
         Ask for a new link with the form.",
    )
}

fn gone_link(why: &str) -> Response {
    refused(
        StatusCode::GONE,
        "This link no longer works",
        &format!("{why} Nothing more was done. Ask for a new link with the form if you need one."),
    )
}

async fn confirm(
    State(state): State<DeletionState>,
    RawQuery(query): RawQuery,
) -> Result<Response, FormError> {
    let token = query
        .and_then(|q| serde_urlencoded::from_str::<ConfirmQuery>(&q).ok())
        .and_then(|q| q.token);
    let Some(token) = token else {
        return Ok(invalid_link());
    };
    let key = signing_key(&state).await?;
    let now = OffsetDateTime::now_utc();
    let claims = match tokens::verify_link(&key, &token, now.unix_timestamp()) {
        Ok(c) => c,
        Err(TokenError::Expired) => return Ok(gone_link("This link has expired.")),
        Err(e) => {
            tracing::info!(reason = %e, "deletion form: confirmation link refused");
            return Ok(invalid_link());
        }
    };
    let link = match state.store.take_deletion_link(&claims.lid, now).await? {
        TakenLink::Taken(link) => link,
        TakenLink::Used => return Ok(gone_link("This link has already been used.")),
        TakenLink::Expired => return Ok(gone_link("This link has expired.")),
        TakenLink::Unknown => return Ok(invalid_link()),
    };
    // A link made for an address without an account is never sent: its token cannot be here.
    let Some(user_id) = link.user_id else {
        return Ok(invalid_link());
    };
    let receipt = DeletionReceipt::new(
        DeletionSubject::User { user_id },
        DeletionChannel::Form,
        now,
    );
    if let Err(e) = record_and_queue(&state, &receipt).await {
        // Nothing is queued: give the link back so the person can simply open it again.
        if let Err(release) = state.store.release_deletion_link(&link.link_id).await {
            tracing::error!(error = %release, "deletion form: a taken link could not be released");
        }
        return Err(e);
    }
    tracing::info!(deletion_id = %receipt.id, "deletion form: deletion confirmed and queued");
    Ok(Redirect::to(&status_path(&receipt.id)).into_response())
}

async fn record_and_queue(
    state: &DeletionState,
    receipt: &DeletionReceipt,
) -> Result<(), FormError> {
    state.store.create_deletion(receipt).await?;
    let job = DeletionJob {
        deletion_id: receipt.id.clone(),
    };
    let body = serde_json::to_string(&job).map_err(|e| AwsError::Queue(e.to_string()))?;
    // The deletions queue's main kind: no kind attribute.
    state.deletions.send(None, body).await?;
    Ok(())
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The status as JSON: the same facts as the page, never the subject.
pub fn status_json(r: &DeletionReceipt) -> serde_json::Value {
    serde_json::json!({
        "confirmation_code": r.id,
        "status": pages::status_label(r.status),
        "requested_at": rfc3339(r.requested_at),
        "due_by": rfc3339(r.due_by),
        "completed_at": r.completed_at.map(rfc3339),
        "counts": if r.status == ecomdrive_core::data_rights::DeletionStatus::Done {
            serde_json::to_value(&r.counts).unwrap_or_default()
        } else {
            serde_json::json!({})
        },
    })
}

async fn status(
    State(state): State<DeletionState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers);
    let found = match DeletionId::parse(&code) {
        None => Ok(None),
        Some(id) => state.store.deletion(&id).await,
    };
    match (found, json) {
        (Ok(Some(r)), true) => {
            let mut res = axum::Json(status_json(&r)).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        (Ok(Some(r)), false) => {
            pages::respond(StatusCode::OK, "Deletion status", &pages::status(&r))
        }
        (Ok(None), true) => Problem::not_found().into_response(),
        (Ok(None), false) => refused(
            StatusCode::NOT_FOUND,
            "No such confirmation code",
            "We have no deletion with this confirmation code. Check that it was copied whole.",
        ),
        (Err(e), true) => {
            tracing::error!(error = %e, "deletion status unavailable");
            Problem::service_unavailable().into_response()
        }
        (Err(e), false) => FormError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_only_by_their_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ecomdrive_deletion_csrf_x=2"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("ecomdrive_deletion_csrf=abc; b=3"),
        );
        assert_eq!(cookie(&h, tokens::CSRF_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("3"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn the_csrf_cookie_is_strict_httponly_scoped_and_secure_off_loopback() {
        let c = csrf_cookie("n", true);
        let c = c.to_str().unwrap();
        for part in [
            "Path=/data-deletion",
            "HttpOnly",
            "SameSite=Strict",
            "; Secure",
            "Max-Age=7200",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!csrf_cookie("n", false).to_str().unwrap().contains("Secure"));
        assert!(cookie_secure("https://api.ecomdrive.app"));
        assert!(!cookie_secure("http://127.0.0.1:3000"));
        assert!(!cookie_secure("http://localhost:3000"));
    }

    #[test]
    fn only_our_own_nonces_are_kept() {
        assert!(plausible_nonce(&tokens::random_token()));
        assert!(!plausible_nonce("short"));
        assert!(!plausible_nonce(&"a;".repeat(22)[..43]));
    }

    #[test]
    fn urls_are_built_from_the_public_base_without_double_slashes() {
        let id = DeletionId::parse("del_01jabcdefghjkmnpqrstvwxyz0").unwrap();
        assert_eq!(
            status_url("https://x.test/", &id),
            "https://x.test/data-deletion/status/del_01jabcdefghjkmnpqrstvwxyz0"
        );
        assert_eq!(
            confirm_url("https://x.test", "a.b"),
            "https://x.test/data-deletion/confirm?token=a.b"
        );
    }

    #[test]
    fn only_the_form_content_type_is_taken() {
        let mut h = HeaderMap::new();
        assert!(!is_form_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        assert!(is_form_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_form_content_type(&h));
    }

    #[test]
    fn the_mail_holds_the_link_and_says_what_goes() {
        let t = mail_text("https://x.test/data-deletion/confirm?token=a.b");
        assert!(t.contains("https://x.test/data-deletion/confirm?token=a.b"));
        assert!(t.contains("24 hours"));
        assert!(t.contains("only owner"));
    }
}
