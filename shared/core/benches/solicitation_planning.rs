//! The review-request scheduler's planning (POLICY A7): `decide` over every merchant's recent
//! orders, once a day, to find the due ones (one queue message each). 1,000 merchants × 2,000
//! orders = 2 M decisions over a deterministic mix: most shipped in the last 60 days, some older
//! (expired), unshipped, cancelled, replacements, refunded, marked do-not-solicit, with priors
//! (sent, failed, not eligible today or earlier, scheduled, none).
//!
//! Run: `cargo bench -p ecomdrive-core --bench solicitation_planning`
//! (quicker: append `-- --warm-up-time 1 --measurement-time 3`).
//!
//! Criterion measures one merchant's 2,000 orders per iteration (throughput in orders decided per
//! second); then a one-shot pass over the full 2 M prints to stderr its total time, orders decided
//! per second and the number of due orders.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ecomdrive_core::amazon::AmazonOrderId;
use ecomdrive_core::amazon::marketplace::INDIA;
use ecomdrive_core::amazon::order::{AmazonOrderFacts, Order, OrderItem, OrderMarks, OrderStatus};
use ecomdrive_core::amazon::solicitation::{
    Prior, SolicitationSettings, SolicitationStatus, decide,
};
use ecomdrive_core::ids::CustomerId;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const MERCHANTS: u64 = 1_000;
const ORDERS_PER_MERCHANT: u64 = 2_000;
/// The scheduler's daily run: 09:30 IST.
const NOW: OffsetDateTime = datetime!(2026-11-20 04:00 UTC);

/// SplitMix64: a deterministic, dependency-free source of variety.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Merchant {
    settings: SolicitationSettings,
    orders: Vec<Order>,
    priors: Vec<Option<Prior>>,
}

fn customer(m: u64, c: u64) -> CustomerId {
    CustomerId::parse(&format!("cus_01m{m:04}c{c:015}")).expect("valid id")
}

fn merchant(m: u64) -> Merchant {
    let mut rng = Rng::new(m);
    let item_rules = m % 10 == 3;
    let mut settings = SolicitationSettings {
        // A few merchants have not turned requests on (the scheduler still looks at them).
        enabled: m % 20 != 7,
        send_on_day: [5, 5, 5, 5, 3, 7, 10, 15, 0, 30][rng.below(10) as usize],
        ..Default::default()
    };
    if item_rules {
        settings.excluded_skus.insert("SKU-7".into());
        settings.excluded_asins.insert("B0EXCL0009".into());
    }
    if m.is_multiple_of(4) {
        for c in 0..20 {
            settings
                .do_not_solicit_customers
                .insert(customer(m, c * 13));
        }
    }
    let (mut orders, mut priors) = (Vec::new(), Vec::new());
    for i in 0..ORDERS_PER_MERCHANT {
        let (order, prior) = order(&mut rng, m, i, item_rules);
        orders.push(order);
        priors.push(prior);
    }
    Merchant {
        settings,
        orders,
        priors,
    }
}

