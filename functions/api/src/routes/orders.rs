//! Amazon orders (POLICY A10, E9) and their review requests (POLICY A7): the order list, one
//! order with its links and request status, the merchant's marks, the per-order request list,
//! the dashboard's counts and the settings.

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use crate::routes::inbox::{conversation_id, limit};
use axum::Json;
use axum::extract::{Path, Query, State};
use ecomdrive_aws::store::amazon::{OrderFilter, Solicitation};
use ecomdrive_core::amazon::AmazonOrderId;
use ecomdrive_core::amazon::marketplace::INDIA;
use ecomdrive_core::amazon::order::{Order, OrderMarks};
use ecomdrive_core::amazon::solicitation::{SolicitationSettings, SolicitationStatus};
use ecomdrive_core::role::Action;
use ecomdrive_runtime::problem::JsonBody;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::Date;

/// The longest period the dashboard counts over at once.
const MAX_SUMMARY_DAYS: i64 = 366;

fn order_id(raw: &str) -> ApiResult<AmazonOrderId> {
    AmazonOrderId::parse(raw).ok_or(ApiError::NotFound)
}

fn order_view(o: &Order, solicitation: Option<&Solicitation>) -> Value {
    let f = &o.facts;
    json!({
        "order_id": f.order_id,
        "marketplace_id": f.marketplace_id,
        "status": f.status,
        "fulfillment_channel": f.fulfillment_channel,
        "purchase_date": crate::rfc3339(f.purchase_date),
        "last_update_date": crate::rfc3339(f.last_update_date),
        "earliest_delivery_date": f.earliest_delivery_date.map(crate::rfc3339),
        "latest_delivery_date": f.latest_delivery_date.map(crate::rfc3339),
        "is_replacement_order": f.is_replacement_order,
        "replaced_order_id": f.replaced_order_id,
        "total": f.total.as_ref().map(|t| json!({"currency": t.currency, "amount": t.amount.to_string()})),
        "items": o.items,
        "do_not_solicit": o.marks.do_not_solicit,
        "refunded_or_returned": o.marks.refunded_or_returned,
        "conversation_ids": o.conversation_ids,
        "customer_ids": o.customer_ids,
        "solicitation": solicitation.map(solicitation_view),
    })
}

fn solicitation_view(s: &Solicitation) -> Value {
    json!({
        "order_id": s.order_id,
        "marketplace_id": s.marketplace_id,
        "status": s.status,
        "reason": s.reason,
        "day": s.day.map(|d| d.to_string()),
        "sent_at": s.sent_at.map(crate::rfc3339),
        "updated_at": crate::rfc3339(s.updated_at),
    })
}

