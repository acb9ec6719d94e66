//! The cost of goods (POLICY A3): what a unit of a SKU cost the merchant, from a date on, uploaded
//! as a CSV. A COGS file holds exactly four columns; anything else is refused, and so is a row
//! that looks like it holds a card or bank account number (EcomDrive stores neither).

use super::{MAX_PROBLEMS, Problem, Rejection};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use time::{Date, Month};

/// What one unit of a SKU cost, from `effective_from` on (until a later cost takes over).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UnitCost {
    pub sku: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_cost: Decimal,
    /// ISO 4217, e.g. `INR`.
    pub currency: String,
    #[serde(with = "crate::amazon::iso_date")]
    pub effective_from: Date,
}

/// How many cost rows one upload may hold (more: split the file).
pub const MAX_COGS_ROWS: usize = 20_000;

/// Amazon's limit on a seller SKU.
const MAX_SKU_CHARS: usize = 40;

/// Digits before the decimal point of a unit cost: a trillion is far above any unit cost and keeps
/// `units × cost` far from `Decimal`'s limit.
const MAX_COST_INTEGER_DIGITS: usize = 12;

/// The columns of a COGS file, in the order of `UnitCost`.
const COLUMNS: [&str; 4] = ["sku", "unit_cost", "currency", "effective_from"];

/// Reads a COGS upload: a header naming exactly `sku, unit_cost, currency, effective_from` (any
/// order, any case), then one cost per row, e.g. `SKU-1,12.50,INR,2026-10-01`.
///
/// Every problem is reported at its line (header = line 1), the first [`MAX_PROBLEMS`] of them;
/// one bad row refuses the whole file, so an upload is all or nothing. Values are trimmed; rows
/// whose fields are all empty (spreadsheets save those below the data) are skipped.
pub fn parse_cogs_csv(bytes: &[u8]) -> Result<Vec<UnitCost>, Rejection> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut problems = Problems::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();

    let mut header: Option<Header> = None;
    let mut costs = Vec::new();
    // (sku, effective_from) → the line it was first seen on.
    let mut seen: HashMap<(String, Date), u64> = HashMap::new();
    let mut rows = 0usize;

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Reading from memory: only a malformed record gets here.
                let line = e.position().map_or(0, |p| p.line());
                problems.push(line, "this line cannot be read as CSV".into());
                break;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let Some(fields) = utf8_fields(&record) else {
            problems.push(
                line,
                "this line is not UTF-8 text: save the file as \"CSV UTF-8\"".into(),
            );
            if header.is_none() {
                break;
            }
            continue;
        };
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        let Some(columns) = &header else {
            match read_header(&fields) {
                Ok(h) => header = Some(h),
                Err(reasons) => {
                    for reason in reasons {
                        problems.push(line, reason);
                    }
                    break;
                }
            }
            continue;
        };

        rows += 1;
        if rows > MAX_COGS_ROWS {
            problems.push(
                line,
                format!("more than {MAX_COGS_ROWS} rows: split the file into smaller uploads"),
            );
            break;
        }
        match read_row(columns, &fields) {
            Ok(cost) => {
                let key = (cost.sku.clone(), cost.effective_from);
                if let Some(first) = seen.get(&key) {
                    problems.push(
                        line,
                        format!(
                            "SKU {} already has a cost from {} (line {first})",
                            shown(&cost.sku),
                            cost.effective_from
                        ),
                    );
                } else {
                    seen.insert(key, line);
                    costs.push(cost);
                }
            }
            Err(reasons) => {
                for reason in reasons {
                    problems.push(line, reason);
                }
            }
        }
        if problems.more {
            break;
        }
    }

    if header.is_none() && problems.list.is_empty() {
        problems.push(1, "the file is empty".into());
    } else if header.is_some() && rows == 0 && problems.list.is_empty() {
        problems.push(2, "the file has a header but no cost rows".into());
    }
    if problems.list.is_empty() {
        Ok(costs)
    } else {
        Err(Rejection {
            problems: problems.list,
            more: problems.more,
        })
    }
}

/// Costs by SKU and day, for looking up the cost in force on a day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostHistory {
    by_sku: BTreeMap<String, BTreeMap<Date, UnitCost>>,
}

