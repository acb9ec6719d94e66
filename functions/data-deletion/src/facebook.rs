//! Meta's data deletion and deauthorize callbacks (POLICY E15, A19, A11; issue 5 §5).
//!
//! Meta POSTs `signed_request=<sig>.<payload>` (form-encoded) when a person asks, from their
//! Facebook settings, for the data we have from Facebook about them (`/data-deletion/facebook`),
//! or removes our app (`/data-deletion/facebook/deauthorize`). The request names the person by
//! their app-scoped id, the id the Messenger connection kept from `GET /me`.
//!
//! - Data deletion: every Page connected through that person's authorization is unsubscribed at
//!   Meta (where its token still works), disconnected and its token deleted; their authorization
//!   (user token, id, name) is deleted and their id removed from every record. The answer is
//!   Meta's `{"url", "confirmation_code"}`, pointing at the status page of a receipt that is
//!   already done (all of it happens here, in well under Meta's timeout) and holds counts only.
//! - Deauthorize: the same disconnections and token deletions; the id stays on the disconnected
//!   connections (with its index) so a data deletion request that follows still finds them.
//!
//! Both are idempotent, and a person we never knew gets the same answer (a receipt with zero
//! counts): the answer tells nobody whether someone connected Pages here. A request that is not
//! Meta's (bad signature, algorithm or shape) is a 400 problem and changes nothing.

use crate::DeletionState;
use crate::form::status_url;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ecomdrive_aws::TokenContext;
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::connections::ForgetOutcome;
use ecomdrive_aws::store::deletions::completed;
use ecomdrive_core::data_rights::{DeletionChannel, DeletionReceipt, DeletionSubject};
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::meta::{MAX_SIGNED_REQUEST_BYTES, SignedRequest, parse_signed_request};
use ecomdrive_runtime::problem::Problem;
use ecomdrive_runtime::secrets::PageUnsubscriber;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use time::OffsetDateTime;

pub const DATA_DELETION_PATH: &str = "/data-deletion/facebook";
pub const DEAUTHORIZE_PATH: &str = "/data-deletion/facebook/deauthorize";

/// The largest body read: the form field around a `signed_request` of the largest size accepted.
pub const MAX_BODY_BYTES: usize = MAX_SIGNED_REQUEST_BYTES + 1024;

/// Who acted, in the merchants' audit logs.
const DELETION_ACTOR: &str = "meta-data-deletion";
const DEAUTHORIZE_ACTOR: &str = "meta-deauthorize";

pub fn routes() -> Router<DeletionState> {
    Router::new()
        .route(DATA_DELETION_PATH, post(data_deletion))
        .route(DEAUTHORIZE_PATH, post(deauthorize))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `POST /data-deletion/facebook`: forget the person, answer Meta's `{url, confirmation_code}`.
async fn data_deletion(
    State(state): State<DeletionState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let request = verify(&state, &headers, body).await?;
    let outcome = forget(&state, &request, true).await?;
    let receipt = receipt(&outcome, OffsetDateTime::now_utc());
    state.store.create_deletion(&receipt).await.map_err(|e| {
        tracing::error!(error = %e, "the receipt of a Meta data deletion could not be written");
        Problem::service_unavailable()
    })?;
    tracing::info!(
        confirmation_code = %receipt.id,
        pages = outcome.pages_disconnected.len(),
        merchants = outcome.merchants.len(),
        "Meta data deletion request carried out"
    );
    let body = json!({
        "url": status_url(&state.config.public_base_url, &receipt.id),
        "confirmation_code": receipt.id,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `POST /data-deletion/facebook/deauthorize`: disconnect the person's Pages, delete the tokens.
/// Meta reads nothing from the answer but its status.
async fn deauthorize(
    State(state): State<DeletionState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let request = verify(&state, &headers, body).await?;
    let outcome = forget(&state, &request, false).await?;
    tracing::info!(
        pages = outcome.pages_disconnected.len(),
        merchants = outcome.merchants.len(),
        "Meta deauthorize callback carried out"
    );
    Ok((StatusCode::OK, axum::Json(json!({ "success": true }))).into_response())
}

/// Reads and verifies the `signed_request` with the app's current secret.
async fn verify(
    state: &DeletionState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<SignedRequest, Problem> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::payload_too_large()
        } else {
            Problem::bad_request("the body could not be read")
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let raw = signed_request_field(content_type, &body)?;
    let secrets = state.meta_secrets.get().await.map_err(|e| {
        tracing::error!(error = %e, "the Meta app secret is unavailable");
        Problem::service_unavailable()
    })?;
    parse_signed_request(&raw, &secrets.app_secret).map_err(|e| {
        // Only what was wrong with the request: never the request or the secret.
        tracing::warn!(error = %e, "refused a signed_request");
        match e {
            PlatformError::InvalidInput(why) => Problem::bad_request(why),
            _ => Problem::bad_request("signed_request: refused"),
        }
    })
}

/// Why a body carries no usable `signed_request` (kept small; a [`Problem`] at the handler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormRefusal {
    NotForm,
    Unreadable,
    Missing,
    Repeated,
}

impl From<FormRefusal> for Problem {
    fn from(refusal: FormRefusal) -> Self {
        match refusal {
            FormRefusal::NotForm => Problem::unsupported_media_type(
                "send the signed_request as application/x-www-form-urlencoded",
            ),
            FormRefusal::Unreadable => Problem::bad_request("the body is not a form"),
            FormRefusal::Missing => Problem::bad_request("signed_request is missing"),
            FormRefusal::Repeated => Problem::bad_request("signed_request given more than once"),
        }
    }
}

/// Pure: the one `signed_request` field of a form-encoded body.
fn signed_request_field(content_type: Option<&str>, body: &[u8]) -> Result<String, FormRefusal> {
    let is_form = content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(FormRefusal::NotForm);
    }
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| FormRefusal::Unreadable)?;
    let mut values = fields
        .into_iter()
        .filter(|(name, _)| name == "signed_request")
        .map(|(_, value)| value);
    match (values.next(), values.next()) {
        (Some(value), None) if !value.is_empty() => Ok(value),
        (Some(_), Some(_)) => Err(FormRefusal::Repeated),
        _ => Err(FormRefusal::Missing),
    }
}

/// Unsubscribes the person's Pages at Meta (a courtesy: the tokens go whatever Meta answers, and
/// a token the person's removal already revoked is expected), then has the store forget them.
async fn forget(
    state: &DeletionState,
    request: &SignedRequest,
    erase_identity: bool,
) -> Result<ForgetOutcome, Problem> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "the store could not forget a Facebook user");
        Problem::service_unavailable()
    };
    let pages = state
        .store
        .facebook_user_pages(&request.user_id)
        .await
        .map_err(|e| unavailable(&e))?;
    if !pages.is_empty() {
        // Unsubscribing is a courtesy to Meta: the Pages are disconnected whatever it answers.
        let unsubscriber =
            PageUnsubscriber::connect(&state.meta, &state.http, &state.meta_secrets).await;
        for page in &pages {
            let Some(sealed) = &page.token_ciphertext else {
                continue;
            };
            let ctx = TokenContext::messenger_page(&page.merchant_id, &page.page_id);
            match state.vault.open(&ctx, sealed).await {
                Ok(token) => unsubscriber.unsubscribe(page.page_id.clone(), token).await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not open a Page token to unsubscribe; disconnecting anyway")
                }
            }
        }
    }
    let outcome = state
        .store
        .forget_facebook_user(&request.user_id, erase_identity)
        .await
        .map_err(|e| unavailable(&e))?;
    let actor = Actor::Job(if erase_identity {
        DELETION_ACTOR
    } else {
        DEAUTHORIZE_ACTOR
    });
    for (m, page) in &outcome.pages_disconnected {
        // The audit names the Page, never the person: their id must not outlive the deletion.
        if let Err(e) = state
            .store
            .audit(m, &actor, "messenger.page.disconnect", Some(page.as_str()))
            .await
        {
            tracing::error!(error = %e, "could not audit a Page disconnected by Meta's callback");
        }
    }
    Ok(outcome)
}

