//! The demo seller's settlement reports: three V2 flat files (`GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`)
//! generated from its orders, deterministic for a given "now".
//!
//! The format is the one of `shared/bench/gen_settlement.py`: tab-separated, a header line, a
//! summary row (settlement id, period, deposit date, total amount, `INR`) and detail rows, all
//! amounts in exact paise. What they contain, and why:
//! - three consecutive 14-day settlement periods, the newest ending at 00:00 UTC of the day before
//!   "now" (so they move only at midnight), each with an 11-digit settlement id derived from its
//!   end date; the middle one is served GZIP-compressed;
//! - for each order of `A21TJRUUN4KGV` that is `Shipped`, has a non-zero `OrderTotal` and was
//!   purchased within a period, that period's file has, per item line: `Order/ItemPrice/Principal`
//!   (with SKU and quantity), `Order/ItemPrice/Product Tax` (GST 18 % included in the price),
//!   `Order/ItemPrice/Shipping` (₹40 on the first line of MFN orders over ₹100),
//!   `Order/ItemFees/Commission` (10 %), `Order/ItemFees/FBAPerUnitFulfillmentFee` (AFN orders
//!   only: Amazon does not fulfil MFN ones), `Order/ItemFees/FixedClosingFee` and the withheld TCS
//!   (0.5 % of the principal: `TCS-IGST`, or `TCS-CGST` + `TCS-SGST` for every other order).
//!   Principal + Product Tax + Shipping of an order is exactly its `OrderTotal` as getOrders gives
//!   it, so a reconciliation finds those orders paid;
//! - except the **underpaid** order: the first order (by posting time) of the middle settlement,
//!   whose Principal is settled ₹1.00 short ([`DemoSettlement::underpaid_order_id`]);
//! - the **refunded** order: the last order of the oldest settlement is paid in full there and
//!   refunded in full in the newest one (`Refund/ItemPrice/*` negative, commission given back less
//!   a `RefundCommission`, TCS given back; [`DemoSettlement::refunded_order_id`]);
//! - one line without an order in the newest settlement: `other-transaction` /
//!   `other-transaction` / `Storage Fee`, ₹-123.45;
//! - the summary's `total-amount` is the exact sum of the file's detail amounts.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, Time, UtcOffset};

use crate::order::{FulfillmentChannel, OrderStatus, SandboxOrder};
use crate::sandbox::INDIA_MARKETPLACE;

/// The report type of settlement reports.
pub const SETTLEMENT_REPORT_TYPE: &str = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2";

/// The columns of the V2 flat file, in Amazon's order.
pub const SETTLEMENT_HEADER: [&str; 24] = ecomdrive_core::settlement::AMAZON_V2_COLUMNS;

const PERIOD: Duration = Duration::days(14);
const SETTLEMENTS: usize = 3;
/// Which of the three (oldest first) is served GZIP-compressed.
const GZIP_INDEX: usize = 1;
const SHIPPING_PAISE: i64 = 4_000;
const STORAGE_FEE_PAISE: i64 = -12_345;
const FBA_FEE_PER_UNIT_PAISE: i64 = 4_500;

/// One demo settlement report: its metadata as getReports lists it, and its flat file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSettlement {
    /// getReports' `reportId` (11 digits).
    pub report_id: String,
    /// getReports' `reportDocumentId`.
    pub report_document_id: String,
    /// The file's `settlement-id` (11 digits).
    pub settlement_id: String,
    /// The settlement period, `[start, end)`: `dataStartTime` and `dataEndTime` of the report.
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub deposit_date: OffsetDateTime,
    /// The report's `createdTime`: two hours after the period ends.
    pub created: OffsetDateTime,
    /// Served with `compressionAlgorithm: GZIP` (the download is then gzip bytes).
    pub gzip: bool,
    /// `total-amount` in paise.
    pub total_paise: i64,
    /// The order settled ₹1.00 short in this file, if this file has it.
    pub underpaid_order_id: Option<String>,
    /// The order refunded in this file (its sale is in an older file), if this file has it.
    pub refunded_order_id: Option<String>,
    /// The flat file: tab-separated, `\n` line ends, a header line first.
    pub tsv: String,
}

