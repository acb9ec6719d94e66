//! The sandbox handle, its configuration and its in-memory state.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};

use crate::error::SandboxError;
use crate::ids;
use crate::record::{GraphCall, SentMessage, WebhookDelivery};

/// A Facebook Page the test user manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPage {
    /// Numeric id as a string, like Meta's.
    pub id: String,
    pub name: String,
}

/// The Facebook user who logs in through the OAuth dialog and manages every sandbox Page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    pub id: String,
    pub name: String,
}

/// How the sandbox behaves: which app it knows, where it posts webhooks, which Pages exist.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The Meta app id (`client_id`); numeric, as Meta's are.
    pub app_id: String,
    /// Signs webhooks and checks `client_secret` and `appsecret_proof`. Use fake values only.
    pub app_secret: String,
    /// Where webhooks are POSTed, e.g. `http://127.0.0.1:3000/webhooks/messenger`.
    pub webhook_url: String,
    /// The Graph API version advertised, e.g. `v23.0` (any `vN.N` in a path is accepted).
    pub graph_version: String,
    pub user: TestUser,
    pub pages: Vec<SandboxPage>,
}

impl SandboxConfig {
    /// A test user who manages two Pages, "Demo Store" and "Demo Outlet".
    pub fn demo(
        app_id: impl Into<String>,
        app_secret: impl Into<String>,
        webhook_url: impl Into<String>,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            webhook_url: webhook_url.into(),
            graph_version: "v23.0".to_owned(),
            user: TestUser {
                id: "100000000000001".to_owned(),
                name: "Demo Merchant".to_owned(),
            },
            pages: vec![
                SandboxPage {
                    id: "100000000000101".to_owned(),
                    name: "Demo Store".to_owned(),
                },
                SandboxPage {
                    id: "100000000000102".to_owned(),
                    name: "Demo Outlet".to_owned(),
                },
            ],
        }
    }
}

/// What a token was issued as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    User { long_lived: bool },
    Page { page_id: String },
}

#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    pub grant: Grant,
    /// `None`: does not expire (Page tokens got from a long-lived user token).
    pub expires_at: Option<OffsetDateTime>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub redirect_uri: String,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

/// A customer (PSID) who wrote to a Page: the start of the messaging window.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub last_message_at: OffsetDateTime,
    /// Meta answers 551 "This person isn't available right now" for this customer.
    pub unavailable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscription {
    Fields(Vec<String>),
    Removed,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SendFault {
    Fail {
        http_status: u16,
        code: i64,
        subcode: Option<i64>,
    },
    Delay {
        delay: StdDuration,
        then_accept: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub clock_offset: Duration,
    pub base_url: Option<String>,
    pub codes: HashMap<String, AuthCode>,
    pub tokens: HashMap<String, TokenGrant>,
    /// Keyed by (page id, PSID).
    pub customers: HashMap<(String, String), Customer>,
    /// Absent: never subscribed through the API.
    pub subscriptions: HashMap<String, Subscription>,
    pub faults: VecDeque<SendFault>,
    pub files: HashMap<String, StoredFile>,
    pub deny_next_consent: bool,
    pub calls: Vec<GraphCall>,
    pub sent: Vec<SentMessage>,
    pub webhooks: Vec<WebhookDelivery>,
}

struct Inner {
    config: SandboxConfig,
    http: reqwest::Client,
    state: Mutex<State>,
}

/// A cheap-to-clone handle on one sandbox (its state is shared between clones).
#[derive(Clone)]
pub struct MetaSandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetaSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No secret in Debug output.
        f.debug_struct("MetaSandbox")
            .field("app_id", &self.inner.config.app_id)
            .field("webhook_url", &self.inner.config.webhook_url)
            .finish_non_exhaustive()
    }
}

/// Meta waits for a webhook's answer for up to 20 seconds ("Webhooks for Messenger").
const WEBHOOK_TIMEOUT: StdDuration = StdDuration::from_secs(20);

