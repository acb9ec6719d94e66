//! The parser on small files written by hand, with sums worked out by hand.

use super::amounts::{parse_amount, parse_quantity};
use super::dates::{Written, parse_written};
use super::parse_settlement;
use crate::settlement::{
    Charge, ChargeAmount, MAX_PROBLEMS, OrderSums, ParsedSettlement, Rejection, Units,
};
use rust_decimal::Decimal;
use time::macros::{date, datetime};

/// Amazon's header, in Amazon's order.
const AMAZON_COLUMNS: [&str; 24] = crate::settlement::AMAZON_V2_COLUMNS;

/// A flat file being written: rows are (column, value) pairs, any column not given is empty.
#[derive(Clone)]
struct FlatFile {
    columns: Vec<String>,
    rows: Vec<Vec<(String, String)>>,
}

impl FlatFile {
    fn amazon() -> Self {
        Self::with_columns(&AMAZON_COLUMNS)
    }

    fn with_columns(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(mut self, fields: &[(&str, &str)]) -> Self {
        let row = fields
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect();
        self.rows.push(row);
        self
    }

    fn summary(self, total: &str) -> Self {
        self.row(&[
            ("settlement-id", "12345678901"),
            ("settlement-start-date", "2026-10-01T00:00:00+00:00"),
            ("settlement-end-date", "2026-10-15T00:00:00+00:00"),
            ("deposit-date", "2026-10-17T00:00:00+00:00"),
            ("total-amount", total),
            ("currency", "INR"),
        ])
    }

    /// A detail line of Amazon.in.
    #[allow(clippy::too_many_arguments)]
    fn line(
        self,
        transaction_type: &str,
        order_id: &str,
        sku: &str,
        quantity: &str,
        amount_type: &str,
        description: &str,
        amount: &str,
        day: &str,
    ) -> Self {
        self.row(&[
            ("settlement-id", "12345678901"),
            ("transaction-type", transaction_type),
            ("order-id", order_id),
            ("marketplace-name", "Amazon.in"),
            ("amount-type", amount_type),
            ("amount-description", description),
            ("amount", amount),
            ("posted-date", day),
            ("sku", sku),
            ("quantity-purchased", quantity),
        ])
    }

    fn text_with(&self, line_end: &str) -> String {
        let mut text = self.columns.join("\t") + line_end;
        for row in &self.rows {
            let fields: Vec<&str> = self
                .columns
                .iter()
                .map(|column| {
                    row.iter()
                        .find(|(c, _)| c == column)
                        .map_or("", |(_, v)| v.as_str())
                })
                .collect();
            text += &fields.join("\t");
            text += line_end;
        }
        text
    }

    fn text(&self) -> String {
        self.text_with("\n")
    }
}

/// Parses, collecting the order runs handed out.
fn parse(bytes: &[u8]) -> Result<(ParsedSettlement, Vec<OrderSums>), Rejection> {
    let mut orders = Vec::new();
    parse_settlement(bytes, |order| orders.push(order)).map(|parsed| (parsed, orders))
}

fn parse_ok(bytes: &[u8]) -> (ParsedSettlement, Vec<OrderSums>) {
    match parse(bytes) {
        Ok(parsed) => parsed,
        Err(rejection) => panic!("rejected: {:?}", rejection.problems),
    }
}

/// The problems of a rejected file, as (line, reason).
fn problems(bytes: &[u8]) -> Vec<(u64, String)> {
    match parse(bytes) {
        Ok(_) => panic!("accepted a file that should be rejected"),
        Err(rejection) => rejection
            .problems
            .into_iter()
            .map(|p| (p.line, p.reason))
            .collect(),
    }
}

fn assert_one_problem(bytes: &[u8], line: u64, words: &str) {
    let found = problems(bytes);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, line, "{found:?}");
    assert!(found[0].1.contains(words), "{found:?} should say {words:?}");
}

fn d(text: &str) -> Decimal {
    text.parse().expect("a decimal in a test")
}

fn charge(transaction_type: &str, amount_type: &str, description: &str) -> Charge {
    Charge {
        transaction_type: transaction_type.into(),
        amount_type: amount_type.into(),
        amount_description: description.into(),
    }
}

/// The amount of one charge in a list of sums (zero when absent).
fn amount_of(charges: &[ChargeAmount], wanted: &Charge) -> Decimal {
    charges
        .iter()
        .filter(|c| *c.charge == *wanted)
        .map(|c| c.amount)
        .sum()
}

