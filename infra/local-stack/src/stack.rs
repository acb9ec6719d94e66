//! The whole system on one machine: provisioned resources in the emulator, the Meta and Amazon
//! sandboxes, the local identity provider, every HTTP function on one port and the queue
//! functions on pollers. The scheduled functions run on demand (`POST /_local/run/...`).
//! `local-stack` (the README's first command) runs it; the tests start one per test.

use crate::emails::{Outbox, list_emails};
use crate::error::LocalError;
use crate::idp::LocalIdp;
use crate::poller::{BatchHandler, Poller};
use crate::provision::{self, Resources};
use agent_reply::AgentReply;
use amazon_sandbox::AmazonSandbox;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use data_deletion::job::DeletionRunner;
use data_deletion::{DeletionConfig, DeletionState};
use data_export::Exporter;
use ecomdrive_api::{ApiConfig, AppState};
use ecomdrive_aws::settlement_import::{SettlementImporter, SizeLimit};
use ecomdrive_aws::store::deletion_jobs::ObjectEraser;
use ecomdrive_aws::{Blobs, Mailer, Queue, Store, TokenVault, s3_client};
use ecomdrive_core::merchant::normalize_email;
use ecomdrive_platforms::outbound::{AllowList, LoopbackPorts, OutboundHttp, Timeouts};
use ecomdrive_runtime::amazon::{AmazonApi, AmazonAppSecrets, AmazonEndpoints};
use ecomdrive_runtime::auth::{JwtConfig, JwtVerifier};
use ecomdrive_runtime::problem::Problem;
use ecomdrive_runtime::secrets::{MetaAppSecrets, MetaEndpoints, SecretCache};
use messenger_ingest::Ingest;
use messenger_webhook::WebhookState;
use meta_sandbox::{MetaSandbox, SandboxConfig};
use order_sync::OrderSync;
use retention_sweeper::RetentionSweeper;
use serde_json::json;
use settlement_import::SettlementImport;
use solicitation_scheduler::Scheduler;
use solicitation_sender::SolicitationSender;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

/// The Meta app of the local stack: obviously fake values.
pub const LOCAL_APP_ID: &str = "100000000000999";
pub const DEFAULT_APP_SECRET: &str = "local-fake-app-secret";
pub const DEFAULT_VERIFY_TOKEN: &str = "local-fake-verify-token";
pub const LOCAL_CLIENT_ID: &str = "local-spa-client";
const GRAPH_VERSION: &str = "v23.0";
/// The SP-API app of the local stack: obviously fake values.
pub const LOCAL_AMAZON_APP_ID: &str = "amzn1.sp.solution.local-fake-app";
pub const LOCAL_LWA_CLIENT_ID: &str = "amzn1.application-oa2-client.localfake";
pub const LOCAL_LWA_CLIENT_SECRET: &str = "local-fake-lwa-client-secret";

#[derive(Clone, Debug)]
pub struct StackOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// Physical names are `<prefix>-<LogicalId>`: one prefix per stack, so stacks never meet.
    pub prefix: String,
    pub app_secret: String,
    pub verify_token: String,
    /// How long agent-reply waits for the echo of an attempt whose outcome is unknown.
    pub echo_wait: Duration,
    /// How long a failed queue record waits before it is tried again.
    pub retry_after: Duration,
    pub run_pollers: bool,
    pub sender: solicitation_sender::Config,
}

impl StackOptions {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            port: 0,
            prefix: prefix.into(),
            app_secret: DEFAULT_APP_SECRET.into(),
            verify_token: DEFAULT_VERIFY_TOKEN.into(),
            echo_wait: agent_reply::Config::DEFAULT_ECHO_WAIT,
            retry_after: Duration::from_secs(2),
            run_pollers: true,
            sender: solicitation_sender::Config::DEFAULT,
        }
    }
}

