//! The sandbox's order model, and how the Orders API v0 writes it (Amazon's PascalCase JSON).

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::dates::iso;

/// `OrderStatus` values of the Orders API v0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Unshipped,
    PartiallyShipped,
    Shipped,
    Canceled,
    Unfulfillable,
    InvoiceUnconfirmed,
    PendingAvailability,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Unshipped => "Unshipped",
            Self::PartiallyShipped => "PartiallyShipped",
            Self::Shipped => "Shipped",
            Self::Canceled => "Canceled",
            Self::Unfulfillable => "Unfulfillable",
            Self::InvoiceUnconfirmed => "InvoiceUnconfirmed",
            Self::PendingAvailability => "PendingAvailability",
        }
    }
}

/// `FulfillmentChannel`: `AFN` (fulfilled by Amazon) or `MFN` (by the seller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FulfillmentChannel {
    Afn,
    Mfn,
}

impl FulfillmentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Afn => "AFN",
            Self::Mfn => "MFN",
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxItem {
    pub order_item_id: String,
    pub asin: String,
    pub seller_sku: String,
    pub title: String,
    pub quantity: u32,
    /// Amazon's `ItemPrice.Amount`: the line's price (unit price × quantity), e.g. `"898.00"`,
    /// in the order's currency.
    pub item_price: String,
}

/// An order as the sandbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOrder {
    /// `NNN-NNNNNNN-NNNNNNN`; India's start with `40x-`.
    pub order_id: String,
    pub purchase_date: OffsetDateTime,
    /// `None` when adding an order: the sandbox sets it to its clock's now.
    pub last_update_date: Option<OffsetDateTime>,
    pub status: OrderStatus,
    pub fulfillment_channel: FulfillmentChannel,
    pub marketplace_id: String,
    pub is_replacement_order: bool,
    /// The order this one replaces (only with `is_replacement_order`).
    pub replaced_order_id: Option<String>,
    pub earliest_delivery_date: Option<OffsetDateTime>,
    pub latest_delivery_date: Option<OffsetDateTime>,
    pub earliest_ship_date: Option<OffsetDateTime>,
    pub latest_ship_date: Option<OffsetDateTime>,
    /// `(CurrencyCode, Amount)`, e.g. `("INR", "1299.00")`. Amazon leaves it out of Pending orders.
    pub order_total: Option<(String, String)>,
    pub items: Vec<SandboxItem>,
}

/// Amazon: a review may be requested "5-30 days after the order delivery date".
const REVIEW_WINDOW_OPENS: Duration = Duration::days(5);
const REVIEW_WINDOW_CLOSES: Duration = Duration::days(30);

/// Sales channel and currency of the marketplaces the sandbox knows by name.
const MARKETPLACES: [(&str, &str, &str); 4] = [
    ("A21TJRUUN4KGV", "Amazon.in", "INR"),
    ("ATVPDKIKX0DER", "Amazon.com", "USD"),
    ("A1F83G8C2ARO7P", "Amazon.co.uk", "GBP"),
    ("A1PA6795UKMFR9", "Amazon.de", "EUR"),
];

impl SandboxOrder {
    /// When a review request may be sent: from `EarliestDeliveryDate` + 5 days to
    /// `LatestDeliveryDate` + 30 days, both included. `None` without delivery dates.
    pub fn review_window(&self) -> Option<(OffsetDateTime, OffsetDateTime)> {
        Some((
            self.earliest_delivery_date? + REVIEW_WINDOW_OPENS,
            self.latest_delivery_date? + REVIEW_WINDOW_CLOSES,
        ))
    }

    /// The order's `LastUpdateDate` (stored orders always have one).
    pub(crate) fn last_updated(&self) -> OffsetDateTime {
        self.last_update_date.unwrap_or(self.purchase_date)
    }

