//! Property tests of the settlement parser: any valid file adds up to what was written in it, and
//! no input whatsoever makes it panic. `PROPTEST_CASES` sets the number of cases, e.g. for a long
//! run: `PROPTEST_CASES=1000000 cargo test -p ecomdrive-core --release settlement::properties`.

use super::{OrderSums, ParsedSettlement, Rejection, parse_settlement};
use proptest::prelude::*;
use rust_decimal::Decimal;

const COLUMNS: [&str; 24] = super::AMAZON_V2_COLUMNS;

/// Charges of Amazon.in order lines (amount-type, amount-description).
const CHARGES: [(&str, &str); 9] = [
    ("ItemPrice", "Principal"),
    ("ItemPrice", "Product Tax"),
    ("ItemPrice", "Shipping"),
    ("ItemFees", "Commission"),
    ("ItemFees", "FBAPerUnitFulfillmentFee"),
    ("ItemWithheldTax", "TCS-IGST"),
    ("ItemWithheldTax", "TCS-CGST"),
    ("ItemWithheldTax", "TCS-SGST"),
    ("Promotion", "Principal"),
];
/// A few order ids, so that an order comes back later in a file.
const ORDERS: [&str; 4] = [
    "402-1111111-1111111",
    "402-2222222-2222222",
    "171-3333333-3333333",
    "171-4444444-4444444",
];
/// SKUs, some with letters that Windows-1252 writes in one byte.
const SKUS: [&str; 5] = ["KURTA-BLUE", "SAREE-RED", "MUG-é", "CAFÉ-1", "ÑANDÚ"];

#[derive(Clone, Debug)]
struct GenLine {
    order: Option<usize>,
    sku: Option<usize>,
    refund: bool,
    charge: usize,
    quantity: u32,
    paise: i64,
    day: u32,
}

impl GenLine {
    fn counts_units(&self) -> bool {
        self.order.is_some() && CHARGES[self.charge] == ("ItemPrice", "Principal")
    }
}

/// How the file is written: the same settlement can be written many ways.
#[derive(Clone, Debug)]
struct Writing {
    columns: Vec<&'static str>,
    extra_column: bool,
    crlf: bool,
    windows_1252: bool,
    bom: bool,
    date_format: usize,
    decimal_comma: bool,
    plus_sign: bool,
}

impl Writing {
    fn plain() -> Self {
        Self {
            columns: COLUMNS.to_vec(),
            extra_column: false,
            crlf: false,
            windows_1252: false,
            bom: false,
            date_format: 0,
            decimal_comma: false,
            plus_sign: false,
        }
    }
}

#[derive(Clone, Debug)]
struct GenFile {
    lines: Vec<GenLine>,
    /// What the summary's total differs from the lines' total by (0: it reconciles).
    off_by_paise: i64,
    writing: Writing,
}

fn line() -> impl Strategy<Value = GenLine> {
    (
        proptest::option::weighted(0.9, 0..ORDERS.len()),
        proptest::option::weighted(0.8, 0..SKUS.len()),
        proptest::bool::weighted(0.1),
        0..CHARGES.len(),
        1..4u32,
        -5_000_000..5_000_000i64,
        1..29u32,
    )
        .prop_map(
            |(order, sku, refund, charge, quantity, paise, day)| GenLine {
                order,
                sku,
                refund,
                charge,
                quantity,
                paise,
                day,
            },
        )
}

fn writing() -> impl Strategy<Value = Writing> {
    (
        Just(COLUMNS.to_vec()).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0..5usize,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                columns,
                extra_column,
                crlf,
                windows_1252,
                bom,
                date_format,
                decimal_comma,
                plus_sign,
            )| {
                Writing {
                    columns,
                    extra_column,
                    crlf,
                    windows_1252,
                    bom: bom && !windows_1252,
                    date_format,
                    decimal_comma,
                    plus_sign,
                }
            },
        )
}

fn file() -> impl Strategy<Value = GenFile> {
    (
        proptest::collection::vec(line(), 0..40),
        prop_oneof![3 => Just(0i64), 1 => -1000..1000i64],
        writing(),
    )
        .prop_map(|(lines, off_by_paise, writing)| GenFile {
            lines,
            off_by_paise,
            writing,
        })
}

fn amount(paise: i64, writing: &Writing) -> String {
    let sign = match (paise < 0, writing.plus_sign) {
        (true, _) => "-",
        (false, true) => "+",
        (false, false) => "",
    };
    let separator = if writing.decimal_comma { ',' } else { '.' };
    let abs = paise.unsigned_abs();
    format!("{sign}{}{separator}{:02}", abs / 100, abs % 100)
}

fn posted_date(day: u32, format: usize) -> String {
    match format {
        0 => format!("2026-10-{day:02}"),
        1 => format!("2026-10-{day:02}T10:00:00+00:00"),
        2 => format!("2026-10-{day:02} 10:00:00 UTC"),
        3 => format!("{day:02}.10.2026 10:00:00 UTC"),
        _ => format!("{day:02}.10.2026"),
    }
}