fn order(rng: &mut Rng, m: u64, i: u64, with_items: bool) -> (Order, Option<Prior>) {
    // 90 % bought in the last 60 days, the rest 60–90 days ago (their window has closed).
    let age_s = if rng.percent(90) {
        rng.below(60 * 86_400)
    } else {
        60 * 86_400 + rng.below(30 * 86_400)
    } as i64;
    let purchase = NOW - Duration::seconds(age_s);
    let earliest = purchase + Duration::seconds(2 * 86_400 + rng.below(4 * 86_400) as i64);
    let latest = earliest + Duration::seconds(rng.below(4 * 86_400) as i64);
    let (earliest, latest) = if rng.percent(2) {
        (None, None)
    } else {
        (Some(earliest), Some(latest))
    };
    let status = match rng.below(100) {
        0..=84 => OrderStatus::Shipped,
        85..=89 => OrderStatus::Unshipped,
        90..=91 => OrderStatus::Pending,
        92..=95 => OrderStatus::Canceled,
        96 => OrderStatus::PartiallyShipped,
        97 => OrderStatus::Unfulfillable,
        _ => OrderStatus::InvoiceUnconfirmed,
    };
    let items = with_items.then(|| {
        (0..1 + rng.below(3))
            .map(|k| OrderItem {
                order_item_id: format!("{i}{k}"),
                asin: format!("B0EXCL{:04}", rng.below(40)),
                seller_sku: Some(format!("SKU-{}", rng.below(60))),
                title: None,
                quantity: 1,
            })
            .collect()
    });
    let order = Order {
        facts: AmazonOrderFacts {
            order_id: AmazonOrderId::parse(&format!("402-{m:07}-{i:07}")).expect("valid id"),
            marketplace_id: INDIA.id.into(),
            status,
            fulfillment_channel: None,
            purchase_date: purchase,
            last_update_date: purchase,
            earliest_delivery_date: earliest,
            latest_delivery_date: latest,
            is_replacement_order: rng.percent(2),
            replaced_order_id: None,
            total: None,
        },
        marks: OrderMarks {
            do_not_solicit: rng.percent(1),
            refunded_or_returned: rng.percent(3),
        },
        items,
        conversation_ids: vec![],
        customer_ids: if rng.percent(30) {
            vec![customer(m, rng.below(500))]
        } else {
            vec![]
        },
        synced_at: NOW,
    };
    // What earlier runs recorded: older orders have mostly been requested already.
    let today = INDIA.local_date(NOW);
    let prior = |status, not_eligible_on| {
        Some(Prior {
            status,
            not_eligible_on,
        })
    };
    let prior = if age_s > 15 * 86_400 {
        match rng.below(100) {
            0..=79 => prior(SolicitationStatus::Sent, None),
            80..=82 => prior(SolicitationStatus::Failed, None),
            83..=86 => prior(SolicitationStatus::NotEligible, Some(today)),
            87..=89 => prior(SolicitationStatus::NotEligible, today.previous_day()),
            90..=94 => prior(SolicitationStatus::Scheduled, None),
            _ => None,
        }
    } else {
        match rng.below(100) {
            0..=49 => None,
            50..=84 => prior(SolicitationStatus::Scheduled, None),
            _ => prior(SolicitationStatus::PendingDelivery, None),
        }
    };
    (order, prior)
}

/// The scheduler's planning of one merchant: the number of due orders.
fn plan(m: &Merchant, now: OffsetDateTime) -> usize {
    m.orders
        .iter()
        .zip(&m.priors)
        .filter(|(o, p)| decide(o, &m.settings, p.as_ref(), now).due)
        .count()
}

fn solicitation_planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("solicitation_planning");
    group.throughput(Throughput::Elements(ORDERS_PER_MERCHANT));
    for (name, m) in [("typical_merchant", 1), ("merchant_with_item_rules", 3)] {
        let merchant = merchant(m);
        group.bench_with_input(
            BenchmarkId::new(name, ORDERS_PER_MERCHANT),
            &merchant,
            |b, merchant| b.iter(|| plan(black_box(merchant), black_box(NOW))),
        );
    }
    group.finish();
}

/// One pass over all 1,000 merchants, as the daily scheduler run would do. Orders are generated
/// per merchant (as the scheduler reads them a merchant at a time) and only `decide` is timed.
fn full_pass(_: &mut Criterion) {
    let wall = Instant::now();
    let (mut deciding, mut decided, mut due) = (StdDuration::ZERO, 0u64, 0usize);
    let mut by_status = BTreeMap::<&str, u64>::new();
    for m in 0..MERCHANTS {
        let merchant = merchant(m);
        let start = Instant::now();
        due += plan(black_box(&merchant), black_box(NOW));
        deciding += start.elapsed();
        decided += merchant.orders.len() as u64;
        // Untimed: what the run would record, to show the mix is realistic.
        for (o, p) in merchant.orders.iter().zip(&merchant.priors) {
            let d = decide(o, &merchant.settings, p.as_ref(), NOW);
            *by_status.entry(d.status.as_str()).or_default() += 1;
        }
    }
    let per_second = decided as f64 / deciding.as_secs_f64();
    eprintln!(
        "solicitation_planning/full_pass: {MERCHANTS} merchants x {ORDERS_PER_MERCHANT} orders = \
         {decided} decisions in {:.1} ms of decide ({:.2} M orders/s; {:.1} s with order \
         generation); due: {due} (queue messages); by status: {by_status:?}",
        deciding.as_secs_f64() * 1e3,
        per_second / 1e6,
        wall.elapsed().as_secs_f64(),
    );
}

criterion_group!(benches, solicitation_planning, full_pass);
criterion_main!(benches);
