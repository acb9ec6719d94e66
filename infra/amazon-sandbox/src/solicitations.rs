//! Solicitations API v1: which solicitations an order allows, and sending the one there is,
//! "request a product review and seller feedback".
//!
//! Amazon's rule: one solicitation per order, for a Shipped order, from 5 days after its
//! earliest delivery date to 30 days after its latest. Amazon answers 403 `Unauthorized` to a
//! request outside those rules, including a second request for the same order.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use time::OffsetDateTime;

use crate::AmazonSandbox;
use crate::error::ApiError;
use crate::operation::Operation;
use crate::order::{OrderStatus, SandboxOrder};
use crate::spapi::{Answer, Caller, Params};

const ACTION: &str = "productReviewAndSellerFeedback";

/// Why an order cannot be solicited (Amazon's 403 messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ineligible {
    /// Already solicited, or not (fully) shipped.
    NotAvailable,
    /// Shipped, but now is outside the 5–30 day window.
    OutsideWindow,
}

impl Ineligible {
    fn error(self) -> ApiError {
        let message = match self {
            Self::NotAvailable => {
                "The requested solicitation is not available for this amazonOrderId."
            }
            Self::OutsideWindow => {
                "You can\u{2019}t use this feature to request a review outside the 5-30 day range \
                 after the order delivery date."
            }
        };
        ApiError::new(403, "Unauthorized", message)
    }
}

/// Amazon's eligibility rule, at `now`.
pub(crate) fn eligibility(
    order: &SandboxOrder,
    already_solicited: bool,
    now: OffsetDateTime,
) -> Result<(), Ineligible> {
    if already_solicited || order.status != OrderStatus::Shipped {
        return Err(Ineligible::NotAvailable);
    }
    match order.review_window() {
        Some((opens, closes)) if opens <= now && now <= closes => Ok(()),
        Some(_) => Err(Ineligible::OutsideWindow),
        None => Err(Ineligible::NotAvailable),
    }
}

/// The caller's order in one of the `marketplaceIds`, with whether it was solicited and now.
fn lookup(
    sandbox: &AmazonSandbox,
    caller: &Caller,
    order_id: &str,
    params: &Params,
) -> Result<(SandboxOrder, bool, OffsetDateTime), ApiError> {
    let marketplaces = params.list("marketplaceIds");
    if marketplaces.is_empty() {
        return Err(ApiError::invalid_input(
            "Missing or invalid request parameters: [marketplaceIds]",
        ));
    }
    sandbox.with_state(|s| {
        let order = s
            .seller(&caller.seller_id)
            .and_then(|seller| seller.orders.get(order_id))
            .filter(|o| marketplaces.contains(&o.marketplace_id.as_str()))
            .cloned()
            .ok_or_else(ApiError::not_found)?;
        let solicited = s
            .solicited
            .contains(&(caller.seller_id.clone(), order_id.to_owned()));
        Ok((order, solicited, s.now()))
    })
}

/// `GET /solicitations/v1/orders/{amazonOrderId}?marketplaceIds=..`: the HAL links of the
/// available actions (none when the order cannot be solicited).
pub(crate) async fn get_actions(
    State(sandbox): State<AmazonSandbox>,
    Path(order_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref()).with("amazonOrderId", &order_id);
    sandbox.sp_api(
        Operation::GetSolicitationActions,
        &headers,
        &params,
        |caller| -> Result<Answer, ApiError> {
            let (order, solicited, now) = lookup(&sandbox, caller, &order_id, &params)?;
            let marketplaces = params.raw("marketplaceIds").unwrap_or_default();
            let path = format!("/solicitations/v1/orders/{order_id}");
            let query = format!("?marketplaceIds={marketplaces}");
            let action_href = format!("{path}/solicitations/{ACTION}{query}");
            let self_href = format!("{path}{query}");
            let actions = match eligibility(&order, solicited, now) {
                Ok(()) => json!([{ "href": action_href, "name": ACTION }]),
                Err(_) => json!([]),
            };
            let body = json!({
                "_links": { "actions": actions, "self": { "href": self_href } }
            });
            Ok((StatusCode::OK, body))
        },
    )
}

/// `POST /solicitations/v1/orders/{amazonOrderId}/solicitations/productReviewAndSellerFeedback`:
/// 201 `{}` and the order is solicited, or 403. Every request is recorded with its answer.
pub(crate) async fn create(
    State(sandbox): State<AmazonSandbox>,
    Path(order_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref()).with("amazonOrderId", &order_id);
    let response = sandbox.sp_api(
        Operation::CreateSolicitation,
        &headers,
        &params,
        |caller| -> Result<Answer, ApiError> {
            let (order, solicited, now) = lookup(&sandbox, caller, &order_id, &params)?;
            eligibility(&order, solicited, now).map_err(Ineligible::error)?;
            sandbox.with_state(|s| {
                s.solicited
                    .insert((caller.seller_id.clone(), order_id.clone()))
            });
            Ok((StatusCode::CREATED, json!({})))
        },
    );
    let marketplace_id = params.raw("marketplaceIds").unwrap_or_default();
    sandbox.record_solicitation(&order_id, marketplace_id, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::order::FulfillmentChannel;

    const EARLIEST: OffsetDateTime = datetime!(2025-05-10 00:00 UTC);
    const LATEST: OffsetDateTime = datetime!(2025-05-12 00:00 UTC);

    fn shipped() -> SandboxOrder {
        SandboxOrder {
            order_id: "402-0000000-0000001".to_owned(),
            purchase_date: datetime!(2025-05-07 09:00 UTC),
            last_update_date: None,
            status: OrderStatus::Shipped,
            fulfillment_channel: FulfillmentChannel::Afn,
            marketplace_id: "A21TJRUUN4KGV".to_owned(),
            is_replacement_order: false,
            replaced_order_id: None,
            earliest_delivery_date: Some(EARLIEST),
            latest_delivery_date: Some(LATEST),
            earliest_ship_date: None,
            latest_ship_date: None,
            order_total: None,
            items: Vec::new(),
        }
    }

    #[test]
    fn the_window_opens_five_days_after_the_earliest_delivery_and_closes_thirty_after_the_latest() {
        let order = shipped();
        let at = |when| eligibility(&order, false, when);
        assert_eq!(
            at(EARLIEST + Duration::days(5) - Duration::seconds(1)),
            Err(Ineligible::OutsideWindow)
        );
        assert_eq!(at(EARLIEST + Duration::days(5)), Ok(()));
        assert_eq!(at(LATEST + Duration::days(30)), Ok(()));
        assert_eq!(
            at(LATEST + Duration::days(30) + Duration::seconds(1)),
            Err(Ineligible::OutsideWindow)
        );
    }

    #[test]
    fn only_shipped_dated_orders_not_yet_solicited_are_eligible() {
        let inside = EARLIEST + Duration::days(10);
        assert_eq!(
            eligibility(&shipped(), true, inside),
            Err(Ineligible::NotAvailable)
        );
        for status in [
            OrderStatus::Unshipped,
            OrderStatus::PartiallyShipped,
            OrderStatus::Canceled,
        ] {
            let order = SandboxOrder {
                status,
                ..shipped()
            };
            assert_eq!(
                eligibility(&order, false, inside),
                Err(Ineligible::NotAvailable)
            );
        }
        let undated = SandboxOrder {
            earliest_delivery_date: None,
            ..shipped()
        };
        assert_eq!(
            eligibility(&undated, false, inside),
            Err(Ineligible::NotAvailable)
        );
    }
}
