//! The few lines between Lambda and our code, so each function's `main` is: init tracing,
//! build the router (or handler), call one of these.
//!
//! The local stack does not use this module: it serves the same router on a TCP listener and
//! calls [`crate::sqs::process_batch`] from its queue pollers.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};

pub use lambda_runtime::Error;

/// Serves an HTTP function's router behind API Gateway (HTTP API).
pub async fn run_http(router: axum::Router) -> Result<(), Error> {
    lambda_http::run(router).await
}

/// Runs a queue function: each invocation's batch goes through [`crate::sqs::process_batch`]
/// with `handler`, and the failed records are reported (`ReportBatchItemFailures`).
pub async fn run_sqs<F, Fut, E>(handler: F) -> Result<(), Error>
where
    F: Fn(SqsMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = handler.clone();
        async move {
            let response = crate::sqs::process_batch(event.payload, |m| handler(m)).await;
            Ok::<_, Error>(response)
        }
    }))
    .await
}

/// Runs a function with two triggers: an EventBridge schedule (`on_schedule`, e.g. a fan-out
/// to one queue message per merchant) and its own queue (each record through `handler`).
pub async fn run_sqs_or_schedule<F, Fut, E, S, SFut>(
    handler: F,
    on_schedule: S,
) -> Result<(), Error>
where
    F: Fn(SqsMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
    S: Fn() -> SFut + Send + Sync + 'static,
    SFut: Future<Output = Result<(), E>> + Send,
{
    let handler = Arc::new(handler);
    let on_schedule = Arc::new(on_schedule);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        let on_schedule = on_schedule.clone();
        // Boxed: two handlers' futures inline make a type too deep for the compiler's limit.
        Box::pin(async move {
            // SQS batches carry `Records`; scheduled events carry `detail-type`.
            if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let response = crate::sqs::process_batch(batch, |m| handler(m)).await;
                Ok::<_, Error>(serde_json::to_value(response)?)
            } else {
                on_schedule()
                    .await
                    .map_err(|e| Error::from(e.to_string()))?;
                Ok(serde_json::Value::Null)
            }
        })
    }))
    .await
}
