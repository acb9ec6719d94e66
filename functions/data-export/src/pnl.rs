//! `pnl_monthly`: the merchant's P&L per month and currency over all its settlements, computed by
//! the same rules as the API's P&L (`ecomdrive_core::settlement::pnl`), one month at a time so
//! memory holds one month's sums, not the merchant's history.

use ecomdrive_aws::store::settlements::SettledPeriod;
use ecomdrive_core::settlement::cogs::CostHistory;
use ecomdrive_core::settlement::pnl::{self, Granularity};
use serde_json::{Map, Value};
use time::{Date, Month};

/// The export's name of the derived P&L file.
pub const FILE: &str = "pnl_monthly";

/// The calendar months from `first`'s to `last`'s, each as its first and last day.
pub fn months(first: Date, last: Date) -> Vec<(Date, Date)> {
    let mut out = Vec::new();
    let Ok(mut start) = first.replace_day(1) else {
        return out;
    };
    while start <= last {
        let next = match start.month() {
            Month::December => Date::from_calendar_date(start.year() + 1, Month::January, 1),
            m => Date::from_calendar_date(start.year(), m.next(), 1),
        };
        let Ok(next) = next else { break };
        out.push((start, next.previous_day().unwrap_or(next)));
        start = next;
    }
    out
}

/// The P&L records of one month's `period`: one per currency with sums in it, as
/// `{"month": "YYYY-MM", "currency": ..., <the P&L line's fields>}`.
pub fn month_records(period: &SettledPeriod, costs: &CostHistory) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for currency in period.currencies() {
        let (days, sku_days) = period.sums_in(currency);
        for line in pnl::by_period(&days, &sku_days, costs, currency, Granularity::Month) {
            let month = line.key.get(..7).unwrap_or(&line.key).to_owned();
            let Ok(Value::Object(fields)) = serde_json::to_value(&line) else {
                continue;
            };
            let mut record = Map::new();
            record.insert("month".into(), Value::String(month));
            record.insert("currency".into(), Value::String(currency.to_owned()));
            record.extend(fields.into_iter().filter(|(k, _)| k != "key"));
            out.push(record);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn months_cover_both_ends_and_cross_the_year() {
        assert_eq!(
            months(date!(2025 - 11 - 20), date!(2026 - 01 - 03)),
            vec![
                (date!(2025 - 11 - 01), date!(2025 - 11 - 30)),
                (date!(2025 - 12 - 01), date!(2025 - 12 - 31)),
                (date!(2026 - 01 - 01), date!(2026 - 01 - 31)),
            ]
        );
        assert_eq!(
            months(date!(2024 - 02 - 29), date!(2024 - 02 - 29)),
            vec![(date!(2024 - 02 - 01), date!(2024 - 02 - 29))]
        );
    }

    fn settlement(id: &str, currency: &str) -> Value {
        json!({
            "settlement_id": id, "total_amount": "0", "currency": currency,
            "marketplace": null, "detail_lines": 1, "lines_total": "0", "difference": "0",
            "reconciles": true, "order_runs": 0, "fingerprint": "f", "status": "imported",
            "source": "upload", "archive_key": "k", "started_at": "2026-01-01T00:00:00Z",
        })
    }

    fn day(id: &str, day: &str, amount: &str) -> Value {
        json!({
            "settlement_id": id, "fingerprint": "f", "day": day,
            "charges": [{"transaction_type": "Order", "amount_type": "ItemPrice",
                         "amount_description": "Principal", "amount": amount}],
        })
    }

    #[test]
    fn a_month_has_one_line_per_currency_never_adding_two_currencies() {
        let period = SettledPeriod {
            settlements: vec![
                serde_json::from_value(settlement("111", "INR")).unwrap(),
                serde_json::from_value(settlement("222", "USD")).unwrap(),
            ],
            days: vec![
                serde_json::from_value(day("111", "2026-01-05", "100.00")).unwrap(),
                serde_json::from_value(day("111", "2026-01-20", "50.00")).unwrap(),
                serde_json::from_value(day("222", "2026-01-07", "7.00")).unwrap(),
            ],
            sku_days: vec![],
        };
        let records = month_records(&period, &CostHistory::new(vec![]));
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["month"], "2026-01");
        assert_eq!(records[0]["currency"], "INR");
        assert_eq!(records[0]["principal"], "150.00");
        assert_eq!(records[1]["currency"], "USD");
        assert_eq!(records[1]["net_revenue"], "7.00");
        assert!(records.iter().all(|r| !r.contains_key("key")));
    }
}
