//! Lambda entry point of `data-deletion`'s job side: wires the clients and runs the `deletions`
//! queue's handler (see `data_deletion::job`).

use data_deletion::job::{DeletionRunner, RUN_BUDGET};
use ecomdrive_aws::store::deletion_jobs::ObjectEraser;
use ecomdrive_aws::{Queue, Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::secrets::{MetaEndpoints, SecretCache};
use ecomdrive_runtime::{env, lambda, logging};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let runner = Arc::new(DeletionRunner {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        vault: TokenVault::new(
            aws_sdk_kms::Client::new(&sdk),
            env::required("TOKEN_KEY_ID")?,
        ),
        objects: ObjectEraser::new(
            ecomdrive_aws::s3_client(&sdk),
            env::required("DATA_BUCKET")?,
        ),
        queue: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env::required("DELETIONS_QUEUE_URL")?,
        ),
        meta: MetaEndpoints::from_env()?,
        meta_secrets: SecretCache::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            env::required("META_SECRET_ID")?,
        ),
        http: OutboundHttp::new(AllowList::production(), Timeouts::default())?,
        budget: RUN_BUDGET,
    });
    lambda::run_sqs(move |record| {
        let runner = runner.clone();
        async move { runner.handle_record(record).await }
    })
    .await
}
