//! Lambda entry point of `settlement-import`: the schedule fans out, the queue imports a
//! merchant's new settlement reports or one uploaded file.

use ecomdrive_aws::settlement_import::{SettlementImporter, SizeLimit};
use ecomdrive_aws::{Blobs, Queue, Store, TokenVault};
use ecomdrive_platforms::outbound::{AllowList, OutboundHttp, Timeouts};
use ecomdrive_runtime::amazon::{AmazonApi, AmazonEndpoints};
use ecomdrive_runtime::secrets::SecretCache;
use ecomdrive_runtime::{env, lambda, logging};
use settlement_import::{MAX_FILE_BYTES, SettlementImport};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let http = OutboundHttp::new(AllowList::production(), Timeouts::default())?;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        env::required("TABLE_NAME")?,
    );
    let import = Arc::new(SettlementImport {
        importer: SettlementImporter {
            store: store.clone(),
            blobs: Blobs::new(
                ecomdrive_aws::s3_client(&sdk),
                env::required("DATA_BUCKET")?,
            ),
            limit: SizeLimit(MAX_FILE_BYTES),
        },
        store,
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
            env::required("SETTLEMENT_IMPORT_QUEUE_URL")?,
        ),
        // Lambda's ephemeral storage (EphemeralStorage in template.yaml).
        work_dir: std::env::temp_dir(),
    });
    let on_schedule = import.clone();
    lambda::run_sqs_or_schedule(
        move |record| {
            let import = import.clone();
            async move { import.handle_record(record).await }
        },
        move || {
            let import = on_schedule.clone();
            async move { import.fan_out().await.map(|_| ()) }
        },
    )
    .await
}
