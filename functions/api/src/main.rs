//! Lambda entry point of `api`: wires the clients and serves the router.

use ecomdrive_api::routes::settlements::MAX_UPLOAD_UNPACKED;
use ecomdrive_api::{ApiConfig, AppState, router};
use ecomdrive_aws::settlement_import::{SettlementImporter, SizeLimit};
use ecomdrive_aws::{Blobs, Queue, Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::amazon::{AmazonApi, AmazonEndpoints};
use ecomdrive_runtime::auth::{JwtConfig, JwtVerifier};
use ecomdrive_runtime::secrets::{MetaEndpoints, SecretCache};
use ecomdrive_runtime::{env, lambda, logging};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let jwt = JwtConfig {
        issuer: env::required("JWT_ISSUER")?,
        jwks_url: env::required("JWT_JWKS_URL")?,
        client_ids: env::required_list("JWT_CLIENT_IDS")?,
    };
    let http = OutboundHttp::new(AllowList::production(), Timeouts::default())?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        env::required("TABLE_NAME")?,
    );
    let blobs = Blobs::new(
        ecomdrive_aws::s3_client(&sdk),
        env::required("DATA_BUCKET")?,
    );
    let state = AppState {
        store: store.clone(),
        vault: TokenVault::new(
            aws_sdk_kms::Client::new(&sdk),
            env::required("TOKEN_KEY_ID")?,
        ),
        replies: Queue::new(sqs.clone(), env::required("REPLIES_QUEUE_URL")?),
        order_sync: Queue::new(sqs.clone(), env::required("ORDER_SYNC_QUEUE_URL")?),
        settlement_import: Queue::new(sqs.clone(), env::required("SETTLEMENT_IMPORT_QUEUE_URL")?),
        exports: Queue::new(sqs.clone(), env::required("EXPORTS_QUEUE_URL")?),
        deletions: Queue::new(sqs, env::required("DELETIONS_QUEUE_URL")?),
        settlements: SettlementImporter {
            store: store.clone(),
            blobs: blobs.clone(),
            limit: SizeLimit(MAX_UPLOAD_UNPACKED),
        },
        blobs,
        amazon: AmazonApi::new(
            AmazonEndpoints::from_env()?,
            http.clone(),
            SecretCache::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                env::required("AMAZON_SECRET_ID")?,
            ),
        ),
        secrets: SecretCache::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            env::required("META_SECRET_ID")?,
        ),
        jwt: JwtVerifier::new(jwt, http.clone()),
        http,
        config: Arc::new(ApiConfig {
            public_base_url: env::required("PUBLIC_BASE_URL")?,
            spa_origin: env::optional("SPA_ORIGIN")?,
            meta: MetaEndpoints::from_env()?,
        }),
    };
    lambda::run_http(router(state)).await
}
