//! The signed-in user, their merchants, members and the audit log.

use crate::AppState;
use crate::auth::{CurrentUser, Member};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::audit::AuditRecord;
use ecomdrive_aws::store::members::{Membership, Merchant};
use ecomdrive_core::ids::{MerchantId, UserId};
use ecomdrive_core::merchant::{MerchantProfile, normalize_email};
use ecomdrive_core::role::{Action, Role};
use ecomdrive_runtime::client::ClientInfo;
use ecomdrive_runtime::problem::{FieldError, JsonBody};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn to_field_errors(errors: Vec<ecomdrive_core::merchant::FieldError>) -> ApiError {
    ApiError::Invalid(
        errors
            .into_iter()
            .map(|e| FieldError::new(e.field, e.reason))
            .collect(),
    )
}

#[derive(Serialize)]
pub struct MerchantView {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub gstin: Option<String>,
    pub created_at: String,
    pub role: Option<Role>,
}

impl MerchantView {
    fn of(m: Merchant, role: Option<Role>) -> Self {
        MerchantView {
            id: m.id.to_string(),
            name: m.name,
            phone: m.phone,
            gstin: m.gstin,
            created_at: crate::rfc3339(m.created_at),
            role,
        }
    }
}

/// The user's merchants and their role in each, but those being deleted: such a merchant is gone
/// for its members from the request on (410 on its routes), though the job deletes their
/// memberships only last.
async fn live_merchants_of(state: &AppState, user: &UserId) -> ApiResult<Vec<(MerchantId, Role)>> {
    let mut live = Vec::new();
    for (id, role) in state.store.merchants_of(user).await? {
        if state.store.merchant_deletion(&id).await?.is_none() {
            live.push((id, role));
        }
    }
    Ok(live)
}

