//! Review requests (POLICY A7): which orders get Amazon's "request a review", and when.
//!
//! Amazon allows a request from 5 days after the earliest promised delivery date to 30 days after
//! the latest, for shipped orders, once. The merchant chooses the day (N days after the latest
//! promised delivery, counted in the marketplace's calendar) and what never to solicit. Every order
//! gets one of the [`SolicitationStatus`]es with a reason the merchant can read. Amazon has the
//! last word: the sender asks `getSolicitationActionsForOrder` before sending (see [`after_check`]).

use super::marketplace::{self, Marketplace};
use super::order::{Order, OrderStatus};
use crate::ids::CustomerId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, Duration, OffsetDateTime};

/// Amazon's window opens this long after the earliest promised delivery date...
pub const WINDOW_OPENS_AFTER: Duration = Duration::days(5);
/// ...and closes this long after the latest.
pub const WINDOW_CLOSES_AFTER: Duration = Duration::days(30);
pub const DEFAULT_SEND_ON_DAY: u8 = 5;
/// How long a sender's claim on an order holds. Longer than a sender may run (its Lambda
/// timeout): a claim older than this belongs to a sender that died, and the order is free again.
pub const CLAIM_LEASE: Duration = Duration::minutes(2);
/// Day 30 after the latest delivery date is the last day Amazon may still allow.
pub const MAX_SEND_ON_DAY: u8 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolicitationStatus {
    /// Will be requested on `send_on` (or is being requested today).
    Scheduled,
    /// Not shipped yet, or shipped and not delivered by its latest promised date yet.
    PendingDelivery,
    /// A rule of the merchant (or Amazon's order status) rules it out; recomputed every day.
    Excluded,
    /// Amazon's window closed without a request.
    Expired,
    /// Amazon accepted the request. Final: never again for this order.
    Sent,
    /// Amazon did not offer the request today; asked again on a later day inside the window.
    NotEligible,
    /// Amazon refused the request for good. Final.
    Failed,
}

impl SolicitationStatus {
    pub const ALL: [Self; 7] = [
        Self::Scheduled,
        Self::PendingDelivery,
        Self::Excluded,
        Self::Expired,
        Self::Sent,
        Self::NotEligible,
        Self::Failed,
    ];

    /// Nothing changes a final status again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::PendingDelivery => "pending_delivery",
            Self::Excluded => "excluded",
            Self::Expired => "expired",
            Self::Sent => "sent",
            Self::NotEligible => "not_eligible",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Per-marketplace choice; a marketplace without an entry follows the merchant-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketplaceSettings {
    pub enabled: bool,
    pub send_on_day: Option<u8>,
}

/// The merchant's review-request settings. Off until the merchant turns them on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SolicitationSettings {
    pub enabled: bool,
    /// Send on day N after the latest promised delivery date, in the marketplace's calendar.
    pub send_on_day: u8,
    pub exclude_refunded_or_returned: bool,
    pub exclude_replacement_orders: bool,
    pub excluded_skus: BTreeSet<String>,
    pub excluded_asins: BTreeSet<String>,
    pub do_not_solicit_customers: BTreeSet<CustomerId>,
    pub marketplaces: BTreeMap<String, MarketplaceSettings>,
}

impl Default for SolicitationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            send_on_day: DEFAULT_SEND_ON_DAY,
            exclude_refunded_or_returned: true,
            exclude_replacement_orders: true,
            excluded_skus: BTreeSet::new(),
            excluded_asins: BTreeSet::new(),
            do_not_solicit_customers: BTreeSet::new(),
            marketplaces: BTreeMap::new(),
        }
    }
}

/// The most SKUs, ASINs or customers one exclusion list holds (the settings are one item).
pub const MAX_EXCLUSIONS: usize = 1000;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("send_on_day must be between 0 and {MAX_SEND_ON_DAY}")]
    SendOnDay,
    #[error("an exclusion list holds at most {MAX_EXCLUSIONS} entries of at most 64 characters")]
    TooManyExclusions,
    #[error("unknown or unsupported marketplace {0}")]
    Marketplace(String),
}