/// A running stack. Dropping it (or [`RunningStack::stop`]) stops the server and the pollers.
pub struct RunningStack {
    pub base_url: String,
    pub resources: Resources,
    pub sandbox: MetaSandbox,
    pub idp: Arc<LocalIdp>,
    pub store: Store,
    pub amazon: AmazonSandbox,
    pub ingest: Ingest,
    pub agent_reply: AgentReply,
    pub order_sync: OrderSync,
    pub scheduler: Scheduler,
    pub sender: SolicitationSender,
    pub settlement_import: SettlementImport,
    pub inbound_poller: Poller,
    pub replies_poller: Poller,
    pub order_sync_poller: Poller,
    pub plan_poller: Poller,
    pub solicitations_poller: Poller,
    pub settlement_import_poller: Poller,
    pub exporter: Exporter,
    pub exports_poller: Poller,
    pub deletion: DeletionRunner,
    pub sweeper: RetentionSweeper,
    pub deletions_poller: Poller,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningStack {
    pub async fn start(
        sdk: &aws_config::SdkConfig,
        options: StackOptions,
    ) -> Result<Self, LocalError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(LocalError::Bind)?;
        let addr = listener.local_addr().map_err(LocalError::Bind)?;
        let base_url = format!("http://{addr}");

        let secrets = BTreeMap::from([
            (
                "MetaAppSecret".to_owned(),
                json!({
                    "app_id": LOCAL_APP_ID,
                    "app_secret": options.app_secret,
                    "verify_token": options.verify_token,
                    "state_signing_key": "local-fake-state-signing-key",
                }),
            ),
            (
                "AmazonAppSecret".to_owned(),
                json!({
                    "application_id": LOCAL_AMAZON_APP_ID,
                    "client_id": LOCAL_LWA_CLIENT_ID,
                    "client_secret": LOCAL_LWA_CLIENT_SECRET,
                }),
            ),
            (
                "DeletionFormSecret".to_owned(),
                json!({ "form_signing_key": "local-fake-form-signing-key" }),
            ),
        ]);
        let root = provision::repo_root();
        let resources = provision::provision(
            sdk,
            &provision::template_path(&root),
            &options.prefix,
            &secrets,
        )
        .await?;

        let sandbox = MetaSandbox::new(SandboxConfig::demo(
            LOCAL_APP_ID,
            options.app_secret.clone(),
            format!("{base_url}/webhooks/messenger"),
        ));
        let sandbox_url = sandbox
            .serve()
            .await
            .map_err(|e| LocalError::Sandbox(e.to_string()))?;
        // Meta is the sandbox here: the Graph API and the login dialog on its loopback port.
        let meta = MetaEndpoints {
            graph_base: sandbox_url.clone(),
            dialog_base: sandbox_url,
            version: GRAPH_VERSION.into(),
        };
        // Amazon is the other sandbox: LWA, Seller Central's consent page and the SP-API.
        let amazon = AmazonSandbox::new(amazon_sandbox::SandboxConfig::demo(
            LOCAL_LWA_CLIENT_ID,
            LOCAL_LWA_CLIENT_SECRET,
            LOCAL_AMAZON_APP_ID,
        ));
        let amazon_url = amazon
            .serve()
            .await
            .map_err(|e| LocalError::Sandbox(e.to_string()))?;
        let amazon_endpoints = AmazonEndpoints {
            lwa_token_url: format!("{amazon_url}/auth/o2/token"),
            spapi_base: amazon_url.clone(),
            consent_base: amazon_url,
            marketplace_id: amazon_sandbox::INDIA_MARKETPLACE.into(),
            draft_app: false,
        };
        let idp = Arc::new(LocalIdp::new(
            format!("{base_url}/_local/idp"),
            LOCAL_CLIENT_ID.into(),
        ));

        // Production's allow-list plus loopback, where the sandboxes are.
        let http = OutboundHttp::new(
            AllowList::production().with_loopback(LoopbackPorts::Any),
            Timeouts::default(),
        )
        .map_err(|e| LocalError::Http(e.to_string()))?;
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let store = Store::new(dynamodb, resources.table.clone());
        let vault = TokenVault::new(
            aws_sdk_kms::Client::new(sdk),
            resources.token_key_id.clone(),
        );
        let meta_secrets: SecretCache<MetaAppSecrets> = SecretCache::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            resources.meta_secret_id.clone(),
        );
        let inbound = Queue::new(sqs.clone(), resources.inbound_queue_url.clone());
        let replies = Queue::new(sqs.clone(), resources.replies_queue_url.clone());
        let order_sync_queue = Queue::new(sqs.clone(), resources.order_sync_queue_url.clone());
        let amazon_api = AmazonApi::new(
            amazon_endpoints,
            http.clone(),
            SecretCache::<AmazonAppSecrets>::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                resources.amazon_secret_id.clone(),
            ),
        );

        let settlement_import_queue =
            Queue::new(sqs.clone(), resources.settlement_import_queue_url.clone());
        let blobs = Blobs::new(s3_client(sdk), resources.bucket.clone());
        let exports_queue = Queue::new(sqs.clone(), resources.exports_queue_url.clone());
        let deletions_queue = Queue::new(sqs.clone(), resources.deletions_queue_url.clone());
        let importer = |limit| SettlementImporter {
            store: store.clone(),
            blobs: blobs.clone(),
            limit: SizeLimit(limit),
        };
        let api = ecomdrive_api::router(AppState {
            store: store.clone(),
            vault: vault.clone(),
            replies,
            order_sync: order_sync_queue.clone(),
            settlements: importer(ecomdrive_api::routes::settlements::MAX_UPLOAD_UNPACKED),
            settlement_import: settlement_import_queue.clone(),
            exports: exports_queue.clone(),
            deletions: deletions_queue.clone(),
            blobs: blobs.clone(),
            amazon: amazon_api.clone(),
            secrets: meta_secrets.clone(),
            http: http.clone(),
            jwt: JwtVerifier::new(
                JwtConfig::for_issuer(idp.issuer(), vec![LOCAL_CLIENT_ID.into()]),
                http.clone(),
            ),
            config: Arc::new(ApiConfig {
                public_base_url: base_url.clone(),
                spa_origin: None,
                meta: meta.clone(),
            }),
        });
        let deletion = DeletionRunner {
            store: store.clone(),
            vault: vault.clone(),
            objects: ObjectEraser::new(s3_client(sdk), resources.bucket.clone()),
            queue: deletions_queue.clone(),
            meta: meta.clone(),
            meta_secrets: meta_secrets.clone(),
            http: http.clone(),
            budget: data_deletion::job::RUN_BUDGET,
        };
        let arn = |logical: &str| {
            resources
                .all
                .get(&format!("{logical}.Arn"))
                .cloned()
                .unwrap_or_default()
        };
        let deletions_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.deletions_queue_url.clone(),
            queue_arn: arn("DeletionsQueue"),
            visibility_timeout: options.retry_after,
            handler: {
                let deletion = deletion.clone();
                Arc::new(move |event| {
                    let deletion = deletion.clone();
                    Box::pin(async move {
                        ecomdrive_runtime::sqs::process_batch(event, |m| deletion.handle_record(m))
                            .await
                    })
                })
            },
        };
        let exporter = Exporter {
            store: store.clone(),
            blobs: blobs.clone(),
            work_dir: std::env::temp_dir(),
        };
        let exports_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.exports_queue_url.clone(),
            queue_arn: arn("ExportsQueue"),
            visibility_timeout: options.retry_after,
            handler: {
                let exporter = exporter.clone();
                Arc::new(move |event| {
                    let exporter = exporter.clone();
                    Box::pin(async move {
                        ecomdrive_runtime::sqs::process_batch(event, |m| exporter.handle_record(m))
                            .await
                    })
                })
            },
        };
        let sweeper = RetentionSweeper {
            store: store.clone(),
            deletions: deletions_queue.clone(),
            objects: ObjectEraser::new(s3_client(sdk), resources.bucket.clone()),
        };
        let outbox = Outbox::default();
        let data_deletion = data_deletion::router(DeletionState {
            store: store.clone(),
            vault: vault.clone(),
            deletions: deletions_queue.clone(),
            mailer: Mailer::new(outbox.ses_client(sdk), resources.mail_from.clone()),
            form_secrets: SecretCache::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                resources.deletion_form_secret_id.clone(),
            ),
            meta_secrets: meta_secrets.clone(),
            meta: meta.clone(),
            http: http.clone(),
            config: Arc::new(DeletionConfig {
                public_base_url: base_url.clone(),
            }),
        });
        let webhook = messenger_webhook::router(WebhookState {
            secrets: meta_secrets.clone(),
            inbound: inbound.clone(),
        });
        let ingest = Ingest {
            store: store.clone(),
            blobs: blobs.clone(),
            inbound,
            http: http.clone(),
        };
        let order_sync = OrderSync {
            store: store.clone(),
            vault: vault.clone(),
            amazon: amazon_api.clone(),
            queue: order_sync_queue,
        };
        let settlement_import = SettlementImport {
            store: store.clone(),
            vault: vault.clone(),
            amazon: amazon_api.clone(),
            queue: settlement_import_queue,
            importer: importer(settlement_import::MAX_FILE_BYTES),
            work_dir: std::env::temp_dir(),
        };
        let scheduler = Scheduler {
            store: store.clone(),
            plan_queue: Queue::new(sqs.clone(), resources.solicitation_plan_queue_url.clone()),
            solicitations: Queue::new(sqs.clone(), resources.solicitations_queue_url.clone()),
        };
        let sender = SolicitationSender {
            store: store.clone(),
            vault: vault.clone(),
            amazon: amazon_api.with_retry_policy(solicitation_sender::retry_policy()),
            config: options.sender.clone(),
        };
        let agent_reply = AgentReply {
            store: store.clone(),
            vault,
            secrets: meta_secrets,
            http,
            config: agent_reply::Config {
                meta,
                echo_wait: options.echo_wait,
                max_attempts: agent_reply::Config::DEFAULT_MAX_ATTEMPTS,
            },
        };

        // `/_local/...` exists only here, never in a function.
        let local = Router::new()
            .route("/_local/login", post(login))
            .with_state(idp.clone())
            .nest("/_local/idp", idp.router())
            .merge(meta_sandbox::local_routes(sandbox.clone()))
            .merge(amazon_sandbox::local_routes(amazon.clone()))
            .merge(
                Router::new()
                    .route("/_local/run/order-sync", post(run_order_sync))
                    .with_state(order_sync.clone()),
            )
            .merge(
                Router::new()
                    .route("/_local/run/solicitation-scheduler", post(run_scheduler))
                    .with_state(scheduler.clone()),
            )
            .merge(
                Router::new()
                    .route("/_local/run/settlement-import", post(run_settlement_import))
                    .with_state(settlement_import.clone()),
            )
            .merge(
                Router::new()
                    .route("/_local/run/data-deletion", post(drain))
                    .with_state(deletions_poller.clone()),
            )
            .merge(
                Router::new()
                    .route("/_local/run/data-export", post(drain))
                    .with_state(exports_poller.clone()),
            )
            .merge(
                Router::new()
                    .route("/_local/run/retention-sweeper", post(run_retention_sweeper))
                    .with_state(sweeper.clone()),
            );
        // axum serves each connection on a task of its own: carry the log subscriber of whoever
        // started the stack into every request, so a test capturing logs sees the functions' lines.
        let logs = tracing::dispatcher::get_default(|current| current.clone());
        let app = local
            .merge(
                Router::new()
                    .route("/_local/emails", get(list_emails))
                    .with_state(outbox),
            )
            .merge(webhook)
            .merge(data_deletion)
            .merge(api)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    next.run(request).with_subscriber(logs.clone())
                },
            ));

        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut server_stop = stopped.clone();
        tasks.push(tokio::spawn(
            async move {
                let shutdown = async move {
                    let _ = server_stop.wait_for(|s| *s).await;
                };
                // With the peer address, as API Gateway's `sourceIp` in Lambda (audit, rate limits).
                let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(error = %e, "local server stopped");
                }
            }
            .with_current_subscriber(),
        ));

        let ingest_handler: BatchHandler = {
            let ingest = ingest.clone();
            Arc::new(move |event| {
                let ingest = ingest.clone();
                Box::pin(async move { ingest.handle_batch(event).await })
            })
        };
        let reply_handler: BatchHandler = {
            let reply = agent_reply.clone();
            Arc::new(move |event| {
                let reply = reply.clone();
                Box::pin(async move { reply.handle_batch(event).await })
            })
        };
        let inbound_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.inbound_queue_url.clone(),
            queue_arn: arn("InboundQueue"),
            visibility_timeout: options.retry_after,
            handler: ingest_handler,
        };
        let replies_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.replies_queue_url.clone(),
            queue_arn: arn("RepliesQueue"),
            visibility_timeout: options.retry_after,
            handler: reply_handler,
        };
        let order_sync_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.order_sync_queue_url.clone(),
            queue_arn: arn("OrderSyncQueue"),
            visibility_timeout: options.retry_after,
            handler: {
                let sync = order_sync.clone();
                Arc::new(move |event| {
                    let sync = sync.clone();
                    Box::pin(async move {
                        ecomdrive_runtime::sqs::process_batch(event, |m| sync.handle_record(m))
                            .await
                    })
                })
            },
        };
        let plan_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.solicitation_plan_queue_url.clone(),
            queue_arn: arn("SolicitationPlanQueue"),
            visibility_timeout: options.retry_after,
            handler: {
                let scheduler = scheduler.clone();
                Arc::new(move |event| {
                    let scheduler = scheduler.clone();
                    Box::pin(async move {
                        ecomdrive_runtime::sqs::process_batch(event, |m| scheduler.handle_record(m))
                            .await
                    })
                })
            },
        };
        let settlement_import_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.settlement_import_queue_url.clone(),
            queue_arn: arn("SettlementImportQueue"),
            visibility_timeout: options.retry_after,
            handler: {
                let import = settlement_import.clone();
                Arc::new(move |event| {
                    let import = import.clone();
                    Box::pin(async move {
                        ecomdrive_runtime::sqs::process_batch(event, |m| import.handle_record(m))
                            .await
                    })
                })
            },
        };
        let solicitations_poller = Poller {
            sqs,
            queue_url: resources.solicitations_queue_url.clone(),
            queue_arn: arn("SolicitationsQueue"),
            visibility_timeout: options.retry_after,
            handler: {
                let sender = sender.clone();
                Arc::new(move |event| {
                    let sender = sender.clone();
                    Box::pin(async move {
                        ecomdrive_runtime::sqs::process_batch(event, |m| sender.handle_record(m))
                            .await
                    })
                })
            },
        };
        if options.run_pollers {
            for poller in [
                &order_sync_poller,
                &plan_poller,
                &solicitations_poller,
                &settlement_import_poller,
                &deletions_poller,
                &exports_poller,
            ] {
                tasks.push(tokio::spawn(
                    poller
                        .clone()
                        .run(stopped.clone())
                        .with_current_subscriber(),
                ));
            }
            tasks.push(tokio::spawn(
                inbound_poller
                    .clone()
                    .run(stopped.clone())
                    .with_current_subscriber(),
            ));
            tasks.push(tokio::spawn(
                replies_poller
                    .clone()
                    .run(stopped)
                    .with_current_subscriber(),
            ));
        }

        Ok(RunningStack {
            base_url,
            resources,
            sandbox,
            amazon,
            idp,
            store,
            ingest,
            agent_reply,
            order_sync,
            scheduler,
            sender,
            settlement_import,
            inbound_poller,
            replies_poller,
            order_sync_poller,
            plan_poller,
            solicitations_poller,
            settlement_import_poller,
            exporter,
            exports_poller: exports_poller.clone(),
            deletion,
            sweeper,
            deletions_poller: deletions_poller.clone(),
            stop,
            tasks,
        })
    }

    /// Stops the server and the pollers and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `POST /_local/login {"email"}` → `{"access_token"}`: a token exactly like Cognito's, for that
