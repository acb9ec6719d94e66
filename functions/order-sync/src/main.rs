//! Lambda entry point of `order-sync`: the hourly schedule fans out, the queue syncs a merchant.

use ecomdrive_aws::{Queue, Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::amazon::{AmazonApi, AmazonEndpoints};
use ecomdrive_runtime::secrets::SecretCache;
use ecomdrive_runtime::{env, lambda, logging};
use order_sync::OrderSync;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let http = OutboundHttp::new(AllowList::production(), Timeouts::default())?;
    let sync = Arc::new(OrderSync {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        vault: TokenVault::new(
            aws_sdk_kms::Client::new(&sdk),
            env::required("TOKEN_KEY_ID")?,
        ),
        amazon: AmazonApi::new(
            AmazonEndpoints::from_env()?,
            http,
            SecretCache::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                env::required("AMAZON_SECRET_ID")?,
            ),
        ),
        queue: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env::required("ORDER_SYNC_QUEUE_URL")?,
        ),
    });
    let on_schedule = sync.clone();
    lambda::run_sqs_or_schedule(
        move |record| {
            let sync = sync.clone();
            async move { sync.handle_record(record).await }
        },
        move || {
            let sync = on_schedule.clone();
            async move { sync.fan_out().await.map(|_| ()) }
        },
    )
    .await
}
