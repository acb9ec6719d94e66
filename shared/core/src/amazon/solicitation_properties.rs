//! Property tests of the solicitation rules (see `solicitation.rs`).
//!
//! The spec (POLICY A7) is restated here in its own small terms — the window, the chosen day, the
//! exclusions — and `decide` / `after_check` are checked against statements about them, not
//! against a second implementation. Instants are generated around the interesting places: IST
//! midnight (18:30 UTC), the window's edges (±1 s, ±1 day), purchase, delivery, long after.

use super::AmazonOrderId;
use super::order::{AmazonOrderFacts, Order, OrderItem, OrderMarks, OrderStatus};
use super::solicitation::{
    Decision, MAX_SEND_ON_DAY, MarketplaceSettings, Prior, SenderStep, SolicitationSettings,
    SolicitationStatus, Window, after_check, amazon_window, decide,
};
use crate::ids::CustomerId;
use proptest::prelude::*;
use time::macros::offset;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

const DAY: i64 = 86_400;
/// Orders are purchased between 2024-01-01 and 2030-01-01 (UTC).
const PURCHASED_FROM: i64 = 1_704_067_200;
const PURCHASED_SPAN: i64 = 6 * 365 * DAY;
const INDIA_ID: &str = "A21TJRUUN4KGV";
/// A real marketplace EcomDrive does not serve (Amazon.com).
const UNSUPPORTED_ID: &str = "ATVPDKIKX0DER";
const IST: UtcOffset = offset!(+05:30);
/// The offsets a `now` may arrive in: the same instant must give the same decision.
const OFFSETS: [UtcOffset; 3] = [UtcOffset::UTC, offset!(+05:30), offset!(-08:00)];
const EXCLUDED_SKU: &str = "SKU-X";
const EXCLUDED_ASIN: &str = "B0EXCLUDED";

// ---- the spec in its own words ----------------------------------------------------------------

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("in range")
}

fn ist_date(t: OffsetDateTime) -> Date {
    t.to_offset(IST).date()
}

fn ist_midnight(d: Date) -> OffsetDateTime {
    d.midnight().assume_offset(IST)
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// Amazon's window: 5 days after the earliest promised delivery to 30 days after the latest (one
/// date stands for both when the other is missing).
fn spec_window(o: &Order) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let (e, l) = (o.facts.earliest_delivery_date, o.facts.latest_delivery_date);
    Some((e.or(l)? + days(5), l.or(e)? + days(30)))
}

fn latest_delivery(o: &Order) -> Option<OffsetDateTime> {
    o.facts
        .latest_delivery_date
        .or(o.facts.earliest_delivery_date)
}

/// The start (IST midnight) of day N after the latest promised delivery's IST date.
fn chosen_day_start(o: &Order, n: u8) -> Option<OffsetDateTime> {
    Some(ist_midnight(
        ist_date(latest_delivery(o)?) + days(i64::from(n)),
    ))
}

/// The merchant's rules, as listed in the spec.
fn spec_excluded(o: &Order, s: &SolicitationSettings) -> bool {
    o.facts.status == OrderStatus::Canceled
        || o.marks.do_not_solicit
        || o.customer_ids
            .iter()
            .any(|c| s.do_not_solicit_customers.contains(c))
        || (s.exclude_replacement_orders && o.facts.is_replacement_order)
        || (s.exclude_refunded_or_returned && o.marks.refunded_or_returned)
        || o.items.iter().flatten().any(|i| {
            s.excluded_asins.contains(&i.asin)
                || i.seller_sku
                    .as_ref()
                    .is_some_and(|k| s.excluded_skus.contains(k))
        })
}

/// Shipped, in a marketplace we serve, not ruled out, with a window (settings on or off).
fn solicitable(o: &Order, s: &SolicitationSettings) -> bool {
    o.facts.marketplace_id == INDIA_ID
        && o.facts.status == OrderStatus::Shipped
        && !spec_excluded(o, s)
        && spec_window(o).is_some()
}

fn customer(which: bool) -> CustomerId {
    let raw = if which {
        "cus_01aaaaaaaaaaaaaaaaaaaaaaaa"
    } else {
        "cus_01bbbbbbbbbbbbbbbbbbbbbbbb"
    };
    CustomerId::parse(raw).expect("valid id")
}

