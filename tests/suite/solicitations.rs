//! Scheduled Amazon review requests (POLICY A7), end to end: the scheduler's statuses, the
//! sender's "once per order, ever" against every answer Amazon can give, the per-seller pace,
//! the merchant's settings and the dashboard, against the local stack and the Amazon sandbox.
//!
//! Most tests add orders of their own to the sandbox's demo seller with exact dates, so that
//! the expected day and status can be computed here, independently of the production rules.
//! Tests that must drive the functions by hand run with the pollers off, so nothing runs behind
//! their back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration as StdDuration;

use amazon_sandbox::{
    DEMO_SELLER_ID, Fault, FulfillmentChannel, INDIA_MARKETPLACE, Operation, OrderStatus,
    SandboxItem, SandboxOrder, SolicitationRequest,
};
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_aws::store::amazon::Solicitation;
use ecomdrive_core::amazon::AmazonOrderId;
use ecomdrive_core::amazon::jobs::{MerchantJob, SolicitationJob};
use ecomdrive_core::amazon::solicitation::SolicitationStatus;
use ecomdrive_core::ids::MerchantId;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use solicitation_sender::{SendError, SendOutcome};
use time::format_description::well_known::Rfc3339;
use time::macros::offset;
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

use crate::support::{self, Tenant, TestStack, eventually, queue_depth, stack, stack_with};

/// Amazon.in's calendar: the send day is counted in India's time.
const IST: UtcOffset = offset!(+5:30);

// ---- the oracle: Amazon's rules and the merchant's send day, computed here -------------------

fn ist(t: OffsetDateTime) -> Date {
    t.to_offset(IST).date()
}

fn ist_start(d: Date) -> OffsetDateTime {
    d.midnight().assume_offset(IST)
}

/// When the request for `o` falls due with send day `n`: the start of day `n` after the latest
/// promised delivery (IST), never before Amazon's window opens.
fn due_at(o: &SandboxOrder, n: i64) -> Option<OffsetDateTime> {
    let latest = o.latest_delivery_date.or(o.earliest_delivery_date)?;
    let (opens, _) = o.review_window()?;
    Some(ist_start(ist(latest) + Duration::days(n)).max(opens))
}

// ---- orders at the sandbox --------------------------------------------------------------------

fn order_id(n: u32) -> String {
    format!("171-{n:07}-{:07}", 7_000_000 + n)
}

fn oid(raw: &str) -> AmazonOrderId {
    AmazonOrderId::parse(raw).expect("an Amazon order id")
}

/// A shipped Amazon.in order with one line, promised for `earliest..=latest`, last updated a
/// few minutes ago (so the next order sync sees it).
fn shipped(id: &str, earliest: OffsetDateTime, latest: OffsetDateTime) -> SandboxOrder {
    SandboxOrder {
        order_id: id.to_owned(),
        purchase_date: earliest - Duration::days(3),
        last_update_date: Some(OffsetDateTime::now_utc() - Duration::minutes(3)),
        status: OrderStatus::Shipped,
        fulfillment_channel: FulfillmentChannel::Afn,
        marketplace_id: INDIA_MARKETPLACE.to_owned(),
        is_replacement_order: false,
        replaced_order_id: None,
        earliest_delivery_date: Some(earliest),
        latest_delivery_date: Some(latest),
        earliest_ship_date: Some(earliest - Duration::days(2)),
        latest_ship_date: Some(earliest - Duration::days(1)),
        order_total: Some(("INR".to_owned(), "799.00".to_owned())),
        items: vec![SandboxItem {
            order_item_id: format!("{}01", id.replace('-', "")),
            asin: "B0TESTASN1".to_owned(),
            seller_sku: "TEST-SKU-1".to_owned(),
            title: "Cotton Kurta, Test".to_owned(),
            quantity: 1,
            item_price: "799.00".to_owned(),
        }],
    }
}

/// Delivered 8 days ago: Amazon's window opened 3 days ago, the default send day (5) has passed.
fn due_now(id: &str, now: OffsetDateTime) -> SandboxOrder {
    shipped(id, now - Duration::days(9), now - Duration::days(8))
}

/// Adds the orders to the demo seller at Amazon and syncs them in with the real order sync.
async fn add_orders(s: &TestStack, job: &MerchantJob, orders: Vec<SandboxOrder>) {
    let ids: Vec<String> = orders.iter().map(|o| o.order_id.clone()).collect();
    for o in orders {
        s.stack.amazon.upsert_order(DEMO_SELLER_ID, o);
    }
    sync(s, job).await;
    for id in ids {
        let synced = s
            .stack
            .store
            .order(&job.merchant_id, &oid(&id))
            .await
            .expect("the store answers");
        assert!(synced.is_some(), "order {id} was synced from Amazon");
    }
}

async fn sync(s: &TestStack, job: &MerchantJob) {
    let outcome = s
        .stack
        .order_sync
        .sync(job, OffsetDateTime::now_utc())
        .await
        .expect("the order sync runs");
    assert!(
        matches!(outcome, order_sync::SyncOutcome::Synced { .. }),
        "{outcome:?}"
    );
}

// ---- merchants, settings, records ----------------------------------------------------------------

fn merchant_id(t: &Tenant) -> MerchantId {
    MerchantId::parse(&t.merchant_id).expect("a merchant id")
}

async fn merchant_job(s: &TestStack, t: &Tenant) -> MerchantJob {
    let m = merchant_id(t);
    let conn = s
        .stack
        .store
        .amazon_connection(&m)
        .await
        .expect("the store answers")
        .expect("the merchant is connected to Amazon");
    MerchantJob {
        merchant_id: m,
        connection_id: conn.connection_id,
    }
}

/// With the pollers off: a merchant connected to the demo seller, its first sync run by hand.
async fn seller_by_hand(s: &TestStack, email: &str) -> (Tenant, MerchantJob) {
    let t = s.merchant(email).await;
    let connected = s.connect_amazon(&t).await;
    assert_eq!(connected["connected"], true, "{connected}");
    let job = merchant_job(s, &t).await;
    sync(s, &job).await;
    (t, job)
}

fn settings_path(t: &Tenant) -> String {
    format!("/v1/merchants/{}/solicitations/settings", t.merchant_id)
}

async fn put_settings(s: &TestStack, token: &str, t: &Tenant, body: Value) -> (StatusCode, Value) {
    s.call(Method::PUT, Some(token), &settings_path(t), Some(body))
        .await
}

/// Turns requests on, with `extra` settings on top.
async fn turn_on(s: &TestStack, t: &Tenant, extra: Value) {
    let mut body = json!({"enabled": true});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, saved) = put_settings(s, &t.token, t, body).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["enabled"], true, "{saved}");
}

