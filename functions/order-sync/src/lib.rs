//! `order-sync` (POLICY A10): keeps each connected merchant's Amazon orders in the store.
//!
//! Two triggers: an hourly schedule fans out one queue message per connected merchant, and the
//! queue (also fed once right after a merchant connects) syncs one merchant. A sync is
//! incremental by `LastUpdatedAfter`, starting an overlap before where the last one ended, reads
//! every page, and upserts orders so that older facts never replace newer ones. Nothing is
//! fetched for a merchant without a live connection (POLICY A2).

use aws_lambda_events::event::sqs::SqsMessage;
use ecomdrive_aws::store::amazon::{SyncResume, SyncState};
use ecomdrive_aws::{AwsError, Queue, Store, TokenContext, TokenVault};
use ecomdrive_core::amazon::AmazonOrderId;
use ecomdrive_core::amazon::jobs::MerchantJob;
use ecomdrive_core::amazon::order::{AmazonOrderFacts, FulfillmentChannel, Money, OrderStatus};
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::amazon::{AmazonOrder, OrdersQuery};
use ecomdrive_runtime::amazon::AmazonApi;
use ecomdrive_runtime::sqs::to_bodies;
use futures::StreamExt;
use time::{Duration, OffsetDateTime};

/// Each sync starts this long before where the last one ended: orders Amazon updates with a
/// slightly older `LastUpdateDate` than our watermark are not missed.
pub const OVERLAP: Duration = Duration::minutes(15);
/// The first sync reaches back this far: every order still inside Amazon's review window.
pub const BACKFILL: Duration = Duration::days(60);
/// Order writes in flight at once (one page is at most 100 orders).
const WRITES_IN_FLIGHT: usize = 16;
/// Amazon refuses a `LastUpdatedAfter` later than two minutes ago.
const AMAZON_LAG: Duration = Duration::minutes(2);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the record is not a merchant job: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
    #[error("Amazon: {0}")]
    Amazon(#[from] PlatformError),
    #[error("configuration: {0}")]
    Config(String),
}

#[derive(Clone)]
pub struct OrderSync {
    pub store: Store,
    pub vault: TokenVault,
    pub amazon: AmazonApi,
    /// The order-sync queue (the fan-out writes to it).
    pub queue: Queue,
}

/// What one merchant's sync did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    Synced {
        orders: u64,
        written: u64,
    },
    /// The job's connection is gone or was replaced: nothing fetched.
    NotConnected,
    /// LWA refused the refresh token: the connection is marked for a reconnect.
    TokenRefused,
}

