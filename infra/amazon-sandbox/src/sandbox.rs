//! The sandbox handle, its configuration, its in-memory state and the controls tests use.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use time::{Duration, OffsetDateTime};

use crate::error::{ApiError, SandboxError};
use crate::operation::{Fault, Operation, RateLimit};
use crate::order::SandboxOrder;
use crate::orders_api::PageCursor;
use crate::rate_limit::Bucket;
use crate::record::{RecordedRequest, SolicitationRequest, redact_query};
use crate::reports::{DOCUMENTS_PATH, DocumentGrant, ReportsCursor};
use crate::settlement::{DemoSettlement, settlement_files};
use crate::{demo, ids, lwa, orders_api, reports, solicitations};

/// The demo seller of [`SandboxConfig::demo`].
pub const DEMO_SELLER_ID: &str = "A2DEMOSELLER01IN";
/// Amazon.in's marketplace id.
pub const INDIA_MARKETPLACE: &str = "A21TJRUUN4KGV";

/// LWA access tokens live one hour (`expires_in: 3600`).
pub(crate) const ACCESS_TOKEN_SECONDS: i64 = 3_600;

/// A selling partner who can consent to the app, with their orders.
#[derive(Debug, Clone)]
pub struct SandboxSeller {
    pub selling_partner_id: String,
    /// The seller's home marketplace (for the caller's bookkeeping: each order carries its own
    /// `marketplace_id`, which is what the SP-API filters on).
    pub marketplace_id: String,
    pub orders: Vec<SandboxOrder>,
}

/// The app the sandbox knows (its LWA credentials and SP-API application id) and its sellers.
#[derive(Clone)]
pub struct SandboxConfig {
    pub client_id: String,
    /// Checked by the token endpoint. Use fake values only.
    pub client_secret: String,
    /// The SP-API application id the consent page expects (`amzn1.sp.solution.…`).
    pub application_id: String,
    pub sellers: Vec<SandboxSeller>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No secret in Debug output.
        f.debug_struct("SandboxConfig")
            .field("client_id", &self.client_id)
            .field("application_id", &self.application_id)
            .field("sellers", &self.sellers.len())
            .finish_non_exhaustive()
    }
}

impl SandboxConfig {
    /// One seller, [`DEMO_SELLER_ID`] on Amazon.in, with ~300 deterministic orders placed over
    /// the 60 days before now (see `demo.rs`), and three settlement reports of them (see
    /// `settlement.rs`).
    pub fn demo(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        application_id: impl Into<String>,
    ) -> Self {
        Self::demo_at(
            client_id,
            client_secret,
            application_id,
            OffsetDateTime::now_utc(),
        )
    }

    /// [`SandboxConfig::demo`] with the demo orders placed before `now` rather than the real
    /// time: with the sandbox clock set to the same `now`, its settlement reports are exactly
    /// [`crate::demo_settlement_files`]`(now)`.
    pub fn demo_at(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        application_id: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            application_id: application_id.into(),
            sellers: vec![SandboxSeller {
                selling_partner_id: DEMO_SELLER_ID.to_owned(),
                marketplace_id: INDIA_MARKETPLACE.to_owned(),
                orders: demo::orders(INDIA_MARKETPLACE, now),
            }],
        }
    }
}

/// Tokens as the token endpoint would answer them, see [`AmazonSandbox::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub seller_id: String,
    pub redirect_uri: String,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessGrant {
    pub seller_id: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub seller_id: String,
    pub revoked: bool,
}

/// A seller and their orders by id (every stored order has a `last_update_date`).
#[derive(Debug, Clone)]
pub(crate) struct SellerState {
    pub id: String,
    pub orders: BTreeMap<String, SandboxOrder>,
}

