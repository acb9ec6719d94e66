//! Routes the local stack mounts on its main port, so a person (or a script) can play the
//! customer and see what was sent to Meta:
//! - `POST /_local/messenger/simulate` `{"page_id","psid","text"}` → 202 `{"mid","webhook_status"}`;
//! - `GET /_local/meta/sent` → `{"items":[SentMessage...]}`, oldest first;
//! - `GET /_local/meta/calls` → `{"items":[GraphCall...]}`, oldest first;
//! - `POST /_local/meta/data-deletion?user_id=` and `POST /_local/meta/deauthorize?user_id=` →
//!   what our callback answered to Meta's signed request (`user_id` defaults to the sandbox's
//!   Facebook user), as when that person asks Meta for deletion or removes the app.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::MetaSandbox;
use crate::error::SandboxError;

pub fn local_routes(sandbox: MetaSandbox) -> Router {
    Router::new()
        .route("/_local/messenger/simulate", post(simulate))
        .route("/_local/meta/sent", get(sent))
        .route("/_local/meta/calls", get(calls))
        .route("/_local/meta/data-deletion", post(data_deletion))
        .route("/_local/meta/deauthorize", post(deauthorize))
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

/// The Facebook user a callback is for: `?user_id=`, else the sandbox's own user.
fn callback_user(sandbox: &MetaSandbox, query: &HashMap<String, String>) -> String {
    query
        .get("user_id")
        .filter(|id| !id.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| sandbox.config().user.id.clone())
}

async fn data_deletion(
    State(sandbox): State<MetaSandbox>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, SandboxError> {
    let answer = sandbox
        .request_data_deletion(&callback_user(&sandbox, &query))
        .await?;
    Ok(Json(
        json!({ "status": answer.status, "body": answer.body }),
    ))
}

async fn deauthorize(
    State(sandbox): State<MetaSandbox>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, SandboxError> {
    let answer = sandbox
        .deauthorize(&callback_user(&sandbox, &query))
        .await?;
    Ok(Json(
        json!({ "status": answer.status, "body": answer.body }),
    ))
}