impl CostHistory {
    /// Builds the history from costs oldest upload first: when the same (SKU, `effective_from`)
    /// comes twice, the last one wins, so a re-uploaded cost corrects the earlier one.
    pub fn new(costs: impl IntoIterator<Item = UnitCost>) -> Self {
        let mut by_sku: BTreeMap<String, BTreeMap<Date, UnitCost>> = BTreeMap::new();
        for cost in costs {
            by_sku
                .entry(cost.sku.clone())
                .or_default()
                .insert(cost.effective_from, cost);
        }
        Self { by_sku }
    }

    /// The cost in force on `day`: the one with the latest `effective_from` on or before it.
    pub fn cost_on(&self, sku: &str, day: Date) -> Option<&UnitCost> {
        self.by_sku
            .get(sku)?
            .range(..=day)
            .next_back()
            .map(|(_, cost)| cost)
    }
}

impl FromIterator<UnitCost> for CostHistory {
    fn from_iter<I: IntoIterator<Item = UnitCost>>(iter: I) -> Self {
        Self::new(iter)
    }
}

#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    more: bool,
}

impl Problems {
    fn push(&mut self, line: u64, reason: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem { line, reason });
        } else {
            self.more = true;
        }
    }
}

/// Where each column sits in a row: indexes in the order of [`COLUMNS`], and the row width.
struct Header {
    at: [usize; 4],
    width: usize,
}

fn utf8_fields(record: &csv::ByteRecord) -> Option<Vec<&str>> {
    record
        .iter()
        .map(|f| std::str::from_utf8(f).ok().map(str::trim))
        .collect()
}

fn read_header(fields: &[&str]) -> Result<Header, Vec<String>> {
    let mut reasons = Vec::new();
    if fields.iter().any(|f| looks_like_card_or_bank_number(f)) {
        return Err(vec![SENSITIVE.into()]);
    }
    let mut at: [Option<usize>; 4] = [None; 4];
    for (i, name) in fields.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        match COLUMNS.iter().position(|c| *c == lower) {
            Some(c) if at[c].is_some() => {
                reasons.push(format!("the column {} appears twice", COLUMNS[c]));
            }
            Some(c) => at[c] = Some(i),
            None if name.is_empty() => reasons.push(format!(
                "column {} has no name: a COGS file has exactly the columns {}",
                i + 1,
                COLUMNS.join(", ")
            )),
            // A COGS file is the one place merchants give us financial data: nothing beyond
            // these four columns is stored, so nothing else is accepted.
            None => reasons.push(format!(
                "unknown column {}: a COGS file has exactly the columns {} (we store no other \
                 financial fields)",
                shown(name),
                COLUMNS.join(", ")
            )),
        }
    }
    for (c, found) in COLUMNS.iter().zip(at) {
        if found.is_none() {
            reasons.push(format!("the column {c} is missing"));
        }
    }
    match at {
        [Some(sku), Some(cost), Some(currency), Some(from)] if reasons.is_empty() => Ok(Header {
            at: [sku, cost, currency, from],
            width: fields.len(),
        }),
        _ => Err(reasons),
    }
}

const SENSITIVE: &str = "this line holds what looks like a card number or a bank account number \
     (IBAN): remove it, EcomDrive stores no card or bank numbers";

fn read_row(header: &Header, fields: &[&str]) -> Result<UnitCost, Vec<String>> {
    // First, and alone: no other reason may echo a value of such a row.
    if fields.iter().any(|f| looks_like_card_or_bank_number(f)) {
        return Err(vec![SENSITIVE.into()]);
    }
    let mut reasons = Vec::new();
    if fields.len() > header.width {
        reasons.push(format!(
            "too many fields: {} where the header has {}",
            fields.len(),
            header.width
        ));
    } else if fields.len() < header.width {
        reasons.push(format!(
            "missing fields: {} where the header has {}",
            fields.len(),
            header.width
        ));
    }
    let get = |c: usize| fields.get(header.at[c]).copied().unwrap_or("");
    let (sku, cost, currency, from) = (get(0), get(1), get(2), get(3));

    if let Err(reason) = check_sku(sku) {
        reasons.push(reason);
    }
    let unit_cost = parse_unit_cost(cost).map_err(|r| reasons.push(r)).ok();
    if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
        reasons.push(format!(
            "currency {} is not a 3-letter code in capitals, like INR",
            shown(currency)
        ));
    }
    let effective_from = parse_day(from).map_err(|r| reasons.push(r)).ok();

    match (unit_cost, effective_from) {
        (Some(unit_cost), Some(effective_from)) if reasons.is_empty() => Ok(UnitCost {
            sku: sku.to_owned(),
            unit_cost,
            currency: currency.to_owned(),
            effective_from,
        }),
        _ => Err(reasons),
    }
}

