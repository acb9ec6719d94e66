//! The P&L (POLICY A8): settlement sums, classified, per period, per SKU or per order, with the
//! cost of goods sold.
//!
//! Signs are the file's: what Amazon pays the merchant is positive (sales), what it keeps is
//! negative (fees, refunds, promotions). Taxes are shown but never counted as revenue or profit:
//! GST collected from buyers goes to the government, and TCS/TDS withheld by Amazon is a tax
//! credit, not a cost. Reserves are money Amazon holds back and releases later: a transfer, shown
//! but not profit.

use super::cogs::CostHistory;
use super::{Charge, ChargeAmount, DaySums, OrderSums, SkuDaySums, Units};
use crate::spreadsheet::{self, text_cell};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, Duration};

/// What a charge is to the merchant's P&L.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// The item price of a sale (`Order` / `ItemPrice` / `Principal`), tax excluded.
    Principal,
    /// What the buyer paid beyond the item: shipping, gift wrap and other `ItemPrice` extras.
    Shipping,
    /// Discounts the merchant funds (`Promotion`), and their reversal on refunds.
    Promotion,
    /// Item price and extras given back (`Refund`, `Chargeback Refund`, A-to-z claims).
    Refund,
    /// What Amazon charges the merchant, by its description (`Commission`, `Storage Fee`…).
    Fee(String),
    /// Taxes collected (`Product Tax`, `ShippingTax`…) or withheld (`TCS-IGST`, `TDS`…).
    Tax(String),
    /// Money held back or released (`Current Reserve Amount`, `Previous Reserve Amount Balance`),
    /// and other transfers (`Payable to Amazon`, `Successful charge`, `Failed disbursement`).
    Reserve,
    /// Anything else, by its description: reimbursements, adjustments, lines Amazon adds later.
    Other(String),
}

/// Money moved between Amazon and the merchant rather than earned or spent: reserves held back or
/// released, a negative balance charged to the merchant's card or paid to Amazon, a deposit that
/// failed and is paid again.
fn is_transfer(lowered: &str) -> bool {
    [
        "reserve",
        "payable to amazon",
        "successful charge",
        "failed disbursement",
    ]
    .iter()
    .any(|t| lowered.contains(t))
}

/// Classifies a charge. The rules, first match wins:
///
/// 1. transfers (reserves, `Payable to Amazon`, `Successful charge`, `Failed disbursement`) →
///    [`Category::Reserve`]: not profit;
/// 2. taxes: amount type `ItemWithheldTax`, or a description containing "tax" or starting with
///    `TCS`/`TDS` → [`Category::Tax`] — before anything else, so a tax on a sale, a refund or a
///    fee is never revenue or profit;
/// 3. amount type `Promotion` → [`Category::Promotion`];
/// 4. reimbursements (`FBA Inventory Reimbursement`…) → [`Category::Other`]: money back for
///    lost or damaged stock, not a fee and not a sale;
/// 5. amount type `ItemPrice`: on an `Order`, `Principal` → [`Category::Principal`] and any other
///    description (`Shipping`, `GiftWrap`, `ShippingCharge`…) → [`Category::Shipping`]; on a
///    refund-like transaction (`Refund`, `Chargeback Refund`, A-to-z claims) →
///    [`Category::Refund`]; on anything else → [`Category::Other`];
/// 6. fees: amount type `ItemFees` (or any `…Fees`), or a description or transaction type that
///    names a fee or advertising (`Storage Fee`, `Subscription Fee`, `Cost of Advertising`) →
///    [`Category::Fee`];
/// 7. anything else → [`Category::Other`].
///
/// Fees, taxes and others are named by their description (the amount type, then the transaction
/// type, when Amazon leaves it empty or generic).
pub fn classify(charge: &Charge) -> Category {
    let lower = |s: &str| s.to_ascii_lowercase();
    let (tt, at, desc) = (
        lower(&charge.transaction_type),
        charge.amount_type.as_str(),
        lower(&charge.amount_description),
    );
    let at_lower = lower(at);
    let name = label(charge);

    if is_transfer(&tt) || is_transfer(&desc) {
        return Category::Reserve;
    }
    if at == "ItemWithheldTax"
        || desc.contains("tax")
        || desc.starts_with("tcs")
        || desc.starts_with("tds")
    {
        return Category::Tax(name);
    }
    if at == "Promotion" {
        return Category::Promotion;
    }
    if [&tt, &at_lower, &desc]
        .iter()
        .any(|s| s.contains("reimburse"))
    {
        return Category::Other(name);
    }
    if at == "ItemPrice" {
        return if charge.transaction_type == "Order" {
            if charge.amount_description == "Principal" {
                Category::Principal
            } else {
                Category::Shipping
            }
        } else if is_refund_like(&charge.transaction_type) {
            Category::Refund
        } else {
            Category::Other(name)
        };
    }
    let fee_like = |s: &str| s.contains("fee") || s.contains("advertising");
    if at_lower.ends_with("fees") || fee_like(&desc) || fee_like(&tt) {
        return Category::Fee(name);
    }
    Category::Other(name)
}

/// Transactions that give the buyer money back: refunds, chargebacks, A-to-z guarantee claims.
pub(crate) fn is_refund_like(transaction_type: &str) -> bool {
    let tt = transaction_type.to_ascii_lowercase();
    ["refund", "chargeback", "a-to-z", "guarantee"]
        .iter()
        .any(|w| tt.contains(w))
}

