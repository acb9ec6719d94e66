//! `retention-sweeper`: applies the retention table of POLICY.md every day (A20, A5, E16).
//!
//! DynamoDB's TTL removes what carries an `expires_at` (audit records after two years, rate
//! counters, deletion links); the sweeper does what TTL cannot, merchant by merchant:
//! - an account closed [`retention::CLOSED_MERCHANT`] ago gets a deletion request (receipt,
//!   tombstone, a job on the `deletions` queue), which `data-deletion` carries out;
//! - audit records older than [`retention::IP_ADDRESS`] keep only their IP address's network
//!   and lose their user agent;
//! - conversations with no message for [`retention::COMMUNICATION_RECORDS`] are deleted with
//!   their messages.
//!
//! Settlements, COGS and the other business records are never touched: they stay while the
//! merchant does. A merchant already being deleted is left to its deletion, but the sweep makes
//! sure someone carries it out: a merchant deletion of any channel (API, form, retention) that is
//! not done [`REQUEUE_AFTER`] after it was asked for, and that no run holds (see
//! `Store::claim_deletion`), gets its job queued again. Such a merchant is still in the list the
//! sweep walks: its `MERCHANTS` index item is the last thing its deletion removes, and its
//! tombstone (`Store::merchant_deletion`) names the deletion.
//!
//! `now` is a parameter, so tests move the clock; the schedule passes the real time. Every write
//! is conditional and every choice is re-derived from the data, so a sweep that runs twice (a
//! retried invocation, the next day) does nothing more, and one that stopped half-way finishes
//! the next day.

use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::deletion_jobs::ObjectEraser;
use ecomdrive_aws::store::retention::SweepCursor;
use ecomdrive_aws::{AwsError, Queue, Store};
use ecomdrive_core::data_rights::{DeletionChannel, DeletionJob, DeletionReceipt, DeletionStatus};
use ecomdrive_core::ids::{DeletionId, MerchantId};
use ecomdrive_core::retention::{self, IpRetention, ip_retention};
use futures::StreamExt;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// How the job signs its audit records.
pub const JOB: &str = "retention-sweeper";

/// Merchants swept at once: their partitions are independent, and a few in flight keep a daily
/// run over many merchants short without crowding the table.
const MERCHANTS_IN_FLIGHT: usize = 4;

/// A merchant deletion not done this long after it was asked for, and that no run holds, has
/// lost its job: it is queued again (whatever its channel).
///
/// Every channel queues its job as it asks, and the job starts within seconds; a failing run is
/// retried by SQS until the message reaches the DLQ (`maxReceiveCount` × the visibility timeout,
/// hours), and a run stopped by its budget queues itself again. So a day on, a deletion nobody
/// holds is one whose message never got sent (the send failed after the receipt was written) or
/// went to the DLQ (a run that died holding it, then retries that failed): nothing else would
/// ever pick it up, and the policy's 30 days run. A daily sweep queues it again, so it gets
/// another try every day until it is done. The job is resumable and claims the deletion before
/// it works, so a second message for a deletion under way is harmless (that run answers `Busy`).
pub const REQUEUE_AFTER: Duration = Duration::days(1);

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] AwsError),
    #[error("a deletion job could not be written: {0}")]
    Job(#[from] serde_json::Error),
}

/// What one sweep did (the local route `POST /_local/run/retention-sweeper` answers it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Merchants visited.
    pub merchants: u64,
    /// Audit records whose IP address was cut to its network (or dropped).
    pub ips_anonymised: u64,
    /// Conversations deleted with their messages for having none for two years.
    pub conversations_deleted: u64,
    /// Closed accounts whose deletion was asked for.
    pub merchants_deletion_requested: u64,
    /// Merchant deletions queued again because nobody was carrying them out ([`REQUEUE_AFTER`]).
    pub deletions_requeued: u64,
    /// Merchants left to a deletion already under way.
    pub merchants_being_deleted: u64,
    /// Merchants whose sweep failed (logged; tomorrow's sweep takes them up again).
    pub merchants_failed: u64,
}

impl SweepReport {
    fn add(&mut self, other: &SweepReport) {
        self.merchants += other.merchants;
        self.ips_anonymised += other.ips_anonymised;
        self.conversations_deleted += other.conversations_deleted;
        self.merchants_deletion_requested += other.merchants_deletion_requested;
        self.deletions_requeued += other.deletions_requeued;
        self.merchants_being_deleted += other.merchants_being_deleted;
        self.merchants_failed += other.merchants_failed;
    }
}

#[derive(Clone)]
pub struct RetentionSweeper {
    pub store: Store,
    /// `data-deletion`'s job queue.
    pub deletions: Queue,
    /// The data bucket: a deleted conversation's attachments go with it.
    pub objects: ObjectEraser,
}

