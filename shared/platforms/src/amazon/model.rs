//! Amazon's orders as the Orders API v0 gives them, and the wire shapes around them.
//!
//! Only the fields EcomDrive uses are read; Amazon adds fields often, and unknown ones are ignored.
//! Everything Amazon may leave out (a Pending order has no `OrderTotal`) is an `Option`.

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::error::PlatformError;

/// An amount as Amazon writes it: the decimal stays a string, so no rounding happens here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Money {
    /// ISO 4217, e.g. `INR`.
    pub currency_code: String,
    /// e.g. `"499.00"`.
    pub amount: String,
}

/// One order of the Orders API (PascalCase on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmazonOrder {
    pub amazon_order_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub purchase_date: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_update_date: OffsetDateTime,
    /// `Pending`, `Unshipped`, `PartiallyShipped`, `Shipped`, `Canceled`, `Unfulfillable`...
    pub order_status: String,
    /// `MFN` (the seller ships) or `AFN` (Amazon ships).
    #[serde(default)]
    pub fulfillment_channel: Option<String>,
    #[serde(default)]
    pub sales_channel: Option<String>,
    #[serde(default)]
    pub marketplace_id: Option<String>,
    #[serde(default)]
    pub order_total: Option<Money>,
    /// Amazon sends a bool; older answers and some sandboxes send `"true"`/`"false"`.
    #[serde(default, deserialize_with = "bool_or_string")]
    pub is_replacement_order: Option<bool>,
    #[serde(default)]
    pub replaced_order_id: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub earliest_ship_date: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub latest_ship_date: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub earliest_delivery_date: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub latest_delivery_date: Option<OffsetDateTime>,
    #[serde(default)]
    pub number_of_items_shipped: Option<u32>,
    #[serde(default)]
    pub number_of_items_unshipped: Option<u32>,
    /// `StandardOrder`, `Preorder`, `SourcingOnDemandOrder`...
    #[serde(default)]
    pub order_type: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmazonOrderItem {
    #[serde(rename = "ASIN")]
    pub asin: String,
    #[serde(default, rename = "SellerSKU")]
    pub seller_sku: Option<String>,
    pub order_item_id: String,
    #[serde(default)]
    pub title: Option<String>,
    pub quantity_ordered: u32,
    /// The price of the whole line (unit price × quantity), as Amazon gives it.
    #[serde(default)]
    pub item_price: Option<Money>,
}

/// What [`super::AmazonClient::get_orders`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersQuery {
    /// At least one; usually [`super::INDIA_MARKETPLACE_ID`].
    pub marketplace_ids: Vec<String>,
    /// Orders changed after this instant (sent in UTC, to the second).
    pub last_updated_after: OffsetDateTime,
    /// The previous page's token; when set, the other filters are Amazon's to remember.
    pub next_token: Option<String>,
}

/// One page of getOrders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersPage {
    pub orders: Vec<AmazonOrder>,
    /// `None` on the last page.
    pub next_token: Option<String>,
    /// Amazon's upper bound of the search: the next sync can start from it.
    pub last_updated_before: Option<OffsetDateTime>,
}

/// The `payload` envelope of the Orders API.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    pub payload: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct OrdersList {
    #[serde(default)]
    pub orders: Vec<AmazonOrder>,
    #[serde(default)]
    pub next_token: Option<String>,
    /// Only informative: a value we cannot read must not make the whole page (and the sync) fail.
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_updated_before: Option<OffsetDateTime>,
}

impl From<OrdersList> for OrdersPage {
    fn from(list: OrdersList) -> Self {
        Self {
            orders: list.orders,
            next_token: non_empty(list.next_token),
            last_updated_before: list.last_updated_before,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct OrderItemsList {
    #[serde(default)]
    pub order_items: Vec<AmazonOrderItem>,
    #[serde(default)]
    pub next_token: Option<String>,
}

/// getSolicitationActionsForOrder's HAL document: the actions are links, named.
#[derive(Deserialize)]
pub(crate) struct SolicitationActions {
    #[serde(rename = "_links")]
    pub links: ActionLinks,
}

#[derive(Deserialize)]
pub(crate) struct ActionLinks {
    #[serde(default)]
    pub actions: Vec<ActionLink>,
}

#[derive(Deserialize)]
pub(crate) struct ActionLink {
    pub name: String,
}

/// Amazon's error list, the body of every SP-API 4xx/5xx.
#[derive(Deserialize)]
pub(crate) struct ErrorList {
    pub errors: Vec<SpApiError>,
}

#[derive(Deserialize)]
pub(crate) struct SpApiError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Option<String>,
}

/// An empty `NextToken` means the same as none: the last page.
pub(crate) fn non_empty(token: Option<String>) -> Option<String> {
    token.filter(|t| !t.is_empty())
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC, the form Amazon's date filters take. Fractions of a second are
/// dropped, which moves a `...After` filter earlier: an order may come twice, never be missed.
pub(crate) fn amazon_timestamp(at: OffsetDateTime) -> Result<String, PlatformError> {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .map_err(|_| PlatformError::InvalidInput("a date Amazon cannot take".into()))
}

fn bool_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Option::<Flag>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Flag::Bool(value)) => Ok(Some(value)),
        Some(Flag::Text(text)) => match text.to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom("expected true or false")),
        },
    }
}

fn lenient_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.and_then(|text| OffsetDateTime::parse(&text, &Rfc3339).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn timestamps_are_sent_in_utc_to_the_second_with_a_z() {
        let ist = datetime!(2026-03-01 05:30:07.999 +05:30);
        assert_eq!(amazon_timestamp(ist).unwrap(), "2026-03-01T00:00:07Z");
    }

    #[test]
    fn is_replacement_order_is_read_from_a_bool_or_a_string() {
        let order = |flag: serde_json::Value| {
            serde_json::from_value::<AmazonOrder>(json!({
                "AmazonOrderId": "402-0000000-0000000",
                "PurchaseDate": "2026-03-01T10:00:00Z",
                "LastUpdateDate": "2026-03-01T10:05:00.123Z",
                "OrderStatus": "Pending",
                "IsReplacementOrder": flag,
            }))
            .map(|o| o.is_replacement_order)
        };
        assert_eq!(order(json!(true)).unwrap(), Some(true));
        assert_eq!(order(json!("false")).unwrap(), Some(false));
        assert_eq!(order(json!("True")).unwrap(), Some(true));
        assert_eq!(order(json!(null)).unwrap(), None);
        assert!(order(json!("maybe")).is_err());
    }

    #[test]
    fn an_unreadable_last_updated_before_is_none_not_an_error() {
        let list: OrdersList = serde_json::from_value(json!({
            "Orders": [], "NextToken": "", "LastUpdatedBefore": "1.569521782042E9"
        }))
        .unwrap();
        let page = OrdersPage::from(list);
        assert_eq!(page.last_updated_before, None);
        assert_eq!(page.next_token, None);
    }
}
