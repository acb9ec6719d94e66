//! Who is calling, and what they may do inside a merchant.
//!
//! The API validates the bearer token itself (signature, issuer, expiry, `token_use`, client) so
//! the same code is safe with or without API Gateway's authorizer in front of it.
//!
//! A merchant whose deletion was asked for answers 410 Gone on every route under it, from the
//! request on and for good (its tombstone outlives its data). The membership and the tombstone are
//! read in one round trip ([`ecomdrive_aws::Store::membership_and_deletion`]). A non-member gets
//! 410 too for a deleted merchant: merchant ids are random, and "this id was deleted" is all it
//! says. Such a request writes nothing: in particular it does not create the caller's account
//! again (a member left with no merchant loses it to the deletion job), which every other
//! signed-in request does on first sight ([`CurrentUser`]).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::members::{Membership, User};
use ecomdrive_core::ids::{DeletionId, MerchantId, UserId};
use ecomdrive_core::merchant::normalize_email;
use ecomdrive_core::role::{Action, Role, allows};
use ecomdrive_runtime::RuntimeError;
use ecomdrive_runtime::auth::bearer_from_headers;
use ecomdrive_runtime::client::ClientInfo;
use http::request::Parts;
use std::collections::HashMap;

/// Who the bearer token says is calling, before any account is looked up or created.
#[derive(Clone, Debug)]
struct Caller {
    id: UserId,
    email: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
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
        let caller = Caller { id, email };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The signed-in user (created on first sight; their pending invitations accepted).
#[derive(Clone, Debug)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(u) = parts.extensions.get::<CurrentUser>() {
            return Ok(u.clone());
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        let user = state
            .store
            .user_seen(&caller.id, caller.email.as_deref())
            .await?;
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

/// What every request reaching a merchant whose deletion was asked for answers: 410 Gone.
pub(crate) fn merchant_gone() -> ApiError {
    ApiError::Gone("this merchant was deleted at its owner's request".into())
}

/// Why a request under a merchant was refused before its handler ran.
#[derive(Debug)]
pub enum MemberRejection {
    Api(ApiError),
    /// The merchant was deleted, or is being deleted: 410 Gone.
    Gone,
}

impl From<ApiError> for MemberRejection {
    fn from(e: ApiError) -> Self {
        MemberRejection::Api(e)
    }
}

impl From<ecomdrive_aws::AwsError> for MemberRejection {
    fn from(e: ecomdrive_aws::AwsError) -> Self {
        MemberRejection::Api(e.into())
    }
}

impl IntoResponse for MemberRejection {
    fn into_response(self) -> Response {
        match self {
            MemberRejection::Api(e) => e.into_response(),
            MemberRejection::Gone => merchant_gone().into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = MemberRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, MemberRejection> {
        let access = MerchantAccess::from_request_parts(parts, state).await?;
        match access {
            MerchantAccess {
                deletion: Some(_), ..
            } => Err(MemberRejection::Gone),
            MerchantAccess {
                member: Some(member),
                ..
            } => Ok(member),
            MerchantAccess { member: None, .. } => Err(ApiError::NotFound.into()),
        }
    }
}

/// The caller and the merchant named in the path, deleted or not. Only the deletion route takes
/// it, so that a repeated DELETE answers with the deletion already under way; every other route
/// takes [`Member`]. Neither a membership nor a deletion: 404.
#[derive(Clone, Debug)]
pub struct MerchantAccess {
    /// The caller's membership, while the merchant's data still holds it.
    pub member: Option<Member>,
    /// The merchant's deletion, once asked for.
    pub deletion: Option<DeletionId>,
}

impl FromRequestParts<AppState> for MerchantAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let merchant = params
            .get("merchant_id")
            .and_then(|m| MerchantId::parse(m))
            .ok_or(ApiError::NotFound)?;
        let client = ClientInfo::from_parts(parts);
        let (membership, deletion): (Option<Membership>, Option<DeletionId>) = state
            .store
            .membership_and_deletion(&merchant, &caller.id)
            .await?;
        if deletion.is_some() {
            // Gone: nothing is written for the caller, not even their account (the job may have
            // deleted it already). A member still listed (the owner asking again) is known by the
            // token alone: the deletion route needs only their id and role.
            let member = membership.map(|ms| Member {
                user: User {
                    id: caller.id.clone(),
                    email: caller.email.clone(),
                    created_at: time::OffsetDateTime::now_utc(),
                    pending_invites: false,
                },
                merchant: merchant.clone(),
                role: ms.role,
                client: client.clone(),
            });
            return Ok(MerchantAccess { member, deletion });
        }
        // First sight creates the account and accepts invitations, perhaps to this merchant.
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        let (membership, deletion) = match membership {
            Some(ms) => (Some(ms), None),
            None => {
                state
                    .store
                    .membership_and_deletion(&merchant, &user.id)
                    .await?
            }
        };
        if membership.is_none() && deletion.is_none() {
            return Err(ApiError::NotFound);
        }
        Ok(MerchantAccess {
            member: membership.map(|ms| Member {
                user,
                merchant,
                role: ms.role,
                client,
            }),
            deletion,
        })
    }
}
