//! Amazon in the store (POLICY A2, A7, A10, A11): the seller connection (refresh token as KMS
//! ciphertext only), synced orders, each order's review request and the merchant's settings, the
//! order-sync watermark and the per-seller pacing buckets.
//!
//! The review request of an order is sent at most once, ever: a sender first *claims* the
//! record (conditional write, with a lease), marks an attempt as started before calling Amazon,
//! and finishes the record only while it still holds the claim. An attempt whose answer was lost
//! stays marked (`unanswered_attempt`), so the next sender asks Amazon before doing anything.

use super::kinds::RecordKind;
use super::{
    CursorScope, Page, Store, StoreResult, decode_cursor, encode_cursor, keys, n, now_ms, rfc3339,
    s,
};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use ecomdrive_core::amazon::jobs::MerchantJob;
use ecomdrive_core::amazon::order::{AmazonOrderFacts, Order, OrderItem, OrderMarks};
use ecomdrive_core::amazon::pacing::{Rate, TokenBucket};
use ecomdrive_core::amazon::solicitation::{CLAIM_LEASE, SolicitationSettings, SolicitationStatus};
use ecomdrive_core::amazon::{AmazonOrderId, SellingPartnerId, iso_date};
use ecomdrive_core::ids::{AmazonConnectionId, ConversationId, CustomerId, MerchantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

/// A merchant's live Amazon connection. Deleted (token and all) on disconnect.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AmazonConnection {
    pub merchant_id: MerchantId,
    /// Changes on every connect: queued jobs of an older connection do nothing.
    pub connection_id: AmazonConnectionId,
    pub selling_partner_id: SellingPartnerId,
    pub marketplace_id: String,
    /// KMS ciphertext (base64) of the LWA refresh token, bound to merchant and selling partner.
    pub refresh_token_ciphertext: String,
    /// False once LWA refused the refresh token: the merchant must connect again.
    #[serde(default = "yes")]
    pub token_valid: bool,
    pub connected_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
struct MerchantRef {
    merchant_id: MerchantId,
}

/// Where the last order sync got to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncState {
    /// The next sync asks for orders updated after this (minus an overlap).
    #[serde(with = "time::serde::rfc3339")]
    pub synced_until: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_run_at: OffsetDateTime,
    pub orders_seen: u64,
    /// A sync that Amazon's rate limit stopped part-way: the next one goes on from here
    /// instead of starting over (getOrders allows a burst of 20 pages, then one a minute).
    #[serde(default)]
    pub resume: Option<SyncResume>,
}

/// Where a stopped sync goes on: its window and the next page's token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncResume {
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub next_token: String,
}

/// One order's review request as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Solicitation {
    pub order_id: AmazonOrderId,
    pub marketplace_id: String,
    pub status: SolicitationStatus,
    pub reason: Option<String>,
    /// The marketplace day planned for (scheduled) or the day of the last change.
    #[serde(with = "iso_date::option", default)]
    pub day: Option<Date>,
    /// The marketplace day Amazon last said "not today".
    #[serde(with = "iso_date::option", default)]
    pub not_eligible_on: Option<Date>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub sent_at: Option<OffsetDateTime>,
    /// An attempt reached (or may have reached) Amazon without an answer we saw.
    #[serde(default)]
    pub unanswered_attempt: bool,
    /// The sender holding the record, and since when (unix ms).
    pub claim_token: Option<String>,
    pub claimed_at_ms: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// How a sender ends its claim.
#[derive(Clone, Debug)]
pub struct SolicitationOutcome {
    pub status: SolicitationStatus,
    pub reason: Option<String>,
    pub day: Date,
    pub not_eligible_on: Option<Date>,
    pub sent_at: Option<OffsetDateTime>,
}

/// An order linked to a conversation (POLICY E9).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderLink {
    pub order_id: AmazonOrderId,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
}

#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub marketplace_id: Option<String>,
}

impl Store {
    // ---- connection ---------------------------------------------------------------------