impl DemoSettlement {
    /// The bytes the document download serves: the TSV, gzip-compressed when [`Self::gzip`].
    pub fn document_bytes(&self) -> Vec<u8> {
        if !self.gzip {
            return self.tsv.clone().into_bytes();
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(self.tsv.as_bytes());
        encoder.finish().unwrap_or_default()
    }
}

/// The demo seller's settlements as of `now`, from the demo orders of a sandbox whose demo
/// orders were made at `now` (`SandboxConfig::demo_at(.., now)` with the clock set to `now`).
/// A running sandbox answers the same as [`crate::AmazonSandbox::settlements`].
pub fn demo_settlement_files(now: OffsetDateTime) -> Vec<DemoSettlement> {
    settlement_files(&crate::demo::orders(INDIA_MARKETPLACE, now), now)
}

/// Three settlements of these orders, for periods ending before `now` (see the module docs).
pub fn settlement_files(orders: &[SandboxOrder], now: OffsetDateTime) -> Vec<DemoSettlement> {
    let now = now.to_offset(UtcOffset::UTC);
    let newest_end = now.replace_time(Time::MIDNIGHT) - Duration::days(1);
    let periods: Vec<(OffsetDateTime, OffsetDateTime)> = (0..SETTLEMENTS)
        .map(|i| {
            let end = newest_end - PERIOD * (SETTLEMENTS - 1 - i) as i32;
            (end - PERIOD, end)
        })
        .collect();

    let mut settled: Vec<Vec<Settled>> = periods
        .iter()
        .map(|(start, end)| {
            let mut in_period: Vec<Settled> = orders
                .iter()
                .filter(|o| (*start..*end).contains(&o.purchase_date))
                .filter_map(|o| Settled::of(o, *start, *end))
                .collect();
            in_period.sort_by(|a, b| (a.posted, &a.order_id).cmp(&(b.posted, &b.order_id)));
            in_period
        })
        .collect();

    // The first order of the middle settlement is paid a rupee short.
    let underpaid = settled[1].first_mut().map(|order| {
        if let Some(first) = order.lines.first_mut() {
            first.principal -= 100;
        }
        order.order_id.clone()
    });
    // The last order of the oldest settlement is refunded in the newest one.
    let refunded = settled[0].last().cloned();

    periods
        .iter()
        .zip(settled)
        .enumerate()
        .map(|(index, ((start, end), orders))| {
            let settlement_id = (24_000_000_000 + day_number(*end) * 10 + index as i64).to_string();
            let report_id = (51_000_000_000 + day_number(*end) * 10 + index as i64).to_string();
            let newest = index == SETTLEMENTS - 1;
            let mut blocks: Vec<(OffsetDateTime, String, Vec<Row>)> = orders
                .iter()
                .map(|o| (o.posted, o.order_id.clone(), o.order_rows()))
                .collect();
            let mut refunded_order_id = None;
            if newest {
                if let Some(order) = &refunded {
                    let at = *start + Duration::days(2) + Duration::hours(10);
                    blocks.push((at, order.order_id.clone(), order.refund_rows(at)));
                    refunded_order_id = Some(order.order_id.clone());
                }
                let at = *start + Duration::days(7) + Duration::minutes(390);
                blocks.push((at, String::new(), vec![storage_fee(at)]));
            }
            blocks.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            let rows: Vec<Row> = blocks.into_iter().flat_map(|(_, _, rows)| rows).collect();
            let total_paise: i64 = rows.iter().map(|r| r.paise).sum();
            let deposit_date = *end + Duration::days(1);
            let tsv = flat_file(
                &settlement_id,
                *start,
                *end,
                deposit_date,
                total_paise,
                &rows,
            );
            DemoSettlement {
                report_document_id: format!("amzn1.spdoc.1.4.eu.sandbox-{report_id}.T1SETTLEMENT"),
                report_id,
                settlement_id,
                start: *start,
                end: *end,
                deposit_date,
                created: *end + Duration::hours(2),
                gzip: index == GZIP_INDEX,
                total_paise,
                underpaid_order_id: (index == 1).then(|| underpaid.clone()).flatten(),
                refunded_order_id,
                tsv,
            }
        })
        .collect()
}

/// Days since 1970-01-01 of the date (for ids that change with the period).
fn day_number(at: OffsetDateTime) -> i64 {
    i64::from(at.date().to_julian_day()) - 2_440_588
}

/// One item line of a settled order, in paise.
#[derive(Debug, Clone)]
struct SettledLine {
    order_item_code: String,
    sku: String,
    quantity: u32,
    principal: i64,
    tax: i64,
    shipping: i64,
    commission: i64,
    fba_fee: i64,
    closing_fee: i64,
    tcs: i64,
}

/// A shipped order as a settlement pays it.
#[derive(Debug, Clone)]
struct Settled {
    order_id: String,
    posted: OffsetDateTime,
    fulfillment: &'static str,
    /// CGST + SGST (same state) rather than IGST.
    intra_state: bool,
    lines: Vec<SettledLine>,
}

impl Settled {
    fn of(order: &SandboxOrder, start: OffsetDateTime, end: OffsetDateTime) -> Option<Self> {
        if order.status != OrderStatus::Shipped || order.marketplace_id != INDIA_MARKETPLACE {
            return None;
        }
        let (currency, amount) = order.order_total.as_ref()?;
        let total = paise(amount).filter(|t| *t > 0 && currency == "INR")?;
        let mut prices: Vec<i64> = order
            .items
            .iter()
            .map(|i| paise(&i.item_price))
            .collect::<Option<_>>()?;
        // The items must add up to the total getOrders reports; any difference goes on the last.
        let difference = total - prices.iter().sum::<i64>();
        *prices.last_mut()? += difference;
        let afn = order.fulfillment_channel == FulfillmentChannel::Afn;
        let lines = order
            .items
            .iter()
            .zip(prices)
            .enumerate()
            .map(|(index, (item, price))| {
                let shipping = if !afn && index == 0 && price > 10_000 {
                    SHIPPING_PAISE
                } else {
                    0
                };
                let goods = price - shipping;
                let principal = rounded(goods * 100, 118);
                let units = i64::from(item.quantity);
                let unit_price = price / units.max(1);
                SettledLine {
                    order_item_code: item.order_item_id.clone(),
                    sku: item.seller_sku.clone(),
                    quantity: item.quantity,
                    principal,
                    tax: goods - principal,
                    shipping,
                    commission: -rounded(price * 10, 100),
                    fba_fee: if afn {
                        -FBA_FEE_PER_UNIT_PAISE * units
                    } else {
                        0
                    },
                    closing_fee: -units * if unit_price < 50_000 { 1_500 } else { 3_000 },
                    tcs: -rounded(principal * 5, 1_000),
                }
            })
            .collect();
        // Amazon posts the sale when it ships: a day after purchase, inside the period.
        let posted = (order.purchase_date + Duration::days(1))
            .min(end - Duration::seconds(1))
            .max(start)
            .to_offset(UtcOffset::UTC);
        let digits: u32 = order
            .order_id
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| u32::from(b - b'0'))
            .sum();
        Some(Self {
            order_id: order.order_id.clone(),
            posted,
            fulfillment: order.fulfillment_channel.as_str(),
            intra_state: digits.is_multiple_of(2),
            lines,
        })
    }

