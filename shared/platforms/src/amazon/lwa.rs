//! Login with Amazon: the token endpoint, and the cache of access tokens.
//!
//! An access token lives an hour and LWA is one more call (and one more failure) before every
//! SP-API call, so tokens are cached per refresh token until a minute before they expire. The cache
//! key is a SHA-256 of the refresh token, so the map never holds a refresh token itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ecomdrive_core::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::retry::{Operation, RetryPolicy, send_with_retries};
use super::{decode, scrub};
use crate::error::PlatformError;
use crate::outbound::OutboundHttp;

/// A token this close to its expiry is refreshed: it must outlive the SP-API call it is sent with.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A refresh-token grant can be repeated without harm: it only mints another access token.
pub(super) const REFRESH: Operation = Operation {
    name: "lwa.refresh_token",
    rate: None,
    repeatable: true,
};

/// An authorization code is single-use: once LWA may have seen it, sending it again would only
/// turn a success we did not hear into `invalid_grant`.
pub(super) const AUTHORIZATION_CODE: Operation = Operation {
    name: "lwa.authorization_code",
    rate: None,
    repeatable: false,
};

/// LWA's answer to a grant.
#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub access_token: Secret,
    /// Seconds.
    pub expires_in: u64,
    /// Given with an authorization code; repeated with a refresh-token grant.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
}

/// The OAuth error body (`{"error": "invalid_grant", "error_description": "..."}`).
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// POSTs a grant to the token endpoint. `secrets` are the credentials the form carries: they are
/// scrubbed from LWA's error text.
pub(super) async fn grant(
    http: &OutboundHttp,
    token_url: &Url,
    policy: &RetryPolicy,
    operation: &Operation,
    form: &[(&str, &str)],
    secrets: &[&str],
) -> Result<TokenAnswer, PlatformError> {
    let answer = send_with_retries(policy, operation, || {
        Ok(http.post(token_url.as_str())?.form(form))
    })
    .await?;
    if answer.status.is_success() {
        return decode(&answer.body);
    }
    let http_status = answer.status.as_u16();
    match serde_json::from_slice::<OAuthError>(&answer.body) {
        Ok(error) => Err(PlatformError::Lwa {
            http_status,
            error: scrub(&error.error, secrets),
            description: scrub(&error.error_description, secrets),
        }),
        Err(_) => Err(PlatformError::UnexpectedStatus(http_status)),
    }
}

/// Access tokens by refresh-token hash, shared by the clones of a client.
///
/// Each entry has its own async lock, held while its token is fetched: concurrent callers for one
/// seller wait for that fetch instead of each asking LWA.
#[derive(Default)]
pub(super) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Slot>>,
}

/// One seller's cached token, empty until the first fetch.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

pub(super) struct CachedToken {
    token: Secret,
    refresh_after: Instant,
}

impl CachedToken {
    pub(super) fn new(token: Secret, expires_in: u64) -> Self {
        // A token given for a minute or less is used once and not reused.
        let lifetime = Duration::from_secs(expires_in).saturating_sub(EXPIRY_MARGIN);
        Self {
            token,
            refresh_after: Instant::now() + lifetime,
        }
    }

    /// The token, if it is not due for a refresh.
    pub(super) fn fresh(&self) -> Option<&Secret> {
        (Instant::now() < self.refresh_after).then_some(&self.token)
    }
}

impl TokenCache {
    /// The entry of this refresh token, created empty if there is none.
    pub(super) fn entry(&self, refresh_token: &Secret) -> Slot {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(entries.entry(key(refresh_token)).or_default())
    }

    /// Stores a token got some other way (with the authorization code).
    pub(super) fn store(&self, refresh_token: &Secret, token: CachedToken) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(
            key(refresh_token),
            Arc::new(tokio::sync::Mutex::new(Some(token))),
        );
    }

    pub(super) fn forget(&self, refresh_token: &Secret) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&key(refresh_token));
    }
}

fn key(refresh_token: &Secret) -> [u8; 32] {
    Sha256::digest(refresh_token.expose().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_fresh_until_a_minute_before_it_expires() {
        assert!(CachedToken::new(Secret::new("a"), 3600).fresh().is_some());
        assert!(CachedToken::new(Secret::new("a"), 60).fresh().is_none());
        assert!(CachedToken::new(Secret::new("a"), 0).fresh().is_none());
    }

    #[tokio::test]
    async fn the_cache_is_keyed_by_refresh_token_and_forgets_on_request() {
        let cache = TokenCache::default();
        let seller_a = Secret::new("Atzr|seller-a");
        let seller_b = Secret::new("Atzr|seller-b");
        cache.store(&seller_a, CachedToken::new(Secret::new("Atza|a"), 3600));

        let a = cache.entry(&seller_a);
        let cached = a.lock().await;
        assert_eq!(
            cached.as_ref().and_then(CachedToken::fresh),
            Some(&Secret::new("Atza|a"))
        );
        assert!(cache.entry(&seller_b).lock().await.is_none());

        cache.forget(&seller_a);
        assert!(cache.entry(&seller_a).lock().await.is_none());
    }
}