/// The order's review request as the merchant sees it (`GET /orders/{id}`).
async fn record(s: &TestStack, t: &Tenant, id: &str) -> Value {
    let (status, body) = s
        .get(
            &t.token,
            &format!("/v1/merchants/{}/orders/{id}", t.merchant_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["solicitation"].clone()
}

/// The record as stored (for what the API does not show: the attempt mark, the claim).
async fn stored(s: &TestStack, job: &MerchantJob, id: &str) -> Solicitation {
    s.stack
        .store
        .solicitation(&job.merchant_id, &oid(id))
        .await
        .expect("the store answers")
        .expect("the order has a request record")
}

fn list_path(t: &Tenant, query: &str) -> String {
    format!("/v1/merchants/{}/solicitations?{query}", t.merchant_id)
}

/// Every page of the per-order list with `query` (e.g. `limit=10&status=sent`).
async fn list_all(s: &TestStack, t: &Tenant, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let (status, body) = s.get(&t.token, &list_path(t, &q)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages.push(body["items"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 500, "the cursor never ends");
    }
}

async fn all_records(s: &TestStack, t: &Tenant) -> HashMap<String, Value> {
    list_all(s, t, "limit=100")
        .await
        .into_iter()
        .flatten()
        .map(|r| (r["order_id"].as_str().expect("order_id").to_owned(), r))
        .collect()
}

async fn summary(s: &TestStack, t: &Tenant, query: &str) -> (StatusCode, Value) {
    s.get(
        &t.token,
        &format!(
            "/v1/merchants/{}/solicitations/summary?{query}",
            t.merchant_id
        ),
    )
    .await
}

/// A summary's counts by (day, status), every item being Amazon.in's.
fn counted(body: &Value) -> BTreeMap<(String, String), u64> {
    let mut got = BTreeMap::new();
    for item in body["items"].as_array().expect("items") {
        assert_eq!(item["marketplace_id"], INDIA_MARKETPLACE, "{item}");
        let day = item["day"].as_str().expect("day");
        for (status, n) in item["counts"].as_object().expect("counts") {
            *got.entry((day.to_owned(), status.clone())).or_default() +=
                n.as_u64().expect("a count");
        }
    }
    got
}

fn status_reason(r: &Value) -> (Option<&str>, Option<&str>) {
    (r["status"].as_str(), r["reason"].as_str())
}

// ---- the functions, driven by hand ------------------------------------------------------------------

async fn plan(s: &TestStack, job: &MerchantJob, now: OffsetDateTime) {
    Box::pin(s.stack.scheduler.plan(job, now))
        .await
        .expect("planning runs");
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&support::sdk().await)
}

/// Takes every message off the solicitations queue (pollers off): what the scheduler queued.
async fn take_queued(s: &TestStack) -> Vec<SolicitationJob> {
    let sqs = sqs().await;
    let url = &s.stack.resources.solicitations_queue_url;
    let mut jobs = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(300)
            .send()
            .await
            .expect("the queue answers");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return jobs;
        }
        for m in messages {
            jobs.push(
                serde_json::from_str(m.body.as_deref().unwrap_or_default())
                    .expect("a solicitation job"),
            );
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("deleted");
        }
    }
}

async fn plan_and_take(
    s: &TestStack,
    job: &MerchantJob,
    now: OffsetDateTime,
) -> Vec<SolicitationJob> {
    plan(s, job, now).await;
    take_queued(s).await
}

fn queued_for(jobs: &[SolicitationJob], id: &str) -> Option<SolicitationJob> {
    jobs.iter().find(|j| j.order_id.as_str() == id).cloned()
}

fn queued_job(jobs: &[SolicitationJob], id: &str) -> SolicitationJob {
    queued_for(jobs, id).unwrap_or_else(|| panic!("the scheduler queued order {id}"))
}

async fn enqueue(s: &TestStack, job: &SolicitationJob) {
    sqs()
        .await
        .send_message()
        .queue_url(&s.stack.resources.solicitations_queue_url)
        .message_body(serde_json::to_string(job).expect("JSON"))
        .send()
        .await
        .expect("queued");
}

/// Runs the solicitations queue function by hand until its queue is empty.
async fn drain_by_hand(s: &TestStack) {
    eventually("the solicitations queue to be worked off", || async {
        let _ = s
            .stack
            .solicitations_poller
            .poll_once(StdDuration::ZERO)
            .await;
        (queue_depth(&s.stack.resources.solicitations_queue_url).await == 0).then_some(())
    })
    .await;
}

async fn send(
    s: &TestStack,
    job: &SolicitationJob,
    now: OffsetDateTime,
) -> Result<SendOutcome, SendError> {
    s.stack.sender.send(job, now).await
}

fn retry_later(r: &Result<SendOutcome, SendError>) -> bool {
    matches!(r, Err(SendError::RetryLater(_)))
}

/// Like `support::eventually`, with a longer limit (a run paced at one request a second).
async fn within<T, F, Fut>(what: &str, limit: StdDuration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
}

