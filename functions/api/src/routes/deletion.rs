//! Deleting a merchant, or one customer of it (POLICY A19, E15, A11).
//!
//! Both answer 202 with the deletion's confirmation code and where its status can be followed
//! (the public status page of `data-deletion`); the `data-deletion` job carries the deletion out,
//! well inside the policy's 30 days.
//!
//! There is **no cancel window**: a merchant deletion starts at once. The platform tokens are
//! deleted during the request (they cannot be given back), and from then on every route of the
//! merchant answers 410 Gone (see [`crate::auth::Member`]). An owner who only wants to stop for a
//! while closes the account instead (retention deletes a closed merchant 90 days later).

use crate::AppState;
use crate::auth::{Member, MemberRejection, MerchantAccess};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecomdrive_aws::store::deletions::DELETION_JOB_KIND;
use ecomdrive_core::data_rights::{DeletionChannel, DeletionJob, DeletionReceipt};
use ecomdrive_core::ids::CustomerId;
use ecomdrive_core::role::{Action, allows};
use ecomdrive_runtime::secrets::PageUnsubscriber;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// What a deletion request answers: its confirmation code, where to follow it, its deadline.
fn accepted(state: &AppState, r: &DeletionReceipt) -> (StatusCode, Json<Value>) {
    let base = state.config.public_base_url.trim_end_matches('/');
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "confirmation_code": r.id,
            "status": r.status,
            "status_url": format!("{base}/data-deletion/status/{}", r.id),
            "due_by": crate::rfc3339(r.due_by),
        })),
    )
}

async fn queue(state: &AppState, r: &DeletionReceipt) -> ApiResult<()> {
    state
        .deletions
        .send_json(
            DELETION_JOB_KIND,
            &DeletionJob {
                deletion_id: r.id.clone(),
            },
        )
        .await
        .map_err(ApiError::internal)
}

/// Deletes the merchant and everything it holds (owner only). The deletion is recorded on its
/// receipt (the merchant's audit log goes with its data), tokens are deleted during the request,
/// the data by the job. Asking again while the deletion is under way answers the same deletion.
#[utoipa::path(delete, path = "/v1/merchants/{merchant_id}", tag = "merchants", params(("merchant_id" = String, Path)), responses((status = 202, description = "`{confirmation_code, status, status_url, due_by}`: the deletion started; tokens are already deleted"), (status = 403, description = "Only an owner deletes the merchant"), (status = 410, description = "The merchant is deleted, or being deleted (an owner asking again gets 202 and the same deletion while the job has not removed their membership)")))]
pub async fn delete_merchant(
    State(state): State<AppState>,
    access: MerchantAccess,
) -> Result<(StatusCode, Json<Value>), MemberRejection> {
    // No membership left: the job has already deleted the merchant's data.
    let Some(member) = access.member else {
        return Err(MemberRejection::Gone);
    };
    // Once the deletion is asked for, only an owner's repeat is answered (with that deletion);
    // anyone else gets 410 like on every other route, whether or not the running job has reached
    // their membership yet.
    if access.deletion.is_some() && !allows(member.role, Action::DeleteMerchant) {
        return Err(MemberRejection::Gone);
    }
    member.require(Action::DeleteMerchant)?;
    let m = &member.merchant;
    let asked = state
        .store
        .request_merchant_deletion(m, DeletionChannel::Api, OffsetDateTime::now_utc())
        .await?;
    // Again on a repeat: a request that failed half-way is finished by asking again. Each Page is
    // unsubscribed at Meta first (Amazon has no revocation API).
    let pages = PageUnsubscriber::connect(&state.config.meta, &state.http, &state.secrets).await;
    state
        .store
        .forget_merchant_tokens(m, &state.vault, |page, token| {
            pages.unsubscribe(page, token)
        })
        .await?;
    queue(&state, &asked.receipt).await?;
    // Who asked, kept in the logs: the merchant's audit log is about to be deleted.
    tracing::info!(
        action = "merchant.delete",
        merchant = %m,
        user = %member.id(),
        ip = member.client.ip.as_deref().unwrap_or(""),
        deletion = %asked.receipt.id,
        new = asked.created,
        "merchant deletion asked"
    );
    Ok(accepted(&state, &asked.receipt))
}

/// Deletes one customer of the merchant on their request (owner or admin): the customer, their
/// conversations, messages and attachments. The audit record names the deletion, never the
/// customer (their id is being erased).
#[utoipa::path(delete, path = "/v1/merchants/{merchant_id}/customers/{customer_id}", tag = "customers", params(("merchant_id" = String, Path), ("customer_id" = String, Path)), responses((status = 202, description = "`{confirmation_code, status, status_url, due_by}`: the deletion started"), (status = 403, description = "Owners and admins only"), (status = 404, description = "No such customer")))]
pub async fn delete_customer(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    member.require(Action::DeleteCustomer)?;
    let m = &member.merchant;
    let customer = CustomerId::parse(&path.1).ok_or(ApiError::NotFound)?;
    if state.store.customer(m, &customer).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let receipt = state
        .store
        .request_customer_deletion(
            m,
            &customer,
            DeletionChannel::Api,
            OffsetDateTime::now_utc(),
        )
        .await?;
    queue(&state, &receipt).await?;
    member
        .audit(&state, "customer.delete", Some(receipt.id.as_str()))
        .await?;
    Ok(accepted(&state, &receipt))
}
