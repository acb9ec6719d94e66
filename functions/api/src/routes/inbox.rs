//! The inbox: conversations, messages, replies and customers (POLICY E5, E7, E8, E9, E12).

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ecomdrive_aws::store::inbox::{ConversationFilter, CustomerView};
use ecomdrive_aws::store::rate_limit::RateDecision;
use ecomdrive_core::ids::{ConversationId, CustomerId, UserId};
use ecomdrive_core::inbox::{
    Conversation, ConversationStatus, Message, MessageStatus, REPLY_KIND, ReplyJob,
    validate_client_id, validate_reply_text,
};
use ecomdrive_core::merchant::{normalize_email, validate_phone};
use ecomdrive_core::messaging_window::{WindowClosed, reply_mode};
use ecomdrive_core::role::Action;
use ecomdrive_runtime::problem::{FieldError, JsonBody};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Replies one conversation may take per minute, and one merchant (all agents) per minute.
pub const REPLIES_PER_CONVERSATION_PER_MINUTE: u32 = 20;
pub const REPLIES_PER_MERCHANT_PER_MINUTE: u32 = 300;
const DEFAULT_PAGE: i32 = 25;
const MAX_PAGE: i32 = 100;

#[derive(Deserialize)]
pub struct Paging {
    cursor: Option<String>,
    limit: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
}

pub(crate) fn limit(raw: Option<&str>) -> ApiResult<i32> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(l) => l
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit is a number from 1 to {MAX_PAGE}"))),
    }
}

fn conversation_view(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "channel": c.channel,
        "status": c.status,
        "assignee": c.assignee,
        "customer": { "id": c.customer_id, "psid": c.psid, "page_id": c.page_id },
        "page_id": c.page_id,
        "order_refs": c.order_refs,
        "created_at": crate::rfc3339(c.created_at),
        "last_activity_at": crate::rfc3339(c.last_activity_at),
        "last_customer_message_at": c.last_customer_message_at.map(crate::rfc3339),
        "reply_window": match reply_mode(c.last_customer_message_at, OffsetDateTime::now_utc()) {
            Ok(mode) => mode.messaging_type().to_lowercase(),
            Err(_) => "closed".into(),
        },
    })
}

fn message_view(m: &Message) -> Value {
    json!({
        "id": m.id,
        "conversation_id": m.conversation_id,
        "direction": m.direction,
        "text": m.text,
        "status": m.status,
        "attachments": m.attachments.iter().map(|a| json!({
            "kind": a.kind, "state": a.state, "size": a.size, "content_type": a.content_type,
        })).collect::<Vec<_>>(),
        "author": m.author,
        "postback_payload": m.postback_payload,
        "reaction": m.reaction,
        "error": m.error,
        "created_at": crate::rfc3339(m.created_at),
    })
}

pub(crate) fn conversation_id(raw: &str) -> ApiResult<ConversationId> {
    ConversationId::parse(raw).ok_or(ApiError::NotFound)
}