/// Pure: the proof of a Meta data deletion, done at once; counts only, no personal data.
fn receipt(outcome: &ForgetOutcome, now: OffsetDateTime) -> DeletionReceipt {
    let mut receipt = DeletionReceipt::new(
        // Dropped by `completed`: the receipt keeps only that it was a Facebook user.
        DeletionSubject::FacebookUser {
            facebook_user_id: String::new(),
        },
        DeletionChannel::Facebook,
        now,
    );
    receipt.counts = outcome.counts();
    completed(receipt, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomdrive_core::data_rights::DeletionStatus;
    use ecomdrive_core::ids::{MerchantId, PageId};

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn the_signed_request_comes_from_a_form_body() {
        assert_eq!(
            signed_request_field(FORM, b"signed_request=abc.def").unwrap(),
            "abc.def"
        );
        // Padding arrives percent-encoded; the charset parameter is fine.
        assert_eq!(
            signed_request_field(
                Some("application/x-www-form-urlencoded; charset=UTF-8"),
                b"signed_request=abc%3D.def%3D%3D&other=1"
            )
            .unwrap(),
            "abc=.def=="
        );
    }

    #[test]
    fn a_missing_repeated_or_non_form_signed_request_is_refused() {
        for (content_type, body, status) in [
            (FORM, &b""[..], StatusCode::BAD_REQUEST),
            (FORM, b"signed_request=", StatusCode::BAD_REQUEST),
            (FORM, b"user_id=1", StatusCode::BAD_REQUEST),
            (
                FORM,
                b"signed_request=a.b&signed_request=c.d",
                StatusCode::BAD_REQUEST,
            ),
            (
                Some("application/json"),
                br#"{"signed_request":"a.b"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                None,
                b"signed_request=a.b",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
        ] {
            let problem = Problem::from(signed_request_field(content_type, body).unwrap_err());
            assert_eq!(problem.status(), status, "{body:?}");
        }
    }

    #[test]
    fn policy_a19_the_receipt_is_done_and_holds_counts_only() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let m = MerchantId::generate();
        let outcome = ForgetOutcome {
            merchants: vec![m.clone()],
            pages_disconnected: vec![(m.clone(), PageId::parse("100000000000101").unwrap())],
            pages_erased: 1,
            authorizations_deleted: 1,
            index_items_deleted: 1,
        };
        let r = receipt(&outcome, now);
        assert_eq!(r.status, DeletionStatus::Done);
        assert_eq!(r.subject, None);
        assert_eq!(r.subject_kind, "facebook_user");
        assert_eq!(r.channel, DeletionChannel::Facebook);
        assert_eq!(r.completed_at, Some(now));
        assert_eq!(r.counts["disconnected:page_connection"], 1);
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            !json.contains(m.as_str()) && !json.contains("100000000000101"),
            "{json}"
        );
        // Someone we never knew: the same shape, zero counts.
        let nobody = receipt(&ForgetOutcome::default(), now);
        assert_eq!(
            nobody.counts.keys().collect::<Vec<_>>(),
            r.counts.keys().collect::<Vec<_>>()
        );
        assert!(nobody.counts.values().all(|n| *n == 0));
    }
}
