//! Lambda entry point of `messenger-ingest`: wires the clients and runs the SQS handler.

use ecomdrive_aws::{Blobs, Queue, Store, s3_client};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::{env, lambda, logging};
use messenger_ingest::Ingest;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let ingest = Arc::new(Ingest {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        blobs: Blobs::new(s3_client(&sdk), env::required("DATA_BUCKET")?),
        inbound: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env::required("INBOUND_QUEUE_URL")?,
        ),
        http: OutboundHttp::new(AllowList::production(), Timeouts::default())?,
    });
    lambda::run_sqs(move |record| {
        let ingest = ingest.clone();
        async move { ingest.handle_record(record).await }
    })
    .await
}