/// The name a fee, tax or other charge is shown under: its description, else the most telling of
/// its amount type and transaction type (`other-transaction` tells nothing).
fn label(charge: &Charge) -> String {
    let names = [
        charge.amount_description.trim(),
        charge.amount_type.trim(),
        charge.transaction_type.trim(),
    ];
    let telling = |s: &&str| !s.is_empty() && !s.eq_ignore_ascii_case("other-transaction");
    names
        .into_iter()
        .find(telling)
        .or_else(|| names.into_iter().find(|s| !s.is_empty()))
        .unwrap_or("(unnamed)")
        .to_owned()
}

/// One line of a P&L: a period, a SKU, an order, or the total. Amounts carry the file's signs
/// (fees negative).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnlLine {
    pub key: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub principal: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub shipping: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub promotions: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub refunds: Decimal,
    /// By description, e.g. `Commission`, `FBAPerUnitFulfillmentFee`, `Storage Fee`.
    #[serde(with = "decimal_map")]
    pub fees: BTreeMap<String, Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_total: Decimal,
    /// By description, e.g. `Product Tax`, `TCS-IGST`: shown, never revenue or profit.
    #[serde(with = "decimal_map")]
    pub taxes: BTreeMap<String, Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub taxes_total: Decimal,
    /// By description: reimbursements, adjustments, unknown lines.
    #[serde(with = "decimal_map")]
    pub other: BTreeMap<String, Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub other_total: Decimal,
    /// Held back (negative) or released (positive): a transfer, not profit.
    #[serde(with = "rust_decimal::serde::str")]
    pub reserves: Decimal,
    /// principal + shipping + promotions + refunds.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_revenue: Decimal,
    pub units_sold: u64,
    pub units_refunded: u64,
    /// Units sold × the unit cost in force on the day they were posted.
    #[serde(with = "rust_decimal::serde::str")]
    pub cogs: Decimal,
    /// Units sold without a cost (none uploaded, or one in another currency): `cogs` misses them.
    pub units_without_cost: u64,
    /// net_revenue + fees_total + other_total − cogs.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_profit: Decimal,
    /// net_profit / net_revenue, 4 decimals; `None` when there is no revenue.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub margin: Option<Decimal>,
}

impl PnlLine {
    fn named(key: String) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    fn add_charges(&mut self, charges: &[ChargeAmount]) {
        for c in charges {
            self.add(classify(&c.charge), c.amount);
        }
    }

    fn add(&mut self, category: Category, amount: Decimal) {
        match category {
            Category::Principal => self.principal += amount,
            Category::Shipping => self.shipping += amount,
            Category::Promotion => self.promotions += amount,
            Category::Refund => self.refunds += amount,
            Category::Fee(kind) => *self.fees.entry(kind).or_default() += amount,
            Category::Tax(kind) => *self.taxes.entry(kind).or_default() += amount,
            Category::Reserve => self.reserves += amount,
            Category::Other(kind) => *self.other.entry(kind).or_default() += amount,
        }
    }

    /// Counts units and their cost on `day`. Refunded units give no cost back: returned goods are
    /// often not resellable, so the P&L stays on the safe side.
    fn add_units(
        &mut self,
        sku: Option<&str>,
        day: Date,
        units: Units,
        costs: &CostHistory,
        currency: &str,
    ) {
        self.units_sold = self.units_sold.saturating_add(units.sold);
        self.units_refunded = self.units_refunded.saturating_add(units.refunded);
        if units.sold == 0 {
            return;
        }
        let cost = sku
            .and_then(|sku| costs.cost_on(sku, day))
            .filter(|c| c.currency == currency)
            .and_then(|c| Decimal::from(units.sold).checked_mul(c.unit_cost));
        match cost {
            Some(cost) => self.cogs += cost,
            None => self.units_without_cost = self.units_without_cost.saturating_add(units.sold),
        }
    }

    /// Works out the totals, net revenue, profit and margin from the parts.
    fn finish(mut self) -> Self {
        self.fees_total = self.fees.values().sum();
        self.taxes_total = self.taxes.values().sum();
        self.other_total = self.other.values().sum();
        self.net_revenue = self.principal + self.shipping + self.promotions + self.refunds;
        self.net_profit = self.net_revenue + self.fees_total + self.other_total - self.cogs;
        self.margin = if self.net_revenue.is_zero() {
            None
        } else {
            self.net_profit.checked_div(self.net_revenue).map(|m| {
                let mut m = m.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
                m.rescale(4);
                m
            })
        };
        self
    }
}

/// The length of a P&L period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    /// Calendar months.
    Month,
}

impl Granularity {
    /// The first day of the period `day` falls in.
    fn period_start(self, day: Date) -> Date {
        match self {
            Self::Day => day,
            Self::Week => day
                .checked_sub(Duration::days(i64::from(
                    day.weekday().number_days_from_monday(),
                )))
                .unwrap_or(day),
            Self::Month => day.replace_day(1).unwrap_or(day),
        }
    }
}

