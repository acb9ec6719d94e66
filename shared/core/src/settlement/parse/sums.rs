//! Adding a settlement up as it streams by. Memory grows with the distinct charges, SKUs and days
//! of a file, never with its lines or orders: an order's sums are handed out when its run ends.
//!
//! Text that repeats on every line (charges, SKUs, days) is given a small id the first time it is
//! seen, so the work per line is a few comparisons and additions.

use crate::settlement::{
    Charge, ChargeAmount, DaySums, OrderItemSums, OrderSums, SkuDaySums, Units,
};
use rust_decimal::Decimal;
// The keys are the file's own SKUs and days, hashed per line: a fast hash, not a DoS-proof one
// (a file is one merchant's, and its size is capped).
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use time::Date;

type ChargeId = u32;

/// The most kinds of amount one file may have: Amazon's files name a few dozen. The cap keeps
/// adversarial files from making the per-line work (and the stored sums) grow without bound.
pub(super) const MAX_CHARGES: usize = 500;
type SkuId = u32;
type DayId = u32;

/// One detail line, checked.
pub(super) struct DetailLine<'a> {
    pub number: u64,
    pub day: Date,
    pub order_id: &'a str,
    pub sku: &'a str,
    pub transaction_type: &'a str,
    pub amount_type: &'a str,
    pub amount_description: &'a str,
    /// `quantity-purchased` (0 when empty).
    pub quantity: u64,
    pub amount: Decimal,
}

/// The sums of the whole file, once it has been read.
pub(super) struct Totals {
    pub detail_lines: u64,
    pub lines_total: Decimal,
    pub order_runs: u64,
    pub by_day: Vec<DaySums>,
    pub by_sku_day: Vec<SkuDaySums>,
}

/// Sums of a file being read.
#[derive(Default)]
pub(super) struct Sums {
    charges: ChargeBook,
    skus: SkuBook,
    days: Keyed<Date, DayId>,
    by_day: Vec<ChargeSums>,
    sku_days: Keyed<(SkuId, DayId), u32>,
    by_sku_day: Vec<SkuDayAcc>,
    run: OrderRun,
    detail_lines: u64,
    lines_total: Decimal,
    order_runs: u64,
}

impl Sums {
    /// Adds a line; refuses one whose charge would be one too many (see [`MAX_CHARGES`]).
    pub(super) fn add(
        &mut self,
        line: &DetailLine<'_>,
        on_order: &mut impl FnMut(OrderSums),
    ) -> Result<(), String> {
        let charge = self
            .charges
            .id(
                line.transaction_type,
                line.amount_type,
                line.amount_description,
            )
            .ok_or_else(|| {
                format!(
                    "more than {MAX_CHARGES} different kinds of amount (transaction-type, \
                     amount-type, amount-description) in one file"
                )
            })?;
        let units = self.charges.units(charge, line.quantity);
        self.detail_lines += 1;
        self.lines_total += line.amount;

        let day = self.days.id(line.day, |_| {
            self.by_day.push(ChargeSums::default());
            (self.by_day.len() - 1) as DayId
        });
        self.by_day[day as usize].add(charge, line.amount);

        let sku = (!line.sku.is_empty()).then(|| self.skus.id(line.sku));
        if let Some(sku) = sku {
            let slot = self.sku_days.id((sku, day), |_| {
                self.by_sku_day.push(SkuDayAcc {
                    sku,
                    day: line.day,
                    units: Units::default(),
                    charges: ChargeSums::default(),
                });
                (self.by_sku_day.len() - 1) as u32
            });
            let acc = &mut self.by_sku_day[slot as usize];
            add_units(&mut acc.units, units);
            acc.charges.add(charge, line.amount);
        }

        if line.order_id.is_empty() {
            self.end_run(on_order);
            return Ok(());
        }
        if !self.run.is(line.order_id) {
            self.end_run(on_order);
            self.run.start(line);
        }
        self.run.add(sku, charge, units, line.amount);
        Ok(())
    }