fn total(charges: &[ChargeAmount]) -> Decimal {
    charges.iter().map(|c| c.amount).sum()
}

const ORDER_A: &str = "402-1111111-1111111";
const ORDER_B: &str = "402-2222222-2222222";
const ORDER_C: &str = "402-3333333-3333333";

/// An Amazon.in settlement: an order of 2 kurtas on Oct 5 (CGST/SGST TCS), an order of a saree
/// on Oct 6 (IGST TCS), a refund of one kurta on Oct 6, and a storage fee without an order.
/// Lines: header 1, summary 2, order A 3–8, order B 9–12, refund C 13–17, storage fee 18.
fn indian() -> FlatFile {
    FlatFile::amazon()
        .summary("965.00")
        .line(
            "Order",
            ORDER_A,
            "KURTA-BLUE",
            "2",
            "ItemPrice",
            "Principal",
            "1000.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "KURTA-BLUE",
            "",
            "ItemPrice",
            "Product Tax",
            "180.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "KURTA-BLUE",
            "",
            "ItemFees",
            "Commission",
            "-120.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "KURTA-BLUE",
            "",
            "ItemFees",
            "FBAPerUnitFulfillmentFee",
            "-60.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "KURTA-BLUE",
            "",
            "ItemWithheldTax",
            "TCS-CGST",
            "-5.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "KURTA-BLUE",
            "",
            "ItemWithheldTax",
            "TCS-SGST",
            "-5.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_B,
            "SAREE-RED",
            "1",
            "ItemPrice",
            "Principal",
            "500.00",
            "2026-10-06",
        )
        .line(
            "Order",
            ORDER_B,
            "SAREE-RED",
            "",
            "ItemPrice",
            "Product Tax",
            "90.00",
            "2026-10-06",
        )
        .line(
            "Order",
            ORDER_B,
            "SAREE-RED",
            "",
            "ItemFees",
            "Commission",
            "-60.00",
            "2026-10-06",
        )
        .line(
            "Order",
            ORDER_B,
            "SAREE-RED",
            "",
            "ItemWithheldTax",
            "TCS-IGST",
            "-5.00",
            "2026-10-06",
        )
        .line(
            "Refund",
            ORDER_C,
            "KURTA-BLUE",
            "1",
            "ItemPrice",
            "Principal",
            "-500.00",
            "2026-10-06",
        )
        .line(
            "Refund",
            ORDER_C,
            "KURTA-BLUE",
            "",
            "ItemPrice",
            "Product Tax",
            "-90.00",
            "2026-10-06",
        )
        .line(
            "Refund",
            ORDER_C,
            "KURTA-BLUE",
            "",
            "ItemFees",
            "Commission",
            "60.00",
            "2026-10-06",
        )
        .line(
            "Refund",
            ORDER_C,
            "KURTA-BLUE",
            "",
            "ItemWithheldTax",
            "TCS-CGST",
            "2.50",
            "2026-10-06",
        )
        .line(
            "Refund",
            ORDER_C,
            "KURTA-BLUE",
            "",
            "ItemWithheldTax",
            "TCS-SGST",
            "2.50",
            "2026-10-06",
        )
        .line(
            "other-transaction",
            "",
            "",
            "",
            "other-transaction",
            "Storage Fee",
            "-25.00",
            "2026-10-06",
        )
}

#[test]
fn an_indian_settlement_adds_up() {
    let (parsed, _) = parse_ok(indian().text().as_bytes());

    assert_eq!(parsed.summary.settlement_id.as_str(), "12345678901");
    assert_eq!(parsed.summary.currency, "INR");
    assert_eq!(parsed.summary.total_amount, d("965.00"));
    assert_eq!(parsed.summary.start, Some(datetime!(2026-10-01 00:00 UTC)));
    assert_eq!(parsed.summary.end, Some(datetime!(2026-10-15 00:00 UTC)));
    assert_eq!(
        parsed.summary.deposit_date,
        Some(datetime!(2026-10-17 00:00 UTC))
    );
    assert_eq!(parsed.marketplace.as_deref(), Some("Amazon.in"));
    assert_eq!(parsed.detail_lines, 16);
    // 990.00 (A) + 525.00 (B) - 525.00 (C) - 25.00 (storage)
    assert_eq!(parsed.lines_total, d("965.00"));
    assert_eq!(parsed.difference, Decimal::ZERO);
    assert!(parsed.reconciles);
    assert_eq!(parsed.order_runs, 3);
    assert_eq!(parsed.fingerprint.len(), 64);
}

