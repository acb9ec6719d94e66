//! The V2 settlement flat file (`GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`), read in one pass.
//!
//! A tab-separated file: a header naming the columns, one summary row (the only row with a
//! `total-amount`: the deposit), then detail rows, one per amount (an order's principal, its tax,
//! each fee, a refund, a storage fee…). Every line is checked; a file with any problem is refused
//! whole, listing its first [`MAX_PROBLEMS`] problems with their line numbers.
//!
//! `on_order` receives each order's sums as the stream passes the order. If the file is then
//! refused, what it received must be discarded: only an `Ok` makes it count. After the first
//! problem `on_order` is not called any more.

mod amounts;
mod columns;
mod dates;
mod lines;
mod pipeline;
mod sums;
#[cfg(test)]
mod tests;

use super::{
    MAX_PROBLEMS, OrderSums, ParsedSettlement, Problem, Rejection, SettlementId, SettlementSummary,
};
use amounts::{parse_amount, parse_quantity};
use columns::{Column, Fields, Header, Row};
use dates::{Written, parse_written};
use pipeline::Line;
use std::io::BufRead;
use std::ops::ControlFlow;
use sums::{DetailLine, Sums, same};
use time::{Date, UtcOffset, macros::offset};

/// Reads a whole flat file, handing each order's sums to `on_order` as the stream passes it.
///
/// Lines are read on a second thread while this one adds them up (see `pipeline`).
pub fn parse_settlement<R: BufRead + Send>(
    reader: R,
    mut on_order: impl FnMut(OrderSums),
) -> Result<ParsedSettlement, Rejection> {
    let mut parser = Parser::default();
    std::thread::scope(|scope| {
        let (send, batches) = pipeline::channel();
        let reading = std::thread::Builder::new()
            .name("settlement-lines".into())
            .spawn_scoped(scope, move || pipeline::read_lines(reader, send));
        let reading = match reading {
            Ok(reading) => reading,
            Err(error) => {
                parser
                    .problems
                    .add(1, format!("the file could not be read: {error}"));
                return parser.finish(String::new(), &mut on_order);
            }
        };
        'batches: for batch in &batches {
            for line in batch.lines() {
                if parser.line(line, &mut on_order).is_break() {
                    break 'batches;
                }
            }
        }
        // Dropping the receiver stops a reader that is still going (a refused file).
        drop(batches);
        let fingerprint = match reading.join() {
            Ok(fingerprint) => fingerprint,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        parser.finish(fingerprint, &mut on_order)
    })
}

/// The parse of one file, line after line: first the header, then the rows.
#[derive(Default)]
struct Parser {
    problems: Problems,
    /// `None` until the header was read; refused header: the parse has stopped.
    file: Option<FileReader>,
    /// The header was refused (or the file could not be read): nothing more is looked at.
    stopped: bool,
}

impl Parser {
    fn line(&mut self, line: Line<'_>, on_order: &mut impl FnMut(OrderSums)) -> ControlFlow<()> {
        match (line, &mut self.file) {
            (
                Line::Text {
                    number,
                    text,
                    fields,
                },
                Some(file),
            ) => {
                file.row(number, text, fields, &mut self.problems, on_order);
            }
            (Line::Text { number, text, .. }, None) => match Header::read(text) {
                Ok(header) => self.file = Some(FileReader::new(header)),
                Err(reasons) => {
                    for reason in reasons {
                        self.problems.add(number, reason);
                    }
                    self.stopped = true;
                }
            },
            (Line::Unreadable { number, reason }, file) => {
                self.problems.add(number, reason);
                self.stopped |= file.is_none();
            }
            (Line::Failed { number, error }, _) => {
                self.problems
                    .add(number, format!("the file could not be read: {error}"));
                self.stopped = true;
            }
        }
        if self.stopped || self.problems.is_full() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn finish(
        mut self,
        fingerprint: String,
        on_order: &mut impl FnMut(OrderSums),
    ) -> Result<ParsedSettlement, Rejection> {
        match self.file {
            Some(file) if !self.stopped => file.finish(fingerprint, self.problems, on_order),
            _ => {
                if self.problems.is_empty() {
                    self.problems
                        .add(1, "the file is empty: no header, no summary row, no lines");
                }
                Err(self.problems.into_rejection())
            }
        }
    }
}

/// Problems found so far: the first [`MAX_PROBLEMS`], and whether there were more.
#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    more: bool,
}

impl Problems {
    fn add(&mut self, line: u64, reason: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem {
                line,
                reason: reason.into(),
            });
        } else {
            self.more = true;
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// No need to read on: the list is full and we know there are more.
    fn is_full(&self) -> bool {
        self.more
    }

    fn into_rejection(mut self) -> Rejection {
        self.list.sort_by_key(|problem| problem.line);
        Rejection {
            problems: self.list,
            more: self.more,
        }
    }
}

/// The longest order id, SKU or charge name accepted (Amazon's SKUs have at most 40 characters):
/// they become parts of the store's keys, which DynamoDB caps.
const MAX_NAME_BYTES: usize = 200;

