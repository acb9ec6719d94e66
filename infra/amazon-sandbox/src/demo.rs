//! The demo seller's orders: about 300 Indian orders over the 60 days before a given instant.
//!
//! Deterministic (a seeded linear congruential generator), so every run sees the same orders
//! at the same distance from "now", with a useful mix: shipped orders before, inside and past
//! the 5–30 day review window, unshipped and pending ones, cancellations, a few replacements,
//! both fulfilment channels, one to three lines from a small catalogue.

use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use crate::order::{FulfillmentChannel, OrderStatus, SandboxItem, SandboxOrder};

pub(crate) const DEMO_ORDER_COUNT: usize = 300;
const SEED: u64 = 0x00EC_0D21_5EED;
const SPREAD_MINUTES: u32 = 60 * 24 * 60;
/// The newest order is this old, so that every demo order is past getOrders' 2-minute horizon.
const NEWEST_MINUTES: u32 = 10;
/// Last updates stop this long before the demo's "now".
const LAST_UPDATE_MARGIN: Duration = Duration::minutes(5);

/// (SellerSKU, ASIN, Title, unit price in paise).
const CATALOGUE: [(&str, &str, &str, u64); 8] = [
    (
        "KURTA-BLU-M",
        "B0SBXKURTA",
        "Cotton Kurta for Women, Blue, M",
        79_900,
    ),
    (
        "BOTTLE-SS-1L",
        "B0SBXBOTTL",
        "Stainless Steel Water Bottle, 1 L",
        44_900,
    ),
    (
        "EARBUDS-BT30",
        "B0SBXEARBD",
        "Bluetooth Earbuds, 30 h Playtime",
        129_900,
    ),
    (
        "MUG-CER-2",
        "B0SBXMUGS2",
        "Ceramic Coffee Mugs, Set of 2",
        59_900,
    ),
    (
        "YOGA-MAT-6MM",
        "B0SBXYOGAM",
        "Anti-Slip Yoga Mat, 6 mm",
        89_900,
    ),
    (
        "LAMP-LED-USB",
        "B0SBXLAMPU",
        "LED Desk Lamp with USB Charging",
        109_900,
    ),
    ("CHAI-500G", "B0SBXCHAI5", "Masala Chai Tea, 500 g", 34_900),
    (
        "CASE-M34",
        "B0SBXCASEM",
        "Phone Case for Galaxy M34",
        29_900,
    ),
];

/// Knuth's MMIX LCG; the high bits are the random ones.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let high = u32::try_from(self.0 >> 32).unwrap_or(u32::MAX);
        high % bound.max(1)
    }
}

fn rupees(paise: u64) -> String {
    format!("{}.{:02}", paise / 100, paise % 100)
}

fn unique_order_id(rng: &mut Lcg, taken: &mut HashSet<String>) -> String {
    loop {
        let id = format!(
            "40{}-{:07}-{:07}",
            2 + rng.below(7),
            rng.below(10_000_000),
            rng.below(10_000_000)
        );
        if taken.insert(id.clone()) {
            return id;
        }
    }
}

/// A status that fits the order's age: recent orders are still pending or unshipped.
fn status_for_age(rng: &mut Lcg, age: Duration) -> OrderStatus {
    let roll = rng.below(100);
    if age < Duration::days(1) {
        match roll {
            0..30 => OrderStatus::Pending,
            30..90 => OrderStatus::Unshipped,
            _ => OrderStatus::Canceled,
        }
    } else if age < Duration::days(2) {
        match roll {
            0..70 => OrderStatus::Shipped,
            70..90 => OrderStatus::Unshipped,
            _ => OrderStatus::Canceled,
        }
    } else {
        match roll {
            0..5 => OrderStatus::Canceled,
            5..7 => OrderStatus::PartiallyShipped,
            _ => OrderStatus::Shipped,
        }
    }
}

fn items(rng: &mut Lcg, order_number: usize) -> Vec<(SandboxItem, u64)> {
    let lines = 1 + rng.below(3) as usize;
    let first = rng.below(CATALOGUE.len() as u32) as usize;
    (0..lines)
        .map(|line| {
            let (sku, asin, title, unit_paise) = CATALOGUE[(first + line * 3) % CATALOGUE.len()];
            let quantity = if rng.below(4) == 0 { 2 } else { 1 };
            let line_paise = unit_paise * u64::from(quantity);
            let item = SandboxItem {
                order_item_id: format!("{:08}{:06}", 10_000_000 + order_number, line + 1),
                asin: asin.to_owned(),
                seller_sku: sku.to_owned(),
                title: title.to_owned(),
                quantity,
                item_price: rupees(line_paise),
            };
            (item, line_paise)
        })
        .collect()
}

