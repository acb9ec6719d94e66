//! Routes the local stack mounts on its main port, so a person (or a script) can see what was
//! asked of "Amazon":
//! - `GET /_local/amazon/solicitations` → `{"items":[SolicitationRequest...]}`, oldest first;
//! - `GET /_local/amazon/requests` → `{"items":[RecordedRequest...]}`, oldest first;
//! - `GET /_local/amazon/settlements` → `{"items":[{reportId, settlementId, start, end, gzip,
//!   totalAmount, underpaidOrderId, refundedOrderId}...]}`: the demo seller's settlement
//!   reports, oldest first;
//! - `GET /_local/amazon/settlements/{settlementId}` → that settlement's flat file (TSV, never
//!   compressed), 404 if there is none.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::dates::iso;
use crate::settlement::amount;
use crate::{AmazonSandbox, DEMO_SELLER_ID};

pub fn local_routes(sandbox: AmazonSandbox) -> Router {
    Router::new()
        .route("/_local/amazon/solicitations", get(solicitations))
        .route("/_local/amazon/requests", get(requests))
        .route("/_local/amazon/settlements", get(settlements))
        .route(
            "/_local/amazon/settlements/{settlement_id}",
            get(settlement_file),
        )
        .with_state(sandbox)
}

async fn solicitations(State(sandbox): State<AmazonSandbox>) -> Json<Value> {
    Json(json!({ "items": sandbox.solicitations() }))
}

async fn requests(State(sandbox): State<AmazonSandbox>) -> Json<Value> {
    Json(json!({ "items": sandbox.requests() }))
}

async fn settlements(State(sandbox): State<AmazonSandbox>) -> Json<Value> {
    let items: Vec<Value> = sandbox
        .settlements(DEMO_SELLER_ID)
        .iter()
        .map(|s| {
            json!({
                "reportId": s.report_id,
                "settlementId": s.settlement_id,
                "start": iso(s.start),
                "end": iso(s.end),
                "gzip": s.gzip,
                "totalAmount": amount(s.total_paise),
                "underpaidOrderId": s.underpaid_order_id,
                "refundedOrderId": s.refunded_order_id,
            })
        })
        .collect();
    Json(json!({ "items": items }))
}

async fn settlement_file(
    State(sandbox): State<AmazonSandbox>,
    Path(settlement_id): Path<String>,
) -> Response {
    match sandbox
        .settlements(DEMO_SELLER_ID)
        .into_iter()
        .find(|s| s.settlement_id == settlement_id)
    {
        Some(settlement) => (
            [(
                header::CONTENT_TYPE,
                "text/tab-separated-values; charset=UTF-8",
            )],
            settlement.tsv,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such settlement").into_response(),
    }
}