    fn marketplace(&self) -> Option<&'static (&'static str, &'static str, &'static str)> {
        MARKETPLACES.iter().find(|m| m.0 == self.marketplace_id)
    }

    fn currency(&self) -> &str {
        match (&self.order_total, self.marketplace()) {
            (Some((currency, _)), _) => currency,
            (None, Some((_, _, currency))) => currency,
            (None, None) => "INR",
        }
    }

    /// How many units of each line have shipped: all for Shipped, the first line for
    /// PartiallyShipped, none otherwise.
    fn shipped_quantities(&self) -> Vec<u32> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, item)| match self.status {
                OrderStatus::Shipped => item.quantity,
                OrderStatus::PartiallyShipped if i == 0 => item.quantity,
                _ => 0,
            })
            .collect()
    }

    /// `NumberOfItemsShipped` and `NumberOfItemsUnshipped`. Amazon counts neither for Pending
    /// and Canceled orders.
    fn item_counts(&self) -> (u32, u32) {
        if matches!(self.status, OrderStatus::Pending | OrderStatus::Canceled) {
            return (0, 0);
        }
        let ordered: u32 = self.items.iter().map(|i| i.quantity).sum();
        let shipped: u32 = self.shipped_quantities().iter().sum();
        (shipped, ordered - shipped)
    }

    /// The `Order` object of getOrders and getOrder, fields named and written as Amazon does.
    pub(crate) fn to_amazon_json(&self) -> Value {
        let (shipped, unshipped) = self.item_counts();
        let sales_channel = self.marketplace().map_or("Amazon", |m| m.1);
        let mut order = Map::new();
        let mut put = |key: &str, value: Value| {
            order.insert(key.to_owned(), value);
        };
        put("AmazonOrderId", json!(self.order_id));
        put("PurchaseDate", json!(iso(self.purchase_date)));
        put("LastUpdateDate", json!(iso(self.last_updated())));
        put("OrderStatus", json!(self.status.as_str()));
        put(
            "FulfillmentChannel",
            json!(self.fulfillment_channel.as_str()),
        );
        put("SalesChannel", json!(sales_channel));
        if let Some((currency, amount)) = &self.order_total {
            put(
                "OrderTotal",
                json!({ "CurrencyCode": currency, "Amount": amount }),
            );
        }
        put("NumberOfItemsShipped", json!(shipped));
        put("NumberOfItemsUnshipped", json!(unshipped));
        put("IsReplacementOrder", json!(self.is_replacement_order));
        if self.is_replacement_order
            && let Some(replaced) = &self.replaced_order_id
        {
            put("ReplacedOrderId", json!(replaced));
        }
        put("MarketplaceId", json!(self.marketplace_id));
        put("ShipmentServiceLevelCategory", json!("Standard"));
        put("OrderType", json!("StandardOrder"));
        let dates = [
            ("EarliestShipDate", self.earliest_ship_date),
            ("LatestShipDate", self.latest_ship_date),
            ("EarliestDeliveryDate", self.earliest_delivery_date),
            ("LatestDeliveryDate", self.latest_delivery_date),
        ];
        for (key, date) in dates {
            if let Some(date) = date {
                put(key, json!(iso(date)));
            }
        }
        for flag in [
            "IsBusinessOrder",
            "IsPrime",
            "IsGlobalExpressEnabled",
            "IsPremiumOrder",
            "IsSoldByAB",
            "IsISPU",
            "IsAccessPointOrder",
        ] {
            put(flag, json!(false));
        }
        Value::Object(order)
    }

    /// The `OrderItems` of getOrderItems.
    pub(crate) fn items_json(&self) -> Value {
        let currency = self.currency();
        let items: Vec<Value> = self
            .items
            .iter()
            .zip(self.shipped_quantities())
            .map(|(item, shipped)| {
                json!({
                    "ASIN": item.asin,
                    "SellerSKU": item.seller_sku,
                    "OrderItemId": item.order_item_id,
                    "Title": item.title,
                    "QuantityOrdered": item.quantity,
                    "QuantityShipped": shipped,
                    "ItemPrice": { "CurrencyCode": currency, "Amount": item.item_price },
                })
            })
            .collect();
        Value::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn order(status: OrderStatus) -> SandboxOrder {
        let item = |id: &str, quantity| SandboxItem {
            order_item_id: id.to_owned(),
            asin: "B0SANDBOX1".to_owned(),
            seller_sku: "SKU-1".to_owned(),
            title: "Mug".to_owned(),
            quantity,
            item_price: "100.00".to_owned(),
        };
        SandboxOrder {
            order_id: "402-1234567-7654321".to_owned(),
            purchase_date: datetime!(2025-03-01 10:00 UTC),
            last_update_date: Some(datetime!(2025-03-02 08:30 UTC)),
            status,
            fulfillment_channel: FulfillmentChannel::Mfn,
            marketplace_id: "A21TJRUUN4KGV".to_owned(),
            is_replacement_order: false,
            replaced_order_id: None,
            earliest_delivery_date: Some(datetime!(2025-03-04 00:00 UTC)),
            latest_delivery_date: Some(datetime!(2025-03-06 00:00 UTC)),
            earliest_ship_date: Some(datetime!(2025-03-01 10:00 UTC)),
            latest_ship_date: None,
            order_total: Some(("INR".to_owned(), "300.00".to_owned())),
            items: vec![item("1", 2), item("2", 1)],
        }
    }

    #[test]
    fn the_review_window_runs_from_earliest_delivery_plus_5_days_to_latest_plus_30() {
        let window = order(OrderStatus::Shipped).review_window();
        assert_eq!(
            window,
            Some((
                datetime!(2025-03-09 00:00 UTC),
                datetime!(2025-04-05 00:00 UTC)
            ))
        );
        let mut undated = order(OrderStatus::Shipped);
        undated.latest_delivery_date = None;
        assert_eq!(undated.review_window(), None);
    }

    #[test]
    fn orders_are_written_with_amazons_field_names_and_formats() {
        let json = order(OrderStatus::PartiallyShipped).to_amazon_json();
        assert_eq!(json["AmazonOrderId"], "402-1234567-7654321");
        assert_eq!(json["PurchaseDate"], "2025-03-01T10:00:00Z");
        assert_eq!(json["LastUpdateDate"], "2025-03-02T08:30:00Z");
        assert_eq!(json["OrderStatus"], "PartiallyShipped");
        assert_eq!(json["FulfillmentChannel"], "MFN");
        assert_eq!(json["SalesChannel"], "Amazon.in");
        assert_eq!(
            json["OrderTotal"],
            json!({ "CurrencyCode": "INR", "Amount": "300.00" })
        );
        assert_eq!(json["NumberOfItemsShipped"], 2);
        assert_eq!(json["NumberOfItemsUnshipped"], 1);
        assert_eq!(json["IsReplacementOrder"], false);
        assert!(json.get("ReplacedOrderId").is_none());
        assert!(json.get("LatestShipDate").is_none());
        assert_eq!(json["EarliestDeliveryDate"], "2025-03-04T00:00:00Z");
    }

    #[test]
    fn pending_orders_count_no_items_and_replacements_name_the_replaced_order() {
        let json = order(OrderStatus::Pending).to_amazon_json();
        assert_eq!(json["NumberOfItemsShipped"], 0);
        assert_eq!(json["NumberOfItemsUnshipped"], 0);

        let mut replacement = order(OrderStatus::Shipped);
        replacement.is_replacement_order = true;
        replacement.replaced_order_id = Some("402-0000000-0000001".to_owned());
        let json = replacement.to_amazon_json();
        assert_eq!(json["IsReplacementOrder"], true);
        assert_eq!(json["ReplacedOrderId"], "402-0000000-0000001");
    }

    #[test]
    fn items_carry_the_order_currency_and_shipped_quantities() {
        let items = order(OrderStatus::Shipped).items_json();
        assert_eq!(items[0]["QuantityOrdered"], 2);
        assert_eq!(items[0]["QuantityShipped"], 2);
        assert_eq!(
            items[1]["ItemPrice"],
            json!({ "CurrencyCode": "INR", "Amount": "100.00" })
        );
    }
}