#[test]
fn each_order_run_is_handed_out_with_its_items() {
    let (_, orders) = parse_ok(indian().text().as_bytes());
    let ids: Vec<(&str, u64)> = orders
        .iter()
        .map(|o| (o.order_id.as_str(), o.first_line))
        .collect();
    assert_eq!(ids, [(ORDER_A, 3), (ORDER_B, 9), (ORDER_C, 13)]);

    let a = &orders[0];
    assert_eq!(a.day, date!(2026 - 10 - 05));
    assert_eq!(a.items.len(), 1);
    assert_eq!(a.items[0].sku.as_deref(), Some("KURTA-BLUE"));
    assert_eq!(
        a.items[0].units,
        Units {
            sold: 2,
            refunded: 0
        }
    );
    assert_eq!(total(&a.items[0].charges), d("990.00"));
    assert_eq!(a.items[0].charges.len(), 6);
    let tcs_cgst = charge("Order", "ItemWithheldTax", "TCS-CGST");
    assert_eq!(amount_of(&a.items[0].charges, &tcs_cgst), d("-5.00"));

    let b = &orders[1];
    assert_eq!(b.day, date!(2026 - 10 - 06));
    let tcs_igst = charge("Order", "ItemWithheldTax", "TCS-IGST");
    assert_eq!(amount_of(&b.items[0].charges, &tcs_igst), d("-5.00"));
    assert_eq!(total(&b.items[0].charges), d("525.00"));

    let c = &orders[2];
    assert_eq!(
        c.items[0].units,
        Units {
            sold: 0,
            refunded: 1
        }
    );
    assert_eq!(total(&c.items[0].charges), d("-525.00"));
    let refund_principal = charge("Refund", "ItemPrice", "Principal");
    assert_eq!(
        amount_of(&c.items[0].charges, &refund_principal),
        d("-500.00")
    );
}

#[test]
fn days_add_up_every_line_including_those_without_an_order() {
    let (parsed, _) = parse_ok(indian().text().as_bytes());
    let days: Vec<_> = parsed.by_day.iter().map(|d| d.day).collect();
    assert_eq!(days, [date!(2026 - 10 - 05), date!(2026 - 10 - 06)]);
    assert_eq!(total(&parsed.by_day[0].charges), d("990.00"));
    // 525.00 - 525.00 - 25.00
    assert_eq!(total(&parsed.by_day[1].charges), d("-25.00"));
    let storage = charge("other-transaction", "other-transaction", "Storage Fee");
    assert_eq!(amount_of(&parsed.by_day[1].charges, &storage), d("-25.00"));
    // Charges are sorted, one entry each.
    let charges: Vec<&Charge> = parsed.by_day[1]
        .charges
        .iter()
        .map(|c| &*c.charge)
        .collect();
    let mut sorted = charges.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(charges, sorted);
}

#[test]
fn skus_add_up_per_day_with_units_sold_and_refunded() {
    let (parsed, _) = parse_ok(indian().text().as_bytes());
    let keys: Vec<_> = parsed
        .by_sku_day
        .iter()
        .map(|s| (s.day, s.sku.as_str(), s.units))
        .collect();
    assert_eq!(
        keys,
        [
            (
                date!(2026 - 10 - 05),
                "KURTA-BLUE",
                Units {
                    sold: 2,
                    refunded: 0
                }
            ),
            (
                date!(2026 - 10 - 06),
                "KURTA-BLUE",
                Units {
                    sold: 0,
                    refunded: 1
                }
            ),
            (
                date!(2026 - 10 - 06),
                "SAREE-RED",
                Units {
                    sold: 1,
                    refunded: 0
                }
            ),
        ]
    );
    assert_eq!(total(&parsed.by_sku_day[0].charges), d("990.00"));
    assert_eq!(total(&parsed.by_sku_day[1].charges), d("-525.00"));
    assert_eq!(total(&parsed.by_sku_day[2].charges), d("525.00"));
}

#[test]
fn columns_in_another_order_with_unknown_columns_parse_the_same() {
    let amazon = indian();
    let mut shuffled = amazon.clone();
    shuffled.columns.reverse();
    shuffled.columns.insert(3, "invoice-note".into());
    shuffled.columns.push("".into());
    let (expected, expected_orders) = parse_ok(amazon.text().as_bytes());
    let (mut parsed, orders) = parse_ok(shuffled.text().as_bytes());
    assert_ne!(parsed.fingerprint, expected.fingerprint, "the text differs");
    parsed.fingerprint = expected.fingerprint.clone();
    assert_eq!(parsed, expected);
    assert_eq!(orders, expected_orders);
}