/// The P&L per period, oldest first, keyed by the period's first day (`YYYY-MM-DD`). Amounts come
/// from `days` (every line, with or without an order or SKU), units and COGS from `sku_days`; a
/// period with only units still appears. `currency` is the settlements' currency: costs in another
/// currency are not converted (the units count as without cost).
pub fn by_period(
    days: &[DaySums],
    sku_days: &[SkuDaySums],
    costs: &CostHistory,
    currency: &str,
    granularity: Granularity,
) -> Vec<PnlLine> {
    fn period(periods: &mut BTreeMap<Date, PnlLine>, start: Date) -> &mut PnlLine {
        periods
            .entry(start)
            .or_insert_with(|| PnlLine::named(start.to_string()))
    }
    let mut periods: BTreeMap<Date, PnlLine> = BTreeMap::new();
    for d in days {
        period(&mut periods, granularity.period_start(d.day)).add_charges(&d.charges);
    }
    for s in sku_days {
        period(&mut periods, granularity.period_start(s.day)).add_units(
            Some(&s.sku),
            s.day,
            s.units,
            costs,
            currency,
        );
    }
    periods.into_values().map(PnlLine::finish).collect()
}

/// The P&L per SKU, sorted by SKU. Only lines that name a SKU count: storage, subscription and
/// other account-level lines are in [`by_period`] only.
pub fn by_sku(sku_days: &[SkuDaySums], costs: &CostHistory, currency: &str) -> Vec<PnlLine> {
    let mut skus: BTreeMap<&str, PnlLine> = BTreeMap::new();
    for s in sku_days {
        let line = skus
            .entry(&s.sku)
            .or_insert_with(|| PnlLine::named(s.sku.clone()));
        line.add_charges(&s.charges);
        line.add_units(Some(&s.sku), s.day, s.units, costs, currency);
    }
    skus.into_values().map(PnlLine::finish).collect()
}

/// The P&L per order, sorted by order id. Runs of the same order are added up; each item's COGS
/// uses the cost in force on its run's day.
pub fn by_order(orders: &[OrderSums], costs: &CostHistory, currency: &str) -> Vec<PnlLine> {
    let mut by_id: BTreeMap<&str, PnlLine> = BTreeMap::new();
    for run in orders {
        let line = by_id
            .entry(&run.order_id)
            .or_insert_with(|| PnlLine::named(run.order_id.clone()));
        for item in &run.items {
            line.add_charges(&item.charges);
            line.add_units(item.sku.as_deref(), run.day, item.units, costs, currency);
        }
    }
    by_id.into_values().map(PnlLine::finish).collect()
}

/// The sum of `lines`, keyed `total`; its margin is the total's, not an average of margins.
pub fn totals(lines: &[PnlLine]) -> PnlLine {
    let mut total = PnlLine::named("total".into());
    for l in lines {
        total.principal += l.principal;
        total.shipping += l.shipping;
        total.promotions += l.promotions;
        total.refunds += l.refunds;
        for (into, from) in [
            (&mut total.fees, &l.fees),
            (&mut total.taxes, &l.taxes),
            (&mut total.other, &l.other),
        ] {
            for (kind, amount) in from {
                *into.entry(kind.clone()).or_default() += *amount;
            }
        }
        total.reserves += l.reserves;
        total.units_sold = total.units_sold.saturating_add(l.units_sold);
        total.units_refunded = total.units_refunded.saturating_add(l.units_refunded);
        total.cogs += l.cogs;
        total.units_without_cost = total
            .units_without_cost
            .saturating_add(l.units_without_cost);
    }
    total.finish()
}

/// The fixed columns of [`to_csv`], before one column per fee kind and per tax kind.
const CSV_COLUMNS: [&str; 16] = [
    "key",
    "principal",
    "shipping",
    "promotions",
    "refunds",
    "net_revenue",
    "fees_total",
    "taxes_total",
    "other_total",
    "reserves",
    "units_sold",
    "units_refunded",
    "cogs",
    "units_without_cost",
    "net_profit",
    "margin",
];

/// The lines as CSV for a spreadsheet: a header, then one row per line. After the fixed columns
/// comes one `fee:<kind>` column per fee and one `tax:<kind>` column per tax found in any line
/// (sorted; empty where a line has none). Amounts are plain decimals (`-120.00`), the margin a
/// fraction (`0.2292`), empty when there is none.
///
/// UTF-8 with a byte order mark, so Excel reads SKUs in any script; CRLF line ends (RFC 4180).
/// Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`) are
/// prefixed with `'`.
pub fn to_csv(lines: &[PnlLine]) -> String {
    let fee_kinds: BTreeSet<&str> = lines
        .iter()
        .flat_map(|l| l.fees.keys().map(String::as_str))
        .collect();
    let tax_kinds: BTreeSet<&str> = lines
        .iter()
        .flat_map(|l| l.taxes.keys().map(String::as_str))
        .collect();

    let mut header: Vec<String> = CSV_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    header.extend(fee_kinds.iter().map(|k| text_cell(&format!("fee:{k}"))));
    header.extend(tax_kinds.iter().map(|k| text_cell(&format!("tax:{k}"))));

    let mut rows = vec![header];
    for l in lines {
        let mut row = vec![
            text_cell(&l.key),
            l.principal.to_string(),
            l.shipping.to_string(),
            l.promotions.to_string(),
            l.refunds.to_string(),
            l.net_revenue.to_string(),
            l.fees_total.to_string(),
            l.taxes_total.to_string(),
            l.other_total.to_string(),
            l.reserves.to_string(),
            l.units_sold.to_string(),
            l.units_refunded.to_string(),
            l.cogs.to_string(),
            l.units_without_cost.to_string(),
            l.net_profit.to_string(),
            l.margin.map(|m| m.to_string()).unwrap_or_default(),
        ];
        let amount = |map: &BTreeMap<String, Decimal>, kind: &str| {
            map.get(kind).map(Decimal::to_string).unwrap_or_default()
        };
        row.extend(fee_kinds.iter().map(|k| amount(&l.fees, k)));
        row.extend(tax_kinds.iter().map(|k| amount(&l.taxes, k)));
        rows.push(row);
    }

    let mut writer =
        spreadsheet::writer(Vec::new()).expect("writing CSV into memory does not fail");
    for row in &rows {
        // Into memory, rows of equal length: nothing can fail.
        writer
            .write_record(row)
            .expect("writing CSV into memory does not fail");
    }
    let bytes = writer
        .into_inner()
        .expect("flushing CSV into memory does not fail");
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Maps of amounts, each amount as a string (`{"Commission": "-120.00"}`).
mod decimal_map {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter().map(|(k, v)| (k, v.to_string())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Decimal>, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer)?
            .into_iter()
            .map(|(k, v)| match Decimal::from_str_exact(&v) {
                Ok(d) => Ok((k, d)),
                Err(_) => Err(D::Error::custom(format!("not an amount: {v:?}"))),
            })
            .collect()
    }
}