impl MetaSandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test sandbox, so a poisoned lock is simply taken over.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// The sandbox's clock: real UTC time moved by [`MetaSandbox::advance_clock`].
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.lock().clock_offset
    }

    pub(crate) fn now_ms(&self) -> i64 {
        unix_ms(self.now())
    }

    pub(crate) fn page(&self, page_id: &str) -> Option<&SandboxPage> {
        self.inner.config.pages.iter().find(|p| p.id == page_id)
    }

    pub(crate) fn require_page(&self, page_id: &str) -> Result<&SandboxPage, SandboxError> {
        self.page(page_id)
            .ok_or_else(|| SandboxError::UnknownPage(page_id.to_owned()))
    }

    /// Binds 127.0.0.1 on a free port, serves [`MetaSandbox::router`] in a spawned task and
    /// returns the base URL (`http://127.0.0.1:PORT`).
    pub async fn serve(&self) -> Result<String, SandboxError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(SandboxError::Bind)?;
        let addr = listener.local_addr().map_err(SandboxError::Bind)?;
        let base_url = format!("http://{addr}");
        self.set_base_url(&base_url);
        let app = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "meta sandbox server stopped");
            }
        });
        Ok(base_url)
    }

    /// For a host that mounts [`MetaSandbox::router`] on its own listener: the URL it is
    /// reachable at (used for attachment URLs and paging links).
    pub fn set_base_url(&self, base_url: &str) {
        self.lock().base_url = Some(base_url.trim_end_matches('/').to_owned());
    }

    pub fn base_url(&self) -> Option<String> {
        self.lock().base_url.clone()
    }

    /// Every Graph/dialog call, oldest first.
    pub fn calls(&self) -> Vec<GraphCall> {
        self.lock().calls.clone()
    }

    /// Every Send API call, accepted or refused, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Every webhook POST the sandbox made, oldest first.
    pub fn webhooks(&self) -> Vec<WebhookDelivery> {
        self.lock().webhooks.clone()
    }

    /// A new random PSID (a customer who has not written yet).
    pub fn new_psid(&self) -> String {
        ids::psid()
    }

    /// Moves the sandbox clock forward (codes and tokens expire, windows close).
    pub fn advance_clock(&self, by: Duration) {
        self.lock().clock_offset += by;
    }

    /// Moves that customer's last message to that Page earlier by `by`.
    pub fn backdate_customer(
        &self,
        page_id: &str,
        psid: &str,
        by: Duration,
    ) -> Result<(), SandboxError> {
        let mut state = self.lock();
        let customer = state
            .customers
            .get_mut(&(page_id.to_owned(), psid.to_owned()))
            .ok_or_else(|| {
                SandboxError::InvalidInput(format!("customer {psid} never wrote to Page {page_id}"))
            })?;
        customer.last_message_at -= by;
        Ok(())
    }

    /// The next Send API call is answered with this Meta error (e.g. 400/613, 500/2, 400/551).
    pub fn fail_next_send(&self, http_status: u16, code: i64, subcode: Option<i64>) {
        self.lock().faults.push_back(SendFault::Fail {
            http_status,
            code,
            subcode,
        });
    }

    /// The next Send API call waits `delay`, then is processed as usual (`then_accept`) or
    /// dropped (answered 500, code 2, and not delivered). The processing happens even if the
    /// client gave up meanwhile, which is what a client-timeout test needs to see.
    pub fn delay_next_send(&self, delay: StdDuration, then_accept: bool) {
        self.lock()
            .faults
            .push_back(SendFault::Delay { delay, then_accept });
    }

    /// Invalidates every token issued for that Page (as when the user removes the app or
    /// changes their password): Graph calls with them get 190. A new login issues new ones.
    pub fn revoke_page_token(&self, page_id: &str) {
        for grant in self.lock().tokens.values_mut() {
            if grant.grant
                == (Grant::Page {
                    page_id: page_id.to_owned(),
                })
            {
                grant.revoked = true;
            }
        }
    }

    /// The webhook fields the app is subscribed to for that Page (`None`: not subscribed).
    pub fn subscribed_fields(&self, page_id: &str) -> Option<Vec<String>> {
        match self.lock().subscriptions.get(page_id) {
            Some(Subscription::Fields(fields)) => Some(fields.clone()),
            _ => None,
        }
    }

    /// A Page token that does not expire, without going through OAuth (for tests and seeds).
    pub fn page_token(&self, page_id: &str) -> Result<String, SandboxError> {
        self.require_page(page_id)?;
        Ok(self.issue_token(
            Grant::Page {
                page_id: page_id.to_owned(),
            },
            None,
        ))
    }

    /// Meta will answer 551 "This person isn't available right now" for sends to this customer.
    pub fn mark_customer_unavailable(&self, page_id: &str, psid: &str) -> Result<(), SandboxError> {
        let mut state = self.lock();
        let customer = state
            .customers
            .get_mut(&(page_id.to_owned(), psid.to_owned()))
            .ok_or_else(|| {
                SandboxError::InvalidInput(format!("customer {psid} never wrote to Page {page_id}"))
            })?;
        customer.unavailable = true;
        Ok(())
    }

    /// The next OAuth dialog is declined by the user (redirect with `error=access_denied`).
    pub fn deny_next_consent(&self) {
        self.lock().deny_next_consent = true;
    }

    pub(crate) fn issue_token(&self, grant: Grant, expires_at: Option<OffsetDateTime>) -> String {
        let token = ids::access_token();
        self.lock().tokens.insert(
            token.clone(),
            TokenGrant {
                grant,
                expires_at,
                revoked: false,
            },
        );
        token
    }

    /// Records that the customer wrote to the Page now: the messaging window (re)opens.
    pub(crate) fn customer_wrote(&self, page_id: &str, psid: &str, at: OffsetDateTime) {
        let mut state = self.lock();
        let customer = state
            .customers
            .entry((page_id.to_owned(), psid.to_owned()))
            .or_insert(Customer {
                last_message_at: at,
                unavailable: false,
            });
        customer.last_message_at = at;
    }

    /// Echoes go out while the Page is subscribed to `message_echoes`. A Page never subscribed
    /// through the API counts as subscribed to every field, so tests that skip the OAuth flow
    /// still see echoes; after an unsubscribe (or a subscribe without it) none are sent.
    pub(crate) fn echoes_enabled(&self, page_id: &str) -> bool {
        match self.lock().subscriptions.get(page_id) {
            None => true,
            Some(Subscription::Fields(fields)) => fields.iter().any(|f| f == "message_echoes"),
            Some(Subscription::Removed) => false,
        }
    }
}

pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