    fn shipment_id(&self) -> String {
        let tail: String = self.order_id.chars().rev().take(7).collect();
        format!("S{}", tail.chars().rev().collect::<String>())
    }

    fn row(&self, kind: &'static str, at: OffsetDateTime, line: &SettledLine) -> Row {
        Row {
            transaction_type: kind,
            order_id: self.order_id.clone(),
            adjustment_id: String::new(),
            shipment_id: String::new(),
            amount_type: "",
            amount_description: "",
            paise: 0,
            fulfillment: self.fulfillment,
            posted: at,
            order_item_code: line.order_item_code.clone(),
            merchant_adjustment_item_id: String::new(),
            sku: line.sku.clone(),
            quantity: String::new(),
        }
    }

    fn tcs_rows(&self, base: &Row, tcs: i64) -> Vec<Row> {
        if self.intra_state {
            let cgst = tcs / 2;
            vec![
                base.with("ItemWithheldTax", "TCS-CGST", cgst),
                base.with("ItemWithheldTax", "TCS-SGST", tcs - cgst),
            ]
        } else {
            vec![base.with("ItemWithheldTax", "TCS-IGST", tcs)]
        }
    }

    fn order_rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for line in &self.lines {
            let mut base = self.row("Order", self.posted, line);
            base.shipment_id = self.shipment_id();
            let mut principal = base.with("ItemPrice", "Principal", line.principal);
            principal.quantity = line.quantity.to_string();
            rows.push(principal);
            rows.push(base.with("ItemPrice", "Product Tax", line.tax));
            if line.shipping != 0 {
                rows.push(base.with("ItemPrice", "Shipping", line.shipping));
            }
            rows.push(base.with("ItemFees", "Commission", line.commission));
            if line.fba_fee != 0 {
                rows.push(base.with("ItemFees", "FBAPerUnitFulfillmentFee", line.fba_fee));
            }
            rows.push(base.with("ItemFees", "FixedClosingFee", line.closing_fee));
            rows.extend(self.tcs_rows(&base, line.tcs));
        }
        rows
    }

    /// A full refund: the price back to the buyer, the commission back to the seller less
    /// Amazon's refund fee (a fifth of it, ₹50 at most), the TCS given back.
    fn refund_rows(&self, at: OffsetDateTime) -> Vec<Row> {
        let mut rows = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            let mut base = self.row("Refund", at, line);
            base.adjustment_id = format!("amzn1.adj.sandbox{}", self.shipment_id());
            base.merchant_adjustment_item_id = format!("A{index:02}{}", line.order_item_code);
            let mut principal = base.with("ItemPrice", "Principal", -line.principal);
            principal.quantity = line.quantity.to_string();
            rows.push(principal);
            rows.push(base.with("ItemPrice", "Product Tax", -line.tax));
            if line.shipping != 0 {
                rows.push(base.with("ItemPrice", "Shipping", -line.shipping));
            }
            rows.push(base.with("ItemFees", "Commission", -line.commission));
            let refund_fee = (-line.commission / 5).min(5_000);
            rows.push(base.with("ItemFees", "RefundCommission", -refund_fee));
            rows.extend(self.tcs_rows(&base, -line.tcs));
        }
        rows
    }
}