fn check_sku(sku: &str) -> Result<(), String> {
    if sku.is_empty() {
        Err("the sku is empty".into())
    } else if sku.chars().count() > MAX_SKU_CHARS {
        Err(format!(
            "the sku is longer than {MAX_SKU_CHARS} characters (Amazon's limit)"
        ))
    } else if sku.chars().any(char::is_control) {
        Err("the sku holds control characters (tabs, line breaks…)".into())
    } else {
        Ok(())
    }
}

/// A non-negative decimal with a decimal point and at most 4 decimals: `12`, `12.5`, `12.5000`.
fn parse_unit_cost(raw: &str) -> Result<Decimal, String> {
    let bad = || {
        format!(
            "unit_cost {} is not an amount like 12.50 (digits, a decimal point and at most 4 \
             decimals; no currency sign or thousands separator)",
            shown(raw)
        )
    };
    if raw.starts_with('-') {
        return Err(format!("unit_cost {} is negative", shown(raw)));
    }
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || raw.ends_with('.') {
        return Err(bad());
    }
    if frac.len() > 4 {
        return Err(format!("unit_cost {} has more than 4 decimals", shown(raw)));
    }
    if int.len() > MAX_COST_INTEGER_DIGITS {
        return Err("unit_cost is too large".into());
    }
    Decimal::from_str_exact(raw).map_err(|_| bad())
}

/// `YYYY-MM-DD`, a real calendar day.
fn parse_day(raw: &str) -> Result<Date, String> {
    let bad = || {
        format!(
            "effective_from {} is not a date like 2026-10-01 (YYYY-MM-DD)",
            shown(raw)
        )
    };
    let b = raw.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u16>().ok();
    let (Some(year), Some(month), Some(day)) = (num(&raw[..4]), num(&raw[5..7]), num(&raw[8..]))
    else {
        return Err(bad());
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok());
    let day = u8::try_from(day).ok();
    match (month, day) {
        (Some(month), Some(day)) => Date::from_calendar_date(i32::from(year), month, day)
            .map_err(|_| format!("effective_from {} is not a real day", shown(raw))),
        _ => Err(bad()),
    }
}

/// A value quoted for a reason, or not at all when long (the line number finds it).
fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SKU_CHARS {
        format!("{value:?}")
    } else {
        "(a long value)".into()
    }
}

/// Whether `text` holds something shaped like a payment card number or an IBAN (POLICY A3).
pub(crate) fn looks_like_card_or_bank_number(text: &str) -> bool {
    has_card_number(text) || has_iban(text)
}

/// Card numbers: 13–19 digits, Luhn-valid, written together or in the usual groups (`4111 1111
/// 1111 1111`, `4111-1111-1111-1111`, Amex `3782 822463 10005`), wherever they stand in a value
/// (letters around them do not hide them).
///
/// A 13- or 14-digit run without separators that is a valid GTIN (EAN-13, GTIN-14: a GS1 check
/// digit) is taken for a barcode, not a card: many sellers use the EAN as the SKU, and about one
/// EAN in ten is also Luhn-valid. Cards of those lengths are all but gone (16 digits is the norm).
fn has_card_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run: digit groups joined by single spaces or dashes. A card may be any stretch of
        // whole groups (`2026-10-01 378282246310005` holds an Amex number).
        let mut groups: Vec<&[u8]> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push(&b[start..j]);
            let joined =
                j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit();
            if !joined {
                break;
            }
            j += 1;
        }
        let found = (0..groups.len())
            .any(|from| (from..groups.len()).any(|to| card_like(&groups[from..=to])));
        if found {
            return true;
        }
        i = j;
    }
    false
}

fn card_like(groups: &[&[u8]]) -> bool {
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let usual_grouping = matches!(
        lens.as_slice(),
        [_] | [4, 4, 4, 4] | [4, 4, 4, 4, 1..=3] | [4, 6, 5] | [4, 6, 4] | [4, 4, 4, 1]
    );
    let digits: Vec<u8> = groups
        .iter()
        .flat_map(|g| g.iter().map(|d| d - b'0'))
        .collect();
    if !usual_grouping || !(13..=19).contains(&digits.len()) || !luhn(&digits) {
        return false;
    }
    let barcode = groups.len() == 1 && matches!(digits.len(), 13 | 14) && gs1_check(&digits);
    !barcode
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// GS1 (EAN/UPC/GTIN) check digit: weights 3 and 1 from the right, the check digit excluded.
fn gs1_check(digits: &[u8]) -> bool {
    let Some((&check, body)) = digits.split_last() else {
        return false;
    };
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check)
}

