//! App secrets from Secrets Manager, cached for a short time so a rotated secret is picked up
//! without a deploy (DESIGN.md principle 6).
//!
//! A secret is a JSON object stored as the secret string, read into a typed struct such as
//! [`MetaAppSecrets`]. Errors name the secret id, never its content.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ecomdrive_core::Secret;
use ecomdrive_core::ids::PageId;
use ecomdrive_platforms::meta::{MetaClient, MetaConfig};
use ecomdrive_platforms::outbound::OutboundHttp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::RuntimeError;

/// How long a fetched secret is used before it is read again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// The Meta app's secrets. Stored as
/// `{"app_id": "...", "app_secret": "...", "verify_token": "...", "state_signing_key": "..."}`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaAppSecrets {
    pub app_id: String,
    /// Signs webhook payloads (`X-Hub-Signature-256`) and proves our app to the Graph API.
    pub app_secret: Secret,
    /// Meta echoes it when verifying the webhook subscription.
    pub verify_token: Secret,
    /// Signs the OAuth `state` we hand out when a merchant connects a Page.
    pub state_signing_key: Secret,
}

/// One Secrets Manager secret, parsed as `T` and cached for `ttl`. Clone it freely: clones share
/// the cache. Concurrent callers during a refresh share one fetch.
pub struct SecretCache<T> {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    cell: Arc<TtlCell<T>>,
}

impl<T> Clone for SecretCache<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            secret_id: self.secret_id.clone(),
            cell: self.cell.clone(),
        }
    }
}

impl<T: DeserializeOwned> SecretCache<T> {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self::with_ttl(client, secret_id, DEFAULT_TTL)
    }

    pub fn with_ttl(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            cell: Arc::new(TtlCell::new(ttl)),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The secret, from the cache if it is younger than the TTL, else freshly read.
    pub async fn get(&self) -> Result<Arc<T>, RuntimeError> {
        self.cell.get_or_fetch(|| self.fetch()).await
    }

    /// Forgets the cached value, so the next [`get`](Self::get) reads again. Call it when the
    /// platform rejects the secret: it was probably just rotated.
    pub async fn invalidate(&self) {
        self.cell.invalidate().await;
    }

    async fn fetch(&self) -> Result<T, RuntimeError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| RuntimeError::SecretUnavailable {
                secret_id: self.secret_id.clone(),
                // The SDK's error (service code and message) never contains the secret value.
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        let text = output
            .secret_string()
            .ok_or_else(|| RuntimeError::SecretShape {
                secret_id: self.secret_id.clone(),
                reason: "the secret has no SecretString (binary secrets are not supported)".into(),
            })?;
        parse_secret(&self.secret_id, text)
    }
}

/// Reads a secret's JSON text as `T`. The error says what is wrong without quoting the text.
pub fn parse_secret<T: DeserializeOwned>(secret_id: &str, text: &str) -> Result<T, RuntimeError> {
    serde_json::from_str(text).map_err(|e| RuntimeError::SecretShape {
        secret_id: secret_id.to_owned(),
        reason: describe_parse_error(&e),
    })
}

/// serde_json's messages may quote the offending value (`invalid type: string "…"`), which here
/// would be a secret. Keep only what is safe: missing/unknown field names and the position.
fn describe_parse_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let safe_prefix = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .any(|prefix| message.starts_with(prefix));
    if safe_prefix {
        // e.g. "missing field `app_secret` at line 1 column 42": names a field, quotes no value.
        return message;
    }
    let what = match error.classify() {
        serde_json::error::Category::Io => "could not be read",
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Data => "has a field of the wrong type",
        serde_json::error::Category::Eof => "is truncated JSON",
    };
    format!(
        "the secret string {what} (line {} column {})",
        error.line(),
        error.column()
    )
}

