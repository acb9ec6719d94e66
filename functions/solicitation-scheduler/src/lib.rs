//! `solicitation-scheduler` (POLICY A7): decides, every day, what happens to each order's review
//! request, and queues the ones that are due.
//!
//! Two triggers: the daily schedule fans out one planning message per merchant with a live
//! Amazon connection; the planning queue plans one merchant: every order gets its status from
//! the pure rules (`ecomdrive_core::amazon::solicitation::decide`), changed statuses are written,
//! and due orders go to the `solicitations` queue for `solicitation-sender`. The scheduler never
//! talks to Amazon: the sender asks Amazon before each request.

use aws_lambda_events::event::sqs::SqsMessage;
use ecomdrive_aws::store::amazon::Solicitation;
use ecomdrive_aws::{AwsError, Queue, Store};
use ecomdrive_core::amazon::jobs::{MerchantJob, SolicitationJob};
use ecomdrive_core::amazon::marketplace;
use ecomdrive_core::amazon::solicitation::{CLAIM_LEASE, Decision, Prior, decide};
use ecomdrive_runtime::sqs::to_bodies;
use futures::StreamExt;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Status writes in flight at once while planning one merchant.
const WRITES_IN_FLIGHT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the record is not a merchant job: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
}

#[derive(Clone)]
pub struct Scheduler {
    pub store: Store,
    /// One message per merchant to plan (the fan-out writes, the planner reads).
    pub plan_queue: Queue,
    /// One message per due order, for `solicitation-sender`.
    pub solicitations: Queue,
}

/// What planning one merchant did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanReport {
    pub orders: usize,
    pub changed: usize,
    pub queued: usize,
}

impl Scheduler {
    /// The schedule's fan-out: one planning message per merchant with a live connection.
    pub async fn fan_out(&self) -> Result<usize, ScheduleError> {
        let jobs = self.store.live_amazon_jobs().await?;
        self.plan_queue.send_all(to_bodies(&jobs)).await?;
        tracing::info!(merchants = jobs.len(), "solicitation planning fanned out");
        Ok(jobs.len())
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), ScheduleError> {
        let job: MerchantJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| ScheduleError::BadRecord(e.to_string()))?;
        // Boxed: the planning future is deep enough to overflow the compiler's layout limit inline.
        let report = Box::pin(self.plan(&job, OffsetDateTime::now_utc())).await?;
        tracing::info!(merchant_id = %job.merchant_id, ?report, "solicitations planned");
        Ok(())
    }

    pub async fn plan(
        &self,
        job: &MerchantJob,
        now: OffsetDateTime,
    ) -> Result<PlanReport, ScheduleError> {
        let m = &job.merchant_id;
        let live = self
            .store
            .amazon_connection(m)
            .await?
            .is_some_and(|c| c.connection_id == job.connection_id && c.token_valid);
        if !live {
            return Ok(PlanReport::default());
        }
        let settings = self.store.solicitation_settings(m).await?;
        let orders = self.store.all_orders(m).await?;
        let known: HashMap<_, _> = self
            .store
            .all_solicitations(m)
            .await?
            .into_iter()
            .map(|s| (s.order_id.clone(), s))
            .collect();

        let mut writes = Vec::new();
        let mut due = Vec::new();
        for order in &orders {
            let id = &order.facts.order_id;
            let before = known.get(id);
            let today = marketplace::by_id(&order.facts.marketplace_id)
                .map(|mk| mk.local_date(now))
                .unwrap_or(now.date());
            // An attempt whose answer was lost is settled with Amazon by the sender, whatever the
            // rules say today: the record is left as it is and the order queued.
            if let Some(b) = before.filter(|b| b.unanswered_attempt) {
                if !held(b, now) {
                    due.push((id.clone(), today));
                }
                continue;
            }
            let prior = before.map(|s| Prior {
                status: s.status,
                not_eligible_on: s.not_eligible_on,
            });
            let decision = decide(order, &settings, prior.as_ref(), now);
            // The day a status without a planned day happened: it stays while the status does,
            // so the dashboard's history does not move.
            let unchanged_since = before
                .filter(|b| b.status == decision.status && b.reason == decision.reason)
                .and_then(|b| b.day);
            let record = Solicitation {
                order_id: id.clone(),
                marketplace_id: order.facts.marketplace_id.clone(),
                status: decision.status,
                reason: decision.reason.clone(),
                day: decision.send_on.or(unchanged_since).or(Some(today)),
                not_eligible_on: before.and_then(|s| s.not_eligible_on),
                sent_at: None,
                unanswered_attempt: false,
                claim_token: None,
                claimed_at_ms: None,
                updated_at: now,
            };
            if before.is_none_or(|b| changed(b, &decision, record.day)) {
                writes.push((record, decision.due, today));
            } else if decision.due && before.is_some_and(|b| !held(b, now)) {
                due.push((id.clone(), today));
            }
        }
        let changed_count = writes.len();
        let store = &self.store;
        let written: Vec<_> = futures::stream::iter(writes)
            .map(|(record, is_due, today)| async move {
                let wrote = store.record_solicitation_decision(m, &record).await?;
                Ok::<_, AwsError>((wrote && is_due).then_some((record.order_id, today)))
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        for w in written {
            if let Some(d) = w? {
                due.push(d);
            }
        }
        let jobs: Vec<SolicitationJob> = due
            .into_iter()
            .map(|(order_id, planned_on)| SolicitationJob {
                merchant_id: m.clone(),
                connection_id: job.connection_id.clone(),
                order_id,
                planned_on,
            })
            .collect();
        self.solicitations.send_all(to_bodies(&jobs)).await?;
        Ok(PlanReport {
            orders: orders.len(),
            changed: changed_count,
            queued: jobs.len(),
        })
    }
}

/// A sender holds the record and its lease has not run out (a dead sender's claim has).
fn held(record: &Solicitation, now: OffsetDateTime) -> bool {
    let lease_start = now - CLAIM_LEASE;
    record.claim_token.is_some()
        && record
            .claimed_at_ms
            .is_some_and(|ms| ms > (lease_start.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn changed(before: &Solicitation, d: &Decision, day: Option<time::Date>) -> bool {
    // A final record keeps what the sender wrote (its reason, its day).
    !d.status.is_final()
        && (before.status != d.status || before.reason != d.reason || before.day != day)
}
