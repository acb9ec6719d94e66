//! Money (POLICY A3, A8): settlement uploads and listings, costs of goods, the P&L and the
//! reconciliation of deposits, orders and fees. Owners and admins only: agents work conversations.

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecomdrive_aws::blobs::merchant_key;
use ecomdrive_aws::settlement_import::{ImportOutcome, Origin, SettlementFile};
use ecomdrive_aws::store::settlements::{
    ImportStatus, Settled, SettlementRecord, SettlementSource, SettlementUpload, UploadStatus,
};
use ecomdrive_core::amazon::jobs::SettlementJob;
use ecomdrive_core::amazon::marketplace::INDIA;
use ecomdrive_core::ids::SettlementUploadId;
use ecomdrive_core::role::Action;
use ecomdrive_core::settlement::cogs::{CostHistory, parse_cogs_csv};
use ecomdrive_core::settlement::pnl::{self, Granularity, PnlLine};
use ecomdrive_core::settlement::reconcile::{
    OrderTotal, PaymentStatus, fee_outliers, reconcile_order,
};
use ecomdrive_core::settlement::{OrderSums, Rejection, SettlementId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use time::{Date, Duration, OffsetDateTime};

/// The most a direct upload may be: API Gateway and Lambda cap request bodies (larger files go
/// through a presigned upload).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// What a direct upload may unpack to: enough for any 5 MB flat file and its gzip of a typical
/// seller's fortnight, small enough to parse twice and store within the API's timeout (larger:
/// the presigned upload).
pub const MAX_UPLOAD_UNPACKED: u64 = 16 * 1024 * 1024;
/// How long a presigned upload URL works.
const UPLOAD_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// The content type a presigned upload is signed for (the browser must send the same).
const UPLOAD_CONTENT_TYPE: &str = "application/octet-stream";
/// The longest P&L period at once (per order: shorter, each order is a line).
const MAX_PERIOD_DAYS: i64 = 366;
const MAX_ORDER_PERIOD_DAYS: i64 = 93;
/// Amazon settles an order within weeks of its purchase: a reconciliation of the orders bought
/// in a period looks at settlement lines posted up to this long after it.
const SETTLEMENT_LAG: Duration = Duration::days(60);

fn settlement_view(s: &SettlementRecord) -> Value {
    let t = &s.summary;
    json!({
        "settlement_id": t.settlement_id,
        "currency": t.currency,
        "total_amount": t.total_amount.to_string(),
        "lines_total": s.lines_total.to_string(),
        "difference": s.difference.to_string(),
        "reconciles": s.reconciles,
        "start": t.start.map(crate::rfc3339),
        "end": t.end.map(crate::rfc3339),
        "deposit_date": t.deposit_date.map(crate::rfc3339),
        "marketplace": s.marketplace,
        "detail_lines": s.detail_lines,
        "order_runs": s.order_runs,
        // Each as transaction_type, amount_type, amount_description and amount (a string).
        "charges": s.charges,
        "status": s.status,
        "source": s.source,
        "imported_at": s.imported_at.map(crate::rfc3339),
    })
}

fn rejected(r: Rejection) -> ApiError {
    ApiError::Rejected {
        problems: r.problems.into_iter().map(|p| (p.line, p.reason)).collect(),
        more: r.more,
    }
}

/// A settlement flat file is tab-separated text or its gzip.
fn settlement_content_type(headers: &HeaderMap) -> ApiResult<()> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    match essence.to_ascii_lowercase().as_str() {
        "text/tab-separated-values" | "application/gzip" | "application/x-gzip" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            "send the flat file as text/tab-separated-values or application/gzip".into(),
        )),
    }
}