    /// Hands out the last order run and returns the file's sums.
    pub(super) fn finish(mut self, on_order: &mut impl FnMut(OrderSums)) -> Totals {
        self.end_run(on_order);
        let charges = &self.charges;
        let days = self.days.keys_by_id();
        let mut by_day: Vec<DaySums> = days
            .iter()
            .zip(&mut self.by_day)
            .map(|(&day, sums)| DaySums {
                day,
                charges: sums.amounts(charges),
            })
            .collect();
        by_day.sort_by_key(|sums| sums.day);
        let mut by_sku_day: Vec<SkuDaySums> = self
            .by_sku_day
            .iter_mut()
            .map(|acc| SkuDaySums {
                sku: self.skus.name(acc.sku).to_owned(),
                day: acc.day,
                units: acc.units,
                charges: acc.charges.amounts(charges),
            })
            .collect();
        by_sku_day.sort_by(|a, b| (a.day, &a.sku).cmp(&(b.day, &b.sku)));
        Totals {
            detail_lines: self.detail_lines,
            lines_total: self.lines_total,
            order_runs: self.order_runs,
            by_day,
            by_sku_day,
        }
    }

    fn end_run(&mut self, on_order: &mut impl FnMut(OrderSums)) {
        if let Some(order) = self.run.end(&self.charges, &self.skus) {
            self.order_runs += 1;
            on_order(order);
        }
    }
}

/// Units a line adds: of `ItemPrice`/`Principal` lines only, sold on orders, refunded on refunds.
#[derive(Clone, Copy)]
enum LineUnits {
    None,
    Sold(u64),
    Refunded(u64),
}

fn add_units(units: &mut Units, line: LineUnits) {
    match line {
        LineUnits::None => {}
        LineUnits::Sold(n) => units.sold = units.sold.saturating_add(n),
        LineUnits::Refunded(n) => units.refunded = units.refunded.saturating_add(n),
    }
}

/// The distinct charges of a file. Lines of an order come in the same order of charges each time
/// (Principal, Product Tax, Shipping, Commission, …), so the charge that followed this one last
/// time is tried first; the map is the fallback.
#[derive(Default)]
struct ChargeBook {
    charges: Vec<Arc<Charge>>,
    /// Whether lines of a charge count units (`Some(true)`: sold, `Some(false)`: refunded).
    counts_units: Vec<Option<bool>>,
    ids: HashMap<Vec<u8>, ChargeId>,
    /// For each charge, the charge of the line that followed it last time.
    followed_by: Vec<Option<ChargeId>>,
    /// For each charge, its place among the charges sorted: sums are sorted by charge, and
    /// comparing numbers is cheaper than comparing three strings.
    rank: Vec<u32>,
    previous: Option<ChargeId>,
    key: Vec<u8>,
}

impl ChargeBook {
    fn id(
        &mut self,
        transaction_type: &str,
        amount_type: &str,
        description: &str,
    ) -> Option<ChargeId> {
        let guess = self
            .previous
            .and_then(|previous| self.followed_by[previous as usize]);
        let id = match guess {
            Some(guess) if self.is(guess, transaction_type, amount_type, description) => guess,
            _ => self.look_up(transaction_type, amount_type, description)?,
        };
        if let Some(previous) = self.previous {
            self.followed_by[previous as usize] = Some(id);
        }
        self.previous = Some(id);
        Some(id)
    }

    fn is(
        &self,
        id: ChargeId,
        transaction_type: &str,
        amount_type: &str,
        description: &str,
    ) -> bool {
        let charge = &self.charges[id as usize];
        charge.amount_description == description
            && charge.amount_type == amount_type
            && charge.transaction_type == transaction_type
    }

