//! The whole system on one machine: provisioned resources in the emulator, the Meta sandbox, the
//! local identity provider, every HTTP function on one port and the queue functions on pollers.
//! `local-stack` (the README's first command) runs it; the tests start one per test.

use crate::error::LocalError;
use crate::idp::LocalIdp;
use crate::poller::{BatchHandler, Poller};
use crate::provision::{self, Resources};
use agent_reply::AgentReply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ecomdrive_api::{ApiConfig, AppState};
use ecomdrive_aws::{Blobs, Queue, Store, TokenVault, s3_client};
use ecomdrive_core::merchant::normalize_email;
use ecomdrive_platforms::outbound::{AllowList, LoopbackPorts, OutboundHttp, Timeouts};
use ecomdrive_runtime::auth::{JwtConfig, JwtVerifier};
use ecomdrive_runtime::problem::Problem;
use ecomdrive_runtime::secrets::{MetaAppSecrets, MetaEndpoints, SecretCache};
use messenger_ingest::Ingest;
use messenger_webhook::WebhookState;
use meta_sandbox::{MetaSandbox, SandboxConfig};
use serde_json::json;
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
    pub ingest: Ingest,
    pub agent_reply: AgentReply,
    pub inbound_poller: Poller,
    pub replies_poller: Poller,
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

        let secrets = BTreeMap::from([(
            "MetaAppSecret".to_owned(),
            json!({
                "app_id": LOCAL_APP_ID,
                "app_secret": options.app_secret,
                "verify_token": options.verify_token,
                "state_signing_key": "local-fake-state-signing-key",
            }),
        )]);
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

        let api = ecomdrive_api::router(AppState {
            store: store.clone(),
            vault: vault.clone(),
            replies,
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
        let webhook = messenger_webhook::router(WebhookState {
            secrets: meta_secrets.clone(),
            inbound: inbound.clone(),
        });
        let ingest = Ingest {
            store: store.clone(),
            blobs: Blobs::new(s3_client(sdk), resources.bucket.clone()),
            inbound,
            http: http.clone(),
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
            .merge(meta_sandbox::local_routes(sandbox.clone()));
        // axum serves each connection on a task of its own: carry the log subscriber of whoever
        // started the stack into every request, so a test capturing logs sees the functions' lines.
        let logs = tracing::dispatcher::get_default(|current| current.clone());
        let app = local
            .merge(webhook)
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
        let arn = |logical: &str| {
            resources
                .all
                .get(&format!("{logical}.Arn"))
                .cloned()
                .unwrap_or_default()
        };
        let inbound_poller = Poller {
            sqs: sqs.clone(),
            queue_url: resources.inbound_queue_url.clone(),
            queue_arn: arn("InboundQueue"),
            visibility_timeout: options.retry_after,
            handler: ingest_handler,
        };
        let replies_poller = Poller {
            sqs,
            queue_url: resources.replies_queue_url.clone(),
            queue_arn: arn("RepliesQueue"),
            visibility_timeout: options.retry_after,
            handler: reply_handler,
        };
        if options.run_pollers {
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
            idp,
            store,
            ingest,
            agent_reply,
            inbound_poller,
            replies_poller,
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