fn body(bytes: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    let bytes = bytes.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest("the body could not be read".into()),
    })?;
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the body is empty".into()));
    }
    Ok(bytes)
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/settlements", tag = "settlements", params(("merchant_id" = String, Path)), request_body(content = String, content_type = "text/tab-separated-values", description = "An Amazon V2 settlement flat file (or its gzip as application/gzip), up to 5 MB"), responses((status = 201, description = "Imported: the settlement's summary"), (status = 200, description = "The same settlement was imported before"), (status = 409, description = "The settlement id is stored with different content"), (status = 413, description = "Over 5 MB: use an upload URL"), (status = 415, description = "Not a flat file"), (status = 422, description = "Malformed: line numbers and reasons; nothing stored")))]
pub async fn upload_settlement(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    member.require(Action::ManageFinance)?;
    settlement_content_type(&headers)?;
    let file = SettlementFile::Bytes(body(bytes)?);
    let origin = Origin {
        source: SettlementSource::Upload,
        report_id: None,
    };
    let outcome = state
        .settlements
        .import(&member.merchant, file, origin, OffsetDateTime::now_utc())
        .await?;
    match outcome {
        ImportOutcome::Imported(s) => {
            member
                .audit(&state, "settlement.import", Some(s.id().as_str()))
                .await?;
            Ok((StatusCode::CREATED, Json(settlement_view(&s))).into_response())
        }
        ImportOutcome::AlreadyImported(s) => Ok(Json(settlement_view(&s)).into_response()),
        ImportOutcome::Rejected(r) => Err(rejected(r)),
        ImportOutcome::Conflict(s) => Err(ApiError::conflict(
            "settlement-differs",
            format!(
                "settlement {} is stored already with different content; the stored one stays",
                s.id()
            ),
        )),
    }
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/settlements", tag = "settlements", params(("merchant_id" = String, Path)), responses((status = 200, description = "Every settlement, newest first, with whether it reconciles")))]
pub async fn list_settlements(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadFinance)?;
    let mut all = state.store.settlements(&member.merchant).await?;
    all.sort_by_key(|s| std::cmp::Reverse(s.summary.end));
    Ok(Json(json!({
        "items": all.iter().map(settlement_view).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/settlements/{settlement_id}", tag = "settlements", params(("merchant_id" = String, Path), ("settlement_id" = String, Path)), responses((status = 200, description = "The settlement: deposit, totals, whether it reconciles")))]
pub async fn get_settlement(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadFinance)?;
    let id = SettlementId::parse(&path.1).ok_or(ApiError::NotFound)?;
    let s = state
        .store
        .settlement(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(settlement_view(&s)))
}

// ---- large files: presigned upload, asynchronous import -------------------------------------

fn upload_view(u: &SettlementUpload) -> Value {
    json!({
        "id": u.upload_id,
        "status": u.status,
        "settlement_id": u.settlement_id,
        "problems": u.problems.as_ref().map(|r| &r.problems),
        "more_problems": u.problems.as_ref().map(|r| r.more),
        "error": u.error,
        "created_at": crate::rfc3339(u.created_at),
        "updated_at": crate::rfc3339(u.updated_at),
    })
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/settlements/uploads", tag = "settlements", params(("merchant_id" = String, Path)), responses((status = 201, description = "An upload: PUT the file to upload_url (with the given headers) before expires_at, then POST .../import")))]
pub async fn create_upload(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<(StatusCode, Json<Value>)> {
    member.require(Action::ManageFinance)?;
    let now = OffsetDateTime::now_utc();
    let id = SettlementUploadId::generate();
    let upload = SettlementUpload {
        object_key: merchant_key(&member.merchant, &format!("settlement-uploads/{id}")),
        upload_id: id,
        status: UploadStatus::AwaitingFile,
        created_by: member.id().clone(),
        created_at: now,
        updated_at: now,
        settlement_id: None,
        problems: None,
        error: None,
    };
    let url = state
        .settlements
        .blobs
        .presigned_put(&upload.object_key, UPLOAD_CONTENT_TYPE, UPLOAD_URL_TTL)
        .await?;
    state
        .store
        .save_settlement_upload(&member.merchant, &upload, None)
        .await?;
    member
        .audit(
            &state,
            "settlement.upload.create",
            Some(upload.upload_id.as_str()),
        )
        .await?;
    let mut view = upload_view(&upload);
    view["upload_url"] = json!(url);
    view["method"] = json!("PUT");
    view["headers"] = json!({ "content-type": UPLOAD_CONTENT_TYPE });
    view["expires_at"] = json!(crate::rfc3339(now + UPLOAD_URL_TTL));
    Ok((StatusCode::CREATED, Json(view)))
}

fn upload_id(raw: &str) -> ApiResult<SettlementUploadId> {
    SettlementUploadId::parse(raw).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/settlements/uploads/{upload_id}/import", tag = "settlements", params(("merchant_id" = String, Path), ("upload_id" = String, Path)), responses((status = 202, description = "Queued: poll the upload's status"), (status = 409, description = "Already imported or failed")))]
pub async fn import_upload(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    member.require(Action::ManageFinance)?;
    let id = upload_id(&path.1)?;
    let m = &member.merchant;
    let mut upload = state
        .store
        .settlement_upload(m, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match upload.status {
        UploadStatus::AwaitingFile => {}
        UploadStatus::Queued | UploadStatus::Running => {
            return Ok((StatusCode::ACCEPTED, Json(upload_view(&upload))));
        }
        _ => {
            return Err(ApiError::conflict(
                "upload-finished",
                "this upload was imported already: create a new one",
            ));
        }
    }
    upload.status = UploadStatus::Queued;
    upload.updated_at = OffsetDateTime::now_utc();
    state
        .store
        .save_settlement_upload(m, &upload, Some(UploadStatus::AwaitingFile))
        .await?;
    let job = SettlementJob::Upload {
        merchant_id: m.clone(),
        upload_id: id,
    };
    if let Err(e) = state
        .settlement_import
        .send_json("settlement_upload", &job)
        .await
    {
        // Not queued: back to waiting, so the merchant's next try queues it.
        upload.status = UploadStatus::AwaitingFile;
        state
            .store
            .save_settlement_upload(m, &upload, Some(UploadStatus::Queued))
            .await?;
        return Err(e.into());
    }
    member
        .audit(
            &state,
            "settlement.upload.import",
            Some(upload.upload_id.as_str()),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(upload_view(&upload))))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/settlements/uploads/{upload_id}", tag = "settlements", params(("merchant_id" = String, Path), ("upload_id" = String, Path)), responses((status = 200, description = "awaiting_file, queued, running, imported, already_imported, rejected (with problems), conflict or failed")))]
pub async fn get_upload(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadFinance)?;
    let id = upload_id(&path.1)?;
    let upload = state
        .store
        .settlement_upload(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(upload_view(&upload)))
}

// ---- costs of goods (POLICY A3) -------------------------------------------------------------

#[utoipa::path(put, path = "/v1/merchants/{merchant_id}/cogs", tag = "settlements", params(("merchant_id" = String, Path)), request_body(content = String, content_type = "text/csv", description = "sku,unit_cost,currency,effective_from"), responses((status = 200, description = "Saved: how many costs"), (status = 422, description = "Every bad row by line; nothing saved")))]
pub async fn put_cogs(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ManageFinance)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("text/csv") {
        return Err(ApiError::UnsupportedMediaType(
            "send the costs as text/csv".into(),
        ));
    }
    let costs = parse_cogs_csv(&body(bytes)?).map_err(rejected)?;
    state
        .store
        .put_unit_costs(&member.merchant, &costs, OffsetDateTime::now_utc())
        .await?;
    member.audit(&state, "cogs.upload", None).await?;
    Ok(Json(json!({ "saved": costs.len() })))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/cogs", tag = "settlements", params(("merchant_id" = String, Path)), responses((status = 200, description = "Every unit cost, by SKU then date")))]
pub async fn get_cogs(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadFinance)?;
    let costs = state.store.unit_costs(&member.merchant).await?;
    Ok(Json(json!({ "items": costs })))
}

// ---- P&L (POLICY A8) --------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct PnlQuery {
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
    format: Option<String>,
    currency: Option<String>,
}

/// The period asked for: `to` defaults to today (India), `from` to 30 days before `to`.
fn period(q: &PnlQuery, max_days: i64) -> ApiResult<(Date, Date)> {
    let day = |field: &str, raw: &Option<String>| -> ApiResult<Option<Date>> {
        raw.as_deref()
            .map(|s| {
                Date::parse(s, &time::format_description::well_known::Iso8601::DATE)
                    .map_err(|_| ApiError::invalid(field, "a date as YYYY-MM-DD"))
            })
            .transpose()
    };
    let today = OffsetDateTime::now_utc().to_offset(INDIA.utc_offset).date();
    let to = day("to", &q.to)?.unwrap_or(today);
    let from = day("from", &q.from)?.unwrap_or(to - Duration::days(30));
    if from > to {
        return Err(ApiError::invalid("from", "from is after to"));
    }
    if (to - from).whole_days() >= max_days {
        return Err(ApiError::invalid(
            "from",
            format!("a period is at most {max_days} days"),
        ));
    }
    Ok((from, to))
}

enum Format {
    Json,
    Csv,
}

fn format(q: &PnlQuery) -> ApiResult<Format> {
    match q.format.as_deref() {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(_) => Err(ApiError::invalid("format", "json or csv")),
    }
}

/// The settlements in `currency`: a P&L never adds amounts of two currencies.
fn in_currency<'a>(
    settlements: &'a [SettlementRecord],
    currency: &str,
) -> HashSet<&'a SettlementId> {
    settlements
        .iter()
        .filter(|s| s.summary.currency == currency)
        .map(SettlementRecord::id)
        .collect()
}

/// The sums of the settlements `counted`, without their settlement.
fn counted_sums<T>(sums: Vec<Settled<T>>, counted: &HashSet<&SettlementId>) -> Vec<T> {
    sums.into_iter()
        .filter(|s| counted.contains(&s.settlement_id))
        .map(|s| s.sums)
        .collect()
}

fn currency(q: &PnlQuery, settlements: &[SettlementRecord]) -> ApiResult<String> {
    match &q.currency {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Ok(c.clone()),
        Some(_) => Err(ApiError::invalid("currency", "an ISO 4217 code, e.g. INR")),
        // The merchant's latest settlement's, else the home marketplace's.
        None => Ok(settlements
            .iter()
            .max_by_key(|s| s.summary.end)
            .map_or(INDIA.currency.to_owned(), |s| s.summary.currency.clone())),
    }
}

/// Answers a P&L as JSON (`lines` and `totals`) or as a CSV download.
fn pnl_response(
    lines: Vec<PnlLine>,
    fmt: Format,
    context: Value,
    filename: &str,
) -> ApiResult<Response> {
    let totals = pnl::totals(&lines);
    Ok(match fmt {
        Format::Csv => {
            let mut all = lines;
            all.push(totals);
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}.csv\""),
                    ),
                ],
                pnl::to_csv(&all),
            )
                .into_response()
        }
        Format::Json => {
            let mut body = context;
            body["lines"] = serde_json::to_value(&lines).map_err(ApiError::internal)?;
            body["totals"] = serde_json::to_value(&totals).map_err(ApiError::internal)?;
            Json(body).into_response()
        }
    })
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/pnl", tag = "settlements", params(("merchant_id" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("granularity" = Option<String>, Query, description = "day, week or month"), ("format" = Option<String>, Query, description = "json or csv"), ("currency" = Option<String>, Query)), responses((status = 200, description = "Per period: revenue, fees by kind, refunds, promotions, taxes (apart), COGS, net profit, margin")))]
pub async fn pnl_by_period(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<PnlQuery>,
) -> ApiResult<Response> {
    member.require(Action::ReadFinance)?;
    let (from, to) = period(&q, MAX_PERIOD_DAYS)?;
    let fmt = format(&q)?;
    let granularity: Granularity = match q.granularity.as_deref() {
        None => Granularity::Day,
        Some(g) => serde_json::from_value(json!(g))
            .map_err(|_| ApiError::invalid("granularity", "day, week or month"))?,
    };
    let m = &member.merchant;
    let (period, costs) = futures::try_join!(
        state.store.settled_period(m, from, to),
        state.store.unit_costs(m),
    )?;
    let currency = currency(&q, &period.settlements)?;
    let counted = in_currency(&period.settlements, &currency);
    let days = counted_sums(period.days, &counted);
    let sku_days = counted_sums(period.sku_days, &counted);
    let lines = pnl::by_period(
        &days,
        &sku_days,
        &CostHistory::new(costs),
        &currency,
        granularity,
    );
    let context = json!({"from": from.to_string(), "to": to.to_string(), "granularity": granularity, "currency": currency});
    pnl_response(lines, fmt, context, &format!("pnl-{from}-{to}"))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/pnl/skus", tag = "settlements", params(("merchant_id" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("format" = Option<String>, Query), ("currency" = Option<String>, Query)), responses((status = 200, description = "Per SKU")))]
pub async fn pnl_by_sku(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<PnlQuery>,
) -> ApiResult<Response> {
    member.require(Action::ReadFinance)?;
    let (from, to) = period(&q, MAX_PERIOD_DAYS)?;
    let fmt = format(&q)?;
    let m = &member.merchant;
    let (period, costs) = futures::try_join!(
        state.store.settled_period(m, from, to),
        state.store.unit_costs(m),
    )?;
    let currency = currency(&q, &period.settlements)?;
    let counted = in_currency(&period.settlements, &currency);
    let sku_days = counted_sums(period.sku_days, &counted);
    let lines = pnl::by_sku(&sku_days, &CostHistory::new(costs), &currency);
    let context = json!({"from": from.to_string(), "to": to.to_string(), "currency": currency});
    pnl_response(lines, fmt, context, &format!("pnl-skus-{from}-{to}"))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/pnl/orders", tag = "settlements", params(("merchant_id" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query, description = "at most 93 days after from"), ("format" = Option<String>, Query), ("currency" = Option<String>, Query)), responses((status = 200, description = "Per order (by the posted day of its settlement lines)")))]
pub async fn pnl_by_order(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<PnlQuery>,
) -> ApiResult<Response> {
    member.require(Action::ReadFinance)?;
    let (from, to) = period(&q, MAX_ORDER_PERIOD_DAYS)?;
    let fmt = format(&q)?;
    let m = &member.merchant;
    let (runs, costs, settlements) = futures::try_join!(
        state.store.settled_orders_between(m, from, to),
        state.store.unit_costs(m),
        state.store.settlements(m),
    )?;
    let currency = currency(&q, &settlements)?;
    let runs = counted_sums(runs, &in_currency(&settlements, &currency));
    let lines = pnl::by_order(&runs, &CostHistory::new(costs), &currency);
    let context = json!({"from": from.to_string(), "to": to.to_string(), "currency": currency});
    pnl_response(lines, fmt, context, &format!("pnl-orders-{from}-{to}"))
}

// ---- reconciliation (POLICY A8) --------------------------------------------------------------

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/reconciliation", tag = "settlements", params(("merchant_id" = String, Path), ("from" = Option<String>, Query, description = "orders purchased and deposits made from this day"), ("to" = Option<String>, Query)), responses((status = 200, description = "Deposits against their settlements; orders unpaid, underpaid, overpaid or refunded; fees out of line with the SKU's usual one")))]
pub async fn reconciliation(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<PnlQuery>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ReadFinance)?;
    let (from, to) = period(&q, MAX_ORDER_PERIOD_DAYS)?;
    let m = &member.merchant;
    let (settlements, orders, runs) = futures::try_join!(
        state.store.settlements(m),
        state.store.all_orders(m),
        state
            .store
            .settled_orders_between(m, from, to + SETTLEMENT_LAG),
    )?;
    let in_period = |t: Option<OffsetDateTime>| {
        t.is_some_and(|t| (from..=to).contains(&t.to_offset(INDIA.utc_offset).date()))
    };
    let deposits: Vec<Value> = settlements
        .iter()
        .filter(|s| s.status == ImportStatus::Imported && in_period(s.summary.deposit_date))
        .map(settlement_view)
        .collect();
    let mut runs_by_order: HashMap<&str, Vec<OrderSums>> = HashMap::new();
    for run in &runs {
        runs_by_order
            .entry(run.sums.order_id.as_str())
            .or_default()
            .push(run.sums.clone());
    }
    let today = OffsetDateTime::now_utc().to_offset(INDIA.utc_offset).date();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut flagged = Vec::new();
    for order in orders
        .iter()
        .filter(|o| in_period(Some(o.facts.purchase_date)))
    {
        let id = order.facts.order_id.as_str();
        let total = OrderTotal {
            order_id: id.to_owned(),
            status: order.facts.status,
            purchase_date: order.facts.purchase_date,
            total: order.facts.total.clone(),
        };
        let runs = runs_by_order.get(id).map(Vec::as_slice).unwrap_or_default();
        let r = reconcile_order(&total, runs, today);
        let status = serde_json::to_value(r.status).map_err(ApiError::internal)?;
        *counts
            .entry(status.as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
        if !matches!(r.status, PaymentStatus::Paid | PaymentStatus::Pending) {
            flagged.push(serde_json::to_value(&r).map_err(ApiError::internal)?);
        }
    }
    let settled: Vec<OrderSums> = runs.into_iter().map(|r| r.sums).collect();
    Ok(Json(json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "deposits": deposits,
        "orders": { "counts": counts, "flagged": flagged },
        "fee_outliers": fee_outliers(&settled),
    })))
}
