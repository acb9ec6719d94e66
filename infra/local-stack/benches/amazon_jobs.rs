//! The Amazon jobs against the emulator, with real DynamoDB and SQS calls:
//! 1. the scheduler planning one merchant with 2,000 orders (first run: every status written;
//!    the daily run after it: only changes), from which 1,000 merchants × 2,000 orders follow
//!    (the fan-out plans merchants in parallel, one Lambda invocation each);
//! 2. the sender's sustained rate for one seller against the Amazon sandbox's limits (Amazon's
//!    own: 1 request per second, burst 5, per operation). Ten workers, like ten Lambda
//!    instances, share the orders; the pace is kept by the token bucket in the store.
//!
//! Run: `infra/scripts/venv.sh && cargo bench -p ecomdrive-local --bench amazon_jobs` (starts
//! its own emulator). The emulator answers each call in milliseconds, DynamoDB in single-digit
//! milliseconds too, so the planning figures are of the right order, not AWS's.

use amazon_sandbox::{
    DEMO_SELLER_ID, FulfillmentChannel, INDIA_MARKETPLACE, OrderStatus, SandboxOrder,
};
use ecomdrive_aws::store::amazon::AmazonConnection;
use ecomdrive_aws::{TokenContext, TokenVault};
use ecomdrive_core::Secret;
use ecomdrive_core::amazon::jobs::{MerchantJob, SolicitationJob};
use ecomdrive_core::amazon::solicitation::SolicitationSettings;
use ecomdrive_core::amazon::{AmazonOrderId, SellingPartnerId};
use ecomdrive_core::ids::{AmazonConnectionId, UserId};
use ecomdrive_local::emulator::{Emulator, sdk_config};
use ecomdrive_local::provision::repo_root;
use ecomdrive_local::stack::{RunningStack, StackOptions};
use solicitation_sender::SendError;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use time::{Duration, OffsetDateTime};

