//! Orders API v0: getOrders (with Amazon's date rules and `NextToken` paging), getOrder and
//! getOrderItems, on the caller's orders.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::AmazonSandbox;
use crate::dates::{iso, parse_iso};
use crate::error::ApiError;
use crate::ids;
use crate::operation::Operation;
use crate::order::SandboxOrder;
use crate::sandbox::SandboxState;
use crate::spapi::{Answer, Caller, Params};

/// Amazon: the "after" date and any "before" date must be "no later than two minutes before
/// the time that the request was submitted".
const HORIZON: Duration = Duration::minutes(2);
const MAX_RESULTS_PER_PAGE: usize = 100;

/// Which order date a getOrders query filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateField {
    /// `LastUpdatedAfter` / `LastUpdatedBefore`.
    LastUpdate,
    /// `CreatedAfter` / `CreatedBefore`.
    Purchase,
}

/// A getOrders query, and where its next page starts: what a `NextToken` stands for.
#[derive(Debug, Clone)]
pub(crate) struct PageCursor {
    seller_id: String,
    marketplaces: Vec<String>,
    field: DateField,
    after: OffsetDateTime,
    before: OffsetDateTime,
    page_size: usize,
    /// The (LastUpdateDate, order id) of the last order already returned.
    resume_after: Option<(OffsetDateTime, String)>,
}

fn date_param(params: &Params, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    params
        .get(name)
        .map(|raw| {
            parse_iso(raw).ok_or_else(|| {
                ApiError::invalid_input(format!("{name} must be an ISO 8601 date-time: {raw}"))
            })
        })
        .transpose()
}

impl PageCursor {
    /// Validates a first-page query as Amazon does.
    fn from_params(
        params: &Params,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Self, ApiError> {
        let marketplaces = params.list("MarketplaceIds");
        if marketplaces.is_empty() {
            return Err(ApiError::invalid_input(
                "Missing or invalid request parameters: [MarketplaceIds]",
            ));
        }
        let created_after = date_param(params, "CreatedAfter")?;
        let updated_after = date_param(params, "LastUpdatedAfter")?;
        let (field, after, after_name, before_name, other_before) =
            match (created_after, updated_after) {
                (Some(after), None) => (
                    DateField::Purchase,
                    after,
                    "CreatedAfter",
                    "CreatedBefore",
                    "LastUpdatedBefore",
                ),
                (None, Some(after)) => (
                    DateField::LastUpdate,
                    after,
                    "LastUpdatedAfter",
                    "LastUpdatedBefore",
                    "CreatedBefore",
                ),
                _ => {
                    return Err(ApiError::invalid_input(
                        "Exactly one of CreatedAfter and LastUpdatedAfter is required",
                    ));
                }
            };
        if params.get(other_before).is_some() {
            return Err(ApiError::invalid_input(format!(
                "{other_before} cannot be used with {after_name}"
            )));
        }
        let latest = now - HORIZON;
        if after > latest {
            return Err(ApiError::invalid_input(format!(
                "{after_name} must be no later than two minutes before the time of the request"
            )));
        }
        let before = date_param(params, before_name)?.unwrap_or(latest);
        if before > latest || before < after {
            return Err(ApiError::invalid_input(format!(
                "{before_name} must be after {after_name} and no later than two minutes before \
                 the time of the request"
            )));
        }
        let page_size = match params.get("MaxResultsPerPage") {
            None => MAX_RESULTS_PER_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_RESULTS_PER_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_input("MaxResultsPerPage must be an integer from 1 to 100")
                })?,
        };
        Ok(Self {
            seller_id: caller.seller_id.clone(),
            marketplaces: marketplaces.into_iter().map(str::to_owned).collect(),
            field,
            after,
            before,
            page_size,
            resume_after: None,
        })
    }

    fn selects(&self, order: &SandboxOrder) -> bool {
        let date = match self.field {
            DateField::LastUpdate => order.last_updated(),
            DateField::Purchase => order.purchase_date,
        };
        self.marketplaces.contains(&order.marketplace_id)
            && self.after <= date
            && date <= self.before
            && self
                .resume_after
                .as_ref()
                .is_none_or(|(at, id)| (order.last_updated(), &order.order_id) > (*at, id))
    }

    /// One page, sorted by `LastUpdateDate` then order id, and the `NextToken` after it.
    fn page(mut self, state: &mut SandboxState) -> Value {
        let (listed, last_listed) = {
            let mut orders: Vec<&SandboxOrder> = state
                .seller(&self.seller_id)
                .map(|s| s.orders.values().filter(|o| self.selects(o)).collect())
                .unwrap_or_default();
            orders.sort_by(|a, b| {
                (a.last_updated(), &a.order_id).cmp(&(b.last_updated(), &b.order_id))
            });
            let more = orders.len() > self.page_size;
            orders.truncate(self.page_size);
            let last_listed = orders
                .last()
                .filter(|_| more)
                .map(|o| (o.last_updated(), o.order_id.clone()));
            let listed: Vec<Value> = orders.iter().map(|o| o.to_amazon_json()).collect();
            (listed, last_listed)
        };

        let mut payload = Map::new();
        payload.insert("Orders".to_owned(), Value::Array(listed));
        // Amazon gives back the query's upper bound: the next query's lower bound.
        let before_name = match self.field {
            DateField::LastUpdate => "LastUpdatedBefore",
            DateField::Purchase => "CreatedBefore",
        };
        payload.insert(before_name.to_owned(), json!(iso(self.before)));
        if last_listed.is_some() {
            self.resume_after = last_listed;
            let token = ids::next_token();
            payload.insert("NextToken".to_owned(), json!(token));
            state.next_tokens.insert(token, self);
        }
        json!({ "payload": payload })
    }
}