impl SolicitationSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let days = std::iter::once(Some(self.send_on_day))
            .chain(self.marketplaces.values().map(|m| m.send_on_day));
        if days.flatten().any(|d| d > MAX_SEND_ON_DAY) {
            return Err(SettingsError::SendOnDay);
        }
        let lists_fit = [self.excluded_skus.len(), self.excluded_asins.len()]
            .into_iter()
            .chain([self.do_not_solicit_customers.len(), self.marketplaces.len()])
            .all(|n| n <= MAX_EXCLUSIONS)
            && self
                .excluded_skus
                .iter()
                .chain(&self.excluded_asins)
                .all(|v| v.len() <= 64);
        if !lists_fit {
            return Err(SettingsError::TooManyExclusions);
        }
        if let Some(unknown) = self
            .marketplaces
            .keys()
            .find(|id| marketplace::by_id(id).is_none())
        {
            return Err(SettingsError::Marketplace(unknown.clone()));
        }
        Ok(())
    }

    /// The send day in this marketplace, or `None` when requests are off there.
    pub fn send_on_day_in(&self, marketplace_id: &str) -> Option<u8> {
        match self.marketplaces.get(marketplace_id) {
            Some(m) if !m.enabled => None,
            Some(m) if self.enabled => Some(m.send_on_day.unwrap_or(self.send_on_day)),
            None if self.enabled => Some(self.send_on_day),
            _ => None,
        }
    }

    /// SKU/ASIN rules need the order's items, which cost an API call each to fetch.
    pub fn needs_items(&self) -> bool {
        !self.excluded_skus.is_empty() || !self.excluded_asins.is_empty()
    }
}

/// Amazon's window for an order, from its promised delivery dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub opens: OffsetDateTime,
    pub closes: OffsetDateTime,
}

/// `None` when the order has no promised delivery date at all. With only one of the two dates,
/// that date stands for both.
pub fn amazon_window(order: &Order) -> Option<Window> {
    let f = &order.facts;
    let earliest = f.earliest_delivery_date.or(f.latest_delivery_date)?;
    let latest = f.latest_delivery_date.or(f.earliest_delivery_date)?;
    Some(Window {
        opens: earliest + WINDOW_OPENS_AFTER,
        closes: latest + WINDOW_CLOSES_AFTER,
    })
}

/// What is known of the order's solicitation so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prior {
    pub status: SolicitationStatus,
    /// The marketplace day Amazon last said "not today" (the order is not asked again that day).
    pub not_eligible_on: Option<Date>,
}

/// The scheduler's verdict on one order on one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: SolicitationStatus,
    /// Why, in words the dashboard shows (a rule name for `excluded`).
    pub reason: Option<String>,
    /// The marketplace day the request is (or was) planned for.
    pub send_on: Option<Date>,
    /// True when the sender should try it now.
    pub due: bool,
}

impl Decision {
    fn new(status: SolicitationStatus, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: Some(reason.into()),
            send_on: None,
            due: false,
        }
    }
}

/// Which of the merchant's rules rules this order out, if any (the first that applies).
pub fn exclusion(order: &Order, settings: &SolicitationSettings) -> Option<String> {
    let f = &order.facts;
    if f.status == OrderStatus::Canceled {
        return Some("cancelled".into());
    }
    if order.marks.do_not_solicit {
        return Some("order_do_not_solicit".into());
    }
    if order
        .customer_ids
        .iter()
        .any(|c| settings.do_not_solicit_customers.contains(c))
    {
        return Some("customer_do_not_solicit".into());
    }
    if settings.exclude_replacement_orders && f.is_replacement_order {
        return Some("replacement_order".into());
    }
    if settings.exclude_refunded_or_returned && order.marks.refunded_or_returned {
        return Some("refunded_or_returned".into());
    }
    for item in order.items.iter().flatten() {
        if let Some(sku) = item
            .seller_sku
            .as_ref()
            .filter(|s| settings.excluded_skus.contains(*s))
        {
            return Some(format!("sku:{sku}"));
        }
        if settings.excluded_asins.contains(&item.asin) {
            return Some(format!("asin:{}", item.asin));
        }
    }
    None
}

