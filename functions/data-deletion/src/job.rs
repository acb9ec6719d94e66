//! The job side: carries out the deletions queued on `deletions` (POLICY A19, E15, A11).
//!
//! One message names one deletion ([`DeletionJob`]); its receipt says whose data. A run:
//! 1. claims the deletion (a lease on the receipt, [`RUN_LEASE`]) and marks it `running`; while
//!    another run holds it, this one does nothing ([`RunOutcome::Busy`]): the holder finishes or
//!    queues the job again itself;
//! 2. for a merchant, deletes its platform tokens if any are left (a deletion asked through the
//!    form or by retention did not go through the API's DELETE, which does this at once), revoking
//!    them at Meta first; then deletes its data within the run's budget
//!    ([`Store::erase_merchant`]);
//! 3. for a customer, their records ([`Store::erase_customer`]); for a user, the merchants they
//!    solely own (each its own merchant deletion, queued) and then their account
//!    ([`Store::erase_user`]);
//! 4. adds the run's counts to the receipt; once nothing is left, marks it done (the subject's
//!    ids leave the receipt; a merchant's tombstone stays, ids only); otherwise gives the lease
//!    back (also when the run failed), so the next run starts at once.
//!
//! A run deletes at most its budget ([`DeletionRunner::budget`]), so it ends well inside the
//! function's time limit. A run that stops with work left **queues the same job again** and
//! succeeds, so a large merchant never reaches the queue's `maxReceiveCount` by making progress;
//! only real failures are retried by SQS and end in the DLQ. A run killed half-way (a timeout)
//! is retried by SQS after the visibility timeout, and goes on from what is left: every step
//! is idempotent.
//!
//! Every audit of the job goes to the receipt (its counts and dates), never into the partition
//! being deleted.

use aws_lambda_events::event::sqs::SqsMessage;
use ecomdrive_aws::store::deletion_jobs::{Budget, Counts, ObjectEraser, Progress};
use ecomdrive_aws::store::deletions::DELETION_JOB_KIND;
use ecomdrive_aws::{AwsError, Queue, Store, TokenVault};
use ecomdrive_core::data_rights::{
    DeletionChannel, DeletionJob, DeletionReceipt, DeletionStatus, DeletionSubject,
};
use ecomdrive_core::ids::{DeletionId, MerchantId};
use ecomdrive_platforms::outbound::OutboundHttp;
use ecomdrive_runtime::secrets::{MetaAppSecrets, MetaEndpoints, PageUnsubscriber, SecretCache};
use time::OffsetDateTime;

/// Items and objects one run deletes at most: a few hundred batch calls, well inside the
/// function's timeout in template.yaml.
pub const RUN_BUDGET: usize = 10_000;

/// How long a run holds its deletion: the job function's timeout (template.yaml, 900 s), so a
/// run killed by the timeout has lost the lease by the time SQS redelivers its message (after
/// the queue's visibility timeout, 5400 s).
pub const RUN_LEASE: std::time::Duration = std::time::Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    #[error("not a deletion job: {0}")]
    BadMessage(String),
    #[error("no deletion {0}")]
    UnknownDeletion(DeletionId),
    /// Meta's data deletion callback carries out Facebook-user deletions itself, at once; such a
    /// job on the queue is a mistake to look at, not to retry into the void.
    #[error(
        "deletion {0} is of a Facebook user: those are carried out by Meta's data deletion callback, not queued"
    )]
    NotForTheQueue(DeletionId),
    #[error(transparent)]
    Store(#[from] AwsError),
}

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Nothing is left: the receipt is done.
    Done { counts: Counts },
    /// The budget ran out with work left; the next run goes on.
    Unfinished { counts: Counts },
    /// The receipt was done before this run (a redelivered message): nothing to do.
    AlreadyDone,
    /// Another run holds the deletion (a duplicate message): nothing was done; that run finishes
    /// the deletion or queues it again.
    Busy,
}

/// Everything the job needs; `main` builds it from the environment, the local stack and tests
/// from their own resources.
#[derive(Clone)]
pub struct DeletionRunner {
    pub store: Store,
    /// Opens Page tokens to revoke them at Meta before they are deleted.
    pub vault: TokenVault,
    /// The data bucket: the merchant's objects and export files.
    pub objects: ObjectEraser,
    /// The `deletions` queue: an unfinished run queues its job again; a deleted user's solely
    /// owned merchants are queued as their own deletions.
    pub queue: Queue,
    pub meta: MetaEndpoints,
    pub meta_secrets: SecretCache<MetaAppSecrets>,
    pub http: OutboundHttp,
    /// Items and objects per run ([`RUN_BUDGET`] in production).
    pub budget: usize,
}

