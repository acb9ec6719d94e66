//! `solicitation-sender` (POLICY A7): asks Amazon for a review, at most once per order, ever.
//!
//! Per queued order:
//! 1. the job must belong to the merchant's current, live connection (a disconnect stops it);
//! 2. the rules are checked again (settings or the order may have changed since planning; SKU
//!    and ASIN rules fetch the order's items first);
//! 3. the order's record is *claimed* with a conditional write and a lease, so two senders, or a
//!    message delivered twice, cannot both go on;
//! 4. Amazon is asked `getSolicitationActionsForOrder`; only when it offers
//!    `productReviewAndSellerFeedback` is the request created. A 403 or no action means "not
//!    today": the scheduler asks again on a later day until the window closes;
//! 5. before the request goes out the record is marked `unanswered_attempt`; if the answer is
//!    lost (timeout, 5xx, crash), the next sender finds the mark and asks Amazon first: no
//!    longer offered means it was sent then, so it is never sent twice.
//!
//! Calls are paced per seller (Amazon allows 1 per second, burst 5, for both operations) with a
//! token bucket in the store, shared by every Lambda instance; a 429 is not retried outside that
//! pace but left to the queue ([`retry_policy`]).

use aws_lambda_events::event::sqs::SqsMessage;
use ecomdrive_aws::store::amazon::{AmazonConnection, Solicitation, SolicitationOutcome};
use ecomdrive_aws::{AwsError, Store, TokenContext, TokenVault};
use ecomdrive_core::Secret;
use ecomdrive_core::amazon::jobs::SolicitationJob;
use ecomdrive_core::amazon::marketplace;
use ecomdrive_core::amazon::order::{Order, OrderItem};
use ecomdrive_core::amazon::pacing::SOLICITATIONS;
use ecomdrive_core::amazon::solicitation::{
    Decision, Prior, SenderStep, SolicitationStatus, after_check, amazon_window, decide,
};
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::amazon::{AmazonClient, PRODUCT_REVIEW_AND_SELLER_FEEDBACK};
use ecomdrive_runtime::amazon::AmazonApi;
use std::time::Duration;
use time::OffsetDateTime;

const ACTIONS_OPERATION: &str = "getSolicitationActionsForOrder";
const CREATE_OPERATION: &str = "createProductReviewAndSellerFeedbackSolicitation";

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the record is not a solicitation job: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
    #[error("configuration: {0}")]
    Config(String),
    /// The queue retries the record later; nothing is lost.
    #[error("will try again later: {0}")]
    RetryLater(String),
}

#[derive(Clone, Debug)]
pub struct Config {
    /// How long a claim holds before another sender may take the order over (a sender that
    /// died mid-way). Longer than any one attempt can take.
    pub lease: time::Duration,
    /// The longest a sender waits for the seller's pace before leaving the order to the queue.
    pub max_pace_wait: Duration,
}

impl Config {
    pub const DEFAULT: Config = Config {
        lease: ecomdrive_core::amazon::solicitation::CLAIM_LEASE,
        max_pace_wait: Duration::from_secs(20),
    };
}

#[derive(Clone)]
pub struct SolicitationSender {
    pub store: Store,
    pub vault: TokenVault,
    pub amazon: AmazonApi,
    pub config: Config,
}

/// How a job ended, for tests and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// An earlier attempt's answer was lost and Amazon no longer offers the request.
    AssumedSent,
    NotEligibleToday,
    Expired,
    Failed(String),
    /// The rules say not now (or never): the status was written, nothing asked.
    NotDue(SolicitationStatus),
    /// Final already, or taken care of by another sender.
    AlreadyDone,
    /// The merchant disconnected (or reconnected) since the job was queued, or LWA refused the
    /// token: nothing sent.
    Dropped(&'static str),
}