/// Turns a generated case into one no rule excludes, with requests on in India.
fn make_solicitable(o: &mut Order, s: &mut SolicitationSettings) {
    o.facts.marketplace_id = INDIA_ID.into();
    o.facts.status = OrderStatus::Shipped;
    o.facts.is_replacement_order = false;
    o.marks = OrderMarks::default();
    o.customer_ids.clear();
    o.items = None;
    s.enabled = true;
    if let Some(m) = s.marketplaces.get_mut(INDIA_ID) {
        m.enabled = true;
    }
}

// ---- generators -------------------------------------------------------------------------------

/// An instant from `base` to `max_days` later: anywhere, or within 2 s of an IST midnight.
fn instant_from(base: OffsetDateTime, max_days: i64) -> impl Strategy<Value = OffsetDateTime> {
    prop_oneof![
        (0..=max_days * DAY).prop_map(move |s| base + secs(s)),
        (0..=max_days, -2i64..=2).prop_map(move |(d, j)| {
            (ist_midnight(ist_date(base) + days(d)) + secs(j)).max(base)
        }),
    ]
}

/// (purchase, earliest, latest) with purchase <= earliest <= latest; `dates_required` keeps both.
fn deliveries(
    dates_required: bool,
) -> impl Strategy<
    Value = (
        OffsetDateTime,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
    ),
> {
    (PURCHASED_FROM..PURCHASED_FROM + PURCHASED_SPAN).prop_flat_map(move |p| {
        let purchase = at(p);
        instant_from(purchase, 20).prop_flat_map(move |earliest| {
            (instant_from(earliest, 15), 0u8..12).prop_map(move |(latest, which)| match which {
                _ if dates_required => (purchase, Some(earliest), Some(latest)),
                0 => (purchase, None, None),
                1 => (purchase, Some(earliest), None),
                2 => (purchase, None, Some(latest)),
                _ => (purchase, Some(earliest), Some(latest)),
            })
        })
    })
}

fn order_status() -> impl Strategy<Value = OrderStatus> {
    use OrderStatus::*;
    prop_oneof![
        6 => Just(Shipped),
        1 => prop::sample::select(vec![
            Pending,
            Unshipped,
            PartiallyShipped,
            Shipped,
            Canceled,
            Unfulfillable,
            InvoiceUnconfirmed,
            PendingAvailability,
            Other,
        ]),
    ]
}

fn items() -> impl Strategy<Value = Option<Vec<OrderItem>>> {
    let item = (0usize..3, 0usize..3, any::<bool>()).prop_map(|(sku, asin, has_sku)| OrderItem {
        order_item_id: format!("{sku}{asin}"),
        asin: ["B0AAAAAAAA", "B0BBBBBBBB", EXCLUDED_ASIN][asin].into(),
        seller_sku: has_sku.then(|| ["SKU-1", "SKU-2", EXCLUDED_SKU][sku].into()),
        title: None,
        quantity: 1,
    });
    prop::option::of(prop::collection::vec(item, 0..3))
}

fn orders_with(dates_required: bool) -> impl Strategy<Value = Order> {
    (
        deliveries(dates_required),
        order_status(),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::option::of(any::<bool>()),
        items(),
    )
        .prop_map(
            |(
                (purchase, earliest, latest),
                status,
                india,
                dns,
                refunded,
                replacement,
                cust,
                items,
            )| {
                Order {
                    facts: AmazonOrderFacts {
                        order_id: AmazonOrderId::parse("402-1234567-7654321").expect("valid"),
                        marketplace_id: if india { INDIA_ID } else { UNSUPPORTED_ID }.into(),
                        status,
                        fulfillment_channel: None,
                        purchase_date: purchase,
                        last_update_date: purchase,
                        earliest_delivery_date: earliest,
                        latest_delivery_date: latest,
                        is_replacement_order: replacement,
                        replaced_order_id: None,
                        total: None,
                    },
                    marks: OrderMarks {
                        do_not_solicit: dns,
                        refunded_or_returned: refunded,
                    },
                    items,
                    conversation_ids: vec![],
                    customer_ids: cust.map(customer).into_iter().collect(),
                    synced_at: purchase,
                }
            },
        )
}

fn orders() -> impl Strategy<Value = Order> {
    orders_with(false)
}