async fn load_conversation(
    state: &AppState,
    member: &Member,
    raw: &str,
) -> ApiResult<Conversation> {
    let id = conversation_id(raw)?;
    state
        .store
        .conversation(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/conversations", tag = "inbox", params(("merchant_id" = String, Path), ("status" = Option<String>, Query), ("assignee" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<i32>, Query)), responses((status = 200, description = "Most recent activity first")))]
pub async fn list_conversations(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<Paging>,
) -> ApiResult<Json<Value>> {
    member.require(Action::WorkConversations)?;
    let filter = ConversationFilter {
        status: q
            .status
            .as_deref()
            .map(|s| {
                ConversationStatus::parse(s).ok_or_else(|| {
                    ApiError::BadRequest("status is open, pending, resolved or snoozed".into())
                })
            })
            .transpose()?,
        assignee: q
            .assignee
            .as_deref()
            .map(|a| {
                UserId::parse(a).ok_or_else(|| ApiError::BadRequest("invalid assignee".into()))
            })
            .transpose()?,
    };
    let page = state
        .store
        .list_conversations(
            &member.merchant,
            &filter,
            q.cursor.as_deref(),
            limit(q.limit.as_deref())?,
        )
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(conversation_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/conversations/{conversation_id}", tag = "inbox", params(("merchant_id" = String, Path), ("conversation_id" = String, Path)), responses((status = 200, description = "The conversation")))]
pub async fn get_conversation(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = path.1;
    member.require(Action::WorkConversations)?;
    Ok(Json(conversation_view(
        &load_conversation(&state, &member, &id).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConversationPatch {
    status: Option<String>,
    #[serde(default, with = "crate::double_option")]
    assignee: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/v1/merchants/{merchant_id}/conversations/{conversation_id}", tag = "inbox", params(("merchant_id" = String, Path), ("conversation_id" = String, Path)), request_body = ConversationPatch, responses((status = 200, description = "Updated")))]
pub async fn update_conversation(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(patch): JsonBody<ConversationPatch>,
) -> ApiResult<Json<Value>> {
    let id = path.1;
    member.require(Action::WorkConversations)?;
    let id = conversation_id(&id)?;
    let status = patch
        .status
        .as_deref()
        .map(|s| {
            ConversationStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "open, pending, resolved or snoozed"))
        })
        .transpose()?;
    let assignee = match patch.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => {
            let user =
                UserId::parse(&a).ok_or_else(|| ApiError::invalid("assignee", "not a member"))?;
            if state
                .store
                .membership(&member.merchant, &user)
                .await?
                .is_none()
            {
                return Err(ApiError::invalid("assignee", "not a member"));
            }
            Some(Some(user))
        }
    };
    let conv = state
        .store
        .update_conversation(&member.merchant, &id, status, assignee)
        .await?;
    member
        .audit(&state, "conversation.update", Some(id.as_str()))
        .await?;
    Ok(Json(conversation_view(&conv)))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/conversations/{conversation_id}/messages", tag = "inbox", params(("merchant_id" = String, Path), ("conversation_id" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<i32>, Query)), responses((status = 200, description = "Oldest first")))]
pub async fn list_messages(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    Query(q): Query<Paging>,
) -> ApiResult<Json<Value>> {
    let id = path.1;
    member.require(Action::WorkConversations)?;
    let conv = load_conversation(&state, &member, &id).await?;
    let page = state
        .store
        .list_messages(
            &member.merchant,
            &conv.id,
            q.cursor.as_deref(),
            limit(q.limit.as_deref())?,
        )
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(message_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewReply {
    /// What the customer reads: 1 to 2000 characters.
    text: String,
    /// The client's idempotency key: the same key again answers with the same reply.
    client_id: String,
}

async fn rate_limited(state: &AppState, member: &Member, scope: &str, limit: u32) -> ApiResult<()> {
    match state
        .store
        .rate_limit(
            &member.merchant,
            scope,
            limit,
            60,
            OffsetDateTime::now_utc(),
        )
        .await?
    {
        RateDecision::Allowed => Ok(()),
        RateDecision::Limited { retry_after_secs } => {
            Err(ApiError::RateLimited { retry_after_secs })
        }
    }
}

/// Queues an agent's reply. Only to a customer who wrote first, inside Meta's window (POLICY E12);
/// the same `client_id` again answers with the same reply and sends nothing new.
#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/conversations/{conversation_id}/replies", tag = "inbox", params(("merchant_id" = String, Path), ("conversation_id" = String, Path)), request_body = NewReply, responses((status = 202, description = "Queued"), (status = 409, description = "Outside the messaging window"), (status = 429, description = "Too many replies")))]
pub async fn create_reply(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(body): JsonBody<NewReply>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = path.1;
    member.require(Action::SendReplies)?;
    let mut errors = Vec::new();
    let text = validate_reply_text(&body.text)
        .map_err(|e| errors.push(FieldError::new("text", e)))
        .ok();
    let client_id = validate_client_id(&body.client_id)
        .map_err(|e| errors.push(FieldError::new("client_id", e)))
        .ok();
    let (Some(text), Some(client_id)) = (text, client_id) else {
        return Err(ApiError::Invalid(errors));
    };
    let conv = load_conversation(&state, &member, &id).await?;
    // A repeated request (the client retrying after a lost answer) gets the reply it made,
    // without counting against the rate limits or the window a second time.
    if let Some(existing) = state.store.reply_for_client_id(&conv, client_id).await? {
        queue_if_waiting(&state, &existing).await?;
        return Ok((StatusCode::ACCEPTED, Json(message_view(&existing))));
    }
    if let Err(closed) = reply_mode(conv.last_customer_message_at, OffsetDateTime::now_utc()) {
        return Err(ApiError::OutsideWindow(match closed {
            WindowClosed::NeverWrote => "the customer has not written to this Page".into(),
            WindowClosed::Expired => "more than 7 days since the customer's last message".into(),
        }));
    }
    rate_limited(
        &state,
        &member,
        &format!("replies#{}", conv.id),
        REPLIES_PER_CONVERSATION_PER_MINUTE,
    )
    .await?;
    rate_limited(&state, &member, "replies", REPLIES_PER_MERCHANT_PER_MINUTE).await?;
    let (reply, created) = state
        .store
        .create_reply(&conv, client_id, text, member.id())
        .await?;
    queue_if_waiting(&state, &reply).await?;
    if created {
        member
            .audit(&state, "reply.create", Some(reply.id.as_str()))
            .await?;
    }
    Ok((StatusCode::ACCEPTED, Json(message_view(&reply))))
}

/// Puts a queued reply's job on the replies queue. Also for a repeated request: if the first
/// enqueue failed, this one delivers the job; agent-reply sends a reply at most once however often
/// its job arrives.
async fn queue_if_waiting(state: &AppState, reply: &Message) -> ApiResult<()> {
    if reply.status != MessageStatus::Queued {
        return Ok(());
    }
    let job = ReplyJob {
        merchant_id: reply.merchant_id.clone(),
        conversation_id: reply.conversation_id.clone(),
        message_id: reply.id.clone(),
    };
    state
        .replies
        .send_json(REPLY_KIND, &job)
        .await
        .map_err(ApiError::internal)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OrderLink {
    /// An order reference, e.g. Amazon's `402-1234567-1234567`.
    order_ref: String,
}

/// An order reference: Amazon's `123-1234567-1234567` or another shop's short printable id.
fn validate_order_ref(raw: &str) -> Result<&str, &'static str> {
    let r = raw.trim();
    let ok = (1..=64).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(r)
        .ok_or("an order reference is 1 to 64 letters, digits, - or _")
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/conversations/{conversation_id}/orders", tag = "inbox", params(("merchant_id" = String, Path), ("conversation_id" = String, Path)), request_body = OrderLink, responses((status = 200, description = "Linked; shows on the conversation and its customer")))]
pub async fn link_order(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(body): JsonBody<OrderLink>,
) -> ApiResult<Json<Value>> {
    let id = path.1;
    member.require(Action::WorkConversations)?;
    let order_ref =
        validate_order_ref(&body.order_ref).map_err(|e| ApiError::invalid("order_ref", e))?;
    let id = conversation_id(&id)?;
    let conv = state
        .store
        .link_order(&member.merchant, &id, order_ref)
        .await?;
    // An Amazon order shows the link too (POLICY E9), also one order sync has not seen yet.
    if let Some(order_id) = ecomdrive_core::amazon::AmazonOrderId::parse(order_ref) {
        crate::routes::orders::link_order_side(&state, &member, &order_id, &conv).await?;
    }
    member
        .audit(&state, "conversation.link_order", Some(id.as_str()))
        .await?;
    Ok(Json(conversation_view(&conv)))
}

fn customer_view(c: &CustomerView) -> Value {
    json!({
        "id": c.customer.id,
        "channel": c.customer.channel,
        "page_id": c.customer.page_id,
        "psid": c.customer.psid,
        "name": c.customer.name,
        "email": c.customer.email,
        "phone": c.customer.phone,
        "notes": c.customer.notes,
        "current_conversation_id": c.current_conversation_id,
        "order_refs": c.order_refs,
        "created_at": crate::rfc3339(c.customer.created_at),
    })
}

fn customer_id(raw: &str) -> ApiResult<CustomerId> {
    CustomerId::parse(raw).ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/customers/{customer_id}", tag = "customers", params(("merchant_id" = String, Path), ("customer_id" = String, Path)), responses((status = 200, description = "The customer")))]
pub async fn get_customer(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = path.1;
    member.require(Action::WorkCustomers)?;
    let c = state
        .store
        .customer(&member.merchant, &customer_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(customer_view(&c)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CustomerPatch {
    #[serde(default, with = "crate::double_option")]
    name: Option<Option<String>>,
    #[serde(default, with = "crate::double_option")]
    email: Option<Option<String>>,
    #[serde(default, with = "crate::double_option")]
    phone: Option<Option<String>>,
    #[serde(default, with = "crate::double_option")]
    notes: Option<Option<String>>,
}

fn bounded(
    field: &'static str,
    v: Option<Option<String>>,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match v {
        Some(Some(s))
            if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') =>
        {
            errors.push(FieldError::new(
                field,
                format!("at most {max} printable characters"),
            ));
            None
        }
        Some(Some(s)) if s.trim().is_empty() => Some(None),
        other => other,
    }
}

#[utoipa::path(patch, path = "/v1/merchants/{merchant_id}/customers/{customer_id}", tag = "customers", params(("merchant_id" = String, Path), ("customer_id" = String, Path)), request_body = CustomerPatch, responses((status = 200, description = "Corrected"), (status = 422, description = "Invalid fields")))]
pub async fn update_customer(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
    JsonBody(patch): JsonBody<CustomerPatch>,
) -> ApiResult<Json<Value>> {
    let id = path.1;
    member.require(Action::WorkCustomers)?;
    let id = customer_id(&id)?;
    let mut errors = Vec::new();
    let name = bounded("name", patch.name, 200, &mut errors);
    let notes = bounded("notes", patch.notes, 2000, &mut errors);
    let email = match patch.email {
        Some(Some(e)) => match normalize_email(&e) {
            Ok(e) => Some(Some(e)),
            Err(r) => {
                errors.push(FieldError::new("email", r));
                None
            }
        },
        other => other,
    };
    let phone = match patch.phone {
        Some(Some(p)) => match validate_phone(&p) {
            Ok(p) => Some(Some(p)),
            Err(r) => {
                errors.push(FieldError::new("phone", r));
                None
            }
        },
        other => other,
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let c = state
        .store
        .update_customer(&member.merchant, &id, name, email, phone, notes)
        .await?;
    member
        .audit(&state, "customer.update", Some(id.as_str()))
        .await?;
    Ok(Json(customer_view(&c)))
}
