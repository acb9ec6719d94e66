//! Payment reconciliation (POLICY A8): does a deposit add up to its settlement's lines, was each
//! order paid what it was sold for, and which orders were charged an unusual fee.

use super::pnl::{Category, classify, is_refund_like};
use super::{OrderSums, ParsedSettlement, SettlementId};
use crate::amazon::order::{Money, OrderStatus};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime, UtcOffset};

/// A settlement as a deposit: what Amazon says it pays against the sum of the file's lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositCheck {
    pub settlement_id: SettlementId,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub deposit_date: Option<OffsetDateTime>,
    /// What Amazon pays (negative: charges) on the deposit date.
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
    /// The sum of every detail line.
    #[serde(with = "rust_decimal::serde::str")]
    pub lines_total: Decimal,
    /// `total_amount - lines_total`: zero when the deposit adds up.
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
    pub reconciles: bool,
}

/// Checks a settlement's deposit against its lines, to the paisa (amounts are exact decimals).
pub fn deposit_check(s: &ParsedSettlement) -> DepositCheck {
    let difference = s.summary.total_amount - s.lines_total;
    DepositCheck {
        settlement_id: s.summary.settlement_id.clone(),
        deposit_date: s.summary.deposit_date,
        total_amount: s.summary.total_amount,
        lines_total: s.lines_total,
        difference,
        reconciles: difference.is_zero(),
    }
}

/// What order sync knows of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotal {
    pub order_id: String,
    pub status: OrderStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub purchase_date: OffsetDateTime,
    /// Amazon leaves it out of some orders (pending, canceled).
    pub total: Option<Money>,
}

/// Whether an order was paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Settled for its total (to within [`PAID_TOLERANCE`]), or settled when the order has no
    /// total to compare against.
    Paid,
    /// Settled for less than its total.
    Underpaid,
    /// Settled for more than its total.
    Overpaid,
    /// Shipped more than [`UNPAID_AFTER_DAYS`] ago and in no settlement.
    Unpaid,
    /// Some or all of it was refunded (or charged back).
    Refunded,
    /// Not settled yet, and not overdue: recent, or not shipped (canceled, unshipped…).
    Pending,
}

/// An order's payment, from every settlement line of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReconciliation {
    pub order_id: String,
    pub status: PaymentStatus,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub order_total: Option<Decimal>,
    /// What the buyer paid, before Amazon's fees: the `Order` lines' item price, shipping, taxes
    /// collected and promotions.
    #[serde(with = "rust_decimal::serde::str")]
    pub settled_sales: Decimal,
    /// The same of refund lines (negative: given back).
    #[serde(with = "rust_decimal::serde::str")]
    pub refunded: Decimal,
    /// `settled_sales - order_total`: negative when Amazon paid less than the order's total;
    /// zero when the order has no total.
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
}

/// Amazon settles every 14 days and pays some days later; past 30 days after purchase, a shipped
/// order that is in no settlement is worth a look.
pub const UNPAID_AFTER_DAYS: i64 = 30;