impl SolicitationSender {
    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), SendError> {
        let job: SolicitationJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| SendError::BadRecord(e.to_string()))?;
        let outcome = self.send(&job, OffsetDateTime::now_utc()).await?;
        tracing::info!(merchant_id = %job.merchant_id, order_id = %job.order_id, ?outcome, "solicitation handled");
        Ok(())
    }

    pub async fn send(
        &self,
        job: &SolicitationJob,
        now: OffsetDateTime,
    ) -> Result<SendOutcome, SendError> {
        let m = &job.merchant_id;
        let Some(conn) = self.live_connection(job).await? else {
            return Ok(SendOutcome::Dropped("not connected"));
        };
        let (Some(mut order), Some(record)) = (
            self.store.order(m, &job.order_id).await?,
            self.store.solicitation(m, &job.order_id).await?,
        ) else {
            return Ok(SendOutcome::Dropped("order or its plan not found"));
        };
        if !matches!(
            record.status,
            SolicitationStatus::Scheduled | SolicitationStatus::NotEligible
        ) {
            return Ok(SendOutcome::AlreadyDone);
        }
        let refresh = self
            .vault
            .open(
                &TokenContext::amazon_seller(m, &conn.selling_partner_id),
                &conn.refresh_token_ciphertext,
            )
            .await?;
        let client = self
            .amazon
            .client()
            .await
            .map_err(|e| SendError::Config(e.to_string()))?;
        let settings = self.store.solicitation_settings(m).await?;
        if settings.needs_items() && order.items.is_none() {
            order = self.fetch_items(&client, &refresh, &conn, order).await?;
        }
        let prior = Prior {
            status: record.status,
            not_eligible_on: record.not_eligible_on,
        };
        let decision = decide(&order, &settings, Some(&prior), now);
        // Not due: the new status is written, nothing asked. An attempt whose answer was lost is
        // settled with Amazon first whatever the rules say now, but it is never sent again
        // unless the rules still allow it (`decision` goes along to the claim).
        if !decision.due && !record.unanswered_attempt {
            let rewritten = Solicitation {
                status: decision.status,
                reason: decision.reason,
                day: decision.send_on.or(record.day),
                updated_at: now,
                ..record
            };
            self.store
                .record_solicitation_decision(m, &rewritten)
                .await?;
            return Ok(SendOutcome::NotDue(decision.status));
        }
        let token = claim_token();
        let Some(claimed) = self
            .store
            .claim_solicitation(m, &job.order_id, &token, now, self.config.lease)
            .await?
        else {
            let held = self
                .store
                .solicitation(m, &job.order_id)
                .await?
                .is_some_and(|r| r.claim_token.is_some() && !r.status.is_final());
            return if held {
                Err(SendError::RetryLater(
                    "another sender holds this order".into(),
                ))
            } else {
                Ok(SendOutcome::AlreadyDone)
            };
        };
        let result = self
            .with_claim(
                job, &conn, &order, &claimed, &decision, &token, &client, &refresh, now,
            )
            .await;
        if result.is_err() {
            // Let go (if still ours) so the queue's next try can claim again; the attempt mark
            // stays as it is: set means Amazon may have acted.
            let current = self
                .store
                .solicitation(m, &job.order_id)
                .await
                .ok()
                .flatten();
            if let Some(r) = current.filter(|r| r.claim_token.as_deref() == Some(token.as_str()))
                && let Err(e) = self
                    .store
                    .release_solicitation(m, &job.order_id, &token, r.unanswered_attempt)
                    .await
            {
                tracing::warn!(error = %e, "could not release the claim; its lease will run out");
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn with_claim(
        &self,
        job: &SolicitationJob,
        conn: &AmazonConnection,
        order: &Order,
        claimed: &Solicitation,
        decision: &Decision,
        token: &str,
        client: &AmazonClient,
        refresh: &Secret,
        now: OffsetDateTime,
    ) -> Result<SendOutcome, SendError> {
        let m = &job.merchant_id;
        let id = &job.order_id;
        let mp = &order.facts.marketplace_id;
        let today = marketplace::by_id(mp)
            .map(|mk| mk.local_date(now))
            .unwrap_or(now.date());
        let finish = |status, reason: Option<&str>, not_eligible_on, sent_at| SolicitationOutcome {
            status,
            reason: reason.map(str::to_owned),
            day: if status == SolicitationStatus::NotEligible {
                today.next_day().unwrap_or(today)
            } else {
                today
            },
            not_eligible_on,
            sent_at,
        };

        self.pace(m, ACTIONS_OPERATION).await?;
        let offered = match client.solicitation_actions(refresh, id.as_str(), mp).await {
            Ok(actions) => actions
                .iter()
                .any(|a| a == PRODUCT_REVIEW_AND_SELLER_FEEDBACK),
            // After an attempt whose answer was lost, "not offered" settles it as sent: only an
            // answer that is surely Amazon's verdict (an empty list) may say so, not a 403 that
            // may be a refused access token (the client has dropped it; the queue asks again).
            Err(PlatformError::SpApi {
                http_status: 403, ..
            }) if !claimed.unanswered_attempt => false,
            Err(e) => return self.platform_failure(conn, e).await,
        };
        let window = amazon_window(order);
        let outcome = match after_check(offered, claimed.unanswered_attempt, window.as_ref(), now) {
            SenderStep::AssumeSent => {
                let o = finish(
                    SolicitationStatus::Sent,
                    Some("answer_lost_then_no_longer_offered"),
                    None,
                    None,
                );
                self.store.finish_solicitation(m, id, token, &o).await?;
                return Ok(SendOutcome::AssumedSent);
            }
            SenderStep::NotEligibleToday => {
                let o = finish(
                    SolicitationStatus::NotEligible,
                    Some("not_offered_by_amazon_today"),
                    Some(today),
                    None,
                );
                self.store.finish_solicitation(m, id, token, &o).await?;
                return Ok(SendOutcome::NotEligibleToday);
            }
            SenderStep::Expired => {
                let o = finish(
                    SolicitationStatus::Expired,
                    Some("window_closed"),
                    None,
                    None,
                );
                self.store.finish_solicitation(m, id, token, &o).await?;
                return Ok(SendOutcome::Expired);
            }
            SenderStep::Send if !decision.due => {
                // Offered, so the lost attempt never reached Amazon; the rules say not now.
                let o = finish(decision.status, decision.reason.as_deref(), None, None);
                self.store.finish_solicitation(m, id, token, &o).await?;
                return Ok(SendOutcome::NotDue(decision.status));
            }
            SenderStep::Send => {
                // A disconnect while this job waited: nothing more goes out for that merchant.
                if self.live_connection(job).await?.is_none() {
                    return Err(SendError::RetryLater(
                        "disconnected; the job ends on its next try".into(),
                    ));
                }
                self.pace(m, CREATE_OPERATION).await?;
                self.store.mark_solicitation_attempt(m, id, token).await?;
                client.request_review(refresh, id.as_str(), mp).await
            }
        };
        match outcome {
            Ok(()) => {
                let o = finish(
                    SolicitationStatus::Sent,
                    None,
                    None,
                    Some(OffsetDateTime::now_utc()),
                );
                self.store.finish_solicitation(m, id, token, &o).await?;
                Ok(SendOutcome::Sent)
            }
            Err(PlatformError::SpApi {
                http_status: 403, ..
            }) => {
                let o = finish(
                    SolicitationStatus::NotEligible,
                    Some("refused_by_amazon_today"),
                    Some(today),
                    None,
                );
                self.store.finish_solicitation(m, id, token, &o).await?;
                Ok(SendOutcome::NotEligibleToday)
            }
            Err(PlatformError::SpApi {
                http_status, code, ..
            // 401: our access token was refused, nothing was processed; the queue asks again.
            }) if (400..500).contains(&http_status) && !matches!(http_status, 401 | 429) => {
                let reason = format!("amazon_refused:{code}");
                let o = finish(SolicitationStatus::Failed, Some(&reason), None, None);
                self.store.finish_solicitation(m, id, token, &o).await?;
                Ok(SendOutcome::Failed(reason))
            }
            Err(e) => {
                if !e.outcome_unknown() {
                    // Not processed by Amazon (429, connection refused): no attempt happened.
                    self.store.release_solicitation(m, id, token, false).await?;
                }
                self.platform_failure(conn, e).await
            }
        }
    }

    /// An Amazon error that settles nothing: a refused refresh token ends the job (the
    /// connection needs the merchant), anything else is retried by the queue.
    async fn platform_failure(
        &self,
        conn: &AmazonConnection,
        e: PlatformError,
    ) -> Result<SendOutcome, SendError> {
        if let PlatformError::Lwa { error, .. } = &e
            && error == "invalid_grant"
        {
            self.store
                .mark_amazon_token_invalid(&conn.merchant_id, &conn.connection_id)
                .await?;
            return Err(SendError::RetryLater(
                "the seller's authorization was refused".into(),
            ));
        }
        Err(SendError::RetryLater(e.to_string()))
    }

    async fn live_connection(
        &self,
        job: &SolicitationJob,
    ) -> Result<Option<AmazonConnection>, SendError> {
        Ok(self
            .store
            .amazon_connection(&job.merchant_id)
            .await?
            .filter(|c| c.connection_id == job.connection_id && c.token_valid))
    }

    async fn fetch_items(
        &self,
        client: &AmazonClient,
        refresh: &Secret,
        conn: &AmazonConnection,
        order: Order,
    ) -> Result<Order, SendError> {
        let items = match client
            .get_order_items(refresh, order.facts.order_id.as_str())
            .await
        {
            Ok(items) => items,
            Err(e) => return self.platform_failure(conn, e).await.map(|_| order),
        };
        let items: Vec<OrderItem> = items
            .into_iter()
            .map(|i| OrderItem {
                order_item_id: i.order_item_id,
                asin: i.asin,
                seller_sku: i.seller_sku,
                title: i.title,
                quantity: i.quantity_ordered,
            })
            .collect();
        Ok(self
            .store
            .set_order_items(&conn.merchant_id, &order.facts.order_id, &items)
            .await?)
    }

    /// Waits for the seller's next token, or leaves the order to the queue.
    async fn pace(
        &self,
        m: &ecomdrive_core::ids::MerchantId,
        operation: &str,
    ) -> Result<(), SendError> {
        let mut waited = Duration::ZERO;
        loop {
            match self
                .store
                .take_pace_token(m, operation, SOLICITATIONS, OffsetDateTime::now_utc())
                .await?
            {
                Ok(()) => return Ok(()),
                Err(ms) => {
                    let wait = Duration::from_millis(ms);
                    if waited + wait > self.config.max_pace_wait {
                        return Err(SendError::RetryLater(
                            "the seller's request pace is used up".into(),
                        ));
                    }
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }
}

/// The sender's SP-API retries: as the default, but a 429 comes back at once (the queue tries
/// again later, through the seller's pace) instead of being slept on and retried unpaced.
pub fn retry_policy() -> ecomdrive_platforms::amazon::RetryPolicy {
    ecomdrive_platforms::amazon::RetryPolicy {
        max_throttle_wait: Duration::ZERO,
        ..Default::default()
    }
}

fn claim_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