#[test]
fn crlf_bom_and_blank_lines_change_nothing_not_even_the_fingerprint() {
    let lf = indian().text();
    let crlf = format!("\u{FEFF}{}\r\n\r\n", indian().text_with("\r\n"));
    let blank_inside = lf.replacen('\n', "\n\n  \n", 3);
    let (expected, expected_orders) = parse_ok(lf.as_bytes());
    for other in [crlf, blank_inside] {
        let (parsed, orders) = parse_ok(other.as_bytes());
        assert_eq!(parsed, expected);
        assert_eq!(orders.len(), expected_orders.len());
    }
}

#[test]
fn a_big_file_read_in_many_batches_has_the_fingerprint_of_its_text() {
    use sha2::{Digest, Sha256};
    // Over 1 MiB of lines: several batches of the reading thread, hashed one after the other.
    let mut file = FlatFile::amazon().summary("0.00");
    for i in 0..8000 {
        let order = format!("402-{i:07}-0000000");
        file = file
            .line(
                "Order",
                &order,
                "MUG",
                "1",
                "ItemPrice",
                "Principal",
                "100.00",
                "2026-10-05",
            )
            .line(
                "Order",
                &order,
                "MUG",
                "",
                "ItemFees",
                "Commission",
                "-100.00",
                "2026-10-05",
            );
    }
    let lf = file.text();
    assert!(lf.len() > 1 << 20);
    let (parsed, orders) = parse_ok(lf.as_bytes());
    assert_eq!(orders.len(), 8000);
    assert_eq!(
        parsed.fingerprint,
        hex::encode(Sha256::digest(lf.as_bytes()))
    );
    let (crlf, _) = parse_ok(file.text_with("\r\n").as_bytes());
    assert_eq!(crlf.fingerprint, parsed.fingerprint);
}

#[test]
fn blank_lines_still_count_in_line_numbers() {
    let text = indian().text().replacen('\n', "\n\n", 1); // a blank line 2
    let (_, orders) = parse_ok(text.as_bytes());
    assert_eq!(orders[0].first_line, 4);
}

#[test]
fn different_content_has_a_different_fingerprint() {
    let (one, _) = parse_ok(indian().text().as_bytes());
    let changed = indian()
        .text()
        .replace("-25.00", "-25.01")
        .replace("965.00", "964.99");
    let (two, _) = parse_ok(changed.as_bytes());
    assert_ne!(one.fingerprint, two.fingerprint);
}

#[test]
fn windows_1252_text_reads_as_the_same_text() {
    let utf8 = FlatFile::amazon()
        .summary("10.00")
        .line(
            "Order",
            ORDER_A,
            "CAFÉ-MUG-é",
            "1",
            "ItemPrice",
            "Principal",
            "10.00",
            "2026-10-05",
        )
        .text();
    let windows_1252: Vec<u8> = utf8
        .chars()
        .map(|c| match c {
            'é' => 0xE9,
            'É' => 0xC9,
            c => c as u8,
        })
        .collect();
    assert!(std::str::from_utf8(&windows_1252).is_err());
    let (from_utf8, _) = parse_ok(utf8.as_bytes());
    let (parsed, orders) = parse_ok(&windows_1252);
    assert_eq!(orders[0].items[0].sku.as_deref(), Some("CAFÉ-MUG-é"));
    assert_eq!(parsed.by_sku_day[0].sku, "CAFÉ-MUG-é");
    assert_eq!(parsed, from_utf8);
}

#[test]
fn short_rows_read_missing_fields_as_empty() {
    // Cut every detail line after posted-date-time: no sku, no quantity.
    let text: String = indian()
        .text()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let keep = if i < 2 { 24 } else { 18 };
            line.split('\t').take(keep).collect::<Vec<_>>().join("\t") + "\n"
        })
        .collect();
    let (parsed, orders) = parse_ok(text.as_bytes());
    assert!(parsed.reconciles);
    assert!(parsed.by_sku_day.is_empty());
    assert_eq!(orders[0].items[0].sku, None);
    assert_eq!(orders[0].items[0].units, Units::default());
}

#[test]
fn a_decimal_comma_reads_like_a_decimal_point() {
    let text = FlatFile::amazon()
        .summary("1234,5")
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "1",
            "ItemPrice",
            "Principal",
            "1250,00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "",
            "ItemFees",
            "Commission",
            "-15,5",
            "2026-10-05",
        )
        .text();
    let (parsed, _) = parse_ok(text.as_bytes());
    assert_eq!(parsed.lines_total, d("1234.50"));
    assert!(parsed.reconciles);
}