/// user (created on first use).
async fn login(State(idp): State<Arc<LocalIdp>>, body: axum::body::Bytes) -> Response {
    let email = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("email").and_then(|e| e.as_str()).map(str::to_owned));
    match email.as_deref().map(normalize_email) {
        Some(Ok(email)) => (
            StatusCode::OK,
            Json(json!({ "access_token": idp.login(&email) })),
        )
            .into_response(),
        _ => Problem::bad_request("send {\"email\": \"...\"} with a valid address").into_response(),
    }
}

/// `POST /_local/run/order-sync`: the hourly schedule, now (returns when the fan-out is queued).
async fn run_order_sync(State(sync): State<OrderSync>) -> Response {
    match sync.fan_out().await {
        Ok(n) => Json(json!({ "merchants": n })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "fan-out failed");
            Problem::internal().into_response()
        }
    }
}

/// `POST /_local/run/solicitation-scheduler`: the daily schedule, now (returns when the fan-out
/// is queued).
async fn run_scheduler(State(scheduler): State<Scheduler>) -> Response {
    match scheduler.fan_out().await {
        Ok(n) => Json(json!({ "merchants": n })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "fan-out failed");
            Problem::internal().into_response()
        }
    }
}

/// `POST /_local/run/settlement-import`: the scheduled import, now (returns when the fan-out is
/// queued).
async fn run_settlement_import(State(import): State<SettlementImport>) -> Response {
    match import.fan_out().await {
        Ok(n) => Json(json!({ "merchants": n })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "fan-out failed");
            Problem::internal().into_response()
        }
    }
}

