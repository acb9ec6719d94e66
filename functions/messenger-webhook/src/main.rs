//! Lambda entry point of `messenger-webhook`: wires the clients and serves the router.

use ecomdrive_aws::Queue;
use ecomdrive_runtime::{env, lambda, logging, secrets::SecretCache};
use messenger_webhook::{WebhookState, router};

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let state = WebhookState {
        secrets: SecretCache::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            env::required("META_SECRET_ID")?,
        ),
        inbound: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env::required("INBOUND_QUEUE_URL")?,
        ),
    };
    lambda::run_http(router(state)).await
}