#[test]
fn a_settlement_that_does_not_reconcile_says_by_how_much() {
    let text = indian().text().replacen("965.00", "1000.00", 1);
    let (parsed, _) = parse_ok(text.as_bytes());
    assert_eq!(parsed.difference, d("35.00"));
    assert!(!parsed.reconciles);
}

#[test]
fn an_order_that_comes_back_later_is_a_second_run() {
    let text = FlatFile::amazon()
        .summary("30.00")
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "1",
            "ItemPrice",
            "Principal",
            "10.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_B,
            "CUP",
            "1",
            "ItemPrice",
            "Principal",
            "15.00",
            "2026-10-05",
        )
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "",
            "ItemFees",
            "Commission",
            "-1.00",
            "2026-10-07",
        )
        .line(
            "Order",
            ORDER_A,
            "",
            "",
            "Promotion",
            "Shipping",
            "6.00",
            "2026-10-07",
        )
        .text();
    let (parsed, orders) = parse_ok(text.as_bytes());
    assert_eq!(parsed.order_runs, 3);
    let runs: Vec<(&str, u64)> = orders
        .iter()
        .map(|o| (o.order_id.as_str(), o.first_line))
        .collect();
    assert_eq!(runs, [(ORDER_A, 3), (ORDER_B, 4), (ORDER_A, 5)]);
    let again = &orders[2];
    assert_eq!(again.day, date!(2026 - 10 - 07));
    let skus: Vec<Option<&str>> = again.items.iter().map(|i| i.sku.as_deref()).collect();
    assert_eq!(skus, [Some("MUG"), None]);
    assert_eq!(total(&again.items[0].charges), d("-1.00"));
    assert_eq!(total(&again.items[1].charges), d("6.00"));
}

#[test]
fn a_line_without_an_order_ends_the_run_and_counts_only_for_days_and_skus() {
    let text = FlatFile::amazon()
        .summary("7.00")
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "1",
            "ItemPrice",
            "Principal",
            "10.00",
            "2026-10-05",
        )
        .line(
            "other-transaction",
            "",
            "MUG",
            "",
            "FBA Inventory Reimbursement",
            "REVERSAL_REIMBURSEMENT",
            "2.00",
            "2026-10-05",
        )
        .line(
            "other-transaction",
            "",
            "",
            "",
            "other-transaction",
            "Storage Fee",
            "-5.00",
            "2026-10-05",
        )
        .text();
    let (parsed, orders) = parse_ok(text.as_bytes());
    assert_eq!(orders.len(), 1);
    assert_eq!(total(&orders[0].items[0].charges), d("10.00"));
    assert_eq!(total(&parsed.by_day[0].charges), d("7.00"));
    assert_eq!(total(&parsed.by_sku_day[0].charges), d("12.00"));
}

#[test]
fn posted_date_time_alone_counts_on_the_marketplace_local_day() {
    let file = |marketplace: &str| {
        FlatFile::with_columns(&[
            "settlement-id",
            "total-amount",
            "currency",
            "transaction-type",
            "order-id",
            "amount-type",
            "amount-description",
            "amount",
            "posted-date-time",
            "marketplace-name",
        ])
        .row(&[
            ("settlement-id", "1"),
            ("total-amount", "5"),
            ("currency", "INR"),
        ])
        .row(&[
            ("transaction-type", "Order"),
            ("order-id", ORDER_A),
            ("amount-type", "ItemPrice"),
            ("amount-description", "Principal"),
            ("amount", "5"),
            // 20:00 UTC is 01:30 the next morning in India.
            ("posted-date-time", "2026-10-05T20:00:00Z"),
            ("marketplace-name", marketplace),
        ])
        .text()
    };
    let (india, orders) = parse_ok(file("Amazon.in").as_bytes());
    assert_eq!(india.by_day[0].day, date!(2026 - 10 - 06));
    assert_eq!(orders[0].day, date!(2026 - 10 - 06));
    let (germany, _) = parse_ok(file("Amazon.de").as_bytes());
    assert_eq!(germany.by_day[0].day, date!(2026 - 10 - 05));
}