/// A value with an expiry, refreshed by whoever asks first after it expires; the others wait for
/// that one fetch instead of starting their own.
struct TtlCell<T> {
    ttl: Duration,
    slot: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> TtlCell<T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: Mutex::new(None),
        }
    }

    async fn get_or_fetch<F, Fut, E>(&self, fetch: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Held across the fetch on purpose: that is what makes concurrent callers share it.
        let mut slot = self.slot.lock().await;
        let fresh = slot
            .as_ref()
            .filter(|(fetched_at, _)| fetched_at.elapsed() < self.ttl);
        if let Some((_, value)) = fresh {
            return Ok(value.clone());
        }
        // On error the slot stays as it was (empty or expired), so the next caller tries again.
        let value = Arc::new(fetch().await?);
        *slot = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    async fn invalidate(&self) {
        *self.slot.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const GOOD: &str = r#"{
        "app_id": "1234567890",
        "app_secret": "local-fake-app-secret",
        "verify_token": "local-fake-verify-token",
        "state_signing_key": "local-fake-state-key"
    }"#;

    #[test]
    fn meta_app_secrets_parse_from_the_secret_json() {
        let secrets: MetaAppSecrets = parse_secret("meta/app", GOOD).expect("parse");
        assert_eq!(secrets.app_id, "1234567890");
        assert_eq!(secrets.app_secret.expose(), "local-fake-app-secret");
        assert_eq!(secrets.verify_token.expose(), "local-fake-verify-token");
        assert_eq!(secrets.state_signing_key.expose(), "local-fake-state-key");
        let printed = format!("{secrets:?}");
        assert!(!printed.contains("local-fake"), "Debug redacts: {printed}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = r#"{"app_id": "1", "app_secret": "local-fake-app-secret", "verify_token": "v"}"#;
        let error = parse_secret::<MetaAppSecrets>("meta/app", text).expect_err("incomplete");
        let message = error.to_string();
        assert!(message.contains("meta/app"), "{message}");
        assert!(message.contains("state_signing_key"), "{message}");
        assert!(!message.contains("local-fake-app-secret"), "{message}");
    }

    #[test]
    fn parse_errors_never_quote_the_secret() {
        // A value of the wrong type: serde_json would quote it in its own message.
        let wrong_type = r#"{"app_id": "1", "app_secret": ["local-fake-app-secret"], "verify_token": "v", "state_signing_key": "k"}"#;
        let wrong_number = r#"{"app_id": 987654321123, "app_secret": "s", "verify_token": "v", "state_signing_key": "k"}"#;
        let not_json = "local-fake-app-secret-as-plain-text";
        for (text, leaked) in [
            (wrong_type, "local-fake-app-secret"),
            (wrong_number, "987654321123"),
            (not_json, "local-fake-app-secret"),
        ] {
            let message = parse_secret::<MetaAppSecrets>("meta/app", text)
                .expect_err("bad shape")
                .to_string();
            assert!(!message.contains(leaked), "leaks the value: {message}");
            assert!(message.contains("meta/app"), "{message}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_refetches_only_after_its_ttl() {
        let cell = TtlCell::new(Duration::from_secs(300));
        let fetches = AtomicUsize::new(0);
        let fetch = || async { Ok::<_, RuntimeError>(fetches.fetch_add(1, Ordering::SeqCst) + 1) };

        assert_eq!(*cell.get_or_fetch(fetch).await.expect("v"), 1);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(
            *cell.get_or_fetch(fetch).await.expect("v"),
            1,
            "still fresh"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            *cell.get_or_fetch(fetch).await.expect("v"),
            2,
            "rotated value picked up"
        );

        cell.invalidate().await;
        assert_eq!(
            *cell.get_or_fetch(fetch).await.expect("v"),
            3,
            "invalidated"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let cell = Arc::new(TtlCell::new(DEFAULT_TTL));
        let fetches = Arc::new(AtomicUsize::new(0));
        let callers = (0..8).map(|_| {
            let (cell, fetches) = (cell.clone(), fetches.clone());
            tokio::spawn(async move {
                cell.get_or_fetch(|| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, RuntimeError>("value")
                })
                .await
                .map(|v| *v)
            })
        });
        for caller in futures::future::join_all(callers).await {
            assert_eq!(caller.expect("join").expect("value"), "value");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_retried_by_the_next_caller() {
        let cell: TtlCell<&str> = TtlCell::new(DEFAULT_TTL);
        let failed = cell
            .get_or_fetch(|| async {
                Err(RuntimeError::SecretUnavailable {
                    secret_id: "s".into(),
                    reason: "down".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        let value = cell
            .get_or_fetch(|| async { Ok::<_, RuntimeError>("back") })
            .await
            .expect("retried");
        assert_eq!(*value, "back");
    }
}

/// Where Meta is: the Graph API and the login dialog (the Meta sandbox's URL in the local stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEndpoints {
    pub graph_base: String,
    pub dialog_base: String,
    /// Graph API version, e.g. `v23.0`.
    pub version: String,
}

impl MetaEndpoints {
    /// `META_GRAPH_BASE`, `META_DIALOG_BASE` and `META_GRAPH_VERSION`, as template.yaml sets them.
    pub fn from_env() -> Result<Self, RuntimeError> {
        Ok(Self {
            graph_base: crate::env::required("META_GRAPH_BASE")?,
            dialog_base: crate::env::required("META_DIALOG_BASE")?,
            version: crate::env::required("META_GRAPH_VERSION")?,
        })
    }

    /// A Graph API client with the app's current credentials: built per use from the secrets
    /// cache, so a rotated app secret is picked up without a deploy.
    pub async fn client(
        &self,
        http: &OutboundHttp,
        secrets: &SecretCache<MetaAppSecrets>,
    ) -> Result<MetaClient, RuntimeError> {
        let app = secrets.get().await?;
        let config = MetaConfig {
            graph_base: self.graph_base.clone(),
            dialog_base: self.dialog_base.clone(),
            version: self.version.clone(),
            app_id: app.app_id.clone(),
            app_secret: app.app_secret.clone(),
        };
        MetaClient::new(http.clone(), config).map_err(|e| RuntimeError::InvalidVar {
            name: "META_GRAPH_BASE".into(),
            reason: e.to_string(),
        })
    }
}

/// Takes our app's webhook subscription off the Pages whose tokens are about to be deleted (a
/// merchant's deletion, POLICY A11): a courtesy to Meta, so nothing here stops the deletion. Without
/// a Meta client (its secret unreadable) the tokens are deleted without unsubscribing; a refused
/// unsubscription is logged. Hand [`PageUnsubscriber::unsubscribe`] to the store's
/// `forget_merchant_tokens`.
pub struct PageUnsubscriber {
    meta: Option<MetaClient>,
}

impl PageUnsubscriber {
    pub async fn connect(
        endpoints: &MetaEndpoints,
        http: &OutboundHttp,
        secrets: &SecretCache<MetaAppSecrets>,
    ) -> Self {
        let meta = match endpoints.client(http, secrets).await {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "no Meta client: Page tokens are deleted without unsubscribing");
                None
            }
        };
        Self { meta }
    }

    /// Unsubscribes our app from `page` with its token; a failure is only logged.
    pub async fn unsubscribe(&self, page: PageId, token: Secret) {
        if let Some(meta) = &self.meta
            && let Err(e) = meta.unsubscribe_page(page.as_str(), &token).await
        {
            tracing::warn!(error = %e, "could not unsubscribe the Page; deleting its token anyway");
        }
    }
}