#[utoipa::path(get, path = "/v1/me", tag = "users", responses((status = 200, description = "The signed-in user and their merchants")))]
pub async fn me(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Value>> {
    let merchants = live_merchants_of(&state, &user.id).await?;
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "merchants": merchants.iter().map(|(m, r)| json!({"id": m, "role": r})).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewMerchant {
    /// The business name.
    name: String,
    /// International form, e.g. `+91 98765 43210`.
    phone: Option<String>,
    /// Indian GST identification number, checked with its check digit.
    gstin: Option<String>,
}

#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", request_body = NewMerchant, responses((status = 201, description = "Created; the caller is its owner"), (status = 422, description = "Invalid fields")))]
pub async fn create_merchant(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientInfo,
    JsonBody(body): JsonBody<NewMerchant>,
) -> ApiResult<(StatusCode, Json<MerchantView>)> {
    let profile =
        MerchantProfile::validate(&body.name, body.phone.as_deref(), body.gstin.as_deref())
            .map_err(to_field_errors)?;
    let merchant = state.store.create_merchant(&user, profile).await?;
    state
        .store
        .audit(
            &merchant.id,
            &Actor::User {
                id: user.id.clone(),
                ip: client.ip,
                user_agent: client.user_agent,
            },
            "merchant.create",
            None,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(MerchantView::of(merchant, Some(Role::Owner))),
    ))
}

#[utoipa::path(get, path = "/v1/merchants", tag = "merchants", responses((status = 200, description = "The caller's merchants")))]
pub async fn list_merchants(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Value>> {
    let mut items = Vec::new();
    for (id, role) in live_merchants_of(&state, &user.id).await? {
        if let Some(m) = state.store.merchant(&id).await? {
            items.push(MerchantView::of(m, Some(role)));
        }
    }
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}", tag = "merchants", params(("merchant_id" = String, Path)), responses((status = 200, description = "The merchant"), (status = 404, description = "Unknown, or not a member")))]
pub async fn get_merchant(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<Json<MerchantView>> {
    member.require(Action::ReadMerchant)?;
    let m = state
        .store
        .merchant(&member.merchant)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(MerchantView::of(m, Some(member.role))))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MerchantPatch {
    name: Option<String>,
    #[serde(default, with = "crate::double_option")]
    phone: Option<Option<String>>,
    #[serde(default, with = "crate::double_option")]
    gstin: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/v1/merchants/{merchant_id}", tag = "merchants", params(("merchant_id" = String, Path)), request_body = MerchantPatch, responses((status = 200, description = "Updated"), (status = 422, description = "Invalid fields")))]
pub async fn update_merchant(
    State(state): State<AppState>,
    member: Member,
    JsonBody(patch): JsonBody<MerchantPatch>,
) -> ApiResult<Json<MerchantView>> {
    member.require(Action::UpdateMerchant)?;
    let mut m = state
        .store
        .merchant(&member.merchant)
        .await?
        .ok_or(ApiError::NotFound)?;
    let name = patch.name.unwrap_or_else(|| m.name.clone());
    let phone = patch.phone.unwrap_or_else(|| m.phone.clone());
    let gstin = patch.gstin.unwrap_or_else(|| m.gstin.clone());
    let profile = MerchantProfile::validate(&name, phone.as_deref(), gstin.as_deref())
        .map_err(to_field_errors)?;
    m.name = profile.name;
    m.phone = profile.phone;
    m.gstin = profile.gstin;
    state.store.update_merchant(&m).await?;
    member.audit(&state, "merchant.update", None).await?;
    Ok(Json(MerchantView::of(m, Some(member.role))))
}

#[derive(Serialize)]
pub struct MemberView {
    user_id: Option<UserId>,
    email: Option<String>,
    role: Role,
    status: ecomdrive_aws::store::members::MembershipStatus,
}

impl From<Membership> for MemberView {
    fn from(m: Membership) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            status: m.status,
        }
    }
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/members", tag = "members", params(("merchant_id" = String, Path)), responses((status = 200, description = "Members and pending invitations")))]
pub async fn list_members(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadMembers)?;
    let items: Vec<MemberView> = state
        .store
        .members(&member.merchant)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Invitation {
    /// The invitee's e-mail; the membership is pending until they sign in with it.
    email: String,
    /// `owner`, `admin` or `agent`.
    role: String,
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/members", tag = "members", params(("merchant_id" = String, Path)), request_body = Invitation, responses((status = 201, description = "Invited; pending until the user's next request"), (status = 409, description = "Already a member or invited")))]
pub async fn invite_member(
    State(state): State<AppState>,
    member: Member,
    JsonBody(body): JsonBody<Invitation>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    member.require(Action::ManageMembers)?;
    let mut errors = Vec::new();
    let email = normalize_email(&body.email)
        .map_err(|e| errors.push(FieldError::new("email", e)))
        .ok();
    let role = Role::parse(&body.role);
    if role.is_none() {
        errors.push(FieldError::new("role", "one of owner, admin, agent"));
    }
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::Invalid(errors));
    };
    if role == Role::Owner {
        member.require(Action::ChangeOwners)?;
    }
    let invitation = state.store.invite(&member.merchant, &email, role).await?;
    member
        .audit(&state, "member.invite", Some(role.as_str()))
        .await?;
    Ok((StatusCode::CREATED, Json(invitation.into())))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RoleChange {
    role: String,
}

/// The other owner changed meanwhile (two owners stepping down at once): one of them must stay.
fn last_owner_race(e: ecomdrive_aws::AwsError) -> ApiError {
    match e {
        ecomdrive_aws::AwsError::Conflict(_) => {
            ApiError::conflict("last-owner", "a merchant keeps at least one owner")
        }
        other => other.into(),
    }
}

/// Another active owner than `leaving`: the one who must still be an owner when `leaving` stops
/// being one. None means `leaving` is the last owner.
async fn other_owner(state: &AppState, member: &Member, leaving: &UserId) -> ApiResult<UserId> {
    state
        .store
        .members(&member.merchant)
        .await?
        .into_iter()
        .filter(|m| m.role == Role::Owner)
        .filter_map(|m| m.user_id)
        .find(|u| u != leaving)
        .ok_or_else(|| ApiError::conflict("last-owner", "a merchant keeps at least one owner"))
}

#[utoipa::path(patch, path = "/v1/merchants/{merchant_id}/members/{user_id}", tag = "members", params(("merchant_id" = String, Path), ("user_id" = String, Path)), request_body = RoleChange, responses((status = 200, description = "Role changed")))]
pub async fn change_role(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(body): JsonBody<RoleChange>,
) -> ApiResult<Json<MemberView>> {
    let user_id = path.1;
    member.require(Action::ManageMembers)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::invalid("role", "one of owner, admin, agent"))?;
    let user = UserId::parse(&user_id).ok_or(ApiError::NotFound)?;
    let current = state
        .store
        .membership(&member.merchant, &user)
        .await?
        .ok_or(ApiError::NotFound)?;
    if role == Role::Owner || current.role == Role::Owner {
        member.require(Action::ChangeOwners)?;
    }
    let keep = if current.role == Role::Owner && role != Role::Owner {
        Some(other_owner(&state, &member, &user).await?)
    } else {
        None
    };
    state
        .store
        .set_role(&member.merchant, &user, role, keep.as_ref())
        .await
        .map_err(last_owner_race)?;
    member
        .audit(&state, "member.role", Some(user.as_str()))
        .await?;
    let updated = state
        .store
        .membership(&member.merchant, &user)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/merchants/{merchant_id}/members/{user_id}", tag = "members", params(("merchant_id" = String, Path), ("user_id" = String, Path)), responses((status = 204, description = "Removed")))]
pub async fn remove_member(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let user_id = path.1;
    member.require(Action::ManageMembers)?;
    let user = UserId::parse(&user_id).ok_or(ApiError::NotFound)?;
    let current = state
        .store
        .membership(&member.merchant, &user)
        .await?
        .ok_or(ApiError::NotFound)?;
    let keep = if current.role == Role::Owner {
        member.require(Action::ChangeOwners)?;
        Some(other_owner(&state, &member, &user).await?)
    } else {
        None
    };
    state
        .store
        .remove_member(&member.merchant, &user, keep.as_ref())
        .await
        .map_err(last_owner_race)?;
    // Their Facebook authorization goes with them: nobody may pick Pages with their token.
    if let Some(auth) = state
        .store
        .messenger_authorization(&member.merchant)
        .await?
        && auth.authorized_by == user
    {
        state
            .store
            .delete_messenger_authorization(&member.merchant)
            .await?;
    }
    member
        .audit(&state, "member.remove", Some(user.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/audit", tag = "audit", params(("merchant_id" = String, Path)), responses((status = 200, description = "Recent audit records")))]
pub async fn audit_log(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadAudit)?;
    let items: Vec<AuditRecord> = state.store.audit_log(&member.merchant, 500).await?;
    Ok(Json(json!({ "items": items })))
}