#[test]
fn with_both_posted_columns_the_instant_counts_on_the_marketplace_local_day() {
    // Amazon writes posted-date as a date and posted-date-time as an instant: a line posted at
    // 20:00 UTC on the 5th is the 6th in India, and counts on India's day (its COGS too).
    let text = FlatFile::with_columns(&[
        "settlement-id",
        "total-amount",
        "currency",
        "transaction-type",
        "order-id",
        "amount-type",
        "amount-description",
        "amount",
        "posted-date",
        "posted-date-time",
        "marketplace-name",
    ])
    .row(&[
        ("settlement-id", "1"),
        ("total-amount", "5"),
        ("currency", "INR"),
    ])
    .row(&[
        ("transaction-type", "Order"),
        ("order-id", ORDER_A),
        ("amount-type", "ItemPrice"),
        ("amount-description", "Principal"),
        ("amount", "5"),
        ("posted-date", "2026-10-05"),
        ("posted-date-time", "2026-10-05T20:00:00+00:00"),
        ("marketplace-name", "Amazon.in"),
    ])
    .text();
    let (parsed, orders) = parse_ok(text.as_bytes());
    assert_eq!(parsed.by_day[0].day, date!(2026 - 10 - 06));
    assert_eq!(orders[0].day, date!(2026 - 10 - 06));
}

#[test]
fn too_many_kinds_of_amount_or_overlong_names_are_refused() {
    let mut file = FlatFile::amazon().summary("0");
    for i in 0..=super::sums::MAX_CHARGES {
        let description = format!("Fee {i}");
        file = file.line(
            "Order",
            ORDER_A,
            "MUG",
            "",
            "ItemFees",
            &description,
            "0",
            "2026-10-05",
        );
    }
    let rejection = parse_settlement(file.text().as_bytes(), |_| {}).expect_err("refused");
    assert!(
        rejection.problems[0]
            .reason
            .contains("different kinds of amount"),
        "{rejection:?}"
    );
    let long_sku = "S".repeat(201);
    let text = FlatFile::amazon()
        .summary("1")
        .line(
            "Order",
            ORDER_A,
            &long_sku,
            "1",
            "ItemPrice",
            "Principal",
            "1",
            "2026-10-05",
        )
        .text();
    let rejection = parse_settlement(text.as_bytes(), |_| {}).expect_err("refused");
    assert!(
        rejection.problems[0]
            .reason
            .contains("sku is longer than 200 bytes"),
        "{rejection:?}"
    );
    // A reason quotes at most 40 characters of what it refuses.
    let text = FlatFile::amazon()
        .summary("1")
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "1",
            "ItemPrice",
            "Principal",
            &"9x".repeat(5000),
            "2026-10-05",
        )
        .text();
    let rejection = parse_settlement(text.as_bytes(), |_| {}).expect_err("refused");
    assert!(rejection.problems[0].reason.len() < 200, "{rejection:?}");
}

#[test]
fn posted_date_is_taken_as_written_in_every_format() {
    for (written, day) in [
        ("2026-10-05", date!(2026 - 10 - 05)),
        ("2026-10-05T23:30:00+00:00", date!(2026 - 10 - 05)),
        ("2026-10-05T01:00:00-07:00", date!(2026 - 10 - 05)),
        ("2026-10-05 10:00:00 UTC", date!(2026 - 10 - 05)),
        ("05.10.2026 10:00:00 UTC", date!(2026 - 10 - 05)),
        ("05.10.2026", date!(2026 - 10 - 05)),
    ] {
        let text = FlatFile::amazon()
            .summary("1")
            .line(
                "Order",
                ORDER_A,
                "MUG",
                "1",
                "ItemPrice",
                "Principal",
                "1",
                written,
            )
            .text();
        let (parsed, _) = parse_ok(text.as_bytes());
        assert_eq!(parsed.by_day[0].day, day, "{written}");
    }
}

#[test]
fn summary_dates_in_each_format_become_moments() {
    for (written, moment) in [
        ("2026-10-17T00:00:00+00:00", datetime!(2026-10-17 00:00 UTC)),
        ("2026-10-17T05:30:00+05:30", datetime!(2026-10-17 00:00 UTC)),
        (
            "2026-10-17T10:11:12.345Z",
            datetime!(2026-10-17 10:11:12.345 UTC),
        ),
        (
            "2026-10-17T10:11:12+0530",
            datetime!(2026-10-17 10:11:12 +05:30),
        ),
        (
            "2026-10-17 10:11:12 UTC",
            datetime!(2026-10-17 10:11:12 UTC),
        ),
        (
            "17.10.2026 10:11:12 UTC",
            datetime!(2026-10-17 10:11:12 UTC),
        ),
        ("17.10.2026", datetime!(2026-10-17 00:00 UTC)),
        ("2026-10-17", datetime!(2026-10-17 00:00 UTC)),
    ] {
        let text = FlatFile::amazon()
            .row(&[
                ("settlement-id", "1"),
                ("deposit-date", written),
                ("total-amount", "0"),
                ("currency", "EUR"),
            ])
            .text();
        let (parsed, _) = parse_ok(text.as_bytes());
        assert_eq!(parsed.summary.deposit_date, Some(moment), "{written}");
        assert_eq!(parsed.detail_lines, 0);
    }
}

