//! Lambda entry point of `agent-reply`: wires the clients and runs the SQS handler.

use agent_reply::{AgentReply, Config};
use ecomdrive_aws::{Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::secrets::{MetaEndpoints, SecretCache};
use ecomdrive_runtime::{env, lambda, logging};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let reply = Arc::new(AgentReply {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        vault: TokenVault::new(
            aws_sdk_kms::Client::new(&sdk),
            env::required("TOKEN_KEY_ID")?,
        ),
        secrets: SecretCache::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            env::required("META_SECRET_ID")?,
        ),
        http: OutboundHttp::new(AllowList::production(), Timeouts::default())?,
        config: Config {
            meta: MetaEndpoints::from_env()?,
            echo_wait: Config::DEFAULT_ECHO_WAIT,
            max_attempts: Config::DEFAULT_MAX_ATTEMPTS,
        },
    });
    lambda::run_sqs(move |record| {
        let reply = reply.clone();
        async move { reply.handle_record(record).await }
    })
    .await
}