    fn look_up(
        &mut self,
        transaction_type: &str,
        amount_type: &str,
        description: &str,
    ) -> Option<ChargeId> {
        // Fields never contain a tab: it makes an unambiguous key.
        self.key.clear();
        for part in [transaction_type, amount_type, description] {
            self.key.extend_from_slice(part.as_bytes());
            self.key.push(b'\t');
        }
        if let Some(&id) = self.ids.get(&self.key) {
            return Some(id);
        }
        if self.charges.len() >= MAX_CHARGES {
            return None;
        }
        let id = self.charges.len() as ChargeId;
        let principal = amount_type == "ItemPrice" && description == "Principal";
        self.counts_units.push(match transaction_type {
            "Order" if principal => Some(true),
            "Refund" if principal => Some(false),
            _ => None,
        });
        self.charges.push(Arc::new(Charge {
            transaction_type: transaction_type.to_owned(),
            amount_type: amount_type.to_owned(),
            amount_description: description.to_owned(),
        }));
        self.followed_by.push(None);
        self.ids.insert(self.key.clone(), id);
        self.rank_charges();
        Some(id)
    }

    /// Ranks the charges again (a new one arrives a few dozen times per file at most).
    fn rank_charges(&mut self) {
        let mut ids: Vec<usize> = (0..self.charges.len()).collect();
        ids.sort_by(|&a, &b| self.charges[a].cmp(&self.charges[b]));
        self.rank = vec![0; ids.len()];
        for (place, id) in ids.into_iter().enumerate() {
            self.rank[id] = place as u32;
        }
    }

    fn units(&self, id: ChargeId, quantity: u64) -> LineUnits {
        match self.counts_units[id as usize] {
            Some(true) => LineUnits::Sold(quantity),
            Some(false) => LineUnits::Refunded(quantity),
            None => LineUnits::None,
        }
    }

    fn charge(&self, id: ChargeId) -> &Arc<Charge> {
        &self.charges[id as usize]
    }
}

/// The distinct SKUs of a file; an item's lines are consecutive, so the last one is tried first.
#[derive(Default)]
struct SkuBook {
    names: Vec<String>,
    ids: HashMap<String, SkuId>,
    last: Option<SkuId>,
}

impl SkuBook {
    fn id(&mut self, sku: &str) -> SkuId {
        if let Some(last) = self.last
            && same(&self.names[last as usize], sku)
        {
            return last;
        }
        let id = match self.ids.get(sku) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as SkuId;
                self.names.push(sku.to_owned());
                self.ids.insert(sku.to_owned(), id);
                id
            }
        };
        self.last = Some(id);
        id
    }

    fn name(&self, id: SkuId) -> &str {
        &self.names[id as usize]
    }
}

/// Small ids for keys that repeat line after line (days, SKU-days): the last one is tried first.
struct Keyed<K, V> {
    ids: HashMap<K, V>,
    last: Option<(K, V)>,
}