/// The daily schedule, now, through the local route; returns when every plan and every queued
/// request has been handled by the pollers.
async fn run_scheduler_until_done(s: &TestStack) -> Value {
    let (status, body) = s
        .call(
            Method::POST,
            None,
            "/_local/run/solicitation-scheduler",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &s.stack.resources;
    within(
        "the planning and the requests to be done",
        StdDuration::from_secs(300),
        || async {
            let plans = queue_depth(&r.solicitation_plan_queue_url).await;
            let sends = queue_depth(&r.solicitations_queue_url).await;
            (plans == 0 && sends == 0).then_some(())
        },
    )
    .await;
    body
}

// ---- the sandbox's records ----------------------------------------------------------------------

/// Every create request Amazon received, oldest first, from `GET /_local/amazon/solicitations`.
async fn amazon_creates(s: &TestStack) -> Vec<SolicitationRequest> {
    let (status, body) = s
        .call(Method::GET, None, "/_local/amazon/solicitations", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| SolicitationRequest {
            order_id: i["order_id"].as_str().expect("order_id").to_owned(),
            marketplace_id: i["marketplace_id"]
                .as_str()
                .expect("marketplace_id")
                .to_owned(),
            status: i["status"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .expect("status"),
            at: OffsetDateTime::parse(i["at"].as_str().expect("at"), &Rfc3339).expect("a time"),
        })
        .collect()
}

fn creates_for(s: &TestStack, id: &str) -> Vec<SolicitationRequest> {
    s.stack
        .amazon
        .solicitations()
        .into_iter()
        .filter(|r| r.order_id == id)
        .collect()
}

fn create_statuses(s: &TestStack, id: &str) -> Vec<u16> {
    creates_for(s, id).iter().map(|r| r.status).collect()
}

/// How often Amazon was asked `getSolicitationActionsForOrder` for the order.
fn action_checks(s: &TestStack, id: &str) -> usize {
    let path = format!("/solicitations/v1/orders/{id}");
    s.stack
        .amazon
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

/// No window of one second holds more than the burst (5), no window of N seconds more than
/// 5 + N: Amazon's usage plan for both Solicitations operations.
fn assert_paced(what: &str, times: &[OffsetDateTime]) {
    let mut times = times.to_vec();
    times.sort();
    for (i, start) in times.iter().enumerate() {
        for n in 1..=times.len() as i64 {
            let end = *start + Duration::seconds(n);
            let inside = times[i..].iter().take_while(|t| **t < end).count();
            let bound = if n == 1 { 5 } else { 5 + n as usize };
            assert!(
                inside <= bound,
                "{what}: {inside} calls within {n} s from {start} (at most {bound}): {times:?}"
            );
        }
    }
}

// ---- 1, 2: the whole run ------------------------------------------------------------------------------

/// The send day of the end-to-end run: late in Amazon's window, so that a few demo orders
/// (about five a day) are due and a paced run stays short.
const E2E_SEND_DAY: i64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_only_eligible_orders_are_requested_once_end_to_end() {
    let s = stack().await;
    let t = s.amazon_merchant("a7-e2e@acme.example").await;
    turn_on(&s, &t, json!({"send_on_day": E2E_SEND_DAY})).await;

    let before_run = OffsetDateTime::now_utc();
    let fanned = run_scheduler_until_done(&s).await;
    let after_run = OffsetDateTime::now_utc();
    assert_eq!(fanned["merchants"], 1, "{fanned}");

    let orders = s.stack.amazon.orders(DEMO_SELLER_ID);
    let by_id: HashMap<&str, &SandboxOrder> =
        orders.iter().map(|o| (o.order_id.as_str(), o)).collect();

    // What Amazon received, as the local route shows it: only eligible orders, never refused.
    let creates = amazon_creates(&s).await;
    assert!(
        !creates.is_empty(),
        "demo orders were due: some were requested"
    );
    let mut requested = BTreeSet::new();
    for c in &creates {
        assert_eq!(c.marketplace_id, INDIA_MARKETPLACE, "{c:?}");
        assert_ne!(
            c.status, 403,
            "Amazon never refused an ineligible request: {c:?}"
        );
        let o = by_id[c.order_id.as_str()];
        assert_eq!(o.status, OrderStatus::Shipped, "{o:?}");
        assert!(!o.is_replacement_order, "replacements are excluded: {o:?}");
        let (opens, closes) = o.review_window().expect("a shipped order has dates");
        assert!(
            opens <= c.at && c.at <= closes,
            "requested inside Amazon's window: {c:?} {o:?}"
        );
        assert!(
            c.at >= due_at(o, E2E_SEND_DAY).expect("dates"),
            "not before the merchant's send day: {c:?} {o:?}"
        );
        if c.status == 201 {
            assert!(
                requested.insert(c.order_id.clone()),
                "order {} was requested twice: {creates:?}",
                c.order_id
            );
        }
    }

    // What the merchant sees.
    let records = all_records(&s, &t).await;
    assert_eq!(
        records.len(),
        orders.len(),
        "every synced order has a request status"
    );
    let shown_sent: BTreeSet<String> = records
        .iter()
        .filter(|(_, r)| r["status"] == "sent")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        shown_sent, requested,
        "the orders shown as sent are exactly those Amazon got a request for"
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &orders {
        let r = &records[&o.order_id];
        let expect = |status: &str, reason: &str| {
            assert_eq!(
                status_reason(r),
                (Some(status), Some(reason)),
                "{o:?} → {r}"
            );
        };
        let case = match o.status {
            OrderStatus::Canceled => {
                expect("excluded", "cancelled");
                "cancelled"
            }
            OrderStatus::Shipped => {
                let (_, closes) = o.review_window().expect("dates");
                let due = due_at(o, E2E_SEND_DAY).expect("dates");
                let latest = o.latest_delivery_date.expect("dates");
                if o.is_replacement_order {
                    expect("excluded", "replacement_order");
                    "replacement"
                } else if closes < before_run {
                    expect("expired", "window_closed");
                    "expired"
                } else if latest > after_run {
                    expect("pending_delivery", "in_transit");
                    assert_eq!(r["day"], ist(due).to_string(), "{o:?} → {r}");
                    "in transit"
                } else if latest >= before_run {
                    "on a boundary during the run"
                } else if due > after_run {
                    expect("scheduled", "waiting_for_send_day");
                    assert_eq!(r["day"], ist(due).to_string(), "{o:?} → {r}");
                    "scheduled"
                } else if due < before_run && closes > after_run {
                    assert_eq!(
                        r["status"], "sent",
                        "a due order was requested: {o:?} → {r}"
                    );
                    assert!(r["sent_at"].is_string(), "{r}");
                    "sent"
                } else {
                    "on a boundary during the run"
                }
            }
            _ => {
                expect("pending_delivery", "not_shipped");
                "not shipped"
            }
        };
        *seen.entry(case).or_default() += 1;
    }
    for case in [
        "cancelled",
        "expired",
        "in transit",
        "scheduled",
        "sent",
        "not shipped",
    ] {
        assert!(
            seen.get(case).copied().unwrap_or(0) >= 1,
            "the demo data covers {case}: {seen:?}"
        );
    }

    // The next day's run (here: right away) asks for nothing already asked.
    let first_run = creates.len();
    run_scheduler_until_done(&s).await;
    let again = amazon_creates(&s).await;
    for c in &again[first_run..] {
        let o = by_id[c.order_id.as_str()];
        assert!(
            !requested.contains(&c.order_id)
                && due_at(o, E2E_SEND_DAY).expect("dates") > before_run,
            "the second run only requests orders that fell due since the first: {c:?}"
        );
    }

    // Each order once at Amazon, each request accepted: none throttled by Amazon's limiter.
    let refused: Vec<_> = again.iter().filter(|c| c.status != 201).collect();
    assert!(
        refused.is_empty(),
        "Amazon answered every request 201 (a 429 means our pace outran its limiter): {refused:?}"
    );
    let mut once = BTreeSet::new();
    let repeated: Vec<_> = again
        .iter()
        .filter(|c| !once.insert(c.order_id.clone()))
        .collect();
    assert!(
        repeated.is_empty(),
        "an order appears more than once at Amazon: {repeated:?} in {again:?}"
    );
    assert_eq!(
        queue_depth(&s.stack.resources.solicitations_dlq_url).await,
        0,
        "no request job was given up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_requests_are_off_until_the_merchant_turns_them_on() {
    let s = stack().await;
    let t = s.amazon_merchant("a7-off@acme.example").await;
    let (status, settings) = s.get(&t.token, &settings_path(&t)).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["enabled"], false, "{settings}");
    assert_eq!(settings["send_on_day"], 5, "{settings}");
    assert_eq!(settings["exclude_replacement_orders"], true, "{settings}");
    assert_eq!(settings["exclude_refunded_or_returned"], true, "{settings}");

    let before_run = OffsetDateTime::now_utc();
    run_scheduler_until_done(&s).await;

    assert!(
        s.stack.amazon.solicitations().is_empty(),
        "no request while requests are off"
    );
    assert!(
        !s.stack
            .amazon
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/solicitations/")),
        "the Solicitations API is not even asked"
    );
    let records = all_records(&s, &t).await;
    let mut off = 0;
    for o in s.stack.amazon.orders(DEMO_SELLER_ID) {
        let open = o
            .review_window()
            .is_some_and(|(_, closes)| closes > before_run + Duration::minutes(5));
        if o.status == OrderStatus::Shipped && !o.is_replacement_order && open {
            let r = &records[&o.order_id];
            assert_eq!(
                status_reason(r),
                (Some("excluded"), Some("requests_off")),
                "{o:?} → {r}"
            );
            off += 1;
        }
    }
    assert!(off > 50, "most demo orders are shown as off: {off}");
}

// ---- 3: settings -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_round_trip_are_validated_and_only_managers_change_them() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant("settings@acme.example").await;
    let wanted = json!({
        "enabled": true,
        "send_on_day": 7,
        "exclude_refunded_or_returned": false,
        "exclude_replacement_orders": false,
        "excluded_skus": ["KURTA-BLU-M"],
        "excluded_asins": ["B0SBXCHAI5"],
        "do_not_solicit_customers": [],
        "marketplaces": {"A21TJRUUN4KGV": {"enabled": true, "send_on_day": 9}},
    });
    let (status, saved) = put_settings(&s, &t.token, &t, wanted.clone()).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved, wanted);
    let (status, read) = s.get(&t.token, &settings_path(&t)).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, wanted, "GET gives back what PUT saved");

    let mut refused = Vec::new();
    for bad in [
        json!({"enabled": true, "send_on_day": 31}),
        json!({"enabled": true, "marketplaces": {"A21TJRUUN4KGV": {"enabled": true, "send_on_day": 31}}}),
        json!({"enabled": true, "marketplaces": {"XXUNKNOWNXX": {"enabled": true, "send_on_day": 5}}}),
        // More exclusions than one settings record holds, and an absurdly long SKU.
        json!({"enabled": true, "excluded_skus": (0..=1000).map(|i| format!("SKU-{i}")).collect::<Vec<_>>()}),
        json!({"enabled": true, "excluded_asins": ["B".repeat(65)]}),
    ] {
        let (status, body) = put_settings(&s, &t.token, &t, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad} → {body}");
        refused.push(body);
    }
    let (_, read) = s.get(&t.token, &settings_path(&t)).await;
    assert_eq!(read, wanted, "refused settings change nothing: {refused:?}");

    // An agent works conversations; the review-request settings are the owner's and admins'.
    let agent_email = "agent@acme.example";
    let (status, body) = s.invite(&t, agent_email, "agent").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let agent = s.token(agent_email);
    let (status, me) = s.get(&agent, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, body) = put_settings(&s, &agent, &t, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, read) = s.get(&t.token, &settings_path(&t)).await;
    assert_eq!(read, wanted, "the agent's PUT changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_day_is_counted_in_india_after_the_latest_delivery() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "send-day@acme.example").await;
    let now = OffsetDateTime::now_utc();
    // Latest delivery at 20:00 UTC, which is 01:30 the next day in India: a UTC calendar would
    // be one day early.
    let latest = (now - Duration::days(2)).replace_time(Time::from_hms(20, 0, 0).expect("time"));
    let id = order_id(1);
    add_orders(
        &s,
        &job,
        vec![shipped(&id, latest - Duration::days(1), latest)],
    )
    .await;
    let day = |n: i64| (ist(latest) + Duration::days(n)).to_string();

    turn_on(&s, &t, json!({})).await;
    plan(&s, &job, now).await;
    let r = record(&s, &t, &id).await;
    assert_eq!(
        status_reason(&r),
        (Some("scheduled"), Some("waiting_for_send_day")),
        "{r}"
    );
    assert_eq!(r["day"], day(5), "day 5 by default: {r}");

    turn_on(&s, &t, json!({"send_on_day": 10})).await;
    plan(&s, &job, now).await;
    assert_eq!(record(&s, &t, &id).await["day"], day(10));

    // A marketplace of its own wins over the merchant-wide day; switched off, nothing goes.
    turn_on(
        &s,
        &t,
        json!({"send_on_day": 10, "marketplaces": {INDIA_MARKETPLACE: {"enabled": true, "send_on_day": 12}}}),
    )
    .await;
    plan(&s, &job, now).await;
    assert_eq!(record(&s, &t, &id).await["day"], day(12));
    turn_on(
        &s,
        &t,
        json!({"marketplaces": {INDIA_MARKETPLACE: {"enabled": false, "send_on_day": null}}}),
    )
    .await;
    plan(&s, &job, now).await;
    let r = record(&s, &t, &id).await;
    assert_eq!(
        status_reason(&r),
        (Some("excluded"), Some("requests_off")),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchants_exclusions_keep_orders_from_being_requested() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "exclusions@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let [by_sku, by_asin, replacement, marked, refunded, plain] = [1, 2, 3, 4, 5, 6].map(order_id);
    let mut sku_order = due_now(&by_sku, now);
    sku_order.items[0].seller_sku = "NEVER-ASK-SKU".into();
    let mut asin_order = due_now(&by_asin, now);
    asin_order.items[0].asin = "B0NEVERASK".into();
    let mut replacement_order = due_now(&replacement, now);
    replacement_order.is_replacement_order = true;
    replacement_order.replaced_order_id = Some(plain.clone());
    add_orders(
        &s,
        &job,
        vec![
            sku_order,
            asin_order,
            replacement_order,
            due_now(&marked, now),
            due_now(&refunded, now),
            due_now(&plain, now),
        ],
    )
    .await;
    for (id, mark) in [
        (&marked, "do_not_solicit"),
        (&refunded, "refunded_or_returned"),
    ] {
        let (status, body) = s
            .call(
                Method::PATCH,
                Some(&t.token),
                &format!("/v1/merchants/{}/orders/{id}", t.merchant_id),
                Some(json!({ mark: true })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body[mark], true, "{body}");
    }
    turn_on(
        &s,
        &t,
        json!({"excluded_skus": ["NEVER-ASK-SKU"], "excluded_asins": ["B0NEVERASK"]}),
    )
    .await;

    let jobs = plan_and_take(&s, &job, now).await;
    for (id, reason) in [
        (&replacement, "replacement_order"),
        (&marked, "order_do_not_solicit"),
        (&refunded, "refunded_or_returned"),
    ] {
        assert!(queued_for(&jobs, id).is_none(), "{id} is not queued");
        let r = record(&s, &t, id).await;
        assert_eq!(status_reason(&r), (Some("excluded"), Some(reason)), "{r}");
    }
    // SKU and ASIN rules need the items, which the sender fetches before asking Amazon.
    for (id, reason) in [
        (&by_sku, "sku:NEVER-ASK-SKU"),
        (&by_asin, "asin:B0NEVERASK"),
    ] {
        let outcome = send(&s, &queued_job(&jobs, id), now).await;
        assert!(
            matches!(
                outcome,
                Ok(SendOutcome::NotDue(SolicitationStatus::Excluded))
            ),
            "{outcome:?}"
        );
        let r = record(&s, &t, id).await;
        assert_eq!(status_reason(&r), (Some("excluded"), Some(reason)), "{r}");
        assert_eq!(action_checks(&s, id), 0, "Amazon is not asked about {id}");
    }
    let outcome = send(&s, &queued_job(&jobs, &plain), now).await;
    assert!(matches!(outcome, Ok(SendOutcome::Sent)), "{outcome:?}");
    let asked: BTreeSet<String> = s
        .stack
        .amazon
        .solicitations()
        .into_iter()
        .map(|r| r.order_id)
        .collect();
    assert_eq!(asked, BTreeSet::from([plain.clone()]));

    // Rules are rechecked every day: the next plan keeps the SKU/ASIN orders out on its own.
    let jobs = plan_and_take(&s, &job, now).await;
    for id in [&by_sku, &by_asin] {
        assert!(queued_for(&jobs, id).is_none(), "{id} stays excluded");
    }

    // Replacements and refunded orders are the merchant's choice; the order's own mark stays.
    turn_on(
        &s,
        &t,
        json!({
            "exclude_replacement_orders": false,
            "exclude_refunded_or_returned": false,
            "excluded_skus": ["NEVER-ASK-SKU"],
            "excluded_asins": ["B0NEVERASK"],
        }),
    )
    .await;
    let jobs = plan_and_take(&s, &job, now).await;
    assert!(queued_for(&jobs, &marked).is_none());
    for id in [&replacement, &refunded] {
        let outcome = send(&s, &queued_job(&jobs, id), now).await;
        assert!(
            matches!(outcome, Ok(SendOutcome::Sent)),
            "{id}: {outcome:?}"
        );
    }
    let r = record(&s, &t, &marked).await;
    assert_eq!(
        status_reason(&r),
        (Some("excluded"), Some("order_do_not_solicit")),
        "{r}"
    );
    assert!(creates_for(&s, &marked).is_empty());
}

// ---- 4: exactly once ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_a_job_delivered_twice_requests_once() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "twice@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let (first, second) = (order_id(1), order_id(2));
    add_orders(&s, &job, vec![due_now(&first, now), due_now(&second, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let jobs = plan_and_take(&s, &job, now).await;

    // The same message, one delivery after the other.
    let j = queued_job(&jobs, &first);
    let once = send(&s, &j, now).await;
    assert!(matches!(once, Ok(SendOutcome::Sent)), "{once:?}");
    let twice = send(&s, &j, now).await;
    assert!(matches!(twice, Ok(SendOutcome::AlreadyDone)), "{twice:?}");
    assert_eq!(create_statuses(&s, &first), vec![201]);
    let r = record(&s, &t, &first).await;
    assert_eq!(r["status"], "sent", "{r}");
    assert!(r["sent_at"].is_string(), "{r}");
    assert_eq!(r["day"], ist(now).to_string(), "{r}");

    // The same message twice on the queue, handled by the queue function in one batch.
    let j = queued_job(&jobs, &second);
    enqueue(&s, &j).await;
    enqueue(&s, &j).await;
    drain_by_hand(&s).await;
    assert_eq!(create_statuses(&s, &second), vec![201]);
    assert_eq!(record(&s, &t, &second).await["status"], "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_two_senders_at_once_request_once() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "race@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);

    let other = s.stack.sender.clone();
    let (a, b) = tokio::join!(send(&s, &j, now), other.send(&j, now));
    let outcomes = [a, b];
    let sent = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(SendOutcome::Sent)))
        .count();
    assert_eq!(sent, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(
            |o| matches!(o, Ok(SendOutcome::Sent | SendOutcome::AlreadyDone)) || retry_later(o)
        ),
        "the loser stands back: {outcomes:?}"
    );
    assert_eq!(create_statuses(&s, &id), vec![201]);
    assert_eq!(record(&s, &t, &id).await["status"], "sent");
    // Whatever the loser's message does next, it asks for nothing.
    let late = send(&s, &j, now).await;
    assert!(matches!(late, Ok(SendOutcome::AlreadyDone)), "{late:?}");
    assert_eq!(create_statuses(&s, &id), vec![201]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_an_answer_lost_after_amazon_sent_is_never_sent_again() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "lost@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);

    // Amazon sends the request, and its 201 is lost on the way back (a crash, a timeout).
    s.stack.amazon.fail_next(
        Operation::CreateSolicitation,
        Fault::ProcessThenFail(500),
        1,
    );
    let first = send(&s, &j, now).await;
    assert!(retry_later(&first), "the queue tries again: {first:?}");
    assert!(s.stack.amazon.is_solicited(DEMO_SELLER_ID, &id));
    let kept = stored(&s, &job, &id).await;
    assert!(
        kept.unanswered_attempt,
        "the attempt is remembered: {kept:?}"
    );
    assert_eq!(kept.status, SolicitationStatus::Scheduled, "{kept:?}");
    assert_eq!(kept.claim_token, None, "the claim is let go: {kept:?}");

    // The next day's plan still has it due; the sender asks Amazon before doing anything.
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);
    let second = send(&s, &j, now).await;
    assert!(matches!(second, Ok(SendOutcome::AssumedSent)), "{second:?}");
    assert_eq!(
        create_statuses(&s, &id),
        vec![500],
        "exactly one create reached Amazon"
    );
    let r = record(&s, &t, &id).await;
    assert_eq!(r["status"], "sent", "{r}");
    assert!(!stored(&s, &job, &id).await.unanswered_attempt);
    let third = send(&s, &j, now).await;
    assert!(matches!(third, Ok(SendOutcome::AlreadyDone)), "{third:?}");
    assert!(queued_for(&plan_and_take(&s, &job, now).await, &id).is_none());
    assert_eq!(create_statuses(&s, &id), vec![500]);
}

/// The sender settles an unanswered attempt with Amazon "whatever the rules say now"; the
/// daily plan that runs before the queue's retry must not bury it under a rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_a_lost_answer_is_settled_even_when_the_rules_changed_meanwhile() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "lost-then-marked@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);
    s.stack.amazon.fail_next(
        Operation::CreateSolicitation,
        Fault::ProcessThenFail(500),
        1,
    );
    let first = send(&s, &j, now).await;
    assert!(retry_later(&first), "{first:?}");
    assert!(s.stack.amazon.is_solicited(DEMO_SELLER_ID, &id));

    // Meanwhile the merchant marks the order, and the next day's plan runs before the retry.
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &format!("/v1/merchants/{}/orders/{id}", t.merchant_id),
            Some(json!({"do_not_solicit": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tomorrow = now + Duration::days(1);
    plan(&s, &job, tomorrow).await;
    let retry = send(&s, &j, tomorrow).await;
    assert!(retry.is_ok(), "{retry:?}");

    assert_eq!(create_statuses(&s, &id), vec![500], "never sent twice");
    let r = record(&s, &t, &id).await;
    assert_eq!(
        r["status"], "sent",
        "the buyer was asked before the mark: the record says so ({retry:?}): {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_an_unanswered_attempt_that_never_reached_amazon_is_not_sent_once_excluded() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "unanswered-then-marked@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);
    // Amazon answers 500 without acting: our side cannot tell, the attempt stays unanswered.
    s.stack
        .amazon
        .fail_next(Operation::CreateSolicitation, Fault::Status(500), 1);
    let first = send(&s, &j, now).await;
    assert!(retry_later(&first), "{first:?}");
    assert!(!s.stack.amazon.is_solicited(DEMO_SELLER_ID, &id));

    // The merchant marks the order before the retry: it must not go out any more.
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &format!("/v1/merchants/{}/orders/{id}", t.merchant_id),
            Some(json!({"do_not_solicit": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let retry = send(&s, &j, now).await;
    assert!(retry.is_ok(), "{retry:?}");

    assert_eq!(
        create_statuses(&s, &id),
        vec![500],
        "no request after the mark"
    );
    assert!(!s.stack.amazon.is_solicited(DEMO_SELLER_ID, &id));
    let r = record(&s, &t, &id).await;
    assert_eq!(r["status"], "excluded", "{r}");
    assert_eq!(r["reason"], "order_do_not_solicit", "{r}");
}

// ---- 5: disconnect -------------------------------------------------------------------------------

fn holds_text(v: &AttributeValue, text: &str) -> bool {
    match v {
        AttributeValue::S(s) => s.contains(text),
        AttributeValue::L(l) => l.iter().any(|v| holds_text(v, text)),
        AttributeValue::M(m) => m.values().any(|v| holds_text(v, text)),
        AttributeValue::Ss(l) => l.iter().any(|s| s.contains(text)),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_a11_disconnecting_mid_run_stops_every_request_and_deletes_the_token() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "disconnect@acme.example").await;
    let now = OffsetDateTime::now_utc();
    add_orders(
        &s,
        &job,
        (1..=3).map(|n| due_now(&order_id(n), now)).collect(),
    )
    .await;
    turn_on(&s, &t, json!({})).await;
    plan(&s, &job, now).await;
    let queued = queue_depth(&s.stack.resources.solicitations_queue_url).await;
    assert!(queued >= 3, "due orders were queued: {queued}");

    // The sender handles one message...
    let sqs = sqs().await;
    let url = &s.stack.resources.solicitations_queue_url;
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(1)
        .send()
        .await
        .expect("the queue answers");
    let message = out.messages.unwrap_or_default().remove(0);
    let first: SolicitationJob =
        serde_json::from_str(message.body.as_deref().unwrap_or_default()).expect("a job");
    let outcome = send(&s, &first, now).await;
    assert!(matches!(outcome, Ok(SendOutcome::Sent)), "{outcome:?}");
    sqs.delete_message()
        .queue_url(url)
        .receipt_handle(message.receipt_handle.unwrap_or_default())
        .send()
        .await
        .expect("deleted");
    assert_eq!(s.stack.amazon.solicitations().len(), 1);

    let conn = s
        .stack
        .store
        .amazon_connection(&job.merchant_id)
        .await
        .expect("the store answers")
        .expect("connected");
    let ciphertext = conn.refresh_token_ciphertext;
    let items = support::scan_table(&s.stack.resources.table).await;
    assert_eq!(
        items
            .iter()
            .filter(|i| i.contains_key("refresh_token_ciphertext"))
            .count(),
        1,
        "the scan sees the stored token while connected"
    );

    // ...then the merchant disconnects, with the rest of the run still queued.
    let (status, body) = s
        .call(
            Method::DELETE,
            Some(&t.token),
            &format!("/v1/merchants/{}/integrations/amazon", t.merchant_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connected"], false, "{body}");
    let asked_before = s.stack.amazon.requests().len();
    drain_by_hand(&s).await;

    assert_eq!(
        s.stack.amazon.solicitations().len(),
        1,
        "no request after the disconnect"
    );
    assert_eq!(
        s.stack.amazon.requests().len(),
        asked_before,
        "nothing at all was asked of Amazon for a disconnected merchant"
    );
    for n in 1..=3 {
        let id = order_id(n);
        if id != first.order_id.as_str() {
            assert!(creates_for(&s, &id).is_empty(), "{id}");
        }
    }
    let items = support::scan_table(&s.stack.resources.table).await;
    assert!(
        !items
            .iter()
            .any(|i| i.contains_key("refresh_token_ciphertext")
                || i.values().any(|v| holds_text(v, &ciphertext))),
        "the token is gone from the table"
    );
    let (status, body) = s
        .call(
            Method::POST,
            None,
            "/_local/run/solicitation-scheduler",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["merchants"], 0,
        "the daily run no longer plans for the merchant"
    );
}

// ---- 6: Amazon's answers --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_throttled_requests_are_sent_once_later() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "throttled@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let (once, long) = (order_id(1), order_id(2));
    add_orders(&s, &job, vec![due_now(&once, now), due_now(&long, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let jobs = plan_and_take(&s, &job, now).await;

    // One 429: Amazon did not process it, the client waits its share of the rate and sends again.
    s.stack
        .amazon
        .fail_next(Operation::CreateSolicitation, Fault::Status(429), 1);
    let outcome = send(&s, &queued_job(&jobs, &once), now).await;
    assert!(matches!(outcome, Ok(SendOutcome::Sent)), "{outcome:?}");
    assert_eq!(create_statuses(&s, &once), vec![429, 201]);

    // Throttled for longer than one attempt waits: the queue brings the job back later.
    s.stack
        .amazon
        .fail_next(Operation::CreateSolicitation, Fault::Status(429), 3);
    enqueue(&s, &queued_job(&jobs, &long)).await;
    drain_by_hand(&s).await;
    assert_eq!(create_statuses(&s, &long), vec![429, 429, 429, 201]);
    let r = record(&s, &t, &long).await;
    assert_eq!(r["status"], "sent", "{r}");
    assert!(s.stack.amazon.is_solicited(DEMO_SELLER_ID, &long));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_amazon_unavailable_when_checking_means_try_later_and_nothing_sent() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "unavailable@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);

    // Every attempt of the check fails (the client retries a GET itself).
    s.stack
        .amazon
        .fail_next(Operation::GetSolicitationActions, Fault::Status(503), 3);
    let outcome = send(&s, &j, now).await;
    assert!(retry_later(&outcome), "{outcome:?}");
    assert!(creates_for(&s, &id).is_empty(), "nothing sent unchecked");
    let kept = stored(&s, &job, &id).await;
    assert_eq!(kept.status, SolicitationStatus::Scheduled, "{kept:?}");
    assert!(!kept.unanswered_attempt, "no attempt was made: {kept:?}");
    assert_eq!(kept.claim_token, None, "{kept:?}");

    let outcome = send(&s, &j, now).await;
    assert!(matches!(outcome, Ok(SendOutcome::Sent)), "{outcome:?}");
    assert_eq!(create_statuses(&s, &id), vec![201]);
    assert_eq!(record(&s, &t, &id).await["status"], "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_not_offered_today_is_asked_again_on_a_later_day() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "not-yet@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let today = ist(now);
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);

    // Amazon's clock says the window has not opened: it does not offer the request.
    s.stack.amazon.set_now(now - Duration::days(10));
    let outcome = send(&s, &j, now).await;
    assert!(
        matches!(outcome, Ok(SendOutcome::NotEligibleToday)),
        "{outcome:?}"
    );
    assert!(creates_for(&s, &id).is_empty(), "not offered, not sent");
    let r = record(&s, &t, &id).await;
    assert_eq!(r["status"], "not_eligible", "{r}");
    assert_eq!(r["day"], (today + Duration::days(1)).to_string(), "{r}");
    assert_eq!(stored(&s, &job, &id).await.not_eligible_on, Some(today));

    // Not asked again the same day: not planned, and a late message does not ask Amazon.
    let checks = action_checks(&s, &id);
    assert!(queued_for(&plan_and_take(&s, &job, now).await, &id).is_none());
    let late = send(&s, &j, now).await;
    assert!(
        matches!(
            late,
            Ok(SendOutcome::NotDue(SolicitationStatus::NotEligible))
        ),
        "{late:?}"
    );
    assert_eq!(
        action_checks(&s, &id),
        checks,
        "Amazon is not asked twice a day"
    );
    assert_eq!(record(&s, &t, &id).await["status"], "not_eligible");

    // The next day Amazon offers it: it is sent.
    s.stack.amazon.set_now(OffsetDateTime::now_utc());
    let tomorrow = now + Duration::days(1);
    let j = queued_job(&plan_and_take(&s, &job, tomorrow).await, &id);
    assert_eq!(j.planned_on, today + Duration::days(1));
    let outcome = send(&s, &j, tomorrow).await;
    assert!(matches!(outcome, Ok(SendOutcome::Sent)), "{outcome:?}");
    assert_eq!(create_statuses(&s, &id), vec![201]);
    assert_eq!(record(&s, &t, &id).await["status"], "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_amazon_refusing_the_request_means_not_today() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "refused@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);

    s.stack
        .amazon
        .fail_next(Operation::CreateSolicitation, Fault::Status(403), 1);
    let outcome = send(&s, &j, now).await;
    assert!(
        matches!(outcome, Ok(SendOutcome::NotEligibleToday)),
        "{outcome:?}"
    );
    assert_eq!(create_statuses(&s, &id), vec![403]);
    let r = record(&s, &t, &id).await;
    assert_eq!(r["status"], "not_eligible", "{r}");
    assert!(queued_for(&plan_and_take(&s, &job, now).await, &id).is_none());

    let tomorrow = now + Duration::days(1);
    let j = queued_job(&plan_and_take(&s, &job, tomorrow).await, &id);
    let outcome = send(&s, &j, tomorrow).await;
    assert!(matches!(outcome, Ok(SendOutcome::Sent)), "{outcome:?}");
    assert_eq!(create_statuses(&s, &id), vec![403, 201]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_past_amazons_window_an_order_expires_unasked() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "expired@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let (closed, closing) = (order_id(1), order_id(2));
    add_orders(
        &s,
        &job,
        vec![
            shipped(&closed, now - Duration::days(41), now - Duration::days(40)),
            due_now(&closing, now),
        ],
    )
    .await;
    turn_on(&s, &t, json!({})).await;
    let jobs = plan_and_take(&s, &job, now).await;
    assert!(queued_for(&jobs, &closed).is_none());
    let r = record(&s, &t, &closed).await;
    assert_eq!(
        status_reason(&r),
        (Some("expired"), Some("window_closed")),
        "{r}"
    );

    // A job that waits past the window's end asks nothing.
    let j = queued_job(&jobs, &closing);
    let late = now + Duration::days(31);
    let outcome = send(&s, &j, late).await;
    assert!(
        matches!(
            outcome,
            Ok(SendOutcome::NotDue(SolicitationStatus::Expired))
        ),
        "{outcome:?}"
    );
    let r = record(&s, &t, &closing).await;
    assert_eq!(
        status_reason(&r),
        (Some("expired"), Some("window_closed")),
        "{r}"
    );
    for id in [&closed, &closing] {
        assert!(creates_for(&s, id).is_empty(), "{id}");
        assert_eq!(action_checks(&s, id), 0, "{id}");
    }
}

// ---- 7: pacing -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a7_requests_are_paced_per_seller_as_amazon_allows() {
    let s = stack_with(|o| {
        o.run_pollers = false;
        o.sender.max_pace_wait = StdDuration::from_secs(60);
    })
    .await;
    let (t, job) = seller_by_hand(&s, "paced@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let ids: Vec<String> = (1..=12).map(order_id).collect();
    add_orders(&s, &job, ids.iter().map(|id| due_now(id, now)).collect()).await;
    turn_on(&s, &t, json!({})).await;
    let jobs = plan_and_take(&s, &job, now).await;

    // Twelve senders at once, as twelve Lambda instances would run.
    let mut running = tokio::task::JoinSet::new();
    for id in &ids {
        let sender = s.stack.sender.clone();
        let j = queued_job(&jobs, id);
        running.spawn(async move { sender.send(&j, now).await });
    }
    let outcomes = running.join_all().await;

    // What Amazon saw, every attempt included: never more than its plan allows.
    let creates = s.stack.amazon.solicitations();
    let create_times: Vec<OffsetDateTime> = creates.iter().map(|c| c.at).collect();
    assert_paced(
        "createProductReviewAndSellerFeedbackSolicitation",
        &create_times,
    );
    let checks: Vec<OffsetDateTime> = s
        .stack
        .amazon
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/solicitations/v1/orders/"))
        .map(|r| r.at)
        .collect();
    assert!(checks.len() >= 12, "{checks:?}");
    assert_paced("getSolicitationActionsForOrder", &checks);

    // Every order was requested, once.
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(SendOutcome::Sent))),
        "{outcomes:?}"
    );
    for id in &ids {
        assert_eq!(
            creates_for(&s, id)
                .iter()
                .filter(|c| c.status == 201)
                .count(),
            1,
            "{id}: {creates:?}"
        );
    }

    // And Amazon's own limiter (the same 1 request/s, burst 5) never had to refuse one.
    let throttled: Vec<_> = s
        .stack
        .amazon
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/solicitations/") && r.status == 429)
        .collect();
    assert!(
        throttled.is_empty(),
        "the seller's pace outran Amazon's limiter: {throttled:?} (all creates: {creates:?})"
    );
}

// ---- 8: dashboard -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_counts_per_day_and_status_add_up_and_the_list_pages() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "dashboard@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let id = order_id(1);
    add_orders(&s, &job, vec![due_now(&id, now)]).await;
    turn_on(&s, &t, json!({})).await;
    let j = queued_job(&plan_and_take(&s, &job, now).await, &id);
    let sent = send(&s, &j, now).await;
    assert!(matches!(sent, Ok(SendOutcome::Sent)), "{sent:?}");

    let records = all_records(&s, &t).await;
    assert_eq!(records.len(), s.stack.amazon.orders(DEMO_SELLER_ID).len());
    let expected = |from: Date, to: Date| {
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for r in records.values() {
            let day = r["day"].as_str().expect("every record has a day");
            let d = Date::parse(
                day,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .expect("a date");
            if (from..=to).contains(&d) {
                *counts
                    .entry((
                        day.to_owned(),
                        r["status"].as_str().expect("status").to_owned(),
                    ))
                    .or_default() += 1;
            }
        }
        counts
    };
    let today = ist(now);
    for (from, to) in [
        (today - Duration::days(70), today + Duration::days(40)),
        (today, today),
        (today - Duration::days(3), today + Duration::days(3)),
    ] {
        let (status, body) = summary(&s, &t, &format!("from={from}&to={to}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(counted(&body), expected(from, to), "{from}..{to}: {body}");
    }
    let all: u64 = expected(today - Duration::days(70), today + Duration::days(40))
        .values()
        .sum();
    assert_eq!(
        all as usize,
        records.len(),
        "every record falls in the wide period"
    );
    assert!(
        expected(today, today).contains_key(&(today.to_string(), "sent".to_owned())),
        "today's request is counted today"
    );

    // Without a period: the 30 days either side of today (India's calendar).
    for (query, from, to) in [
        (
            String::new(),
            today - Duration::days(30),
            today + Duration::days(30),
        ),
        (format!("from={today}"), today, today + Duration::days(30)),
        (format!("to={today}"), today - Duration::days(30), today),
    ] {
        let (status, body) = summary(&s, &t, &query).await;
        assert_eq!(status, StatusCode::OK, "{query} → {body}");
        assert_eq!(counted(&body), expected(from, to), "{query} → {body}");
    }

    for bad in [
        format!("from={}&to={}", today, today - Duration::days(1)),
        format!("from=2026-13-01&to={today}"),
        format!("from={today}&to=tomorrow"),
        format!("from={}&to={today}", today - Duration::days(800)),
    ] {
        let (status, body) = summary(&s, &t, &bad).await;
        assert!(status.is_client_error(), "{bad} → {status} {body}");
    }

    // The per-order list: pages of at most 10, every record once.
    let pages = list_all(&s, &t, "limit=10").await;
    assert!(pages.len() >= records.len() / 10, "{}", pages.len());
    let mut ids = BTreeSet::new();
    for page in &pages {
        assert!(page.len() <= 10, "{}", page.len());
        for r in page {
            assert!(
                ids.insert(r["order_id"].as_str().expect("id").to_owned()),
                "listed twice: {r}"
            );
        }
    }
    let all_ids: BTreeSet<String> = records.keys().cloned().collect();
    assert_eq!(ids, all_ids);
    for status in ["expired", "sent", "excluded", "scheduled"] {
        let want: BTreeSet<String> = records
            .iter()
            .filter(|(_, r)| r["status"] == status)
            .map(|(id, _)| id.clone())
            .collect();
        assert!(!want.is_empty(), "the demo data has {status} orders");
        let mut got = BTreeSet::new();
        for page in list_all(&s, &t, &format!("limit=10&status={status}")).await {
            assert!(page.len() <= 10);
            for r in page {
                assert_eq!(r["status"], status, "{r}");
                got.insert(r["order_id"].as_str().expect("id").to_owned());
            }
        }
        assert_eq!(got, want, "status={status}");
    }
    for bad in ["status=delivered", "status=", "limit=0", "limit=abc"] {
        let (status, body) = s.get(&t.token, &list_path(&t, bad)).await;
        assert!(status.is_client_error(), "{bad} → {status} {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_history_stays_on_the_day_it_happened() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let (t, job) = seller_by_hand(&s, "history@acme.example").await;
    let now = OffsetDateTime::now_utc();
    let (expired, cancelled) = (order_id(1), order_id(2));
    let mut cancelled_order = shipped(&cancelled, now - Duration::days(6), now - Duration::days(5));
    cancelled_order.status = OrderStatus::Canceled;
    cancelled_order.earliest_delivery_date = None;
    cancelled_order.latest_delivery_date = None;
    add_orders(
        &s,
        &job,
        vec![
            shipped(&expired, now - Duration::days(41), now - Duration::days(40)),
            cancelled_order,
        ],
    )
    .await;
    turn_on(&s, &t, json!({})).await;
    plan(&s, &job, now).await;
    let first = [
        record(&s, &t, &expired).await,
        record(&s, &t, &cancelled).await,
    ];
    assert_eq!(first[0]["status"], "expired", "{}", first[0]);
    assert_eq!(first[1]["status"], "excluded", "{}", first[1]);
    for r in &first {
        assert_eq!(r["day"], ist(now).to_string(), "{r}");
    }

    // The next days' plans change nothing about these orders: their day stays where it was.
    for later in [1, 2] {
        plan(&s, &job, now + Duration::days(later)).await;
        let again = [
            record(&s, &t, &expired).await,
            record(&s, &t, &cancelled).await,
        ];
        assert_eq!(
            again, first,
            "an unchanged record keeps its day (the day of the last change) on day +{later}"
        );
    }
    let day = ist(now);
    let (status, body) = summary(&s, &t, &format!("from={day}&to={day}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counts = &body["items"][0]["counts"];
    assert!(
        counts["expired"].as_u64().unwrap_or(0) >= 1
            && counts["excluded"].as_u64().unwrap_or(0) >= 1,
        "the day they expired and were excluded still counts them: {body}"
    );
}

// ---- 9: Amazon's static sandbox order ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_amazons_static_solicitations_case() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant("static@acme.example").await;
    let (status, body) = s
        .post(
            &t.token,
            &format!(
                "/v1/merchants/{}/integrations/amazon/connect",
                t.merchant_id
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let consent =
        Url::parse(body["authorize_url"].as_str().expect("authorize_url")).expect("a URL");
    let sandbox = consent.origin().ascii_serialization();
    let res = reqwest::Client::new()
        .get(format!(
            "{sandbox}/solicitations/v1/orders/123-1234567-1234567?marketplaceIds=ATVPDKIKX0DER"
        ))
        .header("x-amz-access-token", "Atza|any-token-at-all")
        .send()
        .await
        .expect("the sandbox answers");
    assert_eq!(res.status(), StatusCode::OK);
    let got: Value = serde_json::from_str(&res.text().await.expect("a body")).expect("a JSON body");
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/amazon-sandbox/fixtures/solicitations.getSolicitationActionsForOrder.sandbox.json"
        ))
        .expect("the fixture file"),
    )
    .expect("fixture JSON");
    assert_eq!(
        got,
        fixture["x-amzn-api-sandbox_by_status"]["200"]["static"][0]["response"]
    );
}