/// The status of `order` at `now` under `settings`, given what happened before.
pub fn decide(
    order: &Order,
    settings: &SolicitationSettings,
    prior: Option<&Prior>,
    now: OffsetDateTime,
) -> Decision {
    use SolicitationStatus::*;
    if let Some(p) = prior.filter(|p| p.status.is_final()) {
        return Decision {
            status: p.status,
            reason: None,
            send_on: None,
            due: false,
        };
    }
    let f = &order.facts;
    let Some(market) = marketplace::by_id(&f.marketplace_id) else {
        return Decision::new(Excluded, "unsupported_marketplace");
    };
    if let Some(rule) = exclusion(order, settings) {
        return Decision::new(Excluded, rule);
    }
    if f.status.awaiting_shipment() {
        return Decision::new(PendingDelivery, "not_shipped");
    }
    if f.status != OrderStatus::Shipped {
        return Decision::new(Excluded, "order_not_shippable");
    }
    let Some(window) = amazon_window(order) else {
        return Decision::new(NotEligible, "no_promised_delivery_date");
    };
    if now > window.closes {
        return Decision::new(Expired, "window_closed");
    }
    let Some(day_n) = settings.send_on_day_in(&f.marketplace_id) else {
        return Decision::new(Excluded, "requests_off");
    };
    let (send_on, due_at) = planned_day(market, &window, order, day_n);
    let today = market.local_date(now);
    if let Some(p) = prior
        && p.status == NotEligible
        && p.not_eligible_on == Some(today)
    {
        return Decision {
            status: NotEligible,
            reason: Some("not_offered_by_amazon_today".into()),
            send_on: today.next_day(),
            due: false,
        };
    }
    let latest_delivery = f.latest_delivery_date.or(f.earliest_delivery_date);
    let (status, reason) = match latest_delivery {
        Some(d) if now < d => (PendingDelivery, "in_transit"),
        _ => (
            Scheduled,
            if now >= due_at {
                "due"
            } else {
                "waiting_for_send_day"
            },
        ),
    };
    Decision {
        status,
        reason: Some(reason.into()),
        send_on: Some(send_on),
        due: status == Scheduled && now >= due_at,
    }
}

/// The day and instant a request may go: day N after the latest promised delivery (marketplace
/// calendar), but never before Amazon's window opens.
fn planned_day(
    market: &Marketplace,
    window: &Window,
    order: &Order,
    day_n: u8,
) -> (Date, OffsetDateTime) {
    let f = &order.facts;
    let latest = f
        .latest_delivery_date
        .or(f.earliest_delivery_date)
        .unwrap_or(window.opens);
    let chosen = market.local_date(latest) + Duration::days(i64::from(day_n));
    let due_at = market.start_of_day(chosen).max(window.opens);
    (market.local_date(due_at), due_at)
}

/// What the sender does after asking Amazon which actions the order offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderStep {
    /// The request is offered: send it.
    Send,
    /// Not offered today; ask again on a later day.
    NotEligibleToday,
    /// Not offered and Amazon's window has closed.
    Expired,
    /// An earlier attempt reached Amazon with no answer we saw, and Amazon no longer offers the
    /// request: it was sent then (Amazon offers it until it is).
    AssumeSent,
}