    /// Stores a new connection (replacing the merchant's previous one) and lists the merchant
    /// for the scheduled jobs.
    ///
    /// A seller account is not reserved for one merchant: the `selling_partner_id` of Amazon's
    /// redirect is not signed, so a reservation by id would let anyone block a seller they do not
    /// own. What a connection can read is whatever its own refresh token grants, nothing more.
    pub async fn connect_amazon(&self, conn: &AmazonConnection) -> StoreResult<()> {
        let m = &conn.merchant_id;
        let mut tx = vec![
            self.tx_put(
                Self::item(
                    RecordKind::AmazonConnection,
                    keys::merchant_pk(m),
                    keys::AMAZON_CONNECTION_SK.into(),
                    conn,
                )?,
                None,
            ),
            self.tx_put(
                Self::item(
                    RecordKind::AmazonConnectedIndex,
                    keys::AMAZON_CONNECTED_PK.into(),
                    keys::amazon_connected_sk(m),
                    &MerchantRef {
                        merchant_id: m.clone(),
                    },
                )?,
                None,
            ),
        ];
        // Another seller account starts from scratch: its first sync reaches back in full.
        if let Some(old) = self.amazon_connection(m).await?
            && old.selling_partner_id != conn.selling_partner_id
        {
            tx.push(self.tx_delete(keys::merchant_pk(m), keys::AMAZON_SYNC_SK.into(), false));
        }
        self.transact(tx, "connection changed meanwhile").await
    }

    pub async fn amazon_connection(&self, m: &MerchantId) -> StoreResult<Option<AmazonConnection>> {
        self.get(keys::merchant_pk(m), keys::AMAZON_CONNECTION_SK.into())
            .await
    }

    /// Disconnects: the token is deleted at once with the connection, the merchant leaves the
    /// scheduled jobs' list, and every queued job of this connection finds it gone.
    pub async fn disconnect_amazon(&self, m: &MerchantId) -> StoreResult<Option<AmazonConnection>> {
        let Some(conn) = self.amazon_connection(m).await? else {
            return Ok(None);
        };
        let tx = vec![
            self.tx_delete(
                keys::merchant_pk(m),
                keys::AMAZON_CONNECTION_SK.into(),
                false,
            ),
            self.tx_delete(
                keys::AMAZON_CONNECTED_PK.into(),
                keys::amazon_connected_sk(m),
                false,
            ),
            self.tx_delete(keys::merchant_pk(m), keys::AMAZON_SYNC_SK.into(), false),
        ];
        self.transact(tx, "connection changed meanwhile").await?;
        Ok(Some(conn))
    }