impl GenFile {
    fn lines_total(&self) -> i64 {
        self.lines.iter().map(|l| l.paise).sum()
    }

    fn bytes(&self) -> Vec<u8> {
        let w = &self.writing;
        let mut columns = w.columns.clone();
        if w.extra_column {
            columns.insert(columns.len() / 2, "unknown-column");
        }
        let row = |values: &[(&str, String)]| -> String {
            let fields: Vec<&str> = columns
                .iter()
                .map(|c| {
                    values
                        .iter()
                        .find(|(k, _)| k == c)
                        .map_or("", |(_, v)| v.as_str())
                })
                .collect();
            fields.join("\t")
        };
        let mut rows = vec![columns.join("\t")];
        rows.push(row(&[
            ("settlement-id", "29876543210".into()),
            ("settlement-start-date", "2026-10-01T00:00:00+00:00".into()),
            ("deposit-date", "03.11.2026".into()),
            (
                "total-amount",
                amount(self.lines_total() + self.off_by_paise, w),
            ),
            ("currency", "INR".into()),
            ("unknown-column", "x".into()),
        ]));
        for line in &self.lines {
            let (amount_type, description) = CHARGES[line.charge];
            let transaction = match (line.order, line.refund) {
                (None, _) => "other-transaction",
                (Some(_), true) => "Refund",
                (Some(_), false) => "Order",
            };
            rows.push(row(&[
                ("settlement-id", "29876543210".into()),
                ("transaction-type", transaction.into()),
                ("order-id", line.order.map_or("", |o| ORDERS[o]).into()),
                ("marketplace-name", "Amazon.in".into()),
                ("amount-type", amount_type.into()),
                ("amount-description", description.into()),
                ("amount", amount(line.paise, w)),
                ("posted-date", posted_date(line.day, w.date_format)),
                (
                    "posted-date-time",
                    format!("2026-10-{:02}T10:00:00+00:00", line.day),
                ),
                ("sku", line.sku.map_or("", |s| SKUS[s]).into()),
                (
                    "quantity-purchased",
                    if line.counts_units() {
                        line.quantity.to_string()
                    } else {
                        String::new()
                    },
                ),
            ]));
        }
        let end = if w.crlf { "\r\n" } else { "\n" };
        let text = rows.join(end) + end;
        let mut bytes = if w.bom {
            "\u{FEFF}".as_bytes().to_vec()
        } else {
            Vec::new()
        };
        if w.windows_1252 {
            let (encoded, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
            assert!(!unmappable);
            bytes.extend_from_slice(&encoded);
        } else {
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes
    }

    /// Runs of consecutive lines of the same order.
    fn order_runs(&self) -> u64 {
        let mut runs = 0;
        let mut current = None;
        for line in &self.lines {
            if line.order.is_some() && line.order != current {
                runs += 1;
            }
            current = line.order;
        }
        runs
    }
}

fn parse(bytes: &[u8]) -> (Result<ParsedSettlement, Rejection>, Vec<OrderSums>) {
    let mut orders = Vec::new();
    let parsed = parse_settlement(bytes, |order| orders.push(order));
    (parsed, orders)
}

fn paise(amount: Decimal) -> Decimal {
    amount * Decimal::ONE_HUNDRED
}

/// Never a panic; a refusal always says why, at a line of the file.
fn parsed_or_refused_with_reasons(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (parsed, orders) = parse(bytes);
    match parsed {
        Ok(parsed) => prop_assert_eq!(parsed.order_runs, orders.len() as u64),
        Err(rejection) => {
            prop_assert!(!rejection.problems.is_empty());
            prop_assert!(rejection.problems.len() <= super::MAX_PROBLEMS);
            for problem in &rejection.problems {
                prop_assert!(!problem.reason.trim().is_empty());
                prop_assert!(problem.line >= 1);
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_valid_file_adds_up_to_what_was_written(file in file()) {
        let bytes = file.bytes();
        let (parsed, orders) = parse(&bytes);
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(rejection) => return Err(TestCaseError::fail(format!("{:?}", rejection.problems))),
        };
        let written: i64 = file.lines_total();
        prop_assert_eq!(paise(parsed.lines_total), Decimal::from(written));
        prop_assert_eq!(paise(parsed.difference), Decimal::from(file.off_by_paise));
        prop_assert_eq!(parsed.reconciles, file.off_by_paise == 0);
        prop_assert_eq!(parsed.detail_lines, file.lines.len() as u64);
        prop_assert_eq!(parsed.order_runs, file.order_runs());
        prop_assert_eq!(orders.len() as u64, file.order_runs());

        let of_orders: i64 = file.lines.iter().filter(|l| l.order.is_some()).map(|l| l.paise).sum();
        let runs: Decimal = orders.iter().flat_map(|o| &o.items).flat_map(|i| &i.charges).map(|c| c.amount).sum();
        prop_assert_eq!(paise(runs), Decimal::from(of_orders));

        let by_day: Decimal = parsed.by_day.iter().flat_map(|d| &d.charges).map(|c| c.amount).sum();
        prop_assert_eq!(by_day, parsed.lines_total);
        prop_assert!(parsed.by_day.windows(2).all(|w| w[0].day < w[1].day));

        let of_skus: i64 = file.lines.iter().filter(|l| l.sku.is_some()).map(|l| l.paise).sum();
        let by_sku_day: Decimal = parsed.by_sku_day.iter().flat_map(|s| &s.charges).map(|c| c.amount).sum();
        prop_assert_eq!(paise(by_sku_day), Decimal::from(of_skus));
        prop_assert!(parsed.by_sku_day.windows(2).all(|w| (w[0].day, &w[0].sku) < (w[1].day, &w[1].sku)));

        let sold: u64 = file.lines.iter().filter(|l| l.counts_units() && !l.refund && l.sku.is_some()).map(|l| u64::from(l.quantity)).sum();
        let refunded: u64 = file.lines.iter().filter(|l| l.counts_units() && l.refund && l.sku.is_some()).map(|l| u64::from(l.quantity)).sum();
        prop_assert_eq!(parsed.by_sku_day.iter().map(|s| s.units.sold).sum::<u64>(), sold);
        prop_assert_eq!(parsed.by_sku_day.iter().map(|s| s.units.refunded).sum::<u64>(), refunded);
        prop_assert_eq!(parsed.marketplace.is_some(), !file.lines.is_empty());

        // The same settlement written plainly (LF, UTF-8, Amazon's columns) is the same text
        // only when the columns are in the same order; line endings and encoding never matter.
        let mut same_text = file.clone();
        same_text.writing.crlf = false;
        same_text.writing.windows_1252 = false;
        same_text.writing.bom = false;
        let (plain, _) = parse(&same_text.bytes());
        prop_assert_eq!(plain.map(|p| p.fingerprint).ok(), Some(parsed.fingerprint.clone()));
        let mut plain_writing = file.clone();
        plain_writing.writing = Writing::plain();
        let (plain, _) = parse(&plain_writing.bytes());
        let plain = plain.map_err(|r| TestCaseError::fail(format!("{:?}", r.problems)))?;
        prop_assert_eq!(plain.lines_total, parsed.lines_total);
        prop_assert_eq!(plain.by_day, parsed.by_day);
        prop_assert_eq!(plain.by_sku_day, parsed.by_sku_day);
    }

    #[test]
    fn any_bytes_are_parsed_or_refused_with_reasons(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        parsed_or_refused_with_reasons(&bytes)?;
    }

    #[test]
    fn any_text_under_a_valid_header_is_parsed_or_refused(rows in proptest::collection::vec(proptest::collection::vec(token(), 0..27), 0..8)) {
        let mut text = COLUMNS.join("\t");
        for row in rows {
            text.push('\n');
            text.push_str(&row.join("\t"));
        }
        parsed_or_refused_with_reasons(text.as_bytes())?;
    }

    #[test]
    fn a_mangled_valid_file_is_parsed_or_refused(file in file(), mangling in mangling()) {
        parsed_or_refused_with_reasons(&mangling.apply(file.bytes()))?;
    }
}

/// Field values that reach deep into the parser: near-valid amounts, dates, ids.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("29876543210".to_owned()),
        Just("INR".to_owned()),
        Just("Order".to_owned()),
        Just("Refund".to_owned()),
        Just("ItemPrice".to_owned()),
        Just("Principal".to_owned()),
        Just("Amazon.in".to_owned()),
        Just("2026-10-05".to_owned()),
        Just("2026-10-05T23:59:59+14:00".to_owned()),
        Just("31.12.9999 23:59:59 UTC".to_owned()),
        Just("0000-01-01T00:00:00-12:00".to_owned()),
        "[0-9]{1,20}",
        "[+-]?[0-9]{0,16}[.,]?[0-9]{0,8}",
        "[0-9.:T+ UTCZ-]{0,26}",
        ".{0,12}",
    ]
}

/// A way to damage a file.
#[derive(Clone, Debug)]
enum Mangling {
    FlipByte { at: usize, bits: u8 },
    Truncate { at: usize },
    DuplicateLine { at: usize },
    DropLine { at: usize },
}

fn mangling() -> impl Strategy<Value = Mangling> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mangling::FlipByte { at, bits }),
        any::<usize>().prop_map(|at| Mangling::Truncate { at }),
        any::<usize>().prop_map(|at| Mangling::DuplicateLine { at }),
        any::<usize>().prop_map(|at| Mangling::DropLine { at }),
    ]
}

impl Mangling {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        if bytes.is_empty() {
            return bytes;
        }
        let mut lines: Vec<Vec<u8>> = bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        match *self {
            Mangling::FlipByte { at, bits } => {
                let at = at % bytes.len();
                bytes[at] ^= bits;
                bytes
            }
            Mangling::Truncate { at } => {
                bytes.truncate(at % bytes.len());
                bytes
            }
            Mangling::DuplicateLine { at } => {
                let at = at % lines.len();
                let line = lines[at].clone();
                lines.insert(at, line);
                lines.concat()
            }
            Mangling::DropLine { at } => {
                lines.remove(at % lines.len());
                lines.concat()
            }
        }
    }
}
