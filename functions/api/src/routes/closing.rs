//! Closing an account (POLICY A20): the owner closes it without deleting it; the retention
//! sweeper asks for its deletion [`retention::CLOSED_MERCHANT`] later unless it is reopened
//! first. Until then nothing changes for the merchant's data: it reads, and can be exported, as
//! before.
//!
//! Closing is a deletion on a delay and reopening cancels it, so both take the authority of
//! deleting the merchant ([`Action::DeleteMerchant`]: owners only).

use crate::AppState;
use crate::auth::Member;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use ecomdrive_aws::store::members::Merchant;
use ecomdrive_core::retention;
use ecomdrive_core::role::Action;
use serde::Serialize;
use time::OffsetDateTime;

/// Whether the account is closed, and when its deletion falls due.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClosingView {
    /// When the owner closed the account; `null` when it is open.
    pub closed_at: Option<String>,
    /// When the retention sweeper asks for its deletion; `null` when it is open.
    pub deletion_due_at: Option<String>,
}

impl ClosingView {
    fn of(m: &Merchant) -> Self {
        ClosingView {
            closed_at: m.closed_at.map(crate::rfc3339),
            deletion_due_at: m
                .closed_at
                .map(|at| crate::rfc3339(retention::CLOSED_MERCHANT.end(at))),
        }
    }
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/close", tag = "merchants", params(("merchant_id" = String, Path)), responses((status = 200, description = "Closed: deleted 90 days later unless reopened (closing again keeps the first date)", body = ClosingView), (status = 403, description = "Not the owner")))]
pub async fn close_merchant(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<Json<ClosingView>> {
    member.require(Action::DeleteMerchant)?;
    let merchant = state
        .store
        .close_merchant(&member.merchant, OffsetDateTime::now_utc())
        .await?;
    member.audit(&state, "merchant.close", None).await?;
    Ok(Json(ClosingView::of(&merchant)))
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/reopen", tag = "merchants", params(("merchant_id" = String, Path)), responses((status = 200, description = "Open again: no deletion is due", body = ClosingView), (status = 403, description = "Not the owner")))]
pub async fn reopen_merchant(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<Json<ClosingView>> {
    member.require(Action::DeleteMerchant)?;
    let merchant = state.store.reopen_merchant(&member.merchant).await?;
    member.audit(&state, "merchant.reopen", None).await?;
    Ok(Json(ClosingView::of(&merchant)))
}