pub fn after_check(
    offered: bool,
    earlier_attempt_unanswered: bool,
    window: Option<&Window>,
    now: OffsetDateTime,
) -> SenderStep {
    match (offered, earlier_attempt_unanswered) {
        (true, _) => SenderStep::Send,
        (false, true) => SenderStep::AssumeSent,
        (false, false) if window.is_some_and(|w| now > w.closes) => SenderStep::Expired,
        (false, false) => SenderStep::NotEligibleToday,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amazon::AmazonOrderId;
    use crate::amazon::order::{AmazonOrderFacts, OrderItem, OrderMarks};
    use time::macros::{date, datetime};

    /// A shipped India order promised for 10–12 Nov 2026 (UTC noon).
    fn order() -> Order {
        Order {
            facts: AmazonOrderFacts {
                order_id: AmazonOrderId::parse("402-1234567-7654321").unwrap(),
                marketplace_id: marketplace::INDIA.id.into(),
                status: OrderStatus::Shipped,
                fulfillment_channel: None,
                purchase_date: datetime!(2026-11-05 06:00 UTC),
                last_update_date: datetime!(2026-11-07 06:00 UTC),
                earliest_delivery_date: Some(datetime!(2026-11-10 12:00 UTC)),
                latest_delivery_date: Some(datetime!(2026-11-12 12:00 UTC)),
                is_replacement_order: false,
                replaced_order_id: None,
                total: None,
            },
            marks: OrderMarks::default(),
            items: None,
            conversation_ids: vec![],
            customer_ids: vec![],
            synced_at: datetime!(2026-11-07 06:00 UTC),
        }
    }

    fn on() -> SolicitationSettings {
        SolicitationSettings {
            enabled: true,
            ..Default::default()
        }
    }

    #[test]
    fn scheduled_for_day_n_after_the_latest_delivery_in_ist() {
        // Latest delivery 12 Nov (IST) + 5 days = 17 Nov IST, which starts 16 Nov 18:30 UTC.
        let d = decide(&order(), &on(), None, datetime!(2026-11-14 00:00 UTC));
        assert_eq!(d.status, SolicitationStatus::Scheduled);
        assert_eq!(d.send_on, Some(date!(2026 - 11 - 17)));
        assert!(!d.due);
        assert!(!decide(&order(), &on(), None, datetime!(2026-11-16 18:29 UTC)).due);
        assert!(decide(&order(), &on(), None, datetime!(2026-11-16 18:30 UTC)).due);
    }

    #[test]
    fn never_before_amazons_window_opens() {
        let s = SolicitationSettings {
            send_on_day: 0,
            ..on()
        };
        let mut o = order();
        o.facts.earliest_delivery_date = Some(datetime!(2026-11-12 12:00 UTC));
        // Day 0 = 12 Nov, but the window opens 17 Nov 12:00 UTC.
        let d = decide(&o, &s, None, datetime!(2026-11-17 11:59 UTC));
        assert!(!d.due);
        assert_eq!(d.send_on, Some(date!(2026 - 11 - 17)));
        assert!(decide(&o, &s, None, datetime!(2026-11-17 12:00 UTC)).due);
    }

    #[test]
    fn expired_after_thirty_days_past_the_latest_delivery() {
        let d = decide(&order(), &on(), None, datetime!(2026-12-12 12:00 UTC));
        assert_eq!(d.status, SolicitationStatus::Scheduled);
        let d = decide(&order(), &on(), None, datetime!(2026-12-12 12:00:01 UTC));
        assert_eq!(d.status, SolicitationStatus::Expired);
    }

    #[test]
    fn rules_exclude_with_a_reason() {
        let now = datetime!(2026-11-20 00:00 UTC);
        let mut o = order();
        o.facts.status = OrderStatus::Canceled;
        assert_eq!(
            decide(&o, &on(), None, now).reason.as_deref(),
            Some("cancelled")
        );
        let mut o = order();
        o.facts.is_replacement_order = true;
        assert_eq!(
            decide(&o, &on(), None, now).reason.as_deref(),
            Some("replacement_order")
        );
        let mut o = order();
        o.marks.refunded_or_returned = true;
        assert_eq!(
            decide(&o, &on(), None, now).reason.as_deref(),
            Some("refunded_or_returned")
        );
        let mut o = order();
        o.marks.do_not_solicit = true;
        assert_eq!(
            decide(&o, &on(), None, now).reason.as_deref(),
            Some("order_do_not_solicit")
        );
        let mut o = order();
        let customer = CustomerId::generate();
        o.customer_ids.push(customer.clone());
        let mut s = on();
        s.do_not_solicit_customers.insert(customer);
        assert_eq!(
            decide(&o, &s, None, now).reason.as_deref(),
            Some("customer_do_not_solicit")
        );
        let mut o = order();
        o.items = Some(vec![OrderItem {
            order_item_id: "1".into(),
            asin: "B0TEST0001".into(),
            seller_sku: Some("SKU-1".into()),
            title: None,
            quantity: 1,
        }]);
        let mut s = on();
        s.excluded_asins.insert("B0TEST0001".into());
        assert_eq!(
            decide(&o, &s, None, now).reason.as_deref(),
            Some("asin:B0TEST0001")
        );
        let mut s = on();
        s.excluded_skus.insert("SKU-1".into());
        assert_eq!(
            decide(&o, &s, None, now).reason.as_deref(),
            Some("sku:SKU-1")
        );
        assert!(decide(&o, &on(), None, now).due);
    }

    #[test]
    fn off_until_turned_on_and_per_marketplace() {
        let now = datetime!(2026-11-20 00:00 UTC);
        let d = decide(&order(), &SolicitationSettings::default(), None, now);
        assert_eq!(
            (d.status, d.reason.as_deref()),
            (SolicitationStatus::Excluded, Some("requests_off"))
        );
        let mut s = on();
        s.marketplaces.insert(
            marketplace::INDIA.id.into(),
            MarketplaceSettings {
                enabled: true,
                send_on_day: Some(10),
            },
        );
        assert_eq!(
            decide(&order(), &s, None, now).send_on,
            Some(date!(2026 - 11 - 22))
        );
        s.marketplaces
            .get_mut(marketplace::INDIA.id)
            .unwrap()
            .enabled = false;
        assert_eq!(
            decide(&order(), &s, None, now).reason.as_deref(),
            Some("requests_off")
        );
    }

    #[test]
    fn unshipped_and_in_transit_orders_wait_for_delivery() {
        let mut o = order();
        o.facts.status = OrderStatus::Unshipped;
        let d = decide(&o, &on(), None, datetime!(2026-11-20 00:00 UTC));
        assert_eq!(d.status, SolicitationStatus::PendingDelivery);
        let d = decide(&order(), &on(), None, datetime!(2026-11-11 00:00 UTC));
        assert_eq!(
            (d.status, d.due),
            (SolicitationStatus::PendingDelivery, false)
        );
    }

    #[test]
    fn not_eligible_is_asked_again_on_a_later_day_and_final_states_stay() {
        let now = datetime!(2026-11-20 00:00 UTC);
        let today = marketplace::INDIA.local_date(now);
        let asked_today = Prior {
            status: SolicitationStatus::NotEligible,
            not_eligible_on: Some(today),
        };
        let d = decide(&order(), &on(), Some(&asked_today), now);
        assert_eq!((d.status, d.due), (SolicitationStatus::NotEligible, false));
        let asked_yesterday = Prior {
            not_eligible_on: today.previous_day(),
            ..asked_today
        };
        assert!(decide(&order(), &on(), Some(&asked_yesterday), now).due);
        for status in [SolicitationStatus::Sent, SolicitationStatus::Failed] {
            let d = decide(
                &order(),
                &on(),
                Some(&Prior {
                    status,
                    not_eligible_on: None,
                }),
                now,
            );
            assert_eq!((d.status, d.due), (status, false));
        }
    }

    #[test]
    fn the_sender_trusts_amazons_answer() {
        let w = Window {
            opens: datetime!(2026-11-15 00:00 UTC),
            closes: datetime!(2026-12-12 00:00 UTC),
        };
        let inside = datetime!(2026-11-20 00:00 UTC);
        let after = datetime!(2026-12-13 00:00 UTC);
        assert_eq!(after_check(true, false, Some(&w), inside), SenderStep::Send);
        assert_eq!(after_check(true, true, Some(&w), inside), SenderStep::Send);
        assert_eq!(
            after_check(false, true, Some(&w), inside),
            SenderStep::AssumeSent
        );
        assert_eq!(
            after_check(false, false, Some(&w), inside),
            SenderStep::NotEligibleToday
        );
        assert_eq!(
            after_check(false, false, Some(&w), after),
            SenderStep::Expired
        );
    }

    #[test]
    fn exclusion_lists_are_bounded() {
        let mut s = on();
        s.excluded_skus = (0..=MAX_EXCLUSIONS).map(|i| format!("SKU-{i}")).collect();
        assert_eq!(s.validate(), Err(SettingsError::TooManyExclusions));
        let mut s = on();
        s.excluded_asins.insert("B".repeat(65));
        assert_eq!(s.validate(), Err(SettingsError::TooManyExclusions));
    }

    #[test]
    fn settings_are_validated() {
        assert!(on().validate().is_ok());
        assert_eq!(
            SolicitationSettings {
                send_on_day: 31,
                ..on()
            }
            .validate(),
            Err(SettingsError::SendOnDay)
        );
        let mut s = on();
        s.marketplaces.insert(
            "XX".into(),
            MarketplaceSettings {
                enabled: true,
                send_on_day: None,
            },
        );
        assert!(matches!(s.validate(), Err(SettingsError::Marketplace(_))));
    }
}