/// How far the settled sales may be from the order total and still count as paid: one paisa (or
/// cent). Amazon rounds the tax of each item line, so an order's lines can add up to a paisa
/// away from its total.
pub const PAID_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// Reconciles one order against `runs`, every run of it in every settlement (runs of other orders
/// are ignored). The order total and the settlements must be in the same currency: the caller
/// compares only orders of the settlements' marketplace.
///
/// The status, first match wins: any refund line → `Refunded`; settled → `Paid`, `Underpaid` or
/// `Overpaid`; shipped and purchased more than [`UNPAID_AFTER_DAYS`] before `today` (UTC days) →
/// `Unpaid`; otherwise `Pending`.
pub fn reconcile_order(order: &OrderTotal, runs: &[OrderSums], today: Date) -> OrderReconciliation {
    let mut settled_sales = Decimal::ZERO;
    let mut refunded = Decimal::ZERO;
    let mut settled = false;
    let mut any_refund = false;
    let charges = runs
        .iter()
        .filter(|r| r.order_id == order.order_id)
        .flat_map(|r| &r.items)
        .flat_map(|i| &i.charges);
    for c in charges {
        let paid_by_buyer = matches!(c.charge.amount_type.as_str(), "ItemPrice" | "Promotion");
        if is_refund_like(&c.charge.transaction_type) {
            any_refund = true;
            if paid_by_buyer {
                refunded += c.amount;
            }
        } else if c.charge.transaction_type == "Order" && paid_by_buyer {
            settled = true;
            settled_sales += c.amount;
        }
    }

    let order_total = order.total.as_ref().map(|m| m.amount);
    let difference = order_total.map_or(Decimal::ZERO, |total| settled_sales - total);
    let purchased = order.purchase_date.to_offset(UtcOffset::UTC).date();
    let overdue = (today - purchased).whole_days() > UNPAID_AFTER_DAYS;
    let status = if any_refund {
        PaymentStatus::Refunded
    } else if settled {
        match order_total {
            None => PaymentStatus::Paid,
            Some(_) if difference.abs() <= PAID_TOLERANCE => PaymentStatus::Paid,
            Some(_) if difference < Decimal::ZERO => PaymentStatus::Underpaid,
            Some(_) => PaymentStatus::Overpaid,
        }
    } else if order.status == OrderStatus::Shipped && overdue {
        PaymentStatus::Unpaid
    } else {
        PaymentStatus::Pending
    };
    OrderReconciliation {
        order_id: order.order_id.clone(),
        status,
        order_total,
        settled_sales,
        refunded,
        difference,
    }
}

/// An order charged a fee per unit far from what the SKU usually pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeOutlier {
    pub order_id: String,
    pub sku: String,
    /// The fee's description, e.g. `FBAPerUnitFulfillmentFee`.
    pub fee: String,
    /// This order's fee per unit sold (fees are negative), 4 decimals.
    #[serde(with = "rust_decimal::serde::str")]
    pub per_unit: Decimal,
    /// The median over the SKU's orders, 4 decimals.
    #[serde(with = "rust_decimal::serde::str")]
    pub usual_per_unit: Decimal,
}

/// How many orders of a SKU charged a fee before its usual rate is trusted.
pub const MIN_FEE_SAMPLES: usize = 5;

/// How far from the usual a fee per unit may be, as a fraction of the usual: 20%.
pub const FEE_TOLERANCE: Decimal = Decimal::from_parts(20, 0, 0, false, 2);

/// …and at least this much in money: on small fees, 20% is rounding and weight-band noise.
pub const FEE_TOLERANCE_MIN: Decimal = Decimal::from_parts(100, 0, 0, false, 2);

/// Orders whose fee per unit sold differs from the SKU's usual by more than
/// max([`FEE_TOLERANCE`] × |usual|, [`FEE_TOLERANCE_MIN`]) (exactly at the tolerance is fine).
///
/// Per (SKU, fee description), the usual is the median fee per unit over the orders that sold the
/// SKU and were charged that fee on their `Order` lines (runs of an order are added up); at least
/// [`MIN_FEE_SAMPLES`] such orders are needed. A fee missing from an order is not flagged (a SKU
/// can be sold both through FBA and by the merchant), nor are fees on refunds. Sorted by order,
/// SKU, fee.
pub fn fee_outliers(orders: &[OrderSums]) -> Vec<FeeOutlier> {
    // (order, sku) → units sold and fees charged.
    let mut per_order: BTreeMap<(&str, &str), Sold> = BTreeMap::new();
    for run in orders {
        for item in &run.items {
            let Some(sku) = item.sku.as_deref() else {
                continue;
            };
            let sold = per_order.entry((&run.order_id, sku)).or_default();
            sold.units = sold.units.saturating_add(item.units.sold);
            for c in &item.charges {
                if c.charge.transaction_type != "Order" {
                    continue;
                }
                if let Category::Fee(fee) = classify(&c.charge) {
                    *sold.fees.entry(fee).or_default() += c.amount;
                }
            }
        }
    }

    // (sku, fee) → (order, fee per unit).
    let mut samples: BTreeMap<(&str, &str), Vec<(&str, Decimal)>> = BTreeMap::new();
    for ((order_id, sku), sold) in &per_order {
        if sold.units == 0 {
            continue;
        }
        for (fee, amount) in &sold.fees {
            if let Some(per_unit) = amount.checked_div(Decimal::from(sold.units)) {
                samples
                    .entry((sku, fee))
                    .or_default()
                    .push((order_id, four_places(per_unit)));
            }
        }
    }

    let mut outliers = Vec::new();
    for ((sku, fee), orders) in &samples {
        if orders.len() < MIN_FEE_SAMPLES {
            continue;
        }
        let Some(usual) = median(orders.iter().map(|(_, v)| *v).collect()) else {
            continue;
        };
        let allowed = (usual.abs() * FEE_TOLERANCE).max(FEE_TOLERANCE_MIN);
        for (order_id, per_unit) in orders {
            if (*per_unit - usual).abs() > allowed {
                outliers.push(FeeOutlier {
                    order_id: (*order_id).to_owned(),
                    sku: (*sku).to_owned(),
                    fee: (*fee).to_owned(),
                    per_unit: *per_unit,
                    usual_per_unit: usual,
                });
            }
        }
    }
    outliers.sort_by(|a, b| (&a.order_id, &a.sku, &a.fee).cmp(&(&b.order_id, &b.sku, &b.fee)));
    outliers
}

