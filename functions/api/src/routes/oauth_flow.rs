//! The two ends of a platform's OAuth authorization (Messenger and Amazon alike): `start` hands
//! out a signed single-use `state` and the browser nonce for the cookie; `redeem` checks the
//! state, the cookie, that the merchant is not being deleted (410 Gone, as on every route under it)
//! and that the user may still manage the merchant's integrations.

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use crate::oauth_state::{self, NONCE_COOKIE, STATE_LIFETIME_SECS, StateClaims};
use axum::http::{HeaderMap, header};
use ecomdrive_aws::store::connections::OAuthState;
use ecomdrive_core::ids::{MerchantId, UserId};
use ecomdrive_core::role::{Action, allows};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

pub(crate) fn refused(detail: &str) -> ApiError {
    ApiError::BadRequest(format!("the connection could not be completed: {detail}"))
}

impl AppState {
    /// The nonce cookie: HttpOnly, SameSite=Lax (it must come back on the platform's top-level
    /// redirect), scoped to the callback, short-lived; Secure except on plain-HTTP localhost.
    pub(crate) fn nonce_cookie(&self, callback_path: &str, value: &str, max_age: i64) -> String {
        let secure = if self.config.cookie_secure() {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{NONCE_COOKIE}={value}; Path={callback_path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        )
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A new state for `integration`: the signed state for the platform and the nonce for the cookie.
pub(crate) async fn start(
    state: &AppState,
    member: &Member,
    integration: &str,
) -> ApiResult<(String, String)> {
    let secrets = state.secrets.get().await.map_err(ApiError::internal)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let nonce = oauth_state::random_token();
    let stored = OAuthState {
        state_id: oauth_state::random_token(),
        integration: integration.into(),
        user_id: member.id().clone(),
        merchant_id: member.merchant.clone(),
        nonce_hash: oauth_state::nonce_hash(&nonce),
        expires_at: now + STATE_LIFETIME_SECS,
    };
    state.store.save_oauth_state(&stored).await?;
    let signed = oauth_state::sign(
        secrets.state_signing_key.expose().as_bytes(),
        &StateClaims {
            sid: stored.state_id.clone(),
            mid: member.merchant.to_string(),
            sub: member.id().to_string(),
            exp: stored.expires_at,
        },
    );
    Ok((signed, nonce))
}

/// The merchant and user a returning `state` was made for, once: the state is consumed.
pub(crate) async fn redeem(
    state: &AppState,
    headers: &HeaderMap,
    raw_state: Option<&str>,
    integration: &str,
) -> ApiResult<(MerchantId, UserId)> {
    let secrets = state.secrets.get().await.map_err(ApiError::internal)?;
    let raw_state = raw_state.ok_or_else(|| refused("missing state"))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = oauth_state::verify(
        secrets.state_signing_key.expose().as_bytes(),
        raw_state,
        now,
    )
    .map_err(|e| refused(&e.to_string()))?;
    let nonce =
        cookie(headers, NONCE_COOKIE).ok_or_else(|| refused("the nonce cookie is missing"))?;
    // Single use: taken out of the store whatever happens next.
    let stored = state
        .store
        .take_oauth_state(&claims.sid)
        .await?
        .ok_or_else(|| refused("the state was already used or is unknown"))?;
    let nonce_ok: bool = oauth_state::nonce_hash(&nonce)
        .as_bytes()
        .ct_eq(stored.nonce_hash.as_bytes())
        .into();
    if !nonce_ok
        || stored.merchant_id.as_str() != claims.mid
        || stored.user_id.as_str() != claims.sub
        || stored.integration != integration
    {
        return Err(refused("the state does not belong to this browser"));
    }
    if stored.expires_at <= now {
        return Err(refused("the state has expired"));
    }
    // The merchant must not be being deleted (its tokens are gone already, and its memberships
    // are the last of its data to go), and the user must still be allowed to manage its
    // integrations.
    let (membership, deletion) = state
        .store
        .membership_and_deletion(&stored.merchant_id, &stored.user_id)
        .await?;
    if deletion.is_some() {
        return Err(crate::auth::merchant_gone());
    }
    let membership = membership.ok_or(ApiError::NotFound)?;
    if !allows(membership.role, Action::ManageIntegrations) {
        return Err(ApiError::Forbidden);
    }
    Ok((stored.merchant_id, stored.user_id))
}
