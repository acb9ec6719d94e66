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