/// A value as a reason quotes it: at most 40 characters, so a reason stays short whatever the
/// file holds.
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

/// Amazon.in's settlements are in India's time (+05:30, no daylight saving); others in UTC.
fn marketplace_offset(marketplace: &str) -> UtcOffset {
    if marketplace.eq_ignore_ascii_case("Amazon.in") {
        offset!(+5:30)
    } else {
        UtcOffset::UTC
    }
}

/// The last date text read and its day: a file's lines share a few dozen dates.
#[derive(Default)]
struct DayCache {
    text: String,
    local: Option<UtcOffset>,
    day: Option<Date>,
}

impl DayCache {
    /// The day of `text` as `day_of` reads it (at `local`).
    fn day(
        &mut self,
        text: &str,
        local: Option<UtcOffset>,
        day_of: impl FnOnce(Written) -> Result<Date, &'static str>,
    ) -> Result<Date, String> {
        if let Some(day) = self.day
            && self.local == local
            && same(&self.text, text)
        {
            return Ok(day);
        }
        let day = parse_written(text)
            .and_then(|written| day_of(written).map_err(|why| format!("{}: {why}", shown(text))))?;
        self.text.clear();
        self.text.push_str(text);
        self.local = local;
        self.day = Some(day);
        Ok(day)
    }
}

/// The summary row, as found.
struct Summary {
    line: u64,
    /// `None` when the row had a problem (already reported).
    read: Option<SettlementSummary>,
}

/// The state of a file being read, after its header.
struct FileReader {
    header: Header,
    summary: Option<Summary>,
    /// The first settlement id seen, and its line: every other must be the same.
    settlement_id: Option<(String, u64)>,
    marketplace: Option<String>,
    posted_dates: DayCache,
    posted_times: DayCache,
    sums: Sums,
}

impl FileReader {
    fn new(header: Header) -> Self {
        Self {
            header,
            summary: None,
            settlement_id: None,
            marketplace: None,
            posted_dates: DayCache::default(),
            posted_times: DayCache::default(),
            sums: Sums::default(),
        }
    }

    /// A row, split already (`fields`) or split here.
    fn row(
        &mut self,
        number: u64,
        text: &str,
        fields: Option<&Result<Fields, usize>>,
        problems: &mut Problems,
        on_order: &mut impl FnMut(OrderSums),
    ) {
        let split = match fields {
            Some(fields) => fields.map(|fields| Row::at(text, &fields)),
            None => self.header.split(text),
        };
        let row = match split {
            Ok(row) => row,
            Err(fields) => {
                let reason = format!(
                    "the line has {fields} fields but the header names {} columns",
                    self.header.len()
                );
                return problems.add(number, reason);
            }
        };
        self.check_settlement_id(number, row.get(Column::SettlementId), problems);
        if row.get(Column::TotalAmount).is_empty() {
            self.detail(number, &row, problems, on_order);
        } else {
            self.summary(number, &row, problems);
        }
    }

    /// Every settlement id of the file must be the same (detail lines may leave it empty).
    fn check_settlement_id(&mut self, number: u64, id: &str, problems: &mut Problems) {
        if id.is_empty() {
            return;
        }
        match &self.settlement_id {
            Some((first, _)) if same(first, id) => {}
            Some((first, line)) => problems.add(
                number,
                format!(
                    "settlement-id {} differs from {} (line {line})",
                    shown(id),
                    shown(first)
                ),
            ),
            None => self.settlement_id = Some((id.to_owned(), number)),
        }
    }

    fn summary(&mut self, number: u64, row: &Row<'_>, problems: &mut Problems) {
        if let Some(first) = &self.summary {
            let reason = format!(
                "a second summary row (a row with a total-amount); the first is line {}",
                first.line
            );
            return problems.add(number, reason);
        }
        let read = read_summary(row).map_err(|reasons| {
            for reason in reasons {
                problems.add(number, reason);
            }
        });
        self.summary = Some(Summary {
            line: number,
            read: read.ok(),
        });
    }

    fn detail(
        &mut self,
        number: u64,
        row: &Row<'_>,
        problems: &mut Problems,
        on_order: &mut impl FnMut(OrderSums),
    ) {
        let marketplace = row.get(Column::MarketplaceName);
        if self.marketplace.is_none() && !marketplace.is_empty() {
            self.marketplace = Some(marketplace.to_owned());
        }
        let amount = match row.get(Column::Amount) {
            "" => Err("a detail line without an amount".to_owned()),
            text => parse_amount(text).map_err(|why| format!("amount {}: {why}", shown(text))),
        };
        let day = self.posted_day(row);
        let quantity = match row.get(Column::QuantityPurchased) {
            "" => Ok(0),
            text => parse_quantity(text)
                .map_err(|why| format!("quantity-purchased {}: {why}", shown(text))),
        };
        let (amount, day, quantity) = match (amount, day, quantity) {
            (Ok(amount), Ok(day), Ok(quantity)) => (amount, day, quantity),
            (amount, day, quantity) => {
                for reason in [amount.err(), day.err(), quantity.err()]
                    .into_iter()
                    .flatten()
                {
                    problems.add(number, reason);
                }
                return;
            }
        };
        for column in [
            Column::OrderId,
            Column::Sku,
            Column::TransactionType,
            Column::AmountType,
            Column::AmountDescription,
        ] {
            if row.get(column).len() > MAX_NAME_BYTES {
                problems.add(
                    number,
                    format!("{} is longer than {MAX_NAME_BYTES} bytes", column.name()),
                );
            }
        }
        if !problems.is_empty() {
            // The file will be refused: adding it up is wasted work.
            return;
        }
        let line = DetailLine {
            number,
            day,
            order_id: row.get(Column::OrderId),
            sku: row.get(Column::Sku),
            transaction_type: row.get(Column::TransactionType),
            amount_type: row.get(Column::AmountType),
            amount_description: row.get(Column::AmountDescription),
            quantity,
            amount,
        };
        if let Err(reason) = self.sums.add(&line, on_order) {
            problems.add(number, reason);
        }
    }

