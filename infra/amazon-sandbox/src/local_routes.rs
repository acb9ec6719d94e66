//! Routes the local stack mounts on its main port, so a person (or a script) can see what was
//! asked of "Amazon":
//! - `GET /_local/amazon/solicitations` → `{"items":[SolicitationRequest...]}`, oldest first;
//! - `GET /_local/amazon/requests` → `{"items":[RecordedRequest...]}`, oldest first.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AmazonSandbox;

pub fn local_routes(sandbox: AmazonSandbox) -> Router {
    Router::new()
        .route("/_local/amazon/solicitations", get(solicitations))
        .route("/_local/amazon/requests", get(requests))
        .with_state(sandbox)
}

async fn solicitations(State(sandbox): State<AmazonSandbox>) -> Json<Value> {
    Json(json!({ "items": sandbox.solicitations() }))
}

async fn requests(State(sandbox): State<AmazonSandbox>) -> Json<Value> {
    Json(json!({ "items": sandbox.requests() }))
}