fn settings() -> impl Strategy<Value = SolicitationSettings> {
    (
        prop::bool::weighted(0.85),
        0u8..=MAX_SEND_ON_DAY,
        any::<bool>(),
        any::<bool>(),
        any::<(bool, bool, bool)>(),
        prop::option::of((
            prop::bool::weighted(0.8),
            prop::option::of(0u8..=MAX_SEND_ON_DAY),
        )),
    )
        .prop_map(
            |(enabled, send_on_day, refunded, replacement, (sku, asin, cust), market)| {
                let mut s = SolicitationSettings {
                    enabled,
                    send_on_day,
                    exclude_refunded_or_returned: refunded,
                    exclude_replacement_orders: replacement,
                    ..Default::default()
                };
                if sku {
                    s.excluded_skus.insert(EXCLUDED_SKU.into());
                }
                if asin {
                    s.excluded_asins.insert(EXCLUDED_ASIN.into());
                }
                if cust {
                    s.do_not_solicit_customers.insert(customer(true));
                }
                if let Some((enabled, send_on_day)) = market {
                    s.marketplaces.insert(
                        INDIA_ID.into(),
                        MarketplaceSettings {
                            enabled,
                            send_on_day,
                        },
                    );
                }
                s
            },
        )
}

/// Where `now` is taken from, resolved against the case (see [`NowPick::resolve`]).
#[derive(Clone, Copy, Debug)]
enum Anchor {
    Purchase,
    Opens,
    Closes,
    LatestDelivery,
    ChosenDay,
    /// Seconds after purchase.
    AfterPurchase(i64),
}

#[derive(Clone, Copy, Debug)]
struct NowPick {
    anchor: Anchor,
    delta: i64,
    /// Move to the IST midnight of the day reached, plus this many seconds.
    snap: Option<i64>,
    /// Index into [`OFFSETS`]: the offset `now` is expressed in.
    offset: usize,
}

impl NowPick {
    fn resolve(self, o: &Order, s: &SolicitationSettings) -> OffsetDateTime {
        let purchase = o.facts.purchase_date;
        let window = spec_window(o);
        let n = s.send_on_day_in(INDIA_ID).unwrap_or(s.send_on_day);
        let base = match self.anchor {
            Anchor::Purchase => Some(purchase),
            Anchor::Opens => window.map(|w| w.0),
            Anchor::Closes => window.map(|w| w.1),
            Anchor::LatestDelivery => latest_delivery(o),
            Anchor::ChosenDay => chosen_day_start(o, n),
            Anchor::AfterPurchase(s) => Some(purchase + secs(s)),
        }
        .unwrap_or(purchase);
        let t = base + secs(self.delta);
        let t = match self.snap {
            Some(j) => ist_midnight(ist_date(t)) + secs(j),
            None => t,
        };
        t.to_offset(OFFSETS[self.offset])
    }
}

fn now_picks() -> impl Strategy<Value = NowPick> {
    let anchor = prop_oneof![
        Just(Anchor::Purchase),
        Just(Anchor::Opens),
        Just(Anchor::Closes),
        Just(Anchor::LatestDelivery),
        Just(Anchor::ChosenDay),
        (-10 * DAY..90 * DAY).prop_map(Anchor::AfterPurchase),
    ];
    let delta = prop_oneof![
        prop::sample::select(vec![0, 1, -1, DAY, -DAY, DAY + 1, -DAY - 1]),
        -DAY..=DAY,
        -60 * DAY..=60 * DAY,
    ];
    let snap = prop_oneof![
        2 => Just(None),
        1 => (-2i64..=2).prop_map(Some),
    ];
    (anchor, delta, snap, 0..OFFSETS.len()).prop_map(|(anchor, delta, snap, offset)| NowPick {
        anchor,
        delta,
        snap,
        offset,
    })
}

/// A prior, its `not_eligible_on` (if any) given relative to the IST day of `now`.
#[derive(Clone, Copy, Debug)]
struct PriorPick {
    status: SolicitationStatus,
    not_eligible_rel: Option<i64>,
}

impl PriorPick {
    fn resolve(self, now: OffsetDateTime) -> Prior {
        Prior {
            status: self.status,
            not_eligible_on: self.not_eligible_rel.map(|r| ist_date(now) + days(r)),
        }
    }
}

fn priors() -> impl Strategy<Value = Option<PriorPick>> {
    prop::option::of(
        (
            prop::sample::select(SolicitationStatus::ALL.to_vec()),
            prop::option::of(-3i64..=1),
        )
            .prop_map(|(status, not_eligible_rel)| PriorPick {
                status,
                not_eligible_rel,
            }),
    )
}

/// The instant `per_mille` thousandths of the way from `a` to `b` (exactly `a` at 0, `b` at 1000).
fn between(a: OffsetDateTime, b: OffsetDateTime, per_mille: i64) -> OffsetDateTime {
    if per_mille >= 1000 {
        return b;
    }
    a + secs((b - a).whole_seconds() * per_mille / 1000)
}

