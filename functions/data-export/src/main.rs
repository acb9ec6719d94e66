//! Lambda entry point of `data-export`: each record of the exports queue is one export.

use data_export::Exporter;
use ecomdrive_aws::{Blobs, Store};
use ecomdrive_runtime::{env, lambda, logging};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let exporter = Arc::new(Exporter {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        blobs: Blobs::new(
            ecomdrive_aws::s3_client(&sdk),
            env::required("DATA_BUCKET")?,
        ),
        // Lambda's ephemeral storage (EphemeralStorage in template.yaml).
        work_dir: std::env::temp_dir(),
    });
    lambda::run_sqs(move |record| {
        let exporter = exporter.clone();
        async move { exporter.handle_record(record).await }
    })
    .await
}
