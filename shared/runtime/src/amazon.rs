//! What every function that talks to Amazon shares: the app's LWA credentials from Secrets
//! Manager, the endpoints from the environment, and one SP-API client per credentials (its
//! LWA access-token cache lives as long as the credentials do; a rotated client secret gives a
//! new client within the secrets cache's TTL).

use std::sync::{Arc, Mutex};

use ecomdrive_core::Secret;
use ecomdrive_platforms::amazon::{AmazonClient, AmazonConfig, RetryPolicy};
use ecomdrive_platforms::outbound::OutboundHttp;
use serde::Deserialize;

use crate::error::RuntimeError;
use crate::secrets::SecretCache;

/// The SP-API app's secrets, stored as `{"application_id", "client_id", "client_secret"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AmazonAppSecrets {
    pub application_id: String,
    pub client_id: String,
    /// LWA client secrets expire every 180 days: rotated by updating the secret.
    pub client_secret: Secret,
}

/// Where Amazon is, as template.yaml sets it (the local stack points these at the sandbox).
#[derive(Debug, Clone)]
pub struct AmazonEndpoints {
    pub lwa_token_url: String,
    pub spapi_base: String,
    pub consent_base: String,
    pub marketplace_id: String,
    /// Draft apps consent with `version=beta`.
    pub draft_app: bool,
}

impl AmazonEndpoints {
    /// `AMAZON_LWA_TOKEN_URL`, `AMAZON_SPAPI_BASE`, `AMAZON_CONSENT_BASE`, `AMAZON_MARKETPLACE_ID`
    /// and the optional `AMAZON_DRAFT_APP` (`true` while the app is not published).
    pub fn from_env() -> Result<Self, RuntimeError> {
        Ok(Self {
            lwa_token_url: crate::env::required("AMAZON_LWA_TOKEN_URL")?,
            spapi_base: crate::env::required("AMAZON_SPAPI_BASE")?,
            consent_base: crate::env::required("AMAZON_CONSENT_BASE")?,
            marketplace_id: crate::env::required("AMAZON_MARKETPLACE_ID")?,
            draft_app: crate::env::optional("AMAZON_DRAFT_APP")?.as_deref() == Some("true"),
        })
    }
}

/// A client and the credentials it was built with.
type ClientForSecrets = (Arc<AmazonAppSecrets>, AmazonClient);

/// The SP-API client for the current credentials. Clone freely: clones share the client.
#[derive(Clone)]
pub struct AmazonApi {
    pub endpoints: AmazonEndpoints,
    http: OutboundHttp,
    secrets: SecretCache<AmazonAppSecrets>,
    retry: RetryPolicy,
    current: Arc<Mutex<Option<ClientForSecrets>>>,
}

impl AmazonApi {
    pub fn new(
        endpoints: AmazonEndpoints,
        http: OutboundHttp,
        secrets: SecretCache<AmazonAppSecrets>,
    ) -> Self {
        Self {
            endpoints,
            http,
            secrets,
            retry: RetryPolicy::default(),
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// Clients with this retry policy instead of the default (the review-request sender paces
    /// itself and wants a 429 back at once rather than slept on outside its pace).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn secrets(&self) -> &SecretCache<AmazonAppSecrets> {
        &self.secrets
    }

    pub async fn client(&self) -> Result<AmazonClient, RuntimeError> {
        let app = self.secrets.get().await?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, client)) = current.as_ref()
            && Arc::ptr_eq(seen, &app)
        {
            return Ok(client.clone());
        }
        let config = AmazonConfig {
            lwa_token_url: self.endpoints.lwa_token_url.clone(),
            spapi_base: self.endpoints.spapi_base.clone(),
            consent_base: self.endpoints.consent_base.clone(),
            application_id: app.application_id.clone(),
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
            draft_app: self.endpoints.draft_app,
        };
        let client = AmazonClient::new(self.http.clone(), config)
            .map_err(|e| RuntimeError::InvalidVar {
                name: "AMAZON_SPAPI_BASE".into(),
                reason: e.to_string(),
            })?
            .with_retry_policy(self.retry);
        *current = Some((app, client.clone()));
        Ok(client)
    }
}
