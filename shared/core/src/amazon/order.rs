//! An Amazon order as EcomDrive keeps it (POLICY A10): what order sync learns from the Orders API
//! plus what the merchant adds (do-not-solicit, returns, links to customers and conversations).

use crate::ids::{ConversationId, CustomerId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::AmazonOrderId;

/// Amazon's `OrderStatus`; a value Amazon adds later is kept as `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    Pending,
    Unshipped,
    PartiallyShipped,
    Shipped,
    Canceled,
    Unfulfillable,
    InvoiceUnconfirmed,
    PendingAvailability,
    #[serde(other)]
    Other,
}

impl OrderStatus {
    pub fn parse(raw: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(raw.to_owned())).unwrap_or(Self::Other)
    }

    /// Not shipped yet, but on its way to be.
    pub fn awaiting_shipment(self) -> bool {
        matches!(
            self,
            Self::Pending
                | Self::Unshipped
                | Self::PartiallyShipped
                | Self::InvoiceUnconfirmed
                | Self::PendingAvailability
        )
    }
}

/// `AFN` (fulfilled by Amazon) or `MFN` (by the merchant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FulfillmentChannel {
    #[serde(rename = "AFN")]
    Amazon,
    #[serde(rename = "MFN")]
    Merchant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency: String,
    /// Exact decimal, stored as a string.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub order_item_id: String,
    pub asin: String,
    pub seller_sku: Option<String>,
    pub title: Option<String>,
    pub quantity: u32,
}

/// What Amazon says about an order (everything order sync overwrites).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmazonOrderFacts {
    pub order_id: AmazonOrderId,
    pub marketplace_id: String,
    pub status: OrderStatus,
    pub fulfillment_channel: Option<FulfillmentChannel>,
    #[serde(with = "time::serde::rfc3339")]
    pub purchase_date: OffsetDateTime,
    /// Amazon's `LastUpdateDate`: an upsert never replaces newer facts with older ones.
    #[serde(with = "time::serde::rfc3339")]
    pub last_update_date: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub earliest_delivery_date: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub latest_delivery_date: Option<OffsetDateTime>,
    #[serde(default)]
    pub is_replacement_order: bool,
    pub replaced_order_id: Option<String>,
    pub total: Option<Money>,
}

/// What the merchant said about an order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMarks {
    /// Never ask this order's buyer for a review.
    #[serde(default)]
    pub do_not_solicit: bool,
    /// Refunded or returned (from the merchant, later from settlements).
    #[serde(default)]
    pub refunded_or_returned: bool,
}

/// An order as stored: Amazon's facts, the merchant's marks, its items once fetched, its links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    #[serde(flatten)]
    pub facts: AmazonOrderFacts,
    #[serde(default)]
    pub marks: OrderMarks,
    /// Fetched only when a rule needs them (SKU/ASIN exclusions): `None` means not fetched yet.
    #[serde(default)]
    pub items: Option<Vec<OrderItem>>,
    /// POLICY E9: the conversations (and so customers) this order is linked to; the store fills
    /// them from the link records when it reads the order.
    #[serde(default)]
    pub conversation_ids: Vec<ConversationId>,
    #[serde(default)]
    pub customer_ids: Vec<CustomerId>,
    #[serde(with = "time::serde::rfc3339")]
    pub synced_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_statuses_parse_and_unknown_ones_are_kept_as_other() {
        assert_eq!(OrderStatus::parse("Shipped"), OrderStatus::Shipped);
        assert_eq!(OrderStatus::parse("Canceled"), OrderStatus::Canceled);
        assert_eq!(OrderStatus::parse("SomethingNew"), OrderStatus::Other);
        assert!(OrderStatus::Unshipped.awaiting_shipment());
        assert!(!OrderStatus::Shipped.awaiting_shipment());
    }
}