    /// LWA refused the refresh token (revoked by the seller, or expired): keep the connection
    /// visible as needing a reconnect, and stop using it.
    pub async fn mark_amazon_token_invalid(
        &self,
        m: &MerchantId,
        connection: &AmazonConnectionId,
    ) -> StoreResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::AMAZON_CONNECTION_SK,
            )))
            .update_expression("SET token_valid = :f")
            .condition_expression("connection_id = :c")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":c", s(connection.as_str()))
            .send()
            .await;
        super::written(res).map(|_| ())
    }

    /// Every merchant with a live Amazon connection (the scheduled jobs' fan-out).
    pub async fn amazon_connected_merchants(&self) -> StoreResult<Vec<MerchantId>> {
        self.query_prefix(keys::AMAZON_CONNECTED_PK.into(), "MERCHANT#", usize::MAX)
            .await?
            .into_iter()
            .map(|i| Self::parse::<MerchantRef>(i).map(|r| r.merchant_id))
            .collect()
    }

    /// A job for every merchant whose connection is live (the schedules' fan-outs).
    pub async fn live_amazon_jobs(&self) -> StoreResult<Vec<MerchantJob>> {
        let mut jobs = Vec::new();
        for m in self.amazon_connected_merchants().await? {
            if let Some(conn) = self.amazon_connection(&m).await?
                && conn.token_valid
            {
                jobs.push(MerchantJob {
                    merchant_id: m,
                    connection_id: conn.connection_id,
                });
            }
        }
        Ok(jobs)
    }

    pub async fn sync_state(&self, m: &MerchantId) -> StoreResult<Option<SyncState>> {
        self.get(keys::merchant_pk(m), keys::AMAZON_SYNC_SK.into())
            .await
    }

    /// Saves the sync watermark, only while the connection it was made with is still current.
    pub async fn save_sync_state(
        &self,
        m: &MerchantId,
        connection: &AmazonConnectionId,
        state: &SyncState,
    ) -> StoreResult<()> {
        let tx = vec![
            self.tx_put(
                Self::item(
                    RecordKind::AmazonSyncState,
                    keys::merchant_pk(m),
                    keys::AMAZON_SYNC_SK.into(),
                    state,
                )?,
                None,
            ),
            self.tx_condition_check(
                keys::merchant_pk(m),
                keys::AMAZON_CONNECTION_SK.into(),
                "connection_id = :c",
                vec![(":c", s(connection.as_str()))],
            ),
        ];
        self.transact(tx, "disconnected meanwhile").await
    }

    // ---- orders ---------------------------------------------------------------------------

    /// Writes Amazon's facts of an order, never replacing newer facts with older ones, and
    /// never touching what the merchant added (marks, links, items). True when written.
    pub async fn upsert_order(
        &self,
        m: &MerchantId,
        facts: &AmazonOrderFacts,
    ) -> StoreResult<bool> {
        let fields: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(facts).map_err(|e| AwsError::Corrupt(e.to_string()))?;
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = Vec::new();
        for (i, (k, v)) in fields.into_iter().enumerate() {
            names.insert(format!("#f{i}"), k);
            values.insert(format!(":f{i}"), v);
            sets.push(format!("#f{i} = :f{i}"));
        }
        let updated_ms = now_ms(facts.last_update_date);
        let now = OffsetDateTime::now_utc();
        for (k, v) in [
            ("last_update_ms", n(updated_ms)),
            ("synced_at", s(rfc3339(now))),
            (keys::KIND, s(RecordKind::Order.as_str())),
            (keys::GSI1PK, s(keys::orders_by_purchase_pk(m))),
            (
                keys::GSI1SK,
                s(keys::orders_by_purchase_sk(
                    now_ms(facts.purchase_date),
                    &facts.order_id,
                )),
            ),
        ] {
            let i = names.len();
            names.insert(format!("#f{i}"), k.to_owned());
            values.insert(format!(":f{i}"), v);
            sets.push(format!("#f{i} = :f{i}"));
        }
        values.insert(":updated".into(), n(updated_ms));
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::order_sk(&facts.order_id),
            )))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("attribute_not_exists(PK) OR last_update_ms <= :updated")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        super::written(res)
    }

    /// One order with its links.
    pub async fn order(&self, m: &MerchantId, id: &AmazonOrderId) -> StoreResult<Option<Order>> {
        let Some(order) = self
            .get::<Order>(keys::merchant_pk(m), keys::order_sk(id))
            .await?
        else {
            return Ok(None);
        };
        let links = self.order_links(m, &keys::order_links_prefix(id)).await?;
        Ok(Self::with_links(vec![order], links).pop())
    }

    /// Every order of the merchant with its links (the scheduler's input), in sort-key order.
    pub async fn all_orders(&self, m: &MerchantId) -> StoreResult<Vec<Order>> {
        let orders = self
            .query_prefix(keys::merchant_pk(m), keys::ORDER_PREFIX, usize::MAX)
            .await?
            .into_iter()
            .map(Self::parse)
            .collect::<StoreResult<Vec<Order>>>()?;
        let links = self.order_links(m, keys::ORDER_LINK_PREFIX).await?;
        Ok(Self::with_links(orders, links))
    }

    /// Orders, most recent purchase first.
    pub async fn list_orders(
        &self,
        m: &MerchantId,
        filter: &OrderFilter,
        cursor: Option<&str>,
        limit: i32,
    ) -> StoreResult<Page<Order>> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::orders_by_purchase_pk(m)))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(
                cursor
                    .map(|c| decode_cursor(c, m, CursorScope::Orders))
                    .transpose()?,
            );
        let mut conditions = Vec::new();
        if let Some(st) = &filter.status {
            conditions.push("#s = :status");
            q = q
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":status", s(st));
        }
        if let Some(mp) = &filter.marketplace_id {
            conditions.push("marketplace_id = :mp");
            q = q.expression_attribute_values(":mp", s(mp));
        }
        if !conditions.is_empty() {
            q = q.filter_expression(conditions.join(" AND "));
        }
        let out = q.send().await.map_err(AwsError::dynamo)?;
        let orders = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Self::parse)
            .collect::<StoreResult<Vec<Order>>>()?;
        let links = if orders.is_empty() {
            Vec::new()
        } else {
            self.order_links(m, keys::ORDER_LINK_PREFIX).await?
        };
        Ok(Page {
            items: Self::with_links(orders, links),
            next_cursor: out.last_evaluated_key.as_ref().and_then(encode_cursor),
        })
    }

    pub async fn set_order_marks(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        marks: &OrderMarks,
    ) -> StoreResult<Order> {
        let marks = serde_dynamo::to_attribute_value(marks)
            .map_err(|e| AwsError::Corrupt(e.to_string()))?;
        self.update_order(m, id, "SET marks = :v", vec![(":v", marks)])
            .await
    }

    pub async fn set_order_items(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        items: &[OrderItem],
    ) -> StoreResult<Order> {
        let items = serde_dynamo::to_attribute_value(items)
            .map_err(|e| AwsError::Corrupt(e.to_string()))?;
        self.update_order(m, id, "SET #items = :v", vec![(":v", items)])
            .await
    }

    /// POLICY E9: an order linked to a conversation shows the conversation and its customer.
    /// The link is its own record, so a link made before order sync has seen the order (a
    /// just-placed one) shows as soon as the order arrives.
    pub async fn link_order_to_conversation(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        conversation: &ConversationId,
        customer: &CustomerId,
    ) -> StoreResult<()> {
        let link = OrderLink {
            order_id: id.clone(),
            conversation_id: conversation.clone(),
            customer_id: customer.clone(),
        };
        self.put(Self::item(
            RecordKind::OrderLink,
            keys::merchant_pk(m),
            keys::order_link_sk(id, conversation),
            &link,
        )?)
        .await
    }

    async fn order_links(&self, m: &MerchantId, prefix: &str) -> StoreResult<Vec<OrderLink>> {
        self.query_prefix(keys::merchant_pk(m), prefix, usize::MAX)
            .await?
            .into_iter()
            .map(Self::parse)
            .collect()
    }

    /// Fills each order's conversations and customers from the link records.
    fn with_links(mut orders: Vec<Order>, links: Vec<OrderLink>) -> Vec<Order> {
        let mut by_order: HashMap<AmazonOrderId, Vec<OrderLink>> = HashMap::new();
        for l in links {
            by_order.entry(l.order_id.clone()).or_default().push(l);
        }
        for o in &mut orders {
            for l in by_order.remove(&o.facts.order_id).unwrap_or_default() {
                if !o.conversation_ids.contains(&l.conversation_id) {
                    o.conversation_ids.push(l.conversation_id);
                }
                if !o.customer_ids.contains(&l.customer_id) {
                    o.customer_ids.push(l.customer_id);
                }
            }
        }
        orders
    }

    async fn update_order(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Order> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::merchant_pk(m), keys::order_sk(id))))
            .update_expression(expression)
            .condition_expression("attribute_exists(PK)")
            .return_values(ReturnValue::AllNew);
        if expression.contains("#items") {
            req = req.expression_attribute_names("#items", "items");
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(out) => Self::parse(out.attributes.unwrap_or_default()),
            Err(e) if super::is_condition_failed(&e) => Err(AwsError::NotFound),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    // ---- settings ---------------------------------------------------------------------------

    /// The merchant's settings; the defaults (requests off) until the merchant saves some.
    pub async fn solicitation_settings(&self, m: &MerchantId) -> StoreResult<SolicitationSettings> {
        Ok(self
            .get(keys::merchant_pk(m), keys::SOLICITATION_SETTINGS_SK.into())
            .await?
            .unwrap_or_default())
    }

    pub async fn save_solicitation_settings(
        &self,
        m: &MerchantId,
        settings: &SolicitationSettings,
    ) -> StoreResult<()> {
        self.put(Self::item(
            RecordKind::SolicitationSettings,
            keys::merchant_pk(m),
            keys::SOLICITATION_SETTINGS_SK.into(),
            settings,
        )?)
        .await
    }

    // ---- review requests ----------------------------------------------------------------------

    pub async fn solicitation(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
    ) -> StoreResult<Option<Solicitation>> {
        self.get(keys::merchant_pk(m), keys::solicitation_sk(id))
            .await
    }

    pub async fn all_solicitations(&self, m: &MerchantId) -> StoreResult<Vec<Solicitation>> {
        self.query_prefix(keys::merchant_pk(m), keys::SOLICITATION_PREFIX, usize::MAX)
            .await?
            .into_iter()
            .map(Self::parse)
            .collect()
    }

    /// The per-order list, by order id, optionally of one status.
    pub async fn list_solicitations(
        &self,
        m: &MerchantId,
        status: Option<SolicitationStatus>,
        cursor: Option<&str>,
        limit: i32,
    ) -> StoreResult<Page<Solicitation>> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
            .expression_attribute_values(":pk", s(keys::merchant_pk(m)))
            .expression_attribute_values(":p", s(keys::SOLICITATION_PREFIX))
            .limit(limit)
            .set_exclusive_start_key(
                cursor
                    .map(|c| decode_cursor(c, m, CursorScope::Solicitations))
                    .transpose()?,
            );
        if let Some(st) = status {
            q = q
                .filter_expression("#s = :status")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":status", s(st.as_str()));
        }
        let out = q.send().await.map_err(AwsError::dynamo)?;
        Ok(Page {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(Self::parse)
                .collect::<StoreResult<_>>()?,
            next_cursor: out.last_evaluated_key.as_ref().and_then(encode_cursor),
        })
    }

    /// The scheduler's verdict (as of `record.updated_at`). Never overwrites a final status, a
    /// record a sender holds (within its lease), or one
    /// whose last attempt's answer was lost (the sender settles that with Amazon first); false
    /// when it did not write.
    pub async fn record_solicitation_decision(
        &self,
        m: &MerchantId,
        record: &Solicitation,
    ) -> StoreResult<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::solicitation_sk(&record.order_id),
            )))
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#d", "day")
            .expression_attribute_values(":s", s(record.status.as_str()))
            .expression_attribute_values(":mp", s(record.marketplace_id.as_str()))
            .expression_attribute_values(":o", s(record.order_id.as_str()))
            .expression_attribute_values(":now", s(rfc3339(record.updated_at)))
            .expression_attribute_values(":kind", s(RecordKind::Solicitation.as_str()))
            .expression_attribute_values(":sent", s(SolicitationStatus::Sent.as_str()))
            .expression_attribute_values(":failed", s(SolicitationStatus::Failed.as_str()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(
                ":stale",
                n(now_ms(record.updated_at - CLAIM_LEASE)),
            )
            .condition_expression(
                "attribute_not_exists(PK) OR (NOT #s IN (:sent, :failed) AND (attribute_not_exists(claim_token) OR claimed_at_ms < :stale) AND NOT unanswered_attempt = :yes)",
            );
        let mut sets = vec![
            "#s = :s",
            "marketplace_id = :mp",
            "order_id = :o",
            "updated_at = :now",
            "kind = :kind",
        ];
        let mut removes = Vec::new();
        match &record.reason {
            Some(r) => {
                sets.push("reason = :r");
                req = req.expression_attribute_values(":r", s(r.as_str()));
            }
            None => removes.push("reason"),
        }
        match record.day {
            Some(d) => {
                sets.push("#d = :d");
                req = req.expression_attribute_values(":d", s(d.to_string()));
            }
            None => removes.push("#d"),
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        super::written(req.update_expression(expr).send().await)
    }

    /// Claims the order's request for one sender. `None` when it is not claimable: final,
    /// excluded meanwhile, or held by another sender whose lease has not run out.
    pub async fn claim_solicitation(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        token: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> StoreResult<Option<Solicitation>> {
        let now_ms = now_ms(now);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::solicitation_sk(id),
            )))
            .update_expression("SET claim_token = :t, claimed_at_ms = :now")
            .condition_expression(
                "#s IN (:scheduled, :not_eligible) AND (attribute_not_exists(claim_token) OR claimed_at_ms < :stale)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":stale", n(now_ms - lease.whole_milliseconds() as i64))
            .expression_attribute_values(":scheduled", s(SolicitationStatus::Scheduled.as_str()))
            .expression_attribute_values(":not_eligible", s(SolicitationStatus::NotEligible.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => Self::parse(out.attributes.unwrap_or_default()).map(Some),
            Err(e) if super::is_condition_failed(&e) => Ok(None),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// Written right before the request goes to Amazon: from here on, a lost answer means
    /// "maybe sent", and the next sender asks Amazon first.
    pub async fn mark_solicitation_attempt(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        token: &str,
    ) -> StoreResult<()> {
        self.update_claimed(
            m,
            id,
            token,
            "SET unanswered_attempt = :y",
            vec![(":y", AttributeValue::Bool(true))],
        )
        .await
    }

    /// Lets go of the claim without deciding (Amazon busy, answer lost): the queue retries.
    pub async fn release_solicitation(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        token: &str,
        attempt_unanswered: bool,
    ) -> StoreResult<()> {
        self.update_claimed(
            m,
            id,
            token,
            "SET unanswered_attempt = :u REMOVE claim_token, claimed_at_ms",
            vec![(":u", AttributeValue::Bool(attempt_unanswered))],
        )
        .await
    }

    /// Ends the claim with the outcome.
    pub async fn finish_solicitation(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        token: &str,
        outcome: &SolicitationOutcome,
    ) -> StoreResult<()> {
        let mut sets = vec![
            "#s = :s",
            "#d = :d",
            "updated_at = :now",
            "unanswered_attempt = :f",
        ];
        let mut removes = vec!["claim_token", "claimed_at_ms"];
        let mut values = vec![
            (":s", s(outcome.status.as_str())),
            (":d", s(outcome.day.to_string())),
            (":now", s(rfc3339(OffsetDateTime::now_utc()))),
            (":f", AttributeValue::Bool(false)),
        ];
        match &outcome.reason {
            Some(r) => {
                sets.push("reason = :r");
                values.push((":r", s(r.as_str())));
            }
            None => removes.push("reason"),
        }
        if let Some(d) = outcome.not_eligible_on {
            sets.push("not_eligible_on = :ne");
            values.push((":ne", s(d.to_string())));
        }
        if let Some(t) = outcome.sent_at {
            sets.push("sent_at = :sent");
            values.push((":sent", s(rfc3339(t))));
        }
        let expr = format!("SET {} REMOVE {}", sets.join(", "), removes.join(", "));
        self.update_claimed(m, id, token, &expr, values).await
    }

    async fn update_claimed(
        &self,
        m: &MerchantId,
        id: &AmazonOrderId,
        token: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<()> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::solicitation_sk(id),
            )))
            .update_expression(expression)
            .condition_expression("claim_token = :token")
            .expression_attribute_values(":token", s(token));
        if expression.contains("#s") {
            req = req.expression_attribute_names("#s", "status");
        }
        if expression.contains("#d") {
            req = req.expression_attribute_names("#d", "day");
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if super::is_condition_failed(&e) => {
                Err(AwsError::Conflict("the claim was lost to another sender"))
            }
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    // ---- pacing -----------------------------------------------------------------------------

    /// Takes one request's token from the merchant's bucket for `operation`, shared by every
    /// Lambda instance: `Ok` to go now, `Err(ms)` to wait that long first.
    pub async fn take_pace_token(
        &self,
        m: &MerchantId,
        operation: &str,
        rate: Rate,
        now: OffsetDateTime,
    ) -> StoreResult<Result<(), u64>> {
        let now = now_ms(now);
        for _ in 0..10 {
            let current: Option<TokenBucket> = self
                .get(keys::merchant_pk(m), keys::pace_sk(operation))
                .await?;
            let start = current.unwrap_or(TokenBucket::full(rate, now));
            let next = match start.take(rate, now) {
                Ok(next) => next,
                Err(wait) => return Ok(Err(wait)),
            };
            let mut req = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::item(
                    RecordKind::Pace,
                    keys::merchant_pk(m),
                    keys::pace_sk(operation),
                    &next,
                )?));
            req = match current {
                None => req.condition_expression("attribute_not_exists(PK)"),
                Some(b) => req
                    .condition_expression("at_ms = :at AND milli_tokens = :mt")
                    .expression_attribute_values(":at", n(b.at_ms))
                    .expression_attribute_values(":mt", n(b.milli_tokens)),
            };
            match req.send().await {
                Ok(_) => return Ok(Ok(())),
                Err(e) if super::is_condition_failed(&e) => continue,
                Err(e) => return Err(AwsError::dynamo(e)),
            }
        }
        // Ten others took tokens meanwhile: certainly worth waiting a little.
        Ok(Err(200))
    }
}
