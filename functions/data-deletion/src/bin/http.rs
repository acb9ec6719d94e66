//! Lambda entry point of `data-deletion`'s HTTP side (the public form, the status page, Meta's
//! callbacks): wires the clients and serves the router.

use data_deletion::{DeletionConfig, DeletionState, router};
use ecomdrive_aws::{Mailer, Queue, Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::secrets::{MetaEndpoints, SecretCache};
use ecomdrive_runtime::{env, lambda, logging};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let state = DeletionState {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        vault: TokenVault::new(
            aws_sdk_kms::Client::new(&sdk),
            env::required("TOKEN_KEY_ID")?,
        ),
        deletions: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env::required("DELETIONS_QUEUE_URL")?,
        ),
        mailer: Mailer::new(
            aws_sdk_sesv2::Client::new(&sdk),
            env::required("MAIL_FROM")?,
        ),
        form_secrets: SecretCache::new(secrets.clone(), env::required("FORM_SECRET_ID")?),
        meta_secrets: SecretCache::new(secrets, env::required("META_SECRET_ID")?),
        meta: MetaEndpoints::from_env()?,
        http: OutboundHttp::new(AllowList::production(), Timeouts::default())?,
        config: Arc::new(DeletionConfig {
            public_base_url: env::required("PUBLIC_BASE_URL")?,
        }),
    };
    lambda::run_http(router(state)).await
}