#[derive(Debug)]
pub(crate) struct SandboxState {
    /// `None`: real time. `Some`: the clock stands at that instant (see `set_now`).
    pinned_now: Option<OffsetDateTime>,
    /// In configuration order: the consent page picks the first by default.
    pub sellers: Vec<SellerState>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessGrant>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub next_tokens: HashMap<String, PageCursor>,
    /// getReports' `nextToken`s.
    pub report_next_tokens: HashMap<String, ReportsCursor>,
    /// The signatures of the report document URLs handed out.
    pub document_grants: HashMap<String, DocumentGrant>,
    /// Where the sandbox listens (`http://127.0.0.1:PORT`), once [`AmazonSandbox::serve`] knows.
    base_url: Option<String>,
    /// (seller id, order id) of every order a solicitation was sent for.
    pub solicited: HashSet<(String, String)>,
    limits: HashMap<Operation, RateLimit>,
    /// Keyed by (seller id, or "" for callers without one, operation).
    buckets: HashMap<(String, Operation), Bucket>,
    faults: HashMap<Operation, VecDeque<Fault>>,
    requests: Vec<RecordedRequest>,
    solicitations: Vec<SolicitationRequest>,
}

impl SandboxState {
    pub fn now(&self) -> OffsetDateTime {
        self.pinned_now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    pub fn seller(&self, seller_id: &str) -> Option<&SellerState> {
        self.sellers.iter().find(|s| s.id == seller_id)
    }

    /// The seller behind a live access token.
    pub fn token_seller(&self, access_token: &str) -> Option<String> {
        let now = self.now();
        self.access_tokens
            .get(access_token)
            .filter(|grant| grant.expires_at > now)
            .map(|grant| grant.seller_id.clone())
    }

    pub fn issue_access_token(&mut self, seller_id: &str) -> String {
        let token = ids::access_token();
        let grant = AccessGrant {
            seller_id: seller_id.to_owned(),
            expires_at: self.now() + Duration::seconds(ACCESS_TOKEN_SECONDS),
        };
        self.access_tokens.insert(token.clone(), grant);
        token
    }

    pub fn issue_refresh_token(&mut self, seller_id: &str) -> String {
        let token = ids::refresh_token();
        let grant = RefreshGrant {
            seller_id: seller_id.to_owned(),
            revoked: false,
        };
        self.refresh_tokens.insert(token.clone(), grant);
        token
    }

    pub fn rate_limit(&self, operation: Operation) -> Option<RateLimit> {
        self.limits
            .get(&operation)
            .copied()
            .or_else(|| operation.default_rate_limit())
    }

    /// Takes a token from the caller's bucket; `false`: over the limit.
    pub fn take_rate_token(&mut self, caller: &str, operation: Operation) -> bool {
        let Some(limit) = self.rate_limit(operation) else {
            return true;
        };
        let now = Instant::now();
        self.buckets
            .entry((caller.to_owned(), operation))
            .or_insert_with(|| Bucket::full(limit, now))
            .try_take(limit, now)
    }

    pub fn take_fault(&mut self, operation: Operation) -> Option<Fault> {
        self.faults.get_mut(&operation)?.pop_front()
    }

    fn upsert(&mut self, seller_id: &str, mut order: SandboxOrder) {
        if order.last_update_date.is_none() {
            order.last_update_date = Some(self.now());
        }
        let index = match self.sellers.iter().position(|s| s.id == seller_id) {
            Some(index) => index,
            None => {
                self.sellers.push(SellerState {
                    id: seller_id.to_owned(),
                    orders: BTreeMap::new(),
                });
                self.sellers.len() - 1
            }
        };
        self.sellers[index]
            .orders
            .insert(order.order_id.clone(), order);
    }
}

struct Inner {
    config: SandboxConfig,
    state: Mutex<SandboxState>,
}

/// A cheap-to-clone handle on one sandbox (its state is shared between clones).
#[derive(Clone)]
pub struct AmazonSandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmazonSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmazonSandbox")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AmazonSandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let mut state = SandboxState {
            pinned_now: None,
            sellers: Vec::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            next_tokens: HashMap::new(),
            report_next_tokens: HashMap::new(),
            document_grants: HashMap::new(),
            base_url: None,
            solicited: HashSet::new(),
            limits: HashMap::new(),
            buckets: HashMap::new(),
            faults: HashMap::new(),
            requests: Vec::new(),
            solicitations: Vec::new(),
        };
        for seller in &config.sellers {
            state.sellers.push(SellerState {
                id: seller.selling_partner_id.clone(),
                orders: BTreeMap::new(),
            });
            for order in &seller.orders {
                state.upsert(&seller.selling_partner_id, order.clone());
            }
        }
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, SandboxState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test sandbox, so a poisoned lock is simply taken over.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the state under the lock. Inside, use `SandboxState::now`, not `self.now()`.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut SandboxState) -> T) -> T {
        f(&mut self.lock())
    }

    /// Binds 127.0.0.1 on a free port, serves [`AmazonSandbox::router`] in a spawned task and
    /// returns the base URL (`http://127.0.0.1:PORT`): LWA, consent and SP-API all live there.
    pub async fn serve(&self) -> Result<String, SandboxError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(SandboxError::Bind)?;
        let addr = listener.local_addr().map_err(SandboxError::Bind)?;
        let base_url = format!("http://{addr}");
        // Report document URLs point back here.
        self.lock().base_url = Some(base_url.clone());
        let app = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "amazon sandbox server stopped");
            }
        });
        Ok(base_url)
    }

    /// The base URL [`AmazonSandbox::serve`] listens on (`None` for a router mounted elsewhere:
    /// report document URLs then use the request's `Host`).
    pub fn base_url(&self) -> Option<String> {
        self.lock().base_url.clone()
    }

    /// LWA, the consent page and the SP-API operations; every request is recorded in
    /// [`AmazonSandbox::requests`].
    pub fn router(&self) -> Router {
        Router::new()
            .route("/auth/o2/token", post(lwa::token))
            .route("/apps/authorize/consent", get(lwa::consent))
            .route("/orders/v0/orders", get(orders_api::get_orders))
            .route("/orders/v0/orders/{order_id}", get(orders_api::get_order))
            .route(
                "/orders/v0/orders/{order_id}/orderItems",
                get(orders_api::get_order_items),
            )
            .route(
                "/solicitations/v1/orders/{order_id}",
                get(solicitations::get_actions),
            )
            .route(
                "/solicitations/v1/orders/{order_id}/solicitations/productReviewAndSellerFeedback",
                post(solicitations::create),
            )
            .route("/reports/2021-06-30/reports", get(reports::get_reports))
            .route(
                "/reports/2021-06-30/documents/{report_document_id}",
                get(reports::get_report_document),
            )
            .route(
                &format!("{DOCUMENTS_PATH}/{{report_document_id}}"),
                get(reports::download_document),
            )
            .fallback(unknown_path)
            .layer(middleware::from_fn_with_state(self.clone(), record_request))
            .with_state(self.clone())
    }

    /// Every createProductReviewAndSellerFeedbackSolicitation request, whatever its answer,
    /// oldest first.
    pub fn solicitations(&self) -> Vec<SolicitationRequest> {
        self.lock().solicitations.clone()
    }

    /// Every request received (LWA, consent, SP-API) with the status answered, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Pins the sandbox clock at `now`: it stays there until set again. Review eligibility,
    /// the getOrders 2-minute rule, new `LastUpdateDate`s and code and token expiry use it.
    /// Rate limits do not (they run on real elapsed time).
    pub fn set_now(&self, now: OffsetDateTime) {
        self.lock().pinned_now = Some(now);
    }

    /// The sandbox clock: real UTC time until [`AmazonSandbox::set_now`] pins it.
    pub fn now(&self) -> OffsetDateTime {
        self.lock().now()
    }

    /// Adds or replaces an order of that seller (a seller the sandbox does not know yet is
    /// added). `LastUpdateDate` becomes the sandbox's now unless
    /// the order has one. Replacing an order keeps whether it was solicited.
    pub fn upsert_order(&self, seller_id: &str, order: SandboxOrder) {
        self.lock().upsert(seller_id, order);
    }

    pub fn order(&self, seller_id: &str, order_id: &str) -> Option<SandboxOrder> {
        self.lock().seller(seller_id)?.orders.get(order_id).cloned()
    }

    /// That seller's orders by `LastUpdateDate`, then order id (getOrders' order).
    pub fn orders(&self, seller_id: &str) -> Vec<SandboxOrder> {
        let mut orders: Vec<SandboxOrder> = self
            .lock()
            .seller(seller_id)
            .map(|s| s.orders.values().cloned().collect())
            .unwrap_or_default();
        orders
            .sort_by(|a, b| (a.last_updated(), &a.order_id).cmp(&(b.last_updated(), &b.order_id)));
        orders
    }

    /// The settlement reports the sandbox serves that seller now: the demo seller's three (from
    /// its configured orders, for periods ending before the sandbox clock's now, see
    /// `settlement.rs`), none for anyone else.
    pub fn settlements(&self, seller_id: &str) -> Vec<DemoSettlement> {
        if seller_id != DEMO_SELLER_ID {
            return Vec::new();
        }
        let Some(seller) = self
            .inner
            .config
            .sellers
            .iter()
            .find(|s| s.selling_partner_id == seller_id)
        else {
            return Vec::new();
        };
        settlement_files(&seller.orders, self.now())
    }

    /// Whether a solicitation was sent for that order (also by a call whose answer was lost).
    pub fn is_solicited(&self, seller_id: &str, order_id: &str) -> bool {
        self.lock()
            .solicited
            .contains(&(seller_id.to_owned(), order_id.to_owned()))
    }

    /// Sets an operation's token bucket for every seller (and refills the buckets).
    pub fn set_rate_limit(&self, operation: Operation, rate_per_sec: f64, burst: u32) {
        let mut state = self.lock();
        state.limits.insert(
            operation,
            RateLimit {
                rate_per_sec,
                burst,
            },
        );
        state.buckets.retain(|(_, op), _| *op != operation);
    }

    /// The next `times` calls of `operation` suffer `fault` (after any already queued).
    pub fn fail_next(&self, operation: Operation, fault: Fault, times: u32) {
        let mut state = self.lock();
        let queue = state.faults.entry(operation).or_default();
        queue.extend(std::iter::repeat_n(fault, times as usize));
    }

    /// The seller withdraws the app: every refresh token issued for them so far gets
    /// `invalid_grant`. Access tokens already issued live on until they expire; a new
    /// consent issues working tokens again.
    pub fn revoke_refresh_tokens(&self, seller_id: &str) {
        for grant in self.lock().refresh_tokens.values_mut() {
            if grant.seller_id == seller_id {
                grant.revoked = true;
            }
        }
    }

    /// Tokens for that seller as if they had consented and the code had been exchanged,
    /// without the HTTP round trips (for tests and seeds).
    pub fn authorize(&self, seller_id: &str) -> Result<IssuedTokens, SandboxError> {
        let mut state = self.lock();
        if state.seller(seller_id).is_none() {
            return Err(SandboxError::UnknownSeller(seller_id.to_owned()));
        }
        Ok(IssuedTokens {
            refresh_token: state.issue_refresh_token(seller_id),
            access_token: state.issue_access_token(seller_id),
            expires_in: ACCESS_TOKEN_SECONDS,
        })
    }

    pub(crate) fn record_solicitation(&self, order_id: &str, marketplace_id: &str, status: u16) {
        let mut state = self.lock();
        let at = state.now();
        state.solicitations.push(SolicitationRequest {
            order_id: order_id.to_owned(),
            marketplace_id: marketplace_id.to_owned(),
            status,
            at,
        });
    }
}

async fn record_request(
    State(sandbox): State<AmazonSandbox>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(redact_query).unwrap_or_default();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    sandbox.with_state(|s| {
        let at = s.now();
        s.requests.push(RecordedRequest {
            method,
            path,
            query,
            status,
            at,
        });
    });
    response
}

async fn unknown_path() -> Response {
    SandboxError::from(ApiError::not_found()).into_response()
}