/// `GET /orders/v0/orders`.
pub(crate) async fn get_orders(
    State(sandbox): State<AmazonSandbox>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref());
    sandbox.sp_api(Operation::GetOrders, &headers, &params, |caller| {
        list_orders(&sandbox, caller, &params)
    })
}

fn list_orders(
    sandbox: &AmazonSandbox,
    caller: &Caller,
    params: &Params,
) -> Result<Answer, ApiError> {
    sandbox.with_state(|s| {
        let cursor = match params.get("NextToken") {
            // With a NextToken the query is the token's; only MarketplaceIds is still required.
            Some(token) => {
                if params.list("MarketplaceIds").is_empty() {
                    return Err(ApiError::invalid_input(
                        "Missing or invalid request parameters: [MarketplaceIds]",
                    ));
                }
                s.next_tokens
                    .get(token)
                    .filter(|c| c.seller_id == caller.seller_id)
                    .cloned()
                    .ok_or_else(|| ApiError::invalid_input("Invalid NextToken"))?
            }
            None => PageCursor::from_params(params, caller, s.now())?,
        };
        Ok((StatusCode::OK, cursor.page(s)))
    })
}

/// The caller's order, or 404.
fn find_order(
    sandbox: &AmazonSandbox,
    caller: &Caller,
    order_id: &str,
) -> Result<SandboxOrder, ApiError> {
    sandbox
        .order(&caller.seller_id, order_id)
        .ok_or_else(ApiError::not_found)
}

/// `GET /orders/v0/orders/{orderId}`.
pub(crate) async fn get_order(
    State(sandbox): State<AmazonSandbox>,
    Path(order_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref()).with("orderId", &order_id);
    sandbox.sp_api(Operation::GetOrder, &headers, &params, |caller| {
        let order = find_order(&sandbox, caller, &order_id)?;
        Ok((StatusCode::OK, json!({ "payload": order.to_amazon_json() })))
    })
}

/// `GET /orders/v0/orders/{orderId}/orderItems` (three lines at most: one page).
pub(crate) async fn get_order_items(
    State(sandbox): State<AmazonSandbox>,
    Path(order_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref()).with("orderId", &order_id);
    sandbox.sp_api(Operation::GetOrderItems, &headers, &params, |caller| {
        let order = find_order(&sandbox, caller, &order_id)?;
        let payload = json!({ "AmazonOrderId": order.order_id, "OrderItems": order.items_json() });
        Ok((StatusCode::OK, json!({ "payload": payload })))
    })
}