/// One detail row.
#[derive(Debug, Clone)]
struct Row {
    transaction_type: &'static str,
    order_id: String,
    adjustment_id: String,
    shipment_id: String,
    amount_type: &'static str,
    amount_description: &'static str,
    paise: i64,
    fulfillment: &'static str,
    posted: OffsetDateTime,
    order_item_code: String,
    merchant_adjustment_item_id: String,
    sku: String,
    quantity: String,
}

impl Row {
    fn with(&self, amount_type: &'static str, description: &'static str, paise: i64) -> Self {
        Self {
            amount_type,
            amount_description: description,
            paise,
            quantity: String::new(),
            ..self.clone()
        }
    }
}

fn storage_fee(at: OffsetDateTime) -> Row {
    Row {
        transaction_type: "other-transaction",
        order_id: String::new(),
        adjustment_id: String::new(),
        shipment_id: String::new(),
        amount_type: "other-transaction",
        amount_description: "Storage Fee",
        paise: STORAGE_FEE_PAISE,
        fulfillment: "",
        posted: at,
        order_item_code: String::new(),
        merchant_adjustment_item_id: String::new(),
        sku: String::new(),
        quantity: String::new(),
    }
}

fn flat_file(
    settlement_id: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    deposit: OffsetDateTime,
    total_paise: i64,
    rows: &[Row],
) -> String {
    let mut out = SETTLEMENT_HEADER.join("\t");
    out.push('\n');
    let mut summary = vec![
        settlement_id.to_owned(),
        date_time(start),
        date_time(end),
        date_time(deposit),
        amount(total_paise),
        "INR".to_owned(),
    ];
    summary.resize(SETTLEMENT_HEADER.len(), String::new());
    out.push_str(&summary.join("\t"));
    out.push('\n');
    for row in rows {
        let fields: [&str; 24] = [
            settlement_id,
            "",
            "",
            "",
            "",
            "",
            row.transaction_type,
            &row.order_id,
            &row.order_id,
            &row.adjustment_id,
            &row.shipment_id,
            "Amazon.in",
            row.amount_type,
            row.amount_description,
            &amount(row.paise),
            row.fulfillment,
            &date(row.posted),
            &date_time(row.posted),
            &row.order_item_code,
            "",
            &row.merchant_adjustment_item_id,
            &row.sku,
            &row.quantity,
            "",
        ];
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

/// `2026-10-01T00:00:00+00:00`.
fn date_time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    at.to_offset(UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// `2026-10-01`.
fn date(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]");
    at.to_offset(UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// Paise as the file writes amounts: `1234.50`, `-0.05`.
pub(crate) fn amount(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let abs = paise.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `"799.00"` (or `"799"`, `"799.5"`) in paise; `None` if it is not such an amount.
pub(crate) fn paise(amount: &str) -> Option<i64> {
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
        return None;
    }
    let cents = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse::<i64>().ok()?,
    };
    let value = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)?;
    Some(if negative { -value } else { value })
}

/// `numerator / denominator` rounded half away from zero (for positive denominators).
fn rounded(numerator: i64, denominator: i64) -> i64 {
    let half = denominator / 2;
    if numerator >= 0 {
        (numerator + half) / denominator
    } else {
        (numerator - half) / denominator
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);

    #[test]
    fn amounts_are_written_and_read_in_exact_paise() {
        assert_eq!(amount(123_450), "1234.50");
        assert_eq!(amount(-5), "-0.05");
        assert_eq!(amount(0), "0.00");
        assert_eq!(paise("799.00"), Some(79_900));
        assert_eq!(paise("799.5"), Some(79_950));
        assert_eq!(paise("-0.05"), Some(-5));
        for bad in ["", "1.234", "1,00", "abc", ".5"] {
            assert_eq!(paise(bad), None, "{bad}");
        }
        assert_eq!(rounded(5, 10), 1);
        assert_eq!(rounded(-5, 10), -1);
        assert_eq!(rounded(4, 10), 0);
    }

    #[test]
    fn the_demo_settlements_are_the_same_every_time_and_end_before_now() {
        let files = demo_settlement_files(NOW);
        assert_eq!(files, demo_settlement_files(NOW));
        assert_eq!(files.len(), 3);
        assert_eq!(files[2].end, datetime!(2025-06-29 00:00 UTC));
        assert_eq!(files[0].start, datetime!(2025-05-18 00:00 UTC));
        for pair in files.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(pair[0].created < pair[1].created);
        }
        let gzipped: Vec<bool> = files.iter().map(|f| f.gzip).collect();
        assert_eq!(gzipped, [false, true, false]);
        for file in &files {
            assert_eq!(file.settlement_id.len(), 11);
            assert_eq!(file.report_id.len(), 11);
            assert!(file.created < NOW && file.deposit_date <= NOW);
        }
        assert!(files[1].underpaid_order_id.is_some());
        assert!(files[2].refunded_order_id.is_some());
    }
}