#[test]
fn amounts_are_read_exactly() {
    for (text, expected) in [
        ("-12.34", "-12.34"),
        ("-12,34", "-12.34"),
        ("1234", "1234"),
        ("+5.00", "5.00"),
        ("0.1", "0.1"),
        ("-0.00", "0.00"),
        ("9999999999999.99", "9999999999999.99"),
    ] {
        assert_eq!(parse_amount(text), Ok(d(expected)), "{text}");
    }
    for bad in [
        "",
        "-",
        "+",
        "1,234.56",
        "1.234,56",
        "1 234",
        "12.",
        ".5",
        "1e5",
        "--1",
        "12-",
        "₹12",
        "NaN",
        "12345678901234",
        "1.0000001",
        // A thousands separator, not a decimal one: refused, never read as 1.234.
        "1,234",
        "1.234",
        "0.001",
        " 1",
    ] {
        assert!(parse_amount(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn quantities_are_whole_numbers_of_units() {
    assert_eq!(parse_quantity("3"), Ok(3));
    for bad in ["-1", "1.5", "two", "99999999999", ""] {
        assert!(parse_quantity(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn dates_that_are_not_dates_are_refused() {
    for bad in [
        "2026-13-01",
        "2026-02-30",
        "31.02.2026",
        "2026-10-05T25:00:00Z",
        "2026-10-05T10:00:00",
        "2026-10-05 10:00:00",
        "2026-10-05T10:00:00+25:00",
        "10/05/2026",
        "2026-10-5",
        "",
        "2026",
        "05.10.2026T10:00:00Z",
        "2026-10-05T10:00:00.Z",
    ] {
        assert!(parse_written(bad).is_err(), "{bad:?} should be refused");
    }
    assert_eq!(
        parse_written("2026-10-05"),
        Ok(Written::Day(date!(2026 - 10 - 05)))
    );
}

// Rejections: each reason, at its line.

#[test]
fn an_empty_file_is_refused() {
    assert_one_problem(b"", 1, "empty");
    assert_one_problem(b"\n\r\n  \n", 1, "empty");
}

#[test]
fn a_file_without_a_header_is_refused() {
    let text = indian().text();
    let without_header = text
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert_one_problem(without_header.as_bytes(), 1, "no header");
    assert_one_problem(b"\xFF\xFEs\0e\0", 1, "UTF-16");
}

#[test]
fn a_missing_required_column_is_named() {
    for column in [
        "settlement-id",
        "total-amount",
        "currency",
        "transaction-type",
        "order-id",
        "amount-type",
        "amount-description",
        "amount",
    ] {
        let mut file = indian();
        file.columns.retain(|c| c != column);
        assert_one_problem(
            file.text().as_bytes(),
            1,
            &format!("column {column} is missing"),
        );
    }
    let mut file = indian();
    file.columns.retain(|c| !c.starts_with("posted-date"));
    assert_one_problem(file.text().as_bytes(), 1, "posted-date");
}

#[test]
fn a_column_named_twice_is_refused() {
    let mut file = indian();
    file.columns.push("amount".into());
    assert_one_problem(file.text().as_bytes(), 1, "appears twice");
}

#[test]
fn a_header_of_absurd_width_is_refused() {
    let header = format!("{}{}\n", AMAZON_COLUMNS.join("\t"), "\tx".repeat(1000));
    assert_one_problem(header.as_bytes(), 1, "columns");
}

#[test]
fn a_file_without_a_summary_row_is_refused() {
    let mut file = indian();
    file.rows.remove(0);
    assert_one_problem(file.text().as_bytes(), 2, "no summary row");
}

#[test]
fn a_second_summary_row_is_refused_at_its_line() {
    let mut file = indian();
    let summary = file.rows[0].clone();
    file.rows.insert(5, summary);
    assert_one_problem(file.text().as_bytes(), 7, "second summary row");
}

#[test]
fn a_summary_row_without_settlement_id_or_currency_is_refused() {
    let text = FlatFile::amazon()
        .row(&[("total-amount", "1.00")])
        .line(
            "Order",
            ORDER_A,
            "MUG",
            "1",
            "ItemPrice",
            "Principal",
            "1.00",
            "2026-10-05",
        )
        .text();
    let found = problems(text.as_bytes());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|(line, _)| *line == 2));
    assert!(found[0].1.contains("settlement-id"));
    assert!(found[1].1.contains("currency"));
}

#[test]
fn a_bad_amount_is_refused_at_its_line() {
    let text = indian().text().replacen("-120.00", "-1,120.00", 1);
    assert_one_problem(text.as_bytes(), 5, "amount \"-1,120.00\"");
    let text = indian().text().replacen("965.00", "965.00 INR", 1);
    assert_one_problem(text.as_bytes(), 2, "total-amount");
}

#[test]
fn a_bad_date_is_refused_at_its_line() {
    let mut file = indian();
    file.rows[4].push(("posted-date-time".into(), "2026-10-05T10:00".into()));
    assert_one_problem(file.text().as_bytes(), 6, "posted-date-time");
    let text = indian().text().replacen("2026-10-06", "2026-10-32", 1);
    assert_one_problem(text.as_bytes(), 9, "posted-date");
    let text = indian()
        .text()
        .replacen("2026-10-17T00:00:00+00:00", "17/10/2026", 1);
    assert_one_problem(text.as_bytes(), 2, "deposit-date");
}

#[test]
fn a_bad_quantity_is_refused_at_its_line() {
    let mut file = indian();
    file.rows[7].retain(|(c, _)| c != "quantity-purchased");
    file.rows[7].push(("quantity-purchased".into(), "1.5".into()));
    assert_one_problem(file.text().as_bytes(), 9, "quantity-purchased");
}

#[test]
fn another_settlement_id_is_refused_at_its_line() {
    let mut file = indian();
    file.rows[10].retain(|(c, _)| c != "settlement-id");
    file.rows[10].push(("settlement-id".into(), "99999999999".into()));
    assert_one_problem(file.text().as_bytes(), 12, "differs");
}

#[test]
fn more_fields_than_the_header_is_refused() {
    // The storage fee, line 18, with two more fields.
    let text = indian()
        .text()
        .replacen("Storage Fee\t", "Storage Fee\tx\ty\t", 1);
    let found = problems(text.as_bytes());
    assert_eq!(
        found,
        [(
            18,
            "the line has 26 fields but the header names 24 columns".into()
        )]
    );
}

#[test]
fn a_detail_line_without_an_amount_is_refused() {
    let text = indian().text().replacen("\t-60.00\t", "\t\t", 1);
    assert_one_problem(text.as_bytes(), 6, "without an amount");
}

#[test]
fn a_detail_line_without_a_posted_date_is_refused() {
    let text = indian().text().replacen("\t2026-10-05\t", "\t\t", 1);
    assert_one_problem(text.as_bytes(), 3, "posted-date");
}

#[test]
fn an_absurdly_long_line_is_refused_without_reading_it_whole() {
    let mut text = indian().text();
    text.push_str(&"x".repeat(70 * 1024));
    text.push('\n');
    assert_one_problem(text.as_bytes(), 19, "64 KiB");
}

#[test]
fn many_problems_list_the_first_ones_and_say_there_are_more() {
    let mut file = FlatFile::amazon().summary("0");
    for _ in 0..(MAX_PROBLEMS + 5) {
        file = file.line(
            "Order",
            ORDER_A,
            "MUG",
            "1",
            "ItemPrice",
            "Principal",
            "abc",
            "2026-10-05",
        );
    }
    let rejection = parse(file.text().as_bytes()).expect_err("bad amounts");
    assert_eq!(rejection.problems.len(), MAX_PROBLEMS);
    assert!(rejection.more);
    let lines: Vec<u64> = rejection.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, (3..3 + MAX_PROBLEMS as u64).collect::<Vec<_>>());
}

#[test]
fn no_order_is_handed_out_after_a_problem() {
    // Line 10 (order B's second line) is bad: order A, ended at line 9, was handed out; B not.
    let text = indian().text().replacen("90.00", "9O.00", 1);
    let mut orders = Vec::new();
    let result = parse_settlement(text.as_bytes(), |order| orders.push(order.order_id));
    assert!(result.is_err());
    assert_eq!(orders, [ORDER_A]);
}