impl OrderSync {
    /// The schedule's fan-out: one message per merchant with a live connection.
    pub async fn fan_out(&self) -> Result<usize, SyncError> {
        let jobs = self.store.live_amazon_jobs().await?;
        let n = jobs.len();
        self.queue.send_all(to_bodies(&jobs)).await?;
        tracing::info!(merchants = n, "order sync fanned out");
        Ok(n)
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), SyncError> {
        let job: MerchantJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| SyncError::BadRecord(e.to_string()))?;
        let outcome = self.sync(&job, OffsetDateTime::now_utc()).await?;
        tracing::info!(merchant_id = %job.merchant_id, ?outcome, "order sync done");
        Ok(())
    }

    pub async fn sync(
        &self,
        job: &MerchantJob,
        now: OffsetDateTime,
    ) -> Result<SyncOutcome, SyncError> {
        let m = &job.merchant_id;
        let Some(conn) = self.store.amazon_connection(m).await? else {
            return Ok(SyncOutcome::NotConnected);
        };
        if conn.connection_id != job.connection_id || !conn.token_valid {
            return Ok(SyncOutcome::NotConnected);
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
            .map_err(|e| SyncError::Config(e.to_string()))?;
        let previous = self.store.sync_state(m).await?;
        let (since, until, mut next_token) = match previous.as_ref().and_then(|p| p.resume.clone())
        {
            // Go on where Amazon's rate limit stopped the last one.
            Some(r) => (r.since, r.until, Some(r.next_token)),
            None => {
                let until = now - AMAZON_LAG;
                let since = match &previous {
                    Some(p) => p.synced_until - OVERLAP,
                    None => now - BACKFILL,
                };
                (since.min(until), until, None)
            }
        };
        let (mut orders, mut written) = (0u64, 0u64);
        loop {
            // A disconnect while syncing stops it at the next page: nothing more is fetched.
            if next_token.is_some()
                && self
                    .store
                    .amazon_connection(m)
                    .await?
                    .is_none_or(|c| c.connection_id != conn.connection_id)
            {
                return Ok(SyncOutcome::NotConnected);
            }
            let query = OrdersQuery {
                marketplace_ids: vec![conn.marketplace_id.clone()],
                last_updated_after: since,
                next_token: next_token.take(),
            };
            let page = match client.get_orders(&refresh, &query).await {
                Ok(p) => p,
                Err(PlatformError::Lwa { error, .. }) if error == "invalid_grant" => {
                    self.store
                        .mark_amazon_token_invalid(m, &conn.connection_id)
                        .await?;
                    return Ok(SyncOutcome::TokenRefused);
                }
                Err(e @ PlatformError::RateLimited { .. }) => {
                    // Keep what was read: the queue's next try goes on from this page.
                    if let Some(token) = query.next_token {
                        let state = SyncState {
                            synced_until: previous
                                .as_ref()
                                .map_or(since + OVERLAP, |p| p.synced_until),
                            last_run_at: now,
                            orders_seen: orders,
                            resume: Some(SyncResume {
                                since,
                                until,
                                next_token: token,
                            }),
                        };
                        self.save(m, &conn.connection_id, &state).await?;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            orders += page.orders.len() as u64;
            let facts: Vec<_> = page.orders.iter().filter_map(order_facts).collect();
            if facts.len() < page.orders.len() {
                tracing::warn!(
                    skipped = page.orders.len() - facts.len(),
                    "orders Amazon sent could not be read"
                );
            }
            let store = &self.store;
            let results: Vec<Result<bool, AwsError>> = futures::stream::iter(facts)
                .map(|f| async move { store.upsert_order(m, &f).await })
                .buffer_unordered(WRITES_IN_FLIGHT)
                .collect()
                .await;
            for r in results {
                written += u64::from(r?);
            }
            match page.next_token {
                Some(t) => next_token = Some(t),
                None => break,
            }
        }
        let state = SyncState {
            synced_until: until,
            last_run_at: now,
            orders_seen: orders,
            resume: None,
        };
        self.save(m, &conn.connection_id, &state).await?;
        Ok(SyncOutcome::Synced { orders, written })
    }

    async fn save(
        &self,
        m: &ecomdrive_core::ids::MerchantId,
        connection: &ecomdrive_core::ids::AmazonConnectionId,
        state: &SyncState,
    ) -> Result<(), SyncError> {
        match self.store.save_sync_state(m, connection, state).await {
            // Disconnected while syncing: the watermark goes with the connection.
            Ok(()) | Err(AwsError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Amazon's order as EcomDrive keeps it; `None` for an order we cannot identify.
pub fn order_facts(o: &AmazonOrder) -> Option<AmazonOrderFacts> {
    Some(AmazonOrderFacts {
        order_id: AmazonOrderId::parse(&o.amazon_order_id)?,
        marketplace_id: o.marketplace_id.clone()?,
        status: OrderStatus::parse(&o.order_status),
        fulfillment_channel: match o.fulfillment_channel.as_deref() {
            Some("AFN") => Some(FulfillmentChannel::Amazon),
            Some("MFN") => Some(FulfillmentChannel::Merchant),
            _ => None,
        },
        purchase_date: o.purchase_date,
        last_update_date: o.last_update_date,
        earliest_delivery_date: o.earliest_delivery_date,
        latest_delivery_date: o.latest_delivery_date,
        is_replacement_order: o.is_replacement_order.unwrap_or(false),
        replaced_order_id: o.replaced_order_id.clone(),
        total: o.order_total.as_ref().and_then(|t| {
            Some(Money {
                currency: t.currency_code.clone(),
                amount: t.amount.parse().ok()?,
            })
        }),
    })
}