/// The demo orders, oldest first, as of `now`.
pub(crate) fn orders(marketplace_id: &str, now: OffsetDateTime) -> Vec<SandboxOrder> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut rng = Lcg(SEED);
    let mut ages: Vec<u32> = (0..DEMO_ORDER_COUNT)
        .map(|_| NEWEST_MINUTES + rng.below(SPREAD_MINUTES - NEWEST_MINUTES))
        .collect();
    ages.sort_unstable_by(|a, b| b.cmp(a));

    let mut taken = HashSet::new();
    let mut orders: Vec<SandboxOrder> = Vec::with_capacity(DEMO_ORDER_COUNT);
    for (number, age_minutes) in ages.into_iter().enumerate() {
        let age = Duration::minutes(i64::from(age_minutes));
        let purchase = now - age;
        let order_id = unique_order_id(&mut rng, &mut taken);
        let channel = if rng.below(10) < 4 {
            FulfillmentChannel::Afn
        } else {
            FulfillmentChannel::Mfn
        };
        let status = status_for_age(&mut rng, age);
        let mut lines = items(&mut rng, number);

        // A replacement of an earlier order: Amazon ships it at no charge.
        let replaced = (status == OrderStatus::Shipped && number >= 10 && rng.below(40) == 0)
            .then(|| orders[number - 1 - rng.below(9) as usize].order_id.clone());
        if replaced.is_some() {
            for (item, paise) in &mut lines {
                item.item_price = rupees(0);
                *paise = 0;
            }
        }
        let total: u64 = lines.iter().map(|(_, paise)| paise).sum();

        // Delivery promised 2 to 7 days after purchase.
        let earliest_delivery = purchase + Duration::days(i64::from(2 + rng.below(3)));
        let latest_delivery = earliest_delivery + Duration::days(i64::from(rng.below(4)));
        let last_update = match status {
            OrderStatus::Shipped | OrderStatus::PartiallyShipped => purchase + Duration::days(1),
            OrderStatus::Canceled => purchase + Duration::hours(3),
            _ => purchase + Duration::minutes(4),
        }
        .min(now - LAST_UPDATE_MARGIN);
        let canceled = status == OrderStatus::Canceled;

        orders.push(SandboxOrder {
            order_id,
            purchase_date: purchase,
            last_update_date: Some(last_update),
            status,
            fulfillment_channel: channel,
            marketplace_id: marketplace_id.to_owned(),
            is_replacement_order: replaced.is_some(),
            replaced_order_id: replaced,
            earliest_delivery_date: (!canceled).then_some(earliest_delivery),
            latest_delivery_date: (!canceled).then_some(latest_delivery),
            earliest_ship_date: Some(purchase),
            latest_ship_date: Some(purchase + Duration::days(2)),
            // Amazon does not give a Pending order's total.
            order_total: (status != OrderStatus::Pending)
                .then(|| ("INR".to_owned(), rupees(total))),
            items: lines.into_iter().map(|(item, _)| item).collect(),
        });
    }
    orders
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);

    #[test]
    fn the_demo_orders_are_the_same_every_time() {
        assert_eq!(orders("A21TJRUUN4KGV", NOW), orders("A21TJRUUN4KGV", NOW));
        // Relative to their "now": a later start moves every date by the same amount.
        let later = orders("A21TJRUUN4KGV", NOW + Duration::days(1));
        let first = orders("A21TJRUUN4KGV", NOW);
        assert_eq!(later[17].order_id, first[17].order_id);
        assert_eq!(
            later[17].purchase_date - first[17].purchase_date,
            Duration::days(1)
        );
    }

    #[test]
    fn the_demo_orders_look_like_indian_amazon_orders_of_the_last_60_days() {
        let all = orders("A21TJRUUN4KGV", NOW);
        assert_eq!(all.len(), DEMO_ORDER_COUNT);
        let ids: HashSet<&str> = all.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids.len(), all.len(), "order ids are unique");
        for order in &all {
            let id = order.order_id.as_bytes();
            assert!(order.order_id.starts_with("40"), "{}", order.order_id);
            assert_eq!((id.len(), id[3], id[11]), (19, b'-', b'-'));
            assert!(order.purchase_date >= NOW - Duration::days(60));
            assert!(order.last_updated() <= NOW - Duration::minutes(2));
            assert!(order.last_updated() >= order.purchase_date);
            assert!((1..=3).contains(&order.items.len()));
            if let Some((currency, _)) = &order.order_total {
                assert_eq!(currency, "INR");
            }
        }
    }

    #[test]
    fn the_demo_orders_cover_every_case_the_sandbox_cares_about() {
        let all = orders("A21TJRUUN4KGV", NOW);
        let count = |f: &dyn Fn(&SandboxOrder) -> bool| all.iter().filter(|o| f(o)).count();
        let shipped_where = |f: fn(OffsetDateTime, OffsetDateTime) -> bool| {
            count(&|o| {
                o.status == OrderStatus::Shipped
                    && o.review_window()
                        .is_some_and(|(open, close)| f(open, close))
            })
        };
        let before = shipped_where(|open, _| NOW < open);
        let inside = shipped_where(|open, close| open <= NOW && NOW <= close);
        let after = shipped_where(|_, close| close < NOW);
        assert!(
            before >= 10 && inside >= 100 && after >= 30,
            "{before} {inside} {after}"
        );
        assert!(count(&|o| o.status == OrderStatus::Unshipped) >= 1);
        assert!(count(&|o| o.status == OrderStatus::Pending && o.order_total.is_none()) >= 1);
        assert!(count(&|o| o.status == OrderStatus::Canceled) >= 5);
        let replacements = count(&|o| o.is_replacement_order && o.replaced_order_id.is_some());
        assert!((2..=20).contains(&replacements), "{replacements}");
        assert!(count(&|o| o.fulfillment_channel == FulfillmentChannel::Afn) >= 60);
        assert!(count(&|o| o.fulfillment_channel == FulfillmentChannel::Mfn) >= 60);
        assert!(count(&|o| o.items.len() == 3) >= 30);
    }
}