/// IBANs: a country code, two check digits 02–98, then 11–30 letters or digits (spaces allowed,
/// as IBANs are printed in groups of 4), valid by ISO 7064 mod 97.
fn has_iban(text: &str) -> bool {
    let up: Vec<u8> = text.bytes().map(|b| b.to_ascii_uppercase()).collect();
    (0..up.len()).any(|i| {
        let starts = up.len() >= i + 4
            && (i == 0 || !up[i - 1].is_ascii_alphanumeric())
            && up[i].is_ascii_alphabetic()
            && up[i + 1].is_ascii_alphabetic()
            && up[i + 2].is_ascii_digit()
            && up[i + 3].is_ascii_digit()
            && (2..=98).contains(&((up[i + 2] - b'0') * 10 + (up[i + 3] - b'0')));
        starts && iban_from(&up[i..])
    })
}

/// Whether an IBAN starts `s` and ends where a word ends.
fn iban_from(s: &[u8]) -> bool {
    let mut chars: Vec<u8> = Vec::with_capacity(34);
    let mut k = 0;
    while k < s.len() && chars.len() < 34 {
        let c = s[k];
        if c.is_ascii_alphanumeric() {
            chars.push(c);
        } else if !(c == b' ' && k + 1 < s.len() && s[k + 1].is_ascii_alphanumeric()) {
            break;
        }
        k += 1;
        let at_word_end = k >= s.len() || !s[k].is_ascii_alphanumeric();
        if at_word_end && (15..=34).contains(&chars.len()) && mod97(&chars) == 1 {
            return true;
        }
    }
    false
}