impl RetentionSweeper {
    /// Sweeps every merchant as of `now`. A merchant that fails is counted and logged, and the
    /// others are still swept; only an unreadable list of merchants fails the whole sweep.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        let mut cursor: Option<SweepCursor> = None;
        loop {
            let page = self.store.merchants_page(cursor).await?;
            let done: Vec<SweepReport> = futures::stream::iter(page.items)
                .map(|m| async move {
                    match self.sweep_merchant(&m, now).await {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(merchant_id = %m, error = %e, "retention sweep of a merchant failed");
                            SweepReport {
                                merchants: 1,
                                merchants_failed: 1,
                                ..SweepReport::default()
                            }
                        }
                    }
                })
                .buffer_unordered(MERCHANTS_IN_FLIGHT)
                .collect()
                .await;
            done.iter().for_each(|r| report.add(r));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        tracing::info!(?report, "retention sweep done");
        Ok(report)
    }

    /// One merchant: its account first (a due deletion makes the rest moot), then its records.
    pub async fn sweep_merchant(
        &self,
        m: &MerchantId,
        now: OffsetDateTime,
    ) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport {
            merchants: 1,
            ..SweepReport::default()
        };
        if let Some(deletion) = self.store.merchant_deletion(m).await? {
            report.merchants_being_deleted = 1;
            report.deletions_requeued = u64::from(self.requeue_if_lost(&deletion, now).await?);
            return Ok(report);
        }
        // The list may name a merchant whose profile a deletion already removed.
        let Some(merchant) = self.store.merchant(m).await? else {
            return Ok(report);
        };
        if merchant
            .closed_at
            .is_some_and(|closed| retention::CLOSED_MERCHANT.is_over(closed, now))
        {
            report.merchants_deletion_requested = u64::from(self.request_deletion(m, now).await?);
            return Ok(report);
        }
        report.ips_anonymised = self.anonymise_ips(m, now).await?;
        report.conversations_deleted = self.delete_idle_conversations(m, now).await?;
        Ok(report)
    }

    /// Asks for the deletion of an account closed long enough; true when this sweep asked.
    async fn request_deletion(
        &self,
        m: &MerchantId,
        now: OffsetDateTime,
    ) -> Result<bool, SweepError> {
        let asked = self
            .store
            .request_merchant_deletion(m, DeletionChannel::Retention, now)
            .await?;
        if !asked.created {
            return Ok(false);
        }
        self.queue(&asked.receipt.id).await?;
        tracing::info!(merchant_id = %m, deletion_id = %asked.receipt.id, "closed merchant's deletion asked for");
        Ok(true)
    }

    /// Queues again a merchant deletion that nobody is carrying out (see [`REQUEUE_AFTER`]).
    async fn requeue_if_lost(
        &self,
        id: &DeletionId,
        now: OffsetDateTime,
    ) -> Result<bool, SweepError> {
        let Some(deletion) = self.store.deletion_with_lease(id).await? else {
            return Ok(false);
        };
        if !job_looks_lost(&deletion.receipt, deletion.lease_until, now) {
            return Ok(false);
        }
        self.queue(id).await?;
        tracing::warn!(
            deletion_id = %id,
            channel = ?deletion.receipt.channel,
            status = ?deletion.receipt.status,
            "merchant deletion not done and held by no run: queued again"
        );
        Ok(true)
    }

    async fn queue(&self, id: &DeletionId) -> Result<(), SweepError> {
        let job = DeletionJob {
            deletion_id: id.clone(),
        };
        self.deletions
            .send(None, serde_json::to_string(&job)?)
            .await?;
        Ok(())
    }

    /// POLICY A5: audit records older than [`retention::IP_ADDRESS`] keep only the network.
    async fn anonymise_ips(&self, m: &MerchantId, now: OffsetDateTime) -> Result<u64, SweepError> {
        let made_by = retention::IP_ADDRESS.latest_over_start(now);
        let mut done = 0;
        let mut cursor = None;
        loop {
            let page = self.store.audit_usage_page(m, made_by, cursor).await?;
            for rec in &page.items {
                let rule = ip_retention(
                    rec.at,
                    now,
                    rec.ip.as_deref(),
                    rec.user_agent.as_deref(),
                    rec.ip_anonymised,
                );
                if let IpRetention::Anonymise { network } = rule
                    && self
                        .store
                        .anonymise_audit_ip(m, &rec.id, network.as_deref())
                        .await?
                {
                    done += 1;
                }
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        if done > 0 {
            let target = format!("{done} audit records");
            self.store
                .audit(
                    m,
                    &Actor::Job(JOB),
                    "retention.audit.anonymise_ip",
                    Some(&target),
                )
                .await?;
        }
        Ok(done)
    }

    /// POLICY A20: conversations with no message for [`retention::COMMUNICATION_RECORDS`] go,
    /// with their messages (the deletion is `data-deletion`'s, shared with customer deletions).
    async fn delete_idle_conversations(
        &self,
        m: &MerchantId,
        now: OffsetDateTime,
    ) -> Result<u64, SweepError> {
        let idle_since = retention::COMMUNICATION_RECORDS.latest_over_start(now);
        let mut done = 0;
        let mut cursor = None;
        loop {
            let page = self
                .store
                .idle_conversations_page(m, idle_since, cursor)
                .await?;
            for c in &page.items {
                if !retention::COMMUNICATION_RECORDS.is_over(c.last_activity_at, now) {
                    continue;
                }
                // The index is eventually consistent: a message that has just arrived must save
                // the conversation, so the table itself is asked once more.
                let still_idle = self
                    .store
                    .conversation(m, &c.id)
                    .await?
                    .is_some_and(|now_c| {
                        retention::COMMUNICATION_RECORDS.is_over(now_c.last_activity_at, now)
                    });
                if !still_idle {
                    continue;
                }
                self.store
                    .delete_conversation(&self.objects, m, &c.id)
                    .await?;
                self.store
                    .audit(
                        m,
                        &Actor::Job(JOB),
                        "retention.conversation.delete",
                        Some(c.id.as_str()),
                    )
                    .await?;
                done += 1;
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        Ok(done)
    }
}

/// A deletion nobody is carrying out: not done, asked for at least [`REQUEUE_AFTER`] ago, and
/// held by no run: never claimed or given back (`lease_until` absent), or claimed by a run that
/// died (its lease ran out: `lease_until <= now`, as `Store::claim_deletion` counts it). Whatever
/// the channel it was asked through.
fn job_looks_lost(
    receipt: &DeletionReceipt,
    lease_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    receipt.status != DeletionStatus::Done
        && now >= receipt.requested_at + REQUEUE_AFTER
        && lease_until.is_none_or(|until| until <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomdrive_core::data_rights::DeletionSubject;
    use time::macros::datetime;

    fn receipt(channel: DeletionChannel, at: OffsetDateTime) -> DeletionReceipt {
        DeletionReceipt::new(
            DeletionSubject::Merchant {
                merchant_id: MerchantId::generate(),
            },
            channel,
            at,
        )
    }

    #[test]
    fn a_deletion_of_any_channel_is_queued_again_only_a_day_after_it_was_asked_for() {
        let at = datetime!(2026-06-08 08:30:00 UTC);
        for channel in [
            DeletionChannel::Retention,
            DeletionChannel::Api,
            DeletionChannel::Form,
        ] {
            let r = receipt(channel, at);
            assert!(!job_looks_lost(&r, None, at), "{channel:?}");
            assert!(
                !job_looks_lost(&r, None, at + REQUEUE_AFTER - Duration::seconds(1)),
                "{channel:?}"
            );
            assert!(job_looks_lost(&r, None, at + REQUEUE_AFTER), "{channel:?}");
        }
    }

    #[test]
    fn a_deletion_held_by_a_live_run_or_done_is_left_alone_and_a_dead_runs_is_not() {
        let at = datetime!(2026-06-08 08:30:00 UTC);
        let later = at + REQUEUE_AFTER + Duration::hours(3);
        let running = DeletionReceipt {
            status: DeletionStatus::Running,
            ..receipt(DeletionChannel::Api, at)
        };
        // A run holds it until after `later`: it is under way.
        let held = Some(later + Duration::seconds(1));
        assert!(!job_looks_lost(&running, held, later));
        // Its lease ran out (at `later` exactly, as a claim counts it): the run died.
        assert!(job_looks_lost(&running, Some(later), later));
        assert!(job_looks_lost(&running, Some(at), later));
        // Given back between runs (no lease), still not done: nobody holds it.
        assert!(job_looks_lost(&running, None, later));
        // Done: nothing to do, lease or not.
        let done = DeletionReceipt {
            status: DeletionStatus::Done,
            ..running.clone()
        };
        assert!(!job_looks_lost(&done, None, later + Duration::days(40)));
        assert!(!job_looks_lost(&done, Some(at), later));
    }

    #[test]
    fn reports_add_up_and_serialise_with_their_counts() {
        let mut total = SweepReport::default();
        let one = SweepReport {
            merchants: 1,
            ips_anonymised: 3,
            conversations_deleted: 2,
            ..SweepReport::default()
        };
        total.add(&one);
        total.add(&one);
        assert_eq!(total.ips_anonymised, 6);
        assert_eq!(total.merchants, 2);
        let json = serde_json::to_value(&total).unwrap();
        assert_eq!(json["conversations_deleted"], 4);
        assert_eq!(json["merchants_deletion_requested"], 0);
    }
}