#[derive(Deserialize)]
pub struct OrderQuery {
    cursor: Option<String>,
    limit: Option<String>,
    status: Option<String>,
    marketplace_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/orders", tag = "orders", params(("merchant_id" = String, Path), ("status" = Option<String>, Query), ("marketplace_id" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<i32>, Query)), responses((status = 200, description = "Most recent purchase first")))]
pub async fn list_orders(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<OrderQuery>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadOrders)?;
    let filter = OrderFilter {
        status: q.status,
        marketplace_id: q.marketplace_id,
    };
    let page = state
        .store
        .list_orders(
            &member.merchant,
            &filter,
            q.cursor.as_deref(),
            limit(q.limit.as_deref())?,
        )
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(|o| order_view(o, None)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/orders/{order_id}", tag = "orders", params(("merchant_id" = String, Path), ("order_id" = String, Path)), responses((status = 200, description = "The order, its links and its review request")))]
pub async fn get_order(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadOrders)?;
    let id = order_id(&path.1)?;
    let order = state
        .store
        .order(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let s = state.store.solicitation(&member.merchant, &id).await?;
    Ok(Json(order_view(&order, s.as_ref())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderUpdate {
    /// Never ask this order's buyer for a review.
    do_not_solicit: Option<bool>,
    refunded_or_returned: Option<bool>,
}

#[utoipa::path(patch, path = "/v1/merchants/{merchant_id}/orders/{order_id}", tag = "orders", params(("merchant_id" = String, Path), ("order_id" = String, Path)), request_body = OrderUpdate, responses((status = 200, description = "The order with its marks")))]
pub async fn update_order(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(body): JsonBody<OrderUpdate>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ManageSolicitations)?;
    let id = order_id(&path.1)?;
    let order = state
        .store
        .order(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let marks = OrderMarks {
        do_not_solicit: body.do_not_solicit.unwrap_or(order.marks.do_not_solicit),
        refunded_or_returned: body
            .refunded_or_returned
            .unwrap_or(order.marks.refunded_or_returned),
    };
    let order = state
        .store
        .set_order_marks(&member.merchant, &id, &marks)
        .await?;
    member
        .audit(&state, "order.update", Some(id.as_str()))
        .await?;
    let s = state.store.solicitation(&member.merchant, &id).await?;
    Ok(Json(order_view(&order, s.as_ref())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationLink {
    conversation_id: String,
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/orders/{order_id}/conversations", tag = "orders", params(("merchant_id" = String, Path), ("order_id" = String, Path)), request_body = ConversationLink, responses((status = 200, description = "Linked; the link shows on the order, the conversation and its customer")))]
pub async fn link_conversation(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(body): JsonBody<ConversationLink>,
) -> ApiResult<Json<Value>> {
    member.require(Action::WorkConversations)?;
    let id = order_id(&path.1)?;
    let conv_id = conversation_id(&body.conversation_id)
        .map_err(|_| ApiError::invalid("conversation_id", "not a conversation id"))?;
    if state.store.order(&member.merchant, &id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let conv = state
        .store
        .link_order(&member.merchant, &conv_id, id.as_str())
        .await?;
    link_order_side(&state, &member, &id, &conv).await?;
    let order = state
        .store
        .order(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    member
        .audit(&state, "order.link_conversation", Some(id.as_str()))
        .await?;
    Ok(Json(order_view(&order, None)))
}

/// POLICY E9: the order shows the conversation and its customer (when the order is synced).
pub(crate) async fn link_order_side(
    state: &AppState,
    member: &Member,
    id: &AmazonOrderId,
    conv: &ecomdrive_core::inbox::Conversation,
) -> ApiResult<()> {
    Ok(state
        .store
        .link_order_to_conversation(&member.merchant, id, &conv.id, &conv.customer_id)
        .await?)
}

#[derive(Deserialize)]
pub struct SolicitationQuery {
    cursor: Option<String>,
    limit: Option<String>,
    status: Option<String>,
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/solicitations", tag = "solicitations", params(("merchant_id" = String, Path), ("status" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<i32>, Query)), responses((status = 200, description = "Each order's review request: status, reason, day")))]
pub async fn list_solicitations(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<SolicitationQuery>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadOrders)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            SolicitationStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "unknown status"))
        })
        .transpose()?;
    let page = state
        .store
        .list_solicitations(
            &member.merchant,
            status,
            q.cursor.as_deref(),
            limit(q.limit.as_deref())?,
        )
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(solicitation_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

#[derive(Deserialize)]
pub struct SummaryQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A `YYYY-MM-DD` query parameter, or `default` when it is absent.
fn day(field: &str, raw: Option<&str>, default: Date) -> ApiResult<Date> {
    raw.map(|raw| {
        Date::parse(
            raw,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| ApiError::invalid(field, "a date as YYYY-MM-DD"))
    })
    .unwrap_or(Ok(default))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/solicitations/summary", tag = "solicitations", params(("merchant_id" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query)), responses((status = 200, description = "Counts per status per day and marketplace over [from, to] (default: 30 days either side of today)")))]
pub async fn summary(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadOrders)?;
    // By default the 30 days before and after today (India's calendar): what was sent and what
    // is coming.
    let today = INDIA.local_date(time::OffsetDateTime::now_utc());
    let from = day("from", q.from.as_deref(), today - time::Duration::days(30))?;
    let to = day("to", q.to.as_deref(), today + time::Duration::days(30))?;
    if to < from || (to - from).whole_days() > MAX_SUMMARY_DAYS {
        return Err(ApiError::invalid(
            "to",
            "on or after `from`, at most a year later",
        ));
    }
    let mut counts: BTreeMap<(Date, String), BTreeMap<&'static str, u64>> = BTreeMap::new();
    for s in state.store.all_solicitations(&member.merchant).await? {
        let Some(d) = s.day.filter(|d| (from..=to).contains(d)) else {
            continue;
        };
        *counts
            .entry((d, s.marketplace_id))
            .or_default()
            .entry(s.status.as_str())
            .or_default() += 1;
    }
    Ok(Json(json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "items": counts.into_iter().map(|((d, mp), c)| json!({
            "day": d.to_string(),
            "marketplace_id": mp,
            "counts": c,
        })).collect::<Vec<_>>(),
    })))
}

fn settings_view(s: &SolicitationSettings) -> Value {
    serde_json::to_value(s).unwrap_or_default()
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/solicitations/settings", tag = "solicitations", params(("merchant_id" = String, Path)), responses((status = 200, description = "The settings (requests are off until turned on)")))]
pub async fn get_settings(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadOrders)?;
    Ok(Json(settings_view(
        &state.store.solicitation_settings(&member.merchant).await?,
    )))
}

#[utoipa::path(put, path = "/v1/merchants/{merchant_id}/solicitations/settings", tag = "solicitations", params(("merchant_id" = String, Path)), responses((status = 200, description = "The settings as saved"), (status = 422, description = "Invalid settings")))]
pub async fn put_settings(
    State(state): State<AppState>,
    member: Member,
    JsonBody(body): JsonBody<SolicitationSettings>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ManageSolicitations)?;
    body.validate().map_err(|e| {
        let field = match e {
            ecomdrive_core::amazon::solicitation::SettingsError::SendOnDay => "send_on_day",
            ecomdrive_core::amazon::solicitation::SettingsError::Marketplace(_) => "marketplaces",
            ecomdrive_core::amazon::solicitation::SettingsError::TooManyExclusions => "exclusions",
        };
        ApiError::invalid(field, e.to_string())
    })?;
    state
        .store
        .save_solicitation_settings(&member.merchant, &body)
        .await?;
    member.audit(&state, "solicitations.settings", None).await?;
    Ok(Json(settings_view(&body)))
}