/// ISO 7064 mod 97-10 of an IBAN: the first four characters moved to the end, letters as 10–35.
fn mod97(iban: &[u8]) -> u32 {
    let (head, tail) = iban.split_at(4.min(iban.len()));
    tail.iter().chain(head).fold(0u32, |acc, &c| {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        if v >= 10 {
            (acc * 100 + v) % 97
        } else {
            (acc * 10 + v) % 97
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("test decimal")
    }

    fn cost(sku: &str, amount: &str, from: Date) -> UnitCost {
        UnitCost {
            sku: sku.into(),
            unit_cost: dec(amount),
            currency: "INR".into(),
            effective_from: from,
        }
    }

    fn problems(csv: &str) -> Vec<(u64, String)> {
        let rejection = parse_cogs_csv(csv.as_bytes()).expect_err("should be refused");
        rejection
            .problems
            .into_iter()
            .map(|p| (p.line, p.reason))
            .collect()
    }

    #[test]
    fn a_good_file_in_any_column_order_and_case() {
        let csv = "\u{feff}Currency , SKU,Effective_From,unit_cost\r\n\
                   INR,SKU-1,2026-10-01,12.50\r\n\
                   INR, SKU-2 ,2026-10-05,0\r\n\
                   ,,,\r\n\
                   INR,\"SKU,3\",2026-10-05,1234.5678\r\n";
        let costs = parse_cogs_csv(csv.as_bytes()).expect("valid");
        assert_eq!(
            costs,
            vec![
                cost("SKU-1", "12.50", date!(2026 - 10 - 01)),
                cost("SKU-2", "0", date!(2026 - 10 - 05)),
                cost("SKU,3", "1234.5678", date!(2026 - 10 - 05)),
            ]
        );
        assert_eq!(costs[0].unit_cost.to_string(), "12.50");
    }

    #[test]
    fn unit_cost_serializes_as_a_string_and_the_day_as_iso() {
        let json = serde_json::to_value(cost("S", "12.50", date!(2026 - 10 - 01))).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"sku": "S", "unit_cost": "12.50", "currency": "INR",
                               "effective_from": "2026-10-01"})
        );
        let back: UnitCost = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, cost("S", "12.50", date!(2026 - 10 - 01)));
    }

    #[test]
    fn every_bad_row_is_reported_at_its_line() {
        let long = "X".repeat(41);
        let csv = format!(
            "sku,unit_cost,currency,effective_from\n\
             ,1.00,INR,2026-10-01\n\
             {long},1.00,INR,2026-10-01\n\
             \"A\tB\",1.00,INR,2026-10-01\n\
             S1,-1.00,INR,2026-10-01\n\
             S2,\"1,200.00\",INR,2026-10-01\n\
             S3,1.23456,INR,2026-10-01\n\
             S4,₹12,INR,2026-10-01\n\
             S5,12.,inr,2026-10-01\n\
             S6,12,INR,01/10/2026\n\
             S7,12,INR,2026-02-30\n\
             S8,12,INR,2026-10-01,extra\n\
             S8,12,INR,2026-10-01\n\
             S8,13,INR,2026-10-01\n\
             S9,12,INR\n\
             S10,1e3,INR,2026-10-01\n"
        );
        let got = problems(&csv);
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            lines,
            [2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12, 14, 15, 15, 16]
        );
        let reason = |i: usize| got[i].1.as_str();
        assert!(reason(0).contains("sku is empty"), "{}", reason(0));
        assert!(reason(1).contains("longer than 40"));
        assert!(reason(2).contains("control characters"));
        assert!(reason(3).contains("negative"));
        assert!(reason(4).contains("thousands separator"));
        assert!(reason(5).contains("more than 4 decimals"));
        assert!(reason(6).contains("not an amount"));
        assert!(reason(7).contains("not an amount"));
        assert!(reason(8).contains("3-letter code"));
        assert!(reason(9).contains("YYYY-MM-DD"));
        assert!(reason(10).contains("not a real day"));
        assert!(reason(11).contains("too many fields: 5 where the header has 4"));
        assert!(reason(12).contains("already has a cost from 2026-10-01 (line 13)"));
        assert!(reason(13).contains("missing fields"));
        assert!(reason(14).contains("YYYY-MM-DD"));
        assert!(reason(15).contains("not an amount"));
    }

    #[test]
    fn the_header_must_name_exactly_the_four_columns() {
        let got =
            problems("sku,unit_cost,currency,effective_from,card_number\nS,1,INR,2026-10-01,\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
        assert!(
            got[0].1.contains("unknown column \"card_number\""),
            "{}",
            got[0].1
        );
        assert!(got[0].1.contains("no other financial fields"));

        let got = problems("SKU,cost,currency\nS,1,INR\n");
        let reasons: Vec<&str> = got.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "unknown column \"cost\": a COGS file has exactly the columns sku, unit_cost, \
                 currency, effective_from (we store no other financial fields)",
                "the column unit_cost is missing",
                "the column effective_from is missing",
            ]
        );

        let got = problems("sku,sku,unit_cost,currency,effective_from\n");
        assert!(got[0].1.contains("sku appears twice"));
    }

    #[test]
    fn empty_files_and_files_without_rows_are_refused() {
        assert_eq!(problems(""), [(1, "the file is empty".to_owned())]);
        assert_eq!(
            problems("\u{feff}\n\n"),
            [(1, "the file is empty".to_owned())]
        );
        assert_eq!(
            problems("sku,unit_cost,currency,effective_from\n"),
            [(2, "the file has a header but no cost rows".to_owned())]
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_at_its_line() {
        let mut csv = b"sku,unit_cost,currency,effective_from\nS1,1,INR,2026-10-01\n".to_vec();
        csv.extend_from_slice(b"S\xe9,1,INR,2026-10-01\n");
        let rejection = parse_cogs_csv(&csv).expect_err("latin-1");
        assert_eq!(rejection.problems.len(), 1);
        assert_eq!(rejection.problems[0].line, 3);
        assert!(rejection.problems[0].reason.contains("UTF-8"));
    }

    #[test]
    fn problems_stop_at_the_limit_and_say_there_are_more() {
        let mut csv = String::from("sku,unit_cost,currency,effective_from\n");
        for _ in 0..(MAX_PROBLEMS + 5) {
            csv.push_str(",x,INR,2026-10-01\n");
        }
        let rejection = parse_cogs_csv(csv.as_bytes()).expect_err("bad");
        assert_eq!(rejection.problems.len(), MAX_PROBLEMS);
        assert!(rejection.more);
        assert_eq!(rejection.problems[0].line, 2);

        // Exactly the limit: not more.
        let mut csv = String::from("sku,unit_cost,currency,effective_from\n");
        for i in 0..MAX_PROBLEMS {
            csv.push_str(&format!("S{i},x,INR,2026-10-01\n"));
        }
        let rejection = parse_cogs_csv(csv.as_bytes()).expect_err("bad");
        assert_eq!(rejection.problems.len(), MAX_PROBLEMS);
        assert!(!rejection.more);
    }

    #[test]
    fn more_than_the_row_limit_is_refused() {
        let mut csv = String::from("sku,unit_cost,currency,effective_from\n");
        for i in 0..MAX_COGS_ROWS {
            csv.push_str(&format!("S{i},1,INR,2026-10-01\n"));
        }
        assert_eq!(
            parse_cogs_csv(csv.as_bytes()).map(|c| c.len()),
            Ok(MAX_COGS_ROWS)
        );
        csv.push_str("LAST,1,INR,2026-10-01\n");
        let got = problems(&csv);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, MAX_COGS_ROWS as u64 + 2);
        assert!(
            got[0]
                .1
                .contains(&format!("more than {MAX_COGS_ROWS} rows"))
        );
    }

    #[test]
    fn policy_a3_card_and_bank_numbers_are_refused_without_echo() {
        let header = "sku,unit_cost,currency,effective_from\n";
        for row in [
            "4111111111111111,1,INR,2026-10-01",     // Visa test number
            "S1,4111 1111 1111 1111,INR,2026-10-01", // printed in groups
            "S1-4111-1111-1111-1111,1,INR,2026-10-01",
            "S1,1,INR,2026-10-01 378282246310005", // Amex, glued to a field
            "S1,1,INR,2026-10-01,5555555555554444", // Mastercard, extra column
            "GB82WEST12345698765432,1,INR,2026-10-01", // IBAN
            "S1,\"DE89 3704 0044 0532 0130 00\",INR,2026-10-01",
        ] {
            let got = problems(&format!("{header}{row}\n"));
            assert_eq!(got.len(), 1, "{row}: {got:?}");
            assert_eq!(got[0].0, 2);
            assert!(got[0].1.contains("card number or a bank account number"));
            for secret in ["4111", "3782", "5555", "GB82", "DE89", "WEST"] {
                assert!(!got[0].1.contains(secret), "echoed: {}", got[0].1);
            }
        }
        // In the header too, and not echoed there either.
        let got = problems("sku,unit_cost,currency,effective_from,4111111111111111\n");
        assert!(got[0].1.contains("card number") && !got[0].1.contains("4111"));
    }

    #[test]
    fn barcodes_and_ordinary_skus_are_not_taken_for_card_numbers() {
        // 8901030865282: an EAN-13 (GS1 check digit valid) that is also Luhn-valid.
        let ean: Vec<u8> = b"8901030865282".iter().map(|d| d - b'0').collect();
        assert!(luhn(&ean) && gs1_check(&ean));
        let csv = "sku,unit_cost,currency,effective_from\n\
                   8901030865282,1,INR,2026-10-01\n\
                   4111111111111112,1,INR,2026-10-01\n\
                   SKU-2026-0001-0002,1,INR,2026-10-01\n\
                   GB00WEST12345698765432,1,INR,2026-10-01\n\
                   KURTA-BLUE-XL,1,INR,2026-10-01\n";
        assert_eq!(parse_cogs_csv(csv.as_bytes()).map(|c| c.len()), Ok(5));
    }

    #[test]
    fn the_cost_in_force_is_the_latest_on_or_before_the_day() {
        let history = CostHistory::new([
            cost("A", "10", date!(2026 - 10 - 01)),
            cost("A", "12", date!(2026 - 10 - 10)),
            cost("B", "5", date!(2026 - 10 - 01)),
        ]);
        let on = |sku: &str, day: Date| history.cost_on(sku, day).map(|c| c.unit_cost);
        assert_eq!(on("A", date!(2026 - 09 - 30)), None);
        assert_eq!(on("A", date!(2026 - 10 - 01)), Some(dec("10")));
        assert_eq!(on("A", date!(2026 - 10 - 09)), Some(dec("10")));
        assert_eq!(on("A", date!(2026 - 10 - 10)), Some(dec("12")));
        assert_eq!(on("A", date!(2027 - 01 - 01)), Some(dec("12")));
        assert_eq!(on("B", date!(2026 - 10 - 02)), Some(dec("5")));
        assert_eq!(on("C", date!(2026 - 10 - 02)), None);
    }

    #[test]
    fn a_later_upload_of_the_same_day_replaces_the_earlier() {
        let history: CostHistory = [
            cost("A", "10", date!(2026 - 10 - 01)),
            cost("A", "11", date!(2026 - 10 - 01)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            history
                .cost_on("A", date!(2026 - 10 - 05))
                .map(|c| c.unit_cost),
            Some(dec("11"))
        );
    }
}
