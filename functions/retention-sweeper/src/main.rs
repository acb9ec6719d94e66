//! Lambda entry point of `retention-sweeper`: the daily EventBridge schedule sweeps as of now.

use ecomdrive_aws::store::deletion_jobs::ObjectEraser;
use ecomdrive_aws::{Queue, Store};
use ecomdrive_runtime::{env, lambda, logging};
use lambda_runtime::{LambdaEvent, service_fn};
use retention_sweeper::RetentionSweeper;
use std::sync::Arc;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let sweeper = Arc::new(RetentionSweeper {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        deletions: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env::required("DELETIONS_QUEUE_URL")?,
        ),
        objects: ObjectEraser::new(
            ecomdrive_aws::s3_client(&sdk),
            env::required("DATA_BUCKET")?,
        ),
    });
    // The scheduled event says nothing the sweep needs: it only says "now".
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let sweeper = sweeper.clone();
        async move {
            let report = sweeper.sweep(OffsetDateTime::now_utc()).await?;
            // A merchant that failed makes the invocation an error, so the function's error
            // alarm sees it; the others were swept, and tomorrow's run retries it.
            if report.merchants_failed > 0 {
                return Err(lambda::Error::from(format!(
                    "{} merchants could not be swept",
                    report.merchants_failed
                )));
            }
            Ok::<_, lambda::Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