impl DeletionRunner {
    /// The queue's handler: one job, within [`DeletionRunner::budget`].
    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), DeletionError> {
        let body = record
            .body
            .as_deref()
            .ok_or_else(|| DeletionError::BadMessage("empty body".into()))?;
        let job: DeletionJob =
            serde_json::from_str(body).map_err(|e| DeletionError::BadMessage(e.to_string()))?;
        match self.run(&job.deletion_id, self.budget).await? {
            RunOutcome::Unfinished { counts } => {
                tracing::info!(deletion = %job.deletion_id, ?counts, "deletion goes on in the next run");
                self.queue.send_json(DELETION_JOB_KIND, &job).await?;
            }
            RunOutcome::Done { counts } => {
                tracing::info!(deletion = %job.deletion_id, ?counts, "deletion done")
            }
            RunOutcome::Busy => {
                tracing::info!(deletion = %job.deletion_id, "another run holds this deletion; leaving it to that run")
            }
            RunOutcome::AlreadyDone => {}
        }
        Ok(())
    }

    /// Runs a deletion, deleting at most `budget` items and objects.
    pub async fn run(&self, id: &DeletionId, budget: usize) -> Result<RunOutcome, DeletionError> {
        let receipt = self
            .store
            .deletion(id)
            .await?
            .ok_or_else(|| DeletionError::UnknownDeletion(id.clone()))?;
        if receipt.status == DeletionStatus::Done {
            return Ok(RunOutcome::AlreadyDone);
        }
        let Some(subject) = receipt.subject.clone() else {
            // Not done, yet without a subject: nothing can be found to delete. Close it.
            self.store
                .complete_deletion(id, OffsetDateTime::now_utc())
                .await?;
            return Ok(RunOutcome::Done {
                counts: Counts::new(),
            });
        };
        if let DeletionSubject::FacebookUser { .. } = subject {
            return Err(DeletionError::NotForTheQueue(id.clone()));
        }
        let holder = format!("run_{:016x}", rand::random::<u64>());
        if !self
            .store
            .claim_deletion(id, &holder, OffsetDateTime::now_utc(), RUN_LEASE)
            .await?
        {
            return Ok(match self.store.deletion(id).await? {
                Some(r) if r.status == DeletionStatus::Done => RunOutcome::AlreadyDone,
                _ => RunOutcome::Busy,
            });
        }
        let outcome = self.run_claimed(id, &receipt, subject, budget).await;
        if !matches!(outcome, Ok(RunOutcome::Done { .. })) {
            // A completed receipt was rewritten without the lease; any other end gives it back.
            if let Err(e) = self.store.release_deletion(id, &holder).await {
                tracing::warn!(deletion = %id, error = %e, "could not give the lease back; it expires by itself");
            }
        }
        outcome
    }

    /// The run itself, once it holds the deletion.
    async fn run_claimed(
        &self,
        id: &DeletionId,
        receipt: &DeletionReceipt,
        subject: DeletionSubject,
        budget: usize,
    ) -> Result<RunOutcome, DeletionError> {
        let mut budget = Budget::new(budget);
        let mut counts = Counts::new();
        let progress = match &subject {
            DeletionSubject::Merchant { merchant_id } => {
                self.revoke_tokens(merchant_id).await?;
                self.store
                    .erase_merchant(&self.objects, merchant_id, &mut budget, &mut counts)
                    .await
            }
            DeletionSubject::Customer {
                merchant_id,
                customer_id,
            } => {
                self.store
                    .erase_customer(
                        &self.objects,
                        merchant_id,
                        customer_id,
                        &mut budget,
                        &mut counts,
                    )
                    .await
            }
            DeletionSubject::User { user_id } => {
                for m in self.store.solely_owned_merchants(user_id).await? {
                    self.delete_merchant(&m, receipt.channel).await?;
                    *counts.entry("merchant_deletion".into()).or_default() += 1;
                }
                self.store.erase_user(user_id).await.map(|c| {
                    for (k, n) in c {
                        *counts.entry(k).or_default() += n;
                    }
                    Progress::Finished
                })
            }
            DeletionSubject::FacebookUser { .. } => unreachable!("refused above"),
        };
        // What was deleted before a failure counts too.
        self.store.add_deletion_counts(id, &counts).await?;
        match progress? {
            Progress::Stopped => Ok(RunOutcome::Unfinished { counts }),
            Progress::Finished => {
                self.store
                    .complete_deletion(id, OffsetDateTime::now_utc())
                    .await?;
                Ok(RunOutcome::Done { counts })
            }
        }
    }

    /// Starts a merchant's deletion on behalf of another one (a deleted user's solely owned
    /// merchant): receipt and tombstone, tokens deleted at once, the job queued. Idempotent.
    pub async fn delete_merchant(
        &self,
        m: &MerchantId,
        channel: DeletionChannel,
    ) -> Result<DeletionReceipt, DeletionError> {
        let asked = self
            .store
            .request_merchant_deletion(m, channel, OffsetDateTime::now_utc())
            .await?;
        self.revoke_tokens(m).await?;
        self.queue
            .send_json(
                DELETION_JOB_KIND,
                &DeletionJob {
                    deletion_id: asked.receipt.id.clone(),
                },
            )
            .await?;
        Ok(asked.receipt)
    }

    /// Deletes whatever tokens the merchant still has, unsubscribing our app from each Page at
    /// Meta first (Amazon has no revocation API; see [`Store::forget_merchant_tokens`]).
    async fn revoke_tokens(&self, m: &MerchantId) -> Result<(), DeletionError> {
        let pages = PageUnsubscriber::connect(&self.meta, &self.http, &self.meta_secrets).await;
        self.store
            .forget_merchant_tokens(m, &self.vault, |page, token| pages.unsubscribe(page, token))
            .await?;
        Ok(())
    }
}
