//! Amazon settlements (POLICY A3, A8): the V2 flat file, what a settlement adds up to, the cost of
//! goods, the P&L and the reconciliation of deposits and orders. Pure: no I/O beyond a `BufRead`.
//!
//! The flow: [`parse`] streams a flat file once, checking every line and summing amounts per
//! charge (transaction type, amount type, amount description) per day, per SKU and day, and per
//! order (handed out as the stream passes each order, so memory grows with SKUs, not lines).
//! The store keeps those sums, never the lines; [`pnl`] turns them into a P&L with [`cogs`];
//! [`reconcile`] checks deposits, orders and fees.

pub mod cogs;
pub mod parse;
pub mod pnl;
pub mod reconcile;

#[cfg(test)]
mod properties;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::{Date, OffsetDateTime};

pub use parse::parse_settlement;

/// Amazon's settlement id (digits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SettlementId(String);

impl SettlementId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= 32 && raw.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Display for SettlementId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for SettlementId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("not a settlement id: {s:?}"))
    }
}
impl From<SettlementId> for String {
    fn from(s: SettlementId) -> String {
        s.0
    }
}

/// What one line's amount is: Amazon's `transaction-type`, `amount-type`, `amount-description`
/// (e.g. `Order` / `ItemFees` / `Commission`). The P&L classifies charges; the store keeps them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Charge {
    pub transaction_type: String,
    pub amount_type: String,
    pub amount_description: String,
}

/// A sum of amounts of one charge. The charge is shared (an `Arc`): a file names a few dozen
/// charges, and handing each order's sums out must not copy their names every time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeAmount {
    #[serde(flatten)]
    pub charge: Arc<Charge>,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// The summary row: the settlement as a deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementSummary {
    pub settlement_id: SettlementId,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub end: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub deposit_date: Option<OffsetDateTime>,
    /// What Amazon pays (or, when negative, charges) on `deposit_date`.
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
    /// ISO 4217, e.g. `INR`.
    pub currency: String,
}

/// All amounts of one posted day (every line: with or without order or SKU).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySums {
    #[serde(with = "crate::amazon::iso_date")]
    pub day: Date,
    pub charges: Vec<ChargeAmount>,
}

/// Units of a SKU: `quantity-purchased` of `ItemPrice`/`Principal` lines, by transaction type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Units {
    /// On `Order` lines.
    pub sold: u64,
    /// On `Refund` lines.
    pub refunded: u64,
}

/// All amounts of one SKU on one posted day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuDaySums {
    pub sku: String,
    #[serde(with = "crate::amazon::iso_date")]
    pub day: Date,
    pub units: Units,
    pub charges: Vec<ChargeAmount>,
}

/// One SKU's (or, with `sku: None`, the order-level lines') amounts within an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemSums {
    pub sku: Option<String>,
    pub units: Units,
    pub charges: Vec<ChargeAmount>,
}

/// The amounts of one order, from one contiguous run of its lines. Amazon writes an order's lines
/// together, but nothing guarantees it: an order that comes back later in the file is handed out
/// again as another run (told apart by `first_line`), and readers add runs up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSums {
    pub order_id: String,
    /// The file's line number (header = 1) of the run's first line.
    pub first_line: u64,
    /// The posted day of the run's first line: the day its P&L and COGS count on.
    #[serde(with = "crate::amazon::iso_date")]
    pub day: Date,
    pub items: Vec<OrderItemSums>,
}

/// A whole, valid settlement file, without its per-order sums (those went to `on_order`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedSettlement {
    pub summary: SettlementSummary,
    /// `marketplace-name` of the detail lines (e.g. `Amazon.in`), the first one seen.
    pub marketplace: Option<String>,
    /// Detail lines (the summary row not counted).
    pub detail_lines: u64,
    /// The sum of every detail line's amount.
    #[serde(with = "rust_decimal::serde::str")]
    pub lines_total: Decimal,
    /// `total_amount - lines_total`: zero when the settlement reconciles.
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
    pub reconciles: bool,
    /// Order runs handed to `on_order`.
    pub order_runs: u64,
    /// Days sorted ascending.
    pub by_day: Vec<DaySums>,
    /// Sorted by (day, sku).
    pub by_sku_day: Vec<SkuDaySums>,
    /// SHA-256 (hex) of the decoded lines, line endings and encoding aside: the same settlement
    /// downloaded twice has the same fingerprint; different content has a different one.
    pub fingerprint: String,
}

/// One reason a file (or a COGS upload) is refused, at its 1-based line (header = line 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: u64,
    pub reason: String,
}

/// A file refused whole: its first problems (at most [`MAX_PROBLEMS`]), and whether there were
/// more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("the file was rejected: {} problem(s), first at line {}", problems.len(), problems.first().map_or(0, |p| p.line))]
pub struct Rejection {
    pub problems: Vec<Problem>,
    pub more: bool,
}

/// The columns of Amazon's V2 flat file, in Amazon's order (the parser finds them by name;
/// this list is for whoever writes such a file: the sandbox, tests).
pub const AMAZON_V2_COLUMNS: [&str; 24] = [
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "merchant-order-id",
    "adjustment-id",
    "shipment-id",
    "marketplace-name",
    "amount-type",
    "amount-description",
    "amount",
    "fulfillment-id",
    "posted-date",
    "posted-date-time",
    "order-item-code",
    "merchant-order-item-id",
    "merchant-adjustment-item-id",
    "sku",
    "quantity-purchased",
    "promotion-id",
];

/// How many problems a rejection lists.
pub const MAX_PROBLEMS: usize = 20;