const ORDERS: usize = 40;
const WORKERS: usize = 10;
const PLANNED_ORDERS: usize = 2_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(&repo_root())?;
    let sdk = sdk_config(&emulator.endpoint).await;
    let mut options = StackOptions::new(format!("bench{}", std::process::id()));
    options.run_pollers = false;
    let stack = RunningStack::start(&sdk, options).await?;
    plan_one_big_merchant(&stack).await?;

    // A merchant connected to the demo seller (the consent flow itself is not what is measured).
    let user = UserId::parse("bench-owner").ok_or("user id")?;
    let user = stack
        .store
        .user_seen(&user, Some("bench@ecomdrive.local"))
        .await?;
    let profile = ecomdrive_core::merchant::MerchantProfile::validate("Bench", None, None)
        .map_err(|_| "profile")?;
    let m = stack.store.create_merchant(&user, profile).await?.id;
    let seller = SellingPartnerId::parse(DEMO_SELLER_ID).ok_or("seller")?;
    let tokens = stack.amazon.authorize(DEMO_SELLER_ID)?;
    let vault = TokenVault::new(
        aws_sdk_kms::Client::new(&sdk),
        stack.resources.token_key_id.clone(),
    );
    let sealed = vault
        .seal(
            &TokenContext::amazon_seller(&m, &seller),
            &Secret::new(tokens.refresh_token),
        )
        .await?;
    let conn = AmazonConnection {
        merchant_id: m.clone(),
        connection_id: AmazonConnectionId::generate(),
        selling_partner_id: seller,
        marketplace_id: INDIA_MARKETPLACE.into(),
        refresh_token_ciphertext: sealed,
        token_valid: true,
        connected_by: user.id.clone(),
        connected_at: OffsetDateTime::now_utc(),
    };
    stack.store.connect_amazon(&conn).await?;

    // Orders delivered ten days ago: inside Amazon's window, due today.
    let now = OffsetDateTime::now_utc();
    let ids: Vec<String> = (0..ORDERS).map(|i| format!("409-0000000-{i:07}")).collect();
    for id in &ids {
        stack.amazon.upsert_order(
            DEMO_SELLER_ID,
            SandboxOrder {
                order_id: id.clone(),
                purchase_date: now - Duration::days(14),
                last_update_date: Some(now - Duration::minutes(10)),
                status: OrderStatus::Shipped,
                fulfillment_channel: FulfillmentChannel::Mfn,
                marketplace_id: INDIA_MARKETPLACE.into(),
                is_replacement_order: false,
                replaced_order_id: None,
                earliest_delivery_date: Some(now - Duration::days(11)),
                latest_delivery_date: Some(now - Duration::days(10)),
                earliest_ship_date: Some(now - Duration::days(13)),
                latest_ship_date: Some(now - Duration::days(12)),
                order_total: Some(("INR".into(), "499.00".into())),
                items: vec![],
            },
        );
    }
    let job = MerchantJob {
        merchant_id: m.clone(),
        connection_id: conn.connection_id.clone(),
    };
    stack.order_sync.sync(&job, now).await?;
    stack
        .store
        .save_solicitation_settings(
            &m,
            &SolicitationSettings {
                enabled: true,
                ..Default::default()
            },
        )
        .await?;
    let planned = stack.scheduler.plan(&job, now).await?;
    eprintln!("planned: {planned:?}");

    let today = ecomdrive_core::amazon::marketplace::INDIA.local_date(now);
    let jobs: VecDeque<SolicitationJob> = ids
        .iter()
        .map(|id| SolicitationJob {
            merchant_id: m.clone(),
            connection_id: conn.connection_id.clone(),
            order_id: AmazonOrderId::parse(id).expect("valid id"),
            planned_on: today,
        })
        .collect();
    let jobs = Arc::new(Mutex::new(jobs));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (jobs, sender) = (jobs.clone(), stack.sender.clone());
        workers.push(tokio::spawn(async move {
            let mut retries = 0u32;
            loop {
                let Some(job) = jobs.lock().expect("jobs").pop_front() else {
                    return retries;
                };
                match sender.send(&job, OffsetDateTime::now_utc()).await {
                    Ok(_) => {}
                    Err(SendError::RetryLater(_)) => {
                        retries += 1;
                        jobs.lock().expect("jobs").push_back(job);
                    }
                    Err(e) => panic!("sender failed: {e}"),
                }
            }
        }));
    }
    let mut retries = 0;
    for w in workers {
        retries += w.await?;
    }
    let elapsed = started.elapsed();

    let ours: Vec<_> = stack
        .amazon
        .solicitations()
        .into_iter()
        .filter(|s| ids.contains(&s.order_id))
        .collect();
    let created = ours.iter().filter(|s| s.status == 201).count();
    let throttled = ours.iter().filter(|s| s.status == 429).count();
    let times: Vec<OffsetDateTime> = ours.iter().map(|s| s.at).collect();
    let max_in_any_second = times
        .iter()
        .map(|t| {
            times
                .iter()
                .filter(|u| **u >= *t && **u < *t + Duration::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    let span = match (times.first(), times.last()) {
        (Some(a), Some(b)) => (*b - *a).as_seconds_f64(),
        _ => 0.0,
    };
    let sustained = if span > 0.0 && created > 5 {
        (created - 5) as f64 / span
    } else {
        0.0
    };
    println!("solicitation sender, one seller, {ORDERS} due orders, {WORKERS} concurrent workers");
    println!("  requests created (201): {created}, answered 429 by the sandbox: {throttled}");
    println!(
        "  wall time: {:.1} s, first to last create: {span:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  sustained rate after the burst of 5: {sustained:.2} requests/s (Amazon allows 1.00)"
    );
    println!("  most creates in any 1-second window: {max_in_any_second} (Amazon's burst: 5)");
    println!("  jobs left to the queue to retry (pace used up): {retries}");
    stack.stop().await;
    drop(emulator);
    Ok(())
}

/// A merchant with 2,000 orders over the last 60 days, planned twice.
async fn plan_one_big_merchant(stack: &RunningStack) -> Result<(), Box<dyn std::error::Error>> {
    use ecomdrive_core::amazon::order::{AmazonOrderFacts, OrderStatus as Status};
    use futures::StreamExt;
    let user = UserId::parse("planner-owner").ok_or("user id")?;
    let user = stack
        .store
        .user_seen(&user, Some("planner@ecomdrive.local"))
        .await?;
    let profile = ecomdrive_core::merchant::MerchantProfile::validate("Planner", None, None)
        .map_err(|_| "profile")?;
    let m = stack.store.create_merchant(&user, profile).await?.id;
    let conn = AmazonConnection {
        merchant_id: m.clone(),
        connection_id: AmazonConnectionId::generate(),
        selling_partner_id: SellingPartnerId::parse("A2PLANNER0001").ok_or("seller")?,
        marketplace_id: INDIA_MARKETPLACE.into(),
        refresh_token_ciphertext: "not-used-by-the-scheduler".into(),
        token_valid: true,
        connected_by: user.id.clone(),
        connected_at: OffsetDateTime::now_utc(),
    };
    stack.store.connect_amazon(&conn).await?;
    stack
        .store
        .save_solicitation_settings(
            &m,
            &SolicitationSettings {
                enabled: true,
                ..Default::default()
            },
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    let facts: Vec<AmazonOrderFacts> = (0..PLANNED_ORDERS)
        .map(|i| {
            let age = Duration::hours((i as i64 * 60 * 24) / PLANNED_ORDERS as i64);
            let purchased = now - Duration::days(1) - age;
            AmazonOrderFacts {
                order_id: AmazonOrderId::parse(&format!("408-{:07}-{i:07}", i % 9_999_999))
                    .expect("valid id"),
                marketplace_id: INDIA_MARKETPLACE.into(),
                status: match i % 20 {
                    0 => Status::Canceled,
                    1 | 2 => Status::Unshipped,
                    _ => Status::Shipped,
                },
                fulfillment_channel: None,
                purchase_date: purchased,
                last_update_date: purchased + Duration::days(1),
                earliest_delivery_date: Some(purchased + Duration::days(3)),
                latest_delivery_date: Some(purchased + Duration::days(5)),
                is_replacement_order: i % 50 == 7,
                replaced_order_id: None,
                total: None,
            }
        })
        .collect();
    let store = &stack.store;
    let m_ref = &m;
    let seeded: Vec<_> = futures::stream::iter(facts)
        .map(|f| async move { store.upsert_order(m_ref, &f).await })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in seeded {
        r?;
    }
    let job = MerchantJob {
        merchant_id: m.clone(),
        connection_id: conn.connection_id.clone(),
    };
    for run in [
        "first run (every status written)",
        "daily run after it (changes only)",
    ] {
        let started = Instant::now();
        let report = stack.scheduler.plan(&job, now).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "scheduler, one merchant, {run}: {} orders in {secs:.2} s = {:.0} orders/s; {} statuses written, {} queue messages sent",
            report.orders,
            report.orders as f64 / secs,
            report.changed,
            report.queued
        );
    }
    Ok(())
}