impl<K, V> Default for Keyed<K, V> {
    fn default() -> Self {
        Self {
            ids: HashMap::default(),
            last: None,
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy, V: Copy> Keyed<K, V> {
    /// The id of `key`, made by `new` the first time.
    fn id(&mut self, key: K, new: impl FnOnce(K) -> V) -> V {
        if let Some((last, id)) = self.last
            && last == key
        {
            return id;
        }
        let id = *self.ids.entry(key).or_insert_with(|| new(key));
        self.last = Some((key, id));
        id
    }
}

impl<K: Copy, V: Copy + Into<u64>> Keyed<K, V> {
    /// The keys, indexed by their id.
    fn keys_by_id(&self) -> Vec<K> {
        let mut pairs: Vec<(u64, K)> = self.ids.iter().map(|(&k, &v)| (v.into(), k)).collect();
        pairs.sort_by_key(|&(id, _)| id);
        pairs.into_iter().map(|(_, k)| k).collect()
    }
}

/// Sums per charge; a handful of charges each, so a small list beats a map. Lines of an order
/// come in the same order of charges every time: the entry after the last one added is tried
/// first, and is nearly always the one.
#[derive(Default)]
struct ChargeSums(Vec<(ChargeId, Decimal)>, usize);

impl ChargeSums {
    fn add(&mut self, charge: ChargeId, amount: Decimal) {
        let next = self.1 + 1;
        let at = match self.0.get(next) {
            Some((id, _)) if *id == charge => next,
            _ => match self.0.iter().position(|(id, _)| *id == charge) {
                Some(at) => at,
                None => {
                    self.0.push((charge, Decimal::ZERO));
                    self.0.len() - 1
                }
            },
        };
        self.0[at].1 += amount;
        self.1 = at;
    }

    /// The sums, sorted by charge.
    fn amounts(&mut self, book: &ChargeBook) -> Vec<ChargeAmount> {
        self.0
            .sort_unstable_by_key(|&(id, _)| book.rank[id as usize]);
        self.0
            .iter()
            .map(|&(id, amount)| ChargeAmount {
                charge: book.charge(id).clone(),
                amount,
            })
            .collect()
    }
}

struct SkuDayAcc {
    sku: SkuId,
    day: Date,
    units: Units,
    charges: ChargeSums,
}

/// The order whose lines are streaming by. Its items are kept between runs so their lists are
/// reused rather than allocated again for every order.
#[derive(Default)]
struct OrderRun {
    order_id: String,
    first_line: u64,
    day: Option<Date>,
    items: Vec<ItemAcc>,
    /// Items of this run: `items[..used]`.
    used: usize,
}

struct ItemAcc {
    sku: Option<SkuId>,
    units: Units,
    charges: ChargeSums,
}

impl OrderRun {
    fn is(&self, order_id: &str) -> bool {
        self.day.is_some() && same(&self.order_id, order_id)
    }

    fn start(&mut self, line: &DetailLine<'_>) {
        self.order_id.clear();
        self.order_id.push_str(line.order_id);
        self.first_line = line.number;
        self.day = Some(line.day);
        self.used = 0;
    }

    fn add(&mut self, sku: Option<SkuId>, charge: ChargeId, units: LineUnits, amount: Decimal) {
        let at = match self.items[..self.used]
            .iter()
            .position(|item| item.sku == sku)
        {
            Some(at) => at,
            None => self.new_item(sku),
        };
        let item = &mut self.items[at];
        add_units(&mut item.units, units);
        item.charges.add(charge, amount);
    }

    fn new_item(&mut self, sku: Option<SkuId>) -> usize {
        let at = self.used;
        match self.items.get_mut(at) {
            Some(item) => {
                item.sku = sku;
                item.units = Units::default();
                item.charges.0.clear();
            }
            None => self.items.push(ItemAcc {
                sku,
                units: Units::default(),
                charges: ChargeSums::default(),
            }),
        }
        self.used += 1;
        at
    }

    /// The run's sums, if a run was open; the run is then closed.
    fn end(&mut self, charges: &ChargeBook, skus: &SkuBook) -> Option<OrderSums> {
        let day = self.day.take()?;
        let items = self.items[..self.used]
            .iter_mut()
            .map(|item| OrderItemSums {
                sku: item.sku.map(|sku| skus.name(sku).to_owned()),
                units: item.units,
                charges: item.charges.amounts(charges),
            })
            .collect();
        Some(OrderSums {
            order_id: self.order_id.clone(),
            first_line: self.first_line,
            day,
            items,
        })
    }
}

/// Whether two short texts are the same: most lines repeat the text of the line before (order id,
/// SKU, charge), and comparing eight bytes at a time here is cheaper than a call to `memcmp`.
pub(super) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        if word(x) != word(y) {
            return false;
        }
    }
    let (a_rest, b_rest) = (a_words.remainder(), b_words.remainder());
    a_rest.iter().zip(b_rest).all(|(x, y)| x == y)
}