/// One SKU within one order: units sold and fees charged, by fee.
#[derive(Default)]
struct Sold {
    units: u64,
    fees: BTreeMap<String, Decimal>,
}

fn four_places(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
}

/// The middle value; of an even count, the mean of the two middle ones.
fn median(mut values: Vec<Decimal>) -> Option<Decimal> {
    values.sort();
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => values.get(mid).copied(),
        _ => {
            let (a, b) = (values.get(mid - 1)?, values.get(mid)?);
            (*a + *b).checked_div(Decimal::TWO).map(four_places)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pnl::test_data::{charge, dec};
    use super::super::{ChargeAmount, OrderItemSums, SettlementSummary, Units};
    use super::*;
    use time::macros::{date, datetime};

    const TODAY: Date = date!(2026 - 11 - 20);
    const ID: &str = "171-1111111-1111111";

    fn order(status: OrderStatus, purchased: OffsetDateTime, total: Option<&str>) -> OrderTotal {
        OrderTotal {
            order_id: ID.into(),
            status,
            purchase_date: purchased,
            total: total.map(|t| Money {
                currency: "INR".into(),
                amount: dec(t),
            }),
        }
    }

    fn run(
        order_id: &str,
        sku: &str,
        sold: u64,
        charges: &[(&str, &str, &str, &str)],
    ) -> OrderSums {
        OrderSums {
            order_id: order_id.into(),
            first_line: 3,
            day: date!(2026 - 10 - 07),
            items: vec![OrderItemSums {
                sku: Some(sku.into()),
                units: Units { sold, refunded: 0 },
                charges: charges
                    .iter()
                    .map(|(tt, at, desc, amount)| ChargeAmount {
                        charge: charge(tt, at, desc).into(),
                        amount: dec(amount),
                    })
                    .collect(),
            }],
        }
    }

    /// A sale of 1180.00 (1000.00 + 18% GST) with 50.00 shipping and a 100.00 promotion: the
    /// buyer paid 1130.00.
    fn sale(order_id: &str) -> OrderSums {
        run(
            order_id,
            "KURTA-BLUE",
            1,
            &[
                ("Order", "ItemPrice", "Principal", "1000.00"),
                ("Order", "ItemPrice", "Product Tax", "180.00"),
                ("Order", "ItemPrice", "Shipping", "50.00"),
                ("Order", "Promotion", "Principal", "-100.00"),
                ("Order", "ItemFees", "Commission", "-120.00"),
                ("Order", "ItemWithheldTax", "TCS-IGST", "-10.00"),
            ],
        )
    }

    const RECENT: OffsetDateTime = datetime!(2026-11-01 10:00 UTC);

    #[test]
    fn policy_a8_a_deposit_reconciles_when_lines_add_up() {
        let mut s = ParsedSettlement {
            summary: SettlementSummary {
                settlement_id: SettlementId::parse("29876543210").expect("id"),
                start: None,
                end: None,
                deposit_date: Some(datetime!(2026-10-17 00:00 UTC)),
                total_amount: dec("1234.56"),
                currency: "INR".into(),
            },
            marketplace: Some("Amazon.in".into()),
            detail_lines: 10,
            lines_total: dec("1234.56"),
            difference: Decimal::ZERO,
            reconciles: true,
            order_runs: 2,
            by_day: vec![],
            by_sku_day: vec![],
            fingerprint: String::new(),
        };
        let check = deposit_check(&s);
        assert_eq!(
            check,
            DepositCheck {
                settlement_id: s.summary.settlement_id.clone(),
                deposit_date: Some(datetime!(2026-10-17 00:00 UTC)),
                total_amount: dec("1234.56"),
                lines_total: dec("1234.56"),
                difference: Decimal::ZERO,
                reconciles: true,
            }
        );
        s.lines_total = dec("1234.50");
        let check = deposit_check(&s);
        assert_eq!((check.difference, check.reconciles), (dec("0.06"), false));
        let json = serde_json::to_value(&check).expect("json");
        assert_eq!(json["difference"], "0.06");
        assert_eq!(json["deposit_date"], "2026-10-17T00:00:00Z");
    }

    #[test]
    fn paid_when_the_buyers_payment_matches_the_order_total() {
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1130.00")),
            &[sale(ID)],
            TODAY,
        );
        assert_eq!(
            got,
            OrderReconciliation {
                order_id: ID.into(),
                status: PaymentStatus::Paid,
                order_total: Some(dec("1130.00")),
                settled_sales: dec("1130.00"),
                refunded: Decimal::ZERO,
                difference: Decimal::ZERO,
            }
        );
        // A paisa of tax rounding either way is still paid.
        for total in ["1130.01", "1129.99"] {
            let got = reconcile_order(
                &order(OrderStatus::Shipped, RECENT, Some(total)),
                &[sale(ID)],
                TODAY,
            );
            assert_eq!(got.status, PaymentStatus::Paid, "{total}");
        }
        // Settled, and no total to compare against.
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, None),
            &[sale(ID)],
            TODAY,
        );
        assert_eq!(
            (got.status, got.difference),
            (PaymentStatus::Paid, Decimal::ZERO)
        );
    }

    #[test]
    fn underpaid_and_overpaid_beyond_a_paisa() {
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1130.02")),
            &[sale(ID)],
            TODAY,
        );
        assert_eq!(
            (got.status, got.difference),
            (PaymentStatus::Underpaid, dec("-0.02"))
        );
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1000.00")),
            &[sale(ID)],
            TODAY,
        );
        assert_eq!(
            (got.status, got.difference),
            (PaymentStatus::Overpaid, dec("130.00"))
        );
    }

    #[test]
    fn runs_of_an_order_add_up_and_runs_of_others_are_ignored() {
        let first = run(
            ID,
            "KURTA-BLUE",
            1,
            &[("Order", "ItemPrice", "Principal", "1000.00")],
        );
        let later = run(
            ID,
            "KURTA-BLUE",
            0,
            &[("Order", "ItemPrice", "Product Tax", "180.00")],
        );
        let other = sale("171-9999999-9999999");
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1180.00")),
            &[first, other, later],
            TODAY,
        );
        assert_eq!(
            (got.status, got.settled_sales),
            (PaymentStatus::Paid, dec("1180.00"))
        );
    }

    #[test]
    fn refunded_when_any_refund_line_exists() {
        let refund = run(
            ID,
            "KURTA-BLUE",
            0,
            &[
                ("Refund", "ItemPrice", "Principal", "-1000.00"),
                ("Refund", "ItemPrice", "Product Tax", "-180.00"),
                ("Refund", "Promotion", "Principal", "100.00"),
                ("Refund", "ItemFees", "Commission", "120.00"),
            ],
        );
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1130.00")),
            &[sale(ID), refund],
            TODAY,
        );
        assert_eq!(got.status, PaymentStatus::Refunded);
        assert_eq!(
            (got.settled_sales, got.refunded),
            (dec("1130.00"), dec("-1080.00"))
        );
        // A fee-only refund line (no money back to the buyer) still marks the order.
        let fee_only = run(
            ID,
            "KURTA-BLUE",
            0,
            &[("Refund", "ItemFees", "RefundCommission", "-24.00")],
        );
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1130.00")),
            &[sale(ID), fee_only],
            TODAY,
        );
        assert_eq!(
            (got.status, got.refunded),
            (PaymentStatus::Refunded, Decimal::ZERO)
        );
    }

    #[test]
    fn unpaid_only_when_shipped_and_overdue_otherwise_pending() {
        // Purchased 20 Oct: 31 days before 20 Nov is overdue, 30 days is not yet.
        let old = datetime!(2026-10-20 12:00 UTC);
        let got = reconcile_order(
            &order(OrderStatus::Shipped, old, Some("1130.00")),
            &[],
            date!(2026 - 11 - 20),
        );
        assert_eq!(got.status, PaymentStatus::Unpaid);
        assert_eq!(
            (got.settled_sales, got.difference),
            (Decimal::ZERO, dec("-1130.00"))
        );
        let got = reconcile_order(
            &order(OrderStatus::Shipped, old, Some("1130.00")),
            &[],
            date!(2026 - 11 - 19),
        );
        assert_eq!(got.status, PaymentStatus::Pending);
        // The purchase day is the UTC day: 23:30 in India on 20 Oct is 18:00 UTC, the same day.
        let india = datetime!(2026-10-20 23:30 +05:30);
        let got = reconcile_order(
            &order(OrderStatus::Shipped, india, None),
            &[],
            date!(2026 - 11 - 20),
        );
        assert_eq!(got.status, PaymentStatus::Unpaid);
        // Not shipped: never unpaid, however old.
        for status in [
            OrderStatus::Canceled,
            OrderStatus::Unshipped,
            OrderStatus::Pending,
            OrderStatus::PartiallyShipped,
        ] {
            let got = reconcile_order(
                &order(status, old, Some("1130.00")),
                &[],
                TODAY + time::Duration::days(365),
            );
            assert_eq!(got.status, PaymentStatus::Pending, "{status:?}");
        }
        // Recent and shipped.
        let got = reconcile_order(
            &order(OrderStatus::Shipped, RECENT, Some("1130.00")),
            &[],
            TODAY,
        );
        assert_eq!(got.status, PaymentStatus::Pending);
        // Lines of the order that are not sales (fees only) do not make it settled.
        let fees = run(
            ID,
            "KURTA-BLUE",
            0,
            &[("Order", "ItemFees", "Commission", "-120.00")],
        );
        let got = reconcile_order(
            &order(OrderStatus::Shipped, old, Some("1130.00")),
            &[fees],
            TODAY,
        );
        assert_eq!(got.status, PaymentStatus::Unpaid);
    }

    #[test]
    fn payment_status_serializes_in_snake_case() {
        let json = serde_json::to_value([PaymentStatus::Underpaid, PaymentStatus::Refunded])
            .expect("json");
        assert_eq!(json, serde_json::json!(["underpaid", "refunded"]));
    }

    fn fee_run(order_id: &str, sku: &str, sold: u64, fee: &str, amount: &str) -> OrderSums {
        run(order_id, sku, sold, &[("Order", "ItemFees", fee, amount)])
    }

    #[test]
    fn a_fee_far_from_the_usual_per_unit_is_flagged() {
        let fba = "FBAPerUnitFulfillmentFee";
        let mut runs = vec![
            fee_run("171-0000001-0000001", "S", 1, fba, "-60.00"),
            fee_run("171-0000002-0000002", "S", 2, fba, "-120.00"),
            fee_run("171-0000003-0000003", "S", 1, fba, "-60.00"),
            fee_run("171-0000004-0000004", "S", 3, fba, "-180.00"),
            fee_run("171-0000005-0000005", "S", 1, fba, "-60.00"),
            // 30.00 a unit more than usual: flagged.
            fee_run("171-0000009-0000009", "S", 2, fba, "-180.00"),
            // Exactly 20% (12.00) off the usual 60.00: not flagged.
            fee_run("171-0000007-0000007", "S", 1, fba, "-72.00"),
        ];
        // Order 5 comes back in a later run with another unit and its fee: still 60.00 a unit.
        runs.push(fee_run("171-0000005-0000005", "S", 1, fba, "-60.00"));
        // A refund's fee does not count.
        runs.push(run(
            "171-0000001-0000001",
            "S",
            0,
            &[("Refund", "ItemFees", fba, "500.00")],
        ));
        let got = fee_outliers(&runs);
        assert_eq!(
            got,
            [FeeOutlier {
                order_id: "171-0000009-0000009".into(),
                sku: "S".into(),
                fee: fba.into(),
                per_unit: dec("-90.00"),
                usual_per_unit: dec("-60.00"),
            }]
        );
    }

    #[test]
    fn too_few_samples_are_never_flagged() {
        let runs: Vec<OrderSums> = (1..MIN_FEE_SAMPLES)
            .map(|i| {
                let amount = if i == 1 { "-500.00" } else { "-10.00" };
                fee_run(
                    &format!("171-000000{i}-0000000"),
                    "S",
                    1,
                    "Commission",
                    amount,
                )
            })
            .collect();
        assert_eq!(runs.len(), MIN_FEE_SAMPLES - 1);
        assert!(fee_outliers(&runs).is_empty());
        // Orders without units sold are no samples either.
        let mut runs = runs;
        runs.push(fee_run(
            "171-0000099-0000000",
            "S",
            0,
            "Commission",
            "-10.00",
        ));
        assert!(fee_outliers(&runs).is_empty());
        // One more order that sold: now the usual is trusted.
        runs.push(fee_run(
            "171-0000098-0000000",
            "S",
            1,
            "Commission",
            "-10.00",
        ));
        let got = fee_outliers(&runs);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].per_unit, got[0].usual_per_unit),
            (dec("-500.00"), dec("-10.00"))
        );
    }

    #[test]
    fn small_fees_have_a_floor_of_one_rupee() {
        // Usual 2.00 a unit: 20% is 0.40, but up to 1.00 off is tolerated.
        let mut runs: Vec<OrderSums> = (1..=5)
            .map(|i| {
                fee_run(
                    &format!("171-000000{i}-0000000"),
                    "S",
                    1,
                    "FixedClosingFee",
                    "-2.00",
                )
            })
            .collect();
        runs.push(fee_run(
            "171-0000006-0000000",
            "S",
            1,
            "FixedClosingFee",
            "-3.00",
        ));
        assert!(fee_outliers(&runs).is_empty());
        runs.push(fee_run(
            "171-0000007-0000000",
            "S",
            1,
            "FixedClosingFee",
            "-3.01",
        ));
        let got = fee_outliers(&runs);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].order_id, "171-0000007-0000000");
    }

    #[test]
    fn outliers_come_sorted_by_order_sku_and_fee() {
        let mut runs = Vec::new();
        for sku in ["B", "A"] {
            for fee in ["Commission", "FixedClosingFee"] {
                for i in 1..=5 {
                    runs.push(fee_run(
                        &format!("171-000000{i}-0000000"),
                        sku,
                        1,
                        fee,
                        "-10.00",
                    ));
                }
                runs.push(fee_run("171-0000009-0000000", sku, 1, fee, "-50.00"));
                runs.push(fee_run("171-0000008-0000000", sku, 1, fee, "-50.00"));
            }
        }
        let got: Vec<(String, String, String)> = fee_outliers(&runs)
            .into_iter()
            .map(|o| (o.order_id, o.sku, o.fee))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
        assert_eq!(got.len(), 8);
        assert_eq!(
            got[0],
            (
                "171-0000008-0000000".into(),
                "A".into(),
                "Commission".into()
            )
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(
            median(vec![dec("-4"), dec("-1"), dec("-2"), dec("-3")]),
            Some(dec("-2.5"))
        );
        assert_eq!(median(vec![dec("7")]), Some(dec("7")));
        assert_eq!(median(vec![]), None);
    }
}