/// Settlement sums built from lines the way the parser adds them up, for tests.
#[cfg(test)]
pub(crate) mod test_data {
    use super::super::{OrderItemSums, cogs::UnitCost};
    use super::*;

    pub fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("test decimal")
    }

    pub fn charge(tt: &str, at: &str, desc: &str) -> Charge {
        Charge {
            transaction_type: tt.into(),
            amount_type: at.into(),
            amount_description: desc.into(),
        }
    }

    pub fn cost(sku: &str, amount: &str, currency: &str, from: Date) -> UnitCost {
        UnitCost {
            sku: sku.into(),
            unit_cost: dec(amount),
            currency: currency.into(),
            effective_from: from,
        }
    }

    /// One detail line of a flat file.
    #[derive(Clone)]
    pub struct Line {
        pub day: Date,
        pub order: Option<&'static str>,
        pub sku: Option<&'static str>,
        pub charge: Charge,
        pub amount: Decimal,
        pub quantity: u64,
    }

    pub fn line(
        day: Date,
        order: Option<&'static str>,
        sku: Option<&'static str>,
        (tt, at, desc): (&str, &str, &str),
        amount: &str,
    ) -> Line {
        Line {
            day,
            order,
            sku,
            charge: charge(tt, at, desc),
            amount: dec(amount),
            quantity: 0,
        }
    }

    pub fn with_quantity(mut l: Line, quantity: u64) -> Line {
        l.quantity = quantity;
        l
    }

    fn add(charges: &mut Vec<ChargeAmount>, l: &Line) {
        match charges.iter_mut().find(|c| *c.charge == l.charge) {
            Some(c) => c.amount += l.amount,
            None => charges.push(ChargeAmount {
                charge: l.charge.clone().into(),
                amount: l.amount,
            }),
        }
    }

    fn units(l: &Line) -> Units {
        let principal =
            l.charge.amount_type == "ItemPrice" && l.charge.amount_description == "Principal";
        match l.charge.transaction_type.as_str() {
            "Order" if principal => Units {
                sold: l.quantity,
                refunded: 0,
            },
            "Refund" if principal => Units {
                sold: 0,
                refunded: l.quantity,
            },
            _ => Units::default(),
        }
    }

    pub fn days(lines: &[Line]) -> Vec<DaySums> {
        let mut by_day: BTreeMap<Date, Vec<ChargeAmount>> = BTreeMap::new();
        for l in lines {
            add(by_day.entry(l.day).or_default(), l);
        }
        by_day
            .into_iter()
            .map(|(day, charges)| DaySums { day, charges })
            .collect()
    }

    pub fn sku_days(lines: &[Line]) -> Vec<SkuDaySums> {
        let mut by: BTreeMap<(Date, &str), SkuDaySums> = BTreeMap::new();
        for l in lines {
            let Some(sku) = l.sku else { continue };
            let s = by.entry((l.day, sku)).or_insert_with(|| SkuDaySums {
                sku: sku.into(),
                day: l.day,
                units: Units::default(),
                charges: vec![],
            });
            let u = units(l);
            s.units.sold += u.sold;
            s.units.refunded += u.refunded;
            add(&mut s.charges, l);
        }
        by.into_values().collect()
    }

    /// Order runs: consecutive lines of the same order make one run.
    pub fn orders(lines: &[Line]) -> Vec<OrderSums> {
        let mut runs: Vec<OrderSums> = Vec::new();
        let mut previous: Option<&str> = None;
        for (i, l) in lines.iter().enumerate() {
            let Some(order) = l.order else {
                previous = None;
                continue;
            };
            if previous != Some(order) {
                runs.push(OrderSums {
                    order_id: order.into(),
                    first_line: i as u64 + 3,
                    day: l.day,
                    items: vec![],
                });
            }
            previous = Some(order);
            let Some(run) = runs.last_mut() else { continue };
            let sku = l.sku.map(str::to_owned);
            let item = match run.items.iter().position(|it| it.sku == sku) {
                Some(at) => &mut run.items[at],
                None => {
                    run.items.push(OrderItemSums {
                        sku,
                        units: Units::default(),
                        charges: vec![],
                    });
                    let last = run.items.len() - 1;
                    &mut run.items[last]
                }
            };
            let u = units(l);
            item.units.sold += u.sold;
            item.units.refunded += u.refunded;
            add(&mut item.charges, l);
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::test_data::*;
    use super::*;
    use time::macros::date;

    const OCT3: Date = date!(2026 - 10 - 03); // a Saturday
    const OCT7: Date = date!(2026 - 10 - 07); // a Wednesday
    const A: Option<&str> = Some("171-1111111-1111111");
    const B: Option<&str> = Some("171-2222222-2222222");
    const C: Option<&str> = Some("171-3333333-3333333");
    const KURTA: Option<&str> = Some("KURTA-BLUE");
    const MUG: Option<&str> = Some("MUG-01");

    /// Two posted days of an Amazon.in settlement (INR), as in a real V2 flat file.
    fn indian_settlement() -> Vec<Line> {
        let order = |at, desc| ("Order", at, desc);
        let refund = |at, desc| ("Refund", at, desc);
        vec![
            // Order A, 3 Oct: 2 × KURTA-BLUE.
            with_quantity(
                line(OCT3, A, KURTA, order("ItemPrice", "Principal"), "1000.00"),
                2,
            ),
            line(OCT3, A, KURTA, order("ItemPrice", "Product Tax"), "180.00"),
            line(OCT3, A, KURTA, order("ItemPrice", "Shipping"), "50.00"),
            line(OCT3, A, KURTA, order("ItemPrice", "ShippingTax"), "9.00"),
            line(OCT3, A, KURTA, order("Promotion", "Principal"), "-100.00"),
            line(OCT3, A, KURTA, order("ItemFees", "Commission"), "-120.00"),
            line(
                OCT3,
                A,
                KURTA,
                order("ItemFees", "FBAPerUnitFulfillmentFee"),
                "-60.00",
            ),
            line(
                OCT3,
                A,
                KURTA,
                order("ItemFees", "FixedClosingFee"),
                "-10.00",
            ),
            line(
                OCT3,
                A,
                KURTA,
                order("ItemWithheldTax", "TCS-CGST"),
                "-5.00",
            ),
            line(
                OCT3,
                A,
                KURTA,
                order("ItemWithheldTax", "TCS-SGST"),
                "-5.00",
            ),
            // Order B, 7 Oct: 1 × KURTA-BLUE, 1 × MUG-01.
            with_quantity(
                line(OCT7, B, KURTA, order("ItemPrice", "Principal"), "500.00"),
                1,
            ),
            line(OCT7, B, KURTA, order("ItemPrice", "Product Tax"), "90.00"),
            line(OCT7, B, KURTA, order("ItemFees", "Commission"), "-60.00"),
            line(
                OCT7,
                B,
                KURTA,
                order("ItemFees", "FBAPerUnitFulfillmentFee"),
                "-30.00",
            ),
            line(
                OCT7,
                B,
                KURTA,
                order("ItemFees", "FixedClosingFee"),
                "-10.00",
            ),
            line(
                OCT7,
                B,
                KURTA,
                order("ItemWithheldTax", "TCS-IGST"),
                "-5.00",
            ),
            with_quantity(
                line(OCT7, B, MUG, order("ItemPrice", "Principal"), "300.00"),
                1,
            ),
            line(OCT7, B, MUG, order("ItemPrice", "Product Tax"), "54.00"),
            line(OCT7, B, MUG, order("ItemFees", "Commission"), "-36.00"),
            line(OCT7, B, MUG, order("ItemFees", "FixedClosingFee"), "-10.00"),
            line(OCT7, B, MUG, order("ItemWithheldTax", "TCS-IGST"), "-3.00"),
            // Refund of order C, 7 Oct: 1 × KURTA-BLUE back.
            with_quantity(
                line(OCT7, C, KURTA, refund("ItemPrice", "Principal"), "-500.00"),
                1,
            ),
            line(OCT7, C, KURTA, refund("ItemPrice", "Product Tax"), "-90.00"),
            line(OCT7, C, KURTA, refund("ItemFees", "Commission"), "60.00"),
            line(
                OCT7,
                C,
                KURTA,
                refund("ItemFees", "RefundCommission"),
                "-12.00",
            ),
            line(
                OCT7,
                C,
                KURTA,
                refund("ItemWithheldTax", "TCS-IGST"),
                "5.00",
            ),
            // Account lines, 7 Oct: no order, no SKU.
            line(
                OCT7,
                None,
                None,
                ("other-transaction", "other-transaction", "Storage Fee"),
                "-75.50",
            ),
            line(
                OCT7,
                None,
                None,
                (
                    "FBA Inventory Reimbursement",
                    "FBA Inventory Reimbursement",
                    "WAREHOUSE_DAMAGE",
                ),
                "350.00",
            ),
            line(
                OCT7,
                None,
                None,
                (
                    "Current Reserve Amount",
                    "other-transaction",
                    "Current Reserve Amount",
                ),
                "-200.00",
            ),
        ]
    }

    /// KURTA-BLUE cost 300.00 until 4 Oct and 450.00 from 5 Oct; MUG-01's cost is in USD.
    fn indian_costs() -> CostHistory {
        CostHistory::new([
            cost("KURTA-BLUE", "300.00", "INR", date!(2026 - 10 - 01)),
            cost("KURTA-BLUE", "350.00", "INR", date!(2026 - 10 - 05)),
            cost("MUG-01", "4.00", "USD", date!(2026 - 09 - 01)),
        ])
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, Decimal> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), dec(v)))
            .collect()
    }

    #[test]
    fn policy_a8_an_indian_settlement_worked_by_hand() {
        let lines = indian_settlement();
        let got = by_period(
            &days(&lines),
            &sku_days(&lines),
            &indian_costs(),
            "INR",
            Granularity::Month,
        );
        // principal   = 1000.00 (A) + 500.00 + 300.00 (B)                   = 1800.00
        // shipping    = 50.00 (A)                                           =   50.00
        // promotions  = -100.00 (A)                                         = -100.00
        // refunds     = -500.00 (C's principal; its tax is a tax)           = -500.00
        // net_revenue = 1800.00 + 50.00 - 100.00 - 500.00                   = 1250.00
        // fees        Commission     -120.00 - 60.00 - 36.00 + 60.00 (back) = -156.00
        //             FBAPerUnitFulfillmentFee  -60.00 - 30.00              =  -90.00
        //             FixedClosingFee    -10.00 - 10.00 - 10.00             =  -30.00
        //             RefundCommission                                      =  -12.00
        //             Storage Fee                                           =  -75.50
        // fees_total  = -156.00 - 90.00 - 30.00 - 12.00 - 75.50             = -363.50
        // taxes       Product Tax  180.00 + 90.00 + 54.00 - 90.00           =  234.00
        //             ShippingTax                                           =    9.00
        //             TCS-CGST -5.00, TCS-SGST -5.00
        //             TCS-IGST     -5.00 - 3.00 + 5.00                      =   -3.00
        // taxes_total = 234.00 + 9.00 - 5.00 - 5.00 - 3.00                  =  230.00
        // other       WAREHOUSE_DAMAGE (a reimbursement, not a fee)         =  350.00
        // reserves    Current Reserve Amount                                = -200.00
        // units       sold 2 (A) + 1 + 1 (B) = 4; refunded 1 (C)
        // cogs        A on 3 Oct: 2 × 300.00 (the cost until 4 Oct)         =  600.00
        //             B on 7 Oct: 1 × 350.00 (the cost from 5 Oct)          =  350.00
        //             MUG-01: its cost is in USD, not INR: 1 unit without cost
        //             C's refunded unit gives no cost back                   =  950.00
        // net_profit  = 1250.00 - 363.50 + 350.00 - 950.00                  =  286.50
        //             (taxes and the reserve are not profit)
        // margin      = 286.50 / 1250.00                                    =   0.2292
        let expected = PnlLine {
            key: "2026-10-01".into(),
            principal: dec("1800.00"),
            shipping: dec("50.00"),
            promotions: dec("-100.00"),
            refunds: dec("-500.00"),
            fees: map(&[
                ("Commission", "-156.00"),
                ("FBAPerUnitFulfillmentFee", "-90.00"),
                ("FixedClosingFee", "-30.00"),
                ("RefundCommission", "-12.00"),
                ("Storage Fee", "-75.50"),
            ]),
            fees_total: dec("-363.50"),
            taxes: map(&[
                ("Product Tax", "234.00"),
                ("ShippingTax", "9.00"),
                ("TCS-CGST", "-5.00"),
                ("TCS-IGST", "-3.00"),
                ("TCS-SGST", "-5.00"),
            ]),
            taxes_total: dec("230.00"),
            other: map(&[("WAREHOUSE_DAMAGE", "350.00")]),
            other_total: dec("350.00"),
            reserves: dec("-200.00"),
            net_revenue: dec("1250.00"),
            units_sold: 4,
            units_refunded: 1,
            cogs: dec("950.00"),
            units_without_cost: 1,
            net_profit: dec("286.50"),
            margin: Some(dec("0.2292")),
        };
        assert_eq!(got, vec![expected.clone()]);
        // The whole settlement adds up: every line is in exactly one bucket.
        let all: Decimal = lines.iter().map(|l| l.amount).sum();
        let l = &got[0];
        assert_eq!(
            l.net_revenue + l.fees_total + l.taxes_total + l.other_total + l.reserves,
            all
        );
        assert_eq!(
            totals(&got),
            PnlLine {
                key: "total".into(),
                ..expected
            }
        );
    }

    #[test]
    fn classify_the_lines_of_an_indian_settlement() {
        let c = |tt, at, desc| classify(&charge(tt, at, desc));
        let fee = |s: &str| Category::Fee(s.into());
        let tax = |s: &str| Category::Tax(s.into());
        let other = |s: &str| Category::Other(s.into());
        assert_eq!(c("Order", "ItemPrice", "Principal"), Category::Principal);
        assert_eq!(c("Order", "ItemPrice", "Shipping"), Category::Shipping);
        assert_eq!(c("Order", "ItemPrice", "GiftWrap"), Category::Shipping);
        assert_eq!(
            c("Order", "ItemPrice", "ShippingCharge"),
            Category::Shipping
        );
        assert_eq!(c("Order", "ItemPrice", "Product Tax"), tax("Product Tax"));
        assert_eq!(c("Order", "ItemPrice", "ShippingTax"), tax("ShippingTax"));
        assert_eq!(c("Order", "ItemPrice", "GiftWrapTax"), tax("GiftWrapTax"));
        assert_eq!(c("Order", "ItemWithheldTax", "TCS-IGST"), tax("TCS-IGST"));
        assert_eq!(c("Order", "ItemWithheldTax", "TCS-CGST"), tax("TCS-CGST"));
        assert_eq!(c("Order", "ItemWithheldTax", "TDS"), tax("TDS"));
        assert_eq!(
            c(
                "other-transaction",
                "other-transaction",
                "TDS (Section 194-O)"
            ),
            tax("TDS (Section 194-O)")
        );
        assert_eq!(c("Order", "Promotion", "Principal"), Category::Promotion);
        assert_eq!(c("Refund", "Promotion", "Shipping"), Category::Promotion);
        assert_eq!(c("Refund", "ItemPrice", "Principal"), Category::Refund);
        assert_eq!(c("Refund", "ItemPrice", "Shipping"), Category::Refund);
        assert_eq!(c("Refund", "ItemPrice", "Product Tax"), tax("Product Tax"));
        assert_eq!(
            c("Chargeback Refund", "ItemPrice", "Principal"),
            Category::Refund
        );
        assert_eq!(c("Order", "ItemFees", "Commission"), fee("Commission"));
        assert_eq!(
            c("Order", "ItemFees", "FBAPerUnitFulfillmentFee"),
            fee("FBAPerUnitFulfillmentFee")
        );
        assert_eq!(
            c("Refund", "ItemFees", "RefundCommission"),
            fee("RefundCommission")
        );
        assert_eq!(
            c("other-transaction", "other-transaction", "Storage Fee"),
            fee("Storage Fee")
        );
        assert_eq!(
            c("other-transaction", "other-transaction", "Subscription Fee"),
            fee("Subscription Fee")
        );
        assert_eq!(
            c("Cost of Advertising", "other-transaction", ""),
            fee("Cost of Advertising")
        );
        assert_eq!(c("Order", "ItemFees", ""), fee("ItemFees"));
        assert_eq!(
            c("other-transaction", "other-transaction", ""),
            other("other-transaction")
        );
        assert_eq!(
            c(
                "FBA Inventory Reimbursement",
                "FBA Inventory Reimbursement",
                "REVERSAL_REIMBURSEMENT"
            ),
            other("REVERSAL_REIMBURSEMENT")
        );
        assert_eq!(
            c(
                "Current Reserve Amount",
                "other-transaction",
                "Current Reserve Amount"
            ),
            Category::Reserve
        );
        assert_eq!(
            c(
                "Previous Reserve Amount Balance",
                "other-transaction",
                "Previous Reserve Amount Balance"
            ),
            Category::Reserve
        );
        for transfer in [
            "Payable to Amazon",
            "Successful charge",
            "Failed disbursement",
        ] {
            assert_eq!(
                c(transfer, "other-transaction", transfer),
                Category::Reserve,
                "{transfer} moves money, it is not profit"
            );
        }
        assert_eq!(
            c("Adjustment", "ItemPrice", "Principal"),
            other("Principal")
        );
        assert_eq!(c("Something New", "", ""), other("Something New"));
        assert_eq!(c("", "", ""), other("(unnamed)"));
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_across_a_month_boundary() {
        let sale = |day: Date, amount: &str| {
            with_quantity(
                line(
                    day,
                    None,
                    Some("S"),
                    ("Order", "ItemPrice", "Principal"),
                    amount,
                ),
                1,
            )
        };
        let lines = [
            sale(date!(2026 - 09 - 28), "1"), // Monday
            sale(date!(2026 - 09 - 30), "2"),
            sale(date!(2026 - 10 - 01), "4"), // Thursday, same ISO week
            sale(date!(2026 - 10 - 04), "8"), // Sunday, same ISO week
            sale(date!(2026 - 10 - 05), "16"), // Monday, the next week
        ];
        let costs = CostHistory::new([cost("S", "0.50", "INR", date!(2026 - 01 - 01))]);
        let (d, s) = (days(&lines), sku_days(&lines));
        let summary = |g| {
            by_period(&d, &s, &costs, "INR", g)
                .into_iter()
                .map(|l| (l.key, l.principal, l.units_sold, l.cogs))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            summary(Granularity::Week),
            [
                ("2026-09-28".to_owned(), dec("15"), 4, dec("2.00")),
                ("2026-10-05".to_owned(), dec("16"), 1, dec("0.50")),
            ]
        );
        assert_eq!(
            summary(Granularity::Month),
            [
                ("2026-09-01".to_owned(), dec("3"), 2, dec("1.00")),
                ("2026-10-01".to_owned(), dec("28"), 3, dec("1.50")),
            ]
        );
        let keys: Vec<String> = by_period(&d, &s, &costs, "INR", Granularity::Day)
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(
            keys,
            [
                "2026-09-28",
                "2026-09-30",
                "2026-10-01",
                "2026-10-04",
                "2026-10-05"
            ]
        );
        // The ISO week across a year end starts on the Monday of the old year.
        assert_eq!(
            Granularity::Week.period_start(date!(2027 - 01 - 03)),
            date!(2026 - 12 - 28)
        );
        assert_eq!(
            Granularity::Week.period_start(date!(2027 - 01 - 04)),
            date!(2027 - 01 - 04)
        );
    }

    #[test]
    fn a_period_with_only_units_still_appears() {
        let sku_only = SkuDaySums {
            sku: "S".into(),
            day: date!(2026 - 11 - 02),
            units: Units {
                sold: 3,
                refunded: 0,
            },
            charges: vec![],
        };
        let costs = CostHistory::new([cost("S", "2", "INR", date!(2026 - 01 - 01))]);
        let got = by_period(&[], &[sku_only], &costs, "INR", Granularity::Week);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, "2026-11-02");
        assert_eq!(got[0].cogs, dec("6"));
        assert_eq!(got[0].net_profit, dec("-6"));
        assert_eq!(got[0].margin, None);
    }

    #[test]
    fn by_sku_counts_only_lines_with_a_sku() {
        let lines = indian_settlement();
        let got = by_sku(&sku_days(&lines), &indian_costs(), "INR");
        let keys: Vec<&str> = got.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["KURTA-BLUE", "MUG-01"]);
        let kurta = &got[0];
        // 1000 + 500 principal, 50 shipping, -100 promotion, -500 refund.
        assert_eq!(kurta.net_revenue, dec("950.00"));
        // Commission -120 - 60 + 60, FBA -60 - 30, closing -10 - 10, refund commission -12.
        assert_eq!(kurta.fees_total, dec("-242.00"));
        assert_eq!((kurta.units_sold, kurta.units_refunded), (3, 1));
        // 2 × 300.00 on 3 Oct + 1 × 350.00 on 7 Oct.
        assert_eq!(kurta.cogs, dec("950.00"));
        assert_eq!(kurta.units_without_cost, 0);
        assert_eq!(kurta.net_profit, dec("-242.00"));
        assert_eq!(kurta.margin, Some(dec("-0.2547"))); // -242 / 950 = -0.254736…
        assert!(kurta.other.is_empty() && kurta.reserves.is_zero());
        let mug = &got[1];
        assert_eq!(
            (mug.net_revenue, mug.fees_total),
            (dec("300.00"), dec("-46.00"))
        );
        assert_eq!((mug.cogs, mug.units_without_cost), (Decimal::ZERO, 1));
        assert_eq!(mug.net_profit, dec("254.00"));
    }

    #[test]
    fn by_order_adds_runs_up_and_costs_each_on_its_day() {
        let mut lines = indian_settlement();
        // Order A comes back on 7 Oct (after the cost changed) with one more unit.
        lines.push(with_quantity(
            line(
                OCT7,
                A,
                KURTA,
                ("Order", "ItemPrice", "Principal"),
                "500.00",
            ),
            1,
        ));
        let runs = orders(&lines);
        assert_eq!(
            runs.iter()
                .filter(|r| Some(r.order_id.as_str()) == A)
                .count(),
            2
        );
        let got = by_order(&runs, &indian_costs(), "INR");
        let keys: Vec<&str> = got.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "171-1111111-1111111",
                "171-2222222-2222222",
                "171-3333333-3333333"
            ]
        );
        let a = &got[0];
        assert_eq!(a.principal, dec("1500.00"));
        assert_eq!(a.units_sold, 3);
        assert_eq!(a.cogs, dec("950.00")); // 2 × 300.00 on 3 Oct + 1 × 350.00 on 7 Oct
        let b = &got[1];
        assert_eq!((b.cogs, b.units_without_cost), (dec("350.00"), 1));
        let c = &got[2];
        assert_eq!(
            (c.refunds, c.units_refunded, c.cogs),
            (dec("-500.00"), 1, Decimal::ZERO)
        );
        assert_eq!(c.margin, Some(dec("0.9040"))); // (-500 + 48) / -500
    }

    #[test]
    fn pnl_lines_serialize_amounts_as_strings() {
        let lines = indian_settlement();
        let got = by_period(
            &days(&lines),
            &sku_days(&lines),
            &indian_costs(),
            "INR",
            Granularity::Month,
        );
        let json = serde_json::to_value(&got[0]).expect("json");
        assert_eq!(json["principal"], "1800.00");
        assert_eq!(json["fees"]["Storage Fee"], "-75.50");
        assert_eq!(json["taxes"]["TCS-IGST"], "-3.00");
        assert_eq!(json["margin"], "0.2292");
        assert_eq!(json["units_sold"], 4);
        let back: PnlLine = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, got[0]);
        assert_eq!(
            serde_json::to_value(Granularity::Week).expect("json"),
            "week"
        );
        let none = serde_json::to_value(PnlLine::default().finish()).expect("json");
        assert_eq!(none["margin"], serde_json::Value::Null);
    }

    #[test]
    fn csv_has_fixed_columns_then_fee_and_tax_kinds() {
        let mut a = PnlLine::named("2026-10-01".into());
        a.add(Category::Principal, dec("100.00"));
        a.add(Category::Fee("Commission".into()), dec("-12.00"));
        a.add(Category::Tax("TCS-IGST".into()), dec("-1.00"));
        let mut b = PnlLine::named("=HYPERLINK(\"x\"), \"quoted\"".into());
        b.add(Category::Fee("Storage Fee".into()), dec("-5.50"));
        let lines = [a.finish(), b.finish()];
        let text = to_csv(&lines);
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("\r\n"));

        let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header,
            [
                "key",
                "principal",
                "shipping",
                "promotions",
                "refunds",
                "net_revenue",
                "fees_total",
                "taxes_total",
                "other_total",
                "reserves",
                "units_sold",
                "units_refunded",
                "cogs",
                "units_without_cost",
                "net_profit",
                "margin",
                "fee:Commission",
                "fee:Storage Fee",
                "tax:TCS-IGST",
            ]
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.expect("row").iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "2026-10-01",
                "100.00",
                "0",
                "0",
                "0",
                "100.00",
                "-12.00",
                "-1.00",
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
                "88.00",
                "0.8800",
                "-12.00",
                "",
                "-1.00",
            ]
        );
        // A key a spreadsheet would run as a formula is kept as text; commas and quotes survive.
        assert_eq!(rows[1][0], "'=HYPERLINK(\"x\"), \"quoted\"");
        assert_eq!(rows[1][15], "");
        assert_eq!(rows[1][17], "-5.50");
    }
}
