//! `messenger-webhook`: Meta's webhook endpoint. It verifies, enqueues and answers, nothing else:
//! Meta waits at most 20 seconds and retries what is not acknowledged, so all real work happens in
//! `messenger-ingest`, behind the `inbound` queue.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ecomdrive_aws::Queue;
use ecomdrive_core::webhook::{MAX_DELIVERY_BYTES, signature_is_valid};
use ecomdrive_runtime::problem::Problem;
use ecomdrive_runtime::secrets::{MetaAppSecrets, SecretCache};
use serde::Deserialize;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct WebhookState {
    pub secrets: SecretCache<MetaAppSecrets>,
    pub inbound: Queue,
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/messenger", get(verify).post(receive))
        // Bigger bodies are refused with 413 before they are read whole.
        .layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES))
        .with_state(state)
}

#[derive(Deserialize)]
struct Verification {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription check: echo the challenge when the verify token is ours.
async fn verify(State(state): State<WebhookState>, Query(q): Query<Verification>) -> Response {
    let secrets = match state.secrets.get().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Meta app secrets unavailable");
            return Problem::service_unavailable().into_response();
        }
    };
    let token_ok = q
        .verify_token
        .as_deref()
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(secrets.verify_token.expose().as_bytes())));
    match (q.mode.as_deref(), q.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            (StatusCode::OK, challenge).into_response()
        }
        _ => Problem::forbidden().into_response(),
    }
}

/// A delivery: signature over the raw body, then onto the queue, then 200.
async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    let secrets = match state.secrets.get().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Meta app secrets unavailable");
            return Problem::service_unavailable().into_response();
        }
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signature_is_valid(secrets.app_secret.expose().as_bytes(), &body, signature) {
        tracing::warn!(
            bytes = body.len(),
            "webhook refused: missing or wrong signature"
        );
        return Problem::forbidden().into_response();
    }
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        // Meta sends JSON: a signed body that is not UTF-8 cannot be a delivery.
        return Problem::bad_request("the body is not UTF-8 JSON").into_response();
    };
    // A delivery is the inbound queue's main kind: no attribute, so all of SQS's 1 MiB is the body.
    match state.inbound.send(None, text).await {
        Ok(()) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(e) => {
            // 5xx makes Meta deliver it again later: nothing is lost.
            tracing::error!(error = %e, "could not enqueue a webhook delivery");
            Problem::service_unavailable().into_response()
        }
    }
}
