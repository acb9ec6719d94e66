//! Routes the local stack mounts on its main port, so a person (or a script) can play the
//! customer and see what was sent to Meta:
//! - `POST /_local/messenger/simulate` `{"page_id","psid","text"}` → 202 `{"mid","webhook_status"}`;
//! - `GET /_local/meta/sent` → `{"items":[SentMessage...]}`, oldest first;
//! - `GET /_local/meta/calls` → `{"items":[GraphCall...]}`, oldest first.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::MetaSandbox;
use crate::error::SandboxError;

pub fn local_routes(sandbox: MetaSandbox) -> Router {
    Router::new()
        .route("/_local/messenger/simulate", post(simulate))
        .route("/_local/meta/sent", get(sent))
        .route("/_local/meta/calls", get(calls))
        .with_state(sandbox)
}

async fn simulate(
    State(sandbox): State<MetaSandbox>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), SandboxError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| SandboxError::InvalidInput(format!("the body must be JSON: {e}")))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                SandboxError::InvalidInput(format!("{name} is required (a non-empty string)"))
            })
    };
    let (page_id, psid, text) = (field("page_id")?, field("psid")?, field("text")?);
    let delivery = sandbox.simulate_message(page_id, psid, text).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "mid": delivery.mid, "webhook_status": delivery.webhook_status })),
    ))
}

async fn sent(State(sandbox): State<MetaSandbox>) -> Json<Value> {
    Json(json!({ "items": sandbox.sent() }))
}

async fn calls(State(sandbox): State<MetaSandbox>) -> Json<Value> {
    Json(json!({ "items": sandbox.calls() }))
}
