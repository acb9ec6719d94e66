//! Who is calling, and what they may do inside a merchant.
//!
//! The API validates the bearer token itself (signature, issuer, expiry, `token_use`, client) so
//! the same code is safe with or without API Gateway's authorizer in front of it.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::members::{Membership, User};
use ecomdrive_core::ids::{MerchantId, UserId};
use ecomdrive_core::merchant::normalize_email;
use ecomdrive_core::role::{Action, Role, allows};
use ecomdrive_runtime::RuntimeError;
use ecomdrive_runtime::auth::bearer_from_headers;
use ecomdrive_runtime::client::ClientInfo;
use http::request::Parts;
use std::collections::HashMap;

/// The signed-in user (created on first sight; their pending invitations accepted).
#[derive(Clone, Debug)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(u) = parts.extensions.get::<CurrentUser>() {
            return Ok(u.clone());
        }
        let token = bearer_from_headers(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let claims = state.jwt.verify(token).await.map_err(|e| match e {
            // Not the caller's fault: the identity provider's keys could not be fetched.
            RuntimeError::KeysUnavailable(_) => ApiError::Unavailable(e.to_string()),
            _ => {
                tracing::info!(reason = %e, "bearer token refused");
                ApiError::Unauthorized
            }
        })?;
        let id = UserId::parse(&claims.sub).ok_or(ApiError::Unauthorized)?;
        let email = claims
            .email
            .as_deref()
            .and_then(|e| normalize_email(e).ok());
        let user = state.store.user_seen(&id, email.as_deref()).await?;
        let current = CurrentUser(user);
        parts.extensions.insert(current.clone());
        Ok(current)
    }
}

/// A member of the merchant named in the path. A non-member gets 404 for anything under the
/// merchant, so merchants' existence is not revealed.
#[derive(Clone, Debug)]
pub struct Member {
    pub user: User,
    pub merchant: MerchantId,
    pub role: Role,
    /// Where the request came from, for the audit log.
    pub client: ClientInfo,
}

impl Member {
    /// 403 when the member's role does not allow `action` (POLICY A14).
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if allows(self.role, action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn id(&self) -> &UserId {
        &self.user.id
    }

    /// Records a state-changing action of this member in the merchant's audit log (POLICY A14).
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: Option<&str>,
    ) -> Result<(), ApiError> {
        Ok(state
            .store
            .audit(&self.merchant, &self.actor(), action, target)
            .await?)
    }

    /// This member as the actor of an audit record, with the request's IP and user agent.
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.user.id.clone(),
            ip: self.client.ip.clone(),
            user_agent: self.client.user_agent.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let merchant = params
            .get("merchant_id")
            .and_then(|m| MerchantId::parse(m))
            .ok_or(ApiError::NotFound)?;
        let membership: Membership = state
            .store
            .membership(&merchant, &user.id)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Member {
            user,
            merchant,
            role: membership.role,
            client: ClientInfo::from_parts(parts),
        })
    }
}
