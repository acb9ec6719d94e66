//! Lambda entry point of `solicitation-sender`: wires the clients and runs the SQS handler.

use ecomdrive_aws::{Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::amazon::{AmazonApi, AmazonEndpoints};
use ecomdrive_runtime::secrets::SecretCache;
use ecomdrive_runtime::{env, lambda, logging};
use solicitation_sender::{Config, SolicitationSender};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let sender = Arc::new(SolicitationSender {
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
            OutboundHttp::new(AllowList::production(), Timeouts::default())?,
            SecretCache::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                env::required("AMAZON_SECRET_ID")?,
            ),
        )
        .with_retry_policy(solicitation_sender::retry_policy()),
        config: Config::DEFAULT,
    });
    lambda::run_sqs(move |record| {
        let sender = sender.clone();
        async move { sender.handle_record(record).await }
    })
    .await
}