    /// The day a line counts on: the instant of `posted-date-time` in the marketplace's time
    /// when the file has it (Amazon.in: India's day, even for a line posted before 05:30 IST),
    /// else `posted-date` as written. Both are checked when present.
    fn posted_day(&mut self, row: &Row<'_>) -> Result<Date, String> {
        let posted_time = row.get(Column::PostedDateTime);
        let time_day = if posted_time.is_empty() {
            None
        } else {
            let marketplace = match row.get(Column::MarketplaceName) {
                "" => self.marketplace.as_deref().unwrap_or_default(),
                name => name,
            };
            let local = marketplace_offset(marketplace);
            let day = self
                .posted_times
                .day(posted_time, Some(local), |written| written.day_at(local))
                .map_err(|why| format!("posted-date-time {why}"))?;
            Some(day)
        };
        match row.get(Column::PostedDate) {
            "" => time_day
                .ok_or_else(|| "a detail line without posted-date or posted-date-time".to_owned()),
            posted => {
                let written = self
                    .posted_dates
                    .day(posted, None, |written| Ok(written.day_as_written()))
                    .map_err(|why| format!("posted-date {why}"))?;
                Ok(time_day.unwrap_or(written))
            }
        }
    }

    fn finish(
        mut self,
        fingerprint: String,
        mut problems: Problems,
        on_order: &mut impl FnMut(OrderSums),
    ) -> Result<ParsedSettlement, Rejection> {
        if self.summary.is_none() {
            problems.add(
                2,
                "no summary row: one row must carry the settlement's total-amount (and its \
                 settlement-id and currency)",
            );
        }
        let summary = self.summary.take().and_then(|summary| summary.read);
        let (Some(summary), true) = (summary, problems.is_empty()) else {
            return Err(problems.into_rejection());
        };
        let totals = self.sums.finish(on_order);
        let difference = summary.total_amount - totals.lines_total;
        Ok(ParsedSettlement {
            summary,
            marketplace: self.marketplace,
            detail_lines: totals.detail_lines,
            lines_total: totals.lines_total,
            difference,
            reconciles: difference.is_zero(),
            order_runs: totals.order_runs,
            by_day: totals.by_day,
            by_sku_day: totals.by_sku_day,
            fingerprint,
        })
    }
}

/// The summary row's settlement: id, currency, total and dates, or every reason it is wrong.
fn read_summary(row: &Row<'_>) -> Result<SettlementSummary, Vec<String>> {
    let mut reasons = Vec::new();
    let mut note = |reason: String| reasons.push(reason);

    let id_text = row.get(Column::SettlementId);
    let settlement_id = SettlementId::parse(id_text);
    if settlement_id.is_none() {
        note(match id_text {
            "" => "the summary row has no settlement-id".to_owned(),
            text => {
                format!(
                    "the summary row's settlement-id {} is not a settlement id (digits)",
                    shown(text)
                )
            }
        });
    }
    let currency = row.get(Column::Currency);
    let currency_ok = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphabetic());
    if !currency_ok {
        note(match currency {
            "" => "the summary row has no currency".to_owned(),
            text => format!(
                "the summary row's currency {} is not a currency code like INR",
                shown(text)
            ),
        });
    }
    let total_text = row.get(Column::TotalAmount);
    let total_amount = parse_amount(total_text)
        .map_err(|why| note(format!("total-amount {}: {why}", shown(total_text))))
        .ok();
    let mut moment = |column: Column| match row.get(column) {
        "" => None,
        text => parse_written(text)
            .map_err(|why| note(format!("{} {why}", column.name())))
            .ok()
            .map(Written::moment),
    };
    let start = moment(Column::StartDate);
    let end = moment(Column::EndDate);
    let deposit_date = moment(Column::DepositDate);

    match (settlement_id, total_amount) {
        (Some(settlement_id), Some(total_amount)) if reasons.is_empty() => Ok(SettlementSummary {
            settlement_id,
            start,
            end,
            deposit_date,
            total_amount,
            currency: currency.to_ascii_uppercase(),
        }),
        _ => Err(reasons),
    }
}
