//! Lambda entry point of `auth-claims`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ecomdrive_runtime::logging::init_tracing();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(auth_claims::add_email_claim(event.payload))
    }))
    .await
}