fn at_now(
    o: &Order,
    s: &SolicitationSettings,
    prior: Option<PriorPick>,
    now: OffsetDateTime,
) -> (Decision, Option<Prior>) {
    let prior = prior.map(|p| p.resolve(now));
    (decide(o, s, prior.as_ref(), now), prior)
}

// ---- properties -------------------------------------------------------------------------------

proptest! {
    #[test]
    fn the_window_is_amazons(o in orders()) {
        let w = amazon_window(&o);
        prop_assert_eq!(w.map(|w| (w.opens, w.closes)), spec_window(&o));
    }

    #[test]
    fn due_only_when_every_condition_holds(
        o in orders(), s in settings(), prior in priors(), pick in now_picks(),
    ) {
        let now = pick.resolve(&o, &s);
        let (d, prior) = at_now(&o, &s, prior, now);
        if d.due {
            prop_assert_eq!(d.status, SolicitationStatus::Scheduled);
            prop_assert_eq!(o.facts.status, OrderStatus::Shipped);
            prop_assert_eq!(o.facts.marketplace_id.as_str(), INDIA_ID);
            prop_assert!(!spec_excluded(&o, &s));
            prop_assert!(s.enabled);
            if let Some(p) = prior {
                prop_assert!(!p.status.is_final());
                prop_assert!(
                    !(p.status == SolicitationStatus::NotEligible
                        && p.not_eligible_on == Some(ist_date(now)))
                );
            }
            let (opens, closes) = spec_window(&o).expect("due orders have a window");
            prop_assert!(opens <= now && now <= closes, "{opens} <= {now} <= {closes}");
            let n = s.send_on_day_in(INDIA_ID).expect("requests are on");
            let chosen = chosen_day_start(&o, n).expect("has a delivery date");
            prop_assert!(now >= chosen, "now {now} before the chosen day's start {chosen}");
            // Delivered by its latest promised date.
            prop_assert!(now >= latest_delivery(&o).expect("has a delivery date"));
            let send_on = d.send_on.expect("a due order has a send day");
            prop_assert!(send_on <= ist_date(now));
        }
    }

    #[test]
    fn never_due_outside_the_window_and_expired_after_it(
        o in orders(), s in settings(), prior in priors(), pick in now_picks(),
    ) {
        let now = pick.resolve(&o, &s);
        let (d, prior) = at_now(&o, &s, prior, now);
        let Some((opens, closes)) = spec_window(&o) else {
            prop_assert!(!d.due);
            return Ok(());
        };
        if now < opens {
            prop_assert!(!d.due);
        }
        if now > closes {
            prop_assert!(!d.due);
            match prior.filter(|p| p.status.is_final()) {
                Some(p) => prop_assert_eq!(d.status, p.status),
                None if solicitable(&o, &s) => {
                    prop_assert_eq!(d.status, SolicitationStatus::Expired)
                }
                None => prop_assert_ne!(d.status, SolicitationStatus::Scheduled),
            }
        }
    }

    #[test]
    fn exactly_at_closing_it_is_not_expired_and_is_due(
        mut o in orders_with(true), mut s in settings(), prior in priors(), offset in 0..OFFSETS.len(),
        make_it_solicitable in any::<bool>(),
    ) {
        if make_it_solicitable {
            make_solicitable(&mut o, &mut s);
        }
        let (_, closes) = spec_window(&o).expect("both dates");
        let now = closes.to_offset(OFFSETS[offset]);
        let (d, prior) = at_now(&o, &s, prior, now);
        prop_assert_ne!(d.status, SolicitationStatus::Expired);
        if make_it_solicitable && prior.is_none() {
            // Day 30 at most: the chosen day always starts before the window closes.
            prop_assert!(d.due, "{d:?}");
        }
    }

    #[test]
    fn send_on_is_the_chosen_day_but_never_before_the_window(
        o in orders(), s in settings(), prior in priors(), pick in now_picks(),
    ) {
        let now = pick.resolve(&o, &s);
        let (d, _) = at_now(&o, &s, prior, now);
        if d.status == SolicitationStatus::Scheduled {
            prop_assert!(d.send_on.is_some());
        }
        if d.send_on.is_some() && d.status != SolicitationStatus::NotEligible {
            let n = s.send_on_day_in(INDIA_ID).expect("requests are on");
            let (opens, _) = spec_window(&o).expect("a send day needs a window");
            let chosen = chosen_day_start(&o, n).expect("has a delivery date");
            prop_assert_eq!(d.send_on, Some(ist_date(chosen.max(opens))));
        }
    }

    #[test]
    fn due_from_the_chosen_day_to_the_close(
        mut o in orders_with(true), mut s in settings(), per_mille in 0i64..=1000,
        offset in 0..OFFSETS.len(),
    ) {
        make_solicitable(&mut o, &mut s);
        let (opens, closes) = spec_window(&o).expect("both dates");
        let n = s.send_on_day_in(INDIA_ID).expect("requests are on");
        let chosen = chosen_day_start(&o, n).expect("has a delivery date");
        let start = chosen.max(opens).max(latest_delivery(&o).expect("has a date"));
        prop_assert!(start <= closes);
        let now = between(start, closes, per_mille);
        let now = now.to_offset(OFFSETS[offset]);
        let d = decide(&o, &s, None, now);
        prop_assert!(d.due, "at {now}: {d:?}");
        // And not a second before (start is one of three lower bounds, all required).
        let d = decide(&o, &s, None, start - secs(1));
        prop_assert!(!d.due, "just before {start}: {d:?}");
    }

    #[test]
    fn monotone_in_time(
        o in orders(), s in settings(), pick in now_picks(),
        step in prop_oneof![0i64..=2, 0..=DAY, 0..=40 * DAY],
    ) {
        let t = pick.resolve(&o, &s);
        let later = t + secs(step);
        let (before, after) = (decide(&o, &s, None, t), decide(&o, &s, None, later));
        if before.due && later <= spec_window(&o).expect("due has a window").1 {
            prop_assert!(after.due, "due at {t}, not at {later}: {after:?}");
        }
        if before.status == SolicitationStatus::Expired {
            prop_assert_eq!(after.status, SolicitationStatus::Expired);
        }
    }

    #[test]
    fn final_priors_never_change(
        o in orders(), s in settings(), pick in now_picks(),
        status in prop::sample::select(vec![SolicitationStatus::Sent, SolicitationStatus::Failed]),
        not_eligible_rel in prop::option::of(-3i64..=1),
    ) {
        let now = pick.resolve(&o, &s);
        let prior = PriorPick { status, not_eligible_rel };
        let (d, _) = at_now(&o, &s, Some(prior), now);
        prop_assert_eq!(d.status, status);
        prop_assert!(!d.due);
    }

    #[test]
    fn not_eligible_waits_for_the_next_ist_day(
        o in orders(), s in settings(), pick in now_picks(),
        later_day in 1i64..=3, into_day in 0..DAY,
    ) {
        let now = pick.resolve(&o, &s);
        let today = ist_date(now);
        let asked_today = Prior {
            status: SolicitationStatus::NotEligible,
            not_eligible_on: Some(today),
        };
        // Never due the day Amazon said "not today", at any hour of that IST day.
        prop_assert!(!decide(&o, &s, Some(&asked_today), now).due);
        let same_day = ist_midnight(today) + secs(into_day);
        prop_assert!(!decide(&o, &s, Some(&asked_today), same_day).due);
        // On a later IST day, the earlier "not today" changes nothing: due exactly when an order
        // without a prior would be.
        let later = ist_midnight(today + days(later_day)) + secs(into_day);
        let again = decide(&o, &s, Some(&asked_today), later);
        prop_assert_eq!(again.due, decide(&o, &s, None, later).due, "{:?}", again);
    }

    #[test]
    fn not_eligible_is_due_again_later_inside_the_window(
        mut o in orders_with(true), mut s in settings(), per_mille in 0i64..=1000,
        earlier_by in 1i64..=5,
    ) {
        make_solicitable(&mut o, &mut s);
        let (opens, closes) = spec_window(&o).expect("both dates");
        let n = s.send_on_day_in(INDIA_ID).expect("requests are on");
        let chosen = chosen_day_start(&o, n).expect("has a delivery date");
        let start = chosen.max(opens).max(latest_delivery(&o).expect("has a date"));
        let now = between(start, closes, per_mille);
        let prior = Prior {
            status: SolicitationStatus::NotEligible,
            not_eligible_on: Some(ist_date(now) - days(earlier_by)),
        };
        let d = decide(&o, &s, Some(&prior), now);
        prop_assert!(d.due, "{d:?}");
    }

    #[test]
    fn excluded_orders_are_never_due(
        mut o in orders(), mut s in settings(), prior in priors(), pick in now_picks(),
        rule in 0u8..7,
    ) {
        match rule {
            0 => o.facts.status = OrderStatus::Canceled,
            1 => o.marks.do_not_solicit = true,
            2 => {
                o.customer_ids.push(customer(false));
                s.do_not_solicit_customers.insert(customer(false));
            }
            3 => {
                o.facts.is_replacement_order = true;
                s.exclude_replacement_orders = true;
            }
            4 => {
                o.marks.refunded_or_returned = true;
                s.exclude_refunded_or_returned = true;
            }
            5 => {
                let mut items = o.items.take().unwrap_or_default();
                items.push(OrderItem {
                    order_item_id: "x".into(),
                    asin: "B0ZZZZZZZZ".into(),
                    seller_sku: Some("SKU-NEVER".into()),
                    title: None,
                    quantity: 1,
                });
                o.items = Some(items);
                s.excluded_skus.insert("SKU-NEVER".into());
            }
            _ => {
                o.items = Some(vec![OrderItem {
                    order_item_id: "y".into(),
                    asin: "B0NEVERNEV".into(),
                    seller_sku: None,
                    title: None,
                    quantity: 2,
                }]);
                s.excluded_asins.insert("B0NEVERNEV".into());
            }
        }
        let now = pick.resolve(&o, &s);
        let (d, prior) = at_now(&o, &s, prior, now);
        prop_assert!(!d.due);
        if !prior.is_some_and(|p| p.status.is_final()) {
            prop_assert_eq!(d.status, SolicitationStatus::Excluded);
        }
    }

    #[test]
    fn requests_off_never_make_anything_due(
        o in orders(), mut s in settings(), prior in priors(), pick in now_picks(),
        how in 0u8..3,
    ) {
        match how {
            // Off until turned on.
            0 => s = SolicitationSettings::default(),
            1 => s.enabled = false,
            // On, but off in India.
            _ => {
                s.enabled = true;
                s.marketplaces.insert(
                    INDIA_ID.into(),
                    MarketplaceSettings { enabled: false, send_on_day: Some(0) },
                );
            }
        }
        let now = pick.resolve(&o, &s);
        let (d, _) = at_now(&o, &s, prior, now);
        prop_assert!(!d.due);
        prop_assert_ne!(d.status, SolicitationStatus::Scheduled);
    }

    #[test]
    fn the_same_instant_in_any_offset_gives_the_same_decision(
        o in orders(), s in settings(), prior in priors(), pick in now_picks(),
        order_offset in 0..OFFSETS.len(),
    ) {
        let now = pick.resolve(&o, &s);
        let prior = prior.map(|p| p.resolve(now));
        let expected = decide(&o, &s, prior.as_ref(), now.to_offset(UtcOffset::UTC));
        for offset in OFFSETS {
            let d = decide(&o, &s, prior.as_ref(), now.to_offset(offset));
            prop_assert_eq!(&d, &expected, "now in {}", offset);
        }
        // The order's own dates may arrive in any offset too.
        let mut shifted = o.clone();
        let to = OFFSETS[order_offset];
        for t in [
            &mut shifted.facts.earliest_delivery_date,
            &mut shifted.facts.latest_delivery_date,
        ] {
            *t = t.map(|t| t.to_offset(to));
        }
        prop_assert_eq!(decide(&shifted, &s, prior.as_ref(), now), expected);
    }

    #[test]
    fn the_sender_follows_amazons_answer(
        offered in any::<bool>(), unanswered in any::<bool>(),
        window in prop::option::of((PURCHASED_FROM..PURCHASED_FROM + PURCHASED_SPAN, 0..60 * DAY)),
        now_rel in prop_oneof![
            prop::sample::select(vec![-1i64, 0, 1, -DAY, DAY]),
            -90 * DAY..90 * DAY,
        ],
    ) {
        let window = window.map(|(opens, len)| Window {
            opens: at(opens),
            closes: at(opens + len),
        });
        let now = match window {
            Some(w) => w.closes + secs(now_rel),
            None => at(PURCHASED_FROM + now_rel.abs()),
        };
        let step = after_check(offered, unanswered, window.as_ref(), now);
        if offered {
            prop_assert_eq!(step, SenderStep::Send);
        } else if unanswered {
            prop_assert_eq!(step, SenderStep::AssumeSent);
        } else {
            let closed = window.is_some_and(|w| now > w.closes);
            prop_assert_eq!(step == SenderStep::Expired, closed);
            if !closed {
                prop_assert_eq!(step, SenderStep::NotEligibleToday);
            }
        }
    }
}