/// `POST /_local/run/{data-deletion|data-export}`: the queued jobs of that queue, now: receives
/// and handles until the queue has nothing visible (at most 100 rounds), then answers how many
/// records were handled.
async fn drain(State(poller): State<Poller>) -> Response {
    let mut handled = 0;
    for _ in 0..100 {
        match poller.poll_once(Duration::ZERO).await {
            Ok(0) => break,
            Ok(n) => handled += n,
            Err(e) => {
                tracing::error!(error = %e, "draining the queue failed");
                return Problem::internal().into_response();
            }
        }
    }
    Json(json!({ "handled": handled })).into_response()
}

#[derive(serde::Deserialize)]
struct SweepAt {
    /// The moment to sweep as of (RFC 3339): a person can see what the policy does on a later day.
    now: Option<String>,
}

/// `POST /_local/run/retention-sweeper[?now=RFC3339]`: the daily sweep, now (or as of `now`);
/// answers what it did.
async fn run_retention_sweeper(
    State(sweeper): State<RetentionSweeper>,
    axum::extract::Query(at): axum::extract::Query<SweepAt>,
) -> Response {
    let now = match at.now.as_deref() {
        None => time::OffsetDateTime::now_utc(),
        Some(raw) => {
            match time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
                Ok(t) => t,
                Err(_) => {
                    return Problem::bad_request("now must be an RFC 3339 time").into_response();
                }
            }
        }
    };
    match sweeper.sweep(now).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "retention sweep failed");
            Problem::internal().into_response()
        }
    }
}
