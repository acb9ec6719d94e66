//! Customers, conversations and messages in the store (POLICY E5, E9, E10).
//!
//! Ingest is idempotent by Meta's `mid`: a message is written in one transaction with a `MID#`
//! marker that must not exist yet, so a redelivered webhook or a reprocessed SQS record writes
//! nothing new. Conversations carry a `version` for optimistic concurrency between ingest workers.

use super::kinds::RecordKind;
use super::{
    CursorScope, Page, Store, StoreResult, decode_cursor, encode_cursor, keys, now_ms, rfc3339, s,
};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::{
    ConversationId, CustomerId, MerchantId, MessageId, Mid, PageId, Psid, UserId,
};
use ecomdrive_core::inbox::{
    Channel, Conversation, ConversationStatus, Customer, CustomerMessageEffect, Direction, Message,
    MessageStatus, StoredAttachment,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A customer as stored: the record plus which conversation is theirs now.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CustomerItem {
    #[serde(flatten)]
    customer: Customer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_conversation_id: Option<ConversationId>,
    #[serde(default)]
    order_refs: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ConversationItem {
    #[serde(flatten)]
    conversation: Conversation,
    #[serde(default)]
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct MidMarker {
    conversation_id: ConversationId,
    message_id: MessageId,
}

#[derive(Serialize, Deserialize)]
struct ReplyKey {
    message_id: MessageId,
}

/// A message arriving from the platform, before it has a conversation.
#[derive(Clone, Debug)]
pub struct IncomingMessage {
    pub page: PageId,
    pub psid: Psid,
    pub mid: Mid,
    pub at: OffsetDateTime,
    pub direction: Direction,
    pub text: Option<String>,
    pub attachments: Vec<StoredAttachment>,
    pub postback_payload: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingested {
    Stored(Box<Message>),
    /// This `mid` was stored before: nothing was written.
    Duplicate,
}

#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    pub assignee: Option<UserId>,
}

/// A customer with the orders linked to their conversations (POLICY E9, both sides of the link).
#[derive(Clone, Debug, Serialize)]
pub struct CustomerView {
    #[serde(flatten)]
    pub customer: Customer,
    pub current_conversation_id: Option<ConversationId>,
    pub order_refs: Vec<String>,
}

const MAX_OPTIMISTIC_RETRIES: u32 = 8;

/// Before retrying a write that lost a race: a short, growing, jittered pause, so writers that
/// collided (a burst of messages from one customer in one batch) do not collide again at once.
async fn back_off(attempt: u32) {
    let jitter = u64::from(OffsetDateTime::now_utc().nanosecond() % 10);
    let ms = 5 * u64::from(attempt + 1) + jitter;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

impl Store {
    fn conversation_item(c: &ConversationItem) -> StoreResult<super::Item> {
        let conv = &c.conversation;
        let mut item = Self::item(
            RecordKind::Conversation,
            keys::merchant_pk(&conv.merchant_id),
            keys::conversation_sk(&conv.id),
            c,
        )?;
        item.insert(
            keys::GSI1PK.into(),
            s(keys::conversations_by_activity_pk(&conv.merchant_id)),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(keys::conversations_by_activity_sk(
                now_ms(conv.last_activity_at),
                &conv.id,
            )),
        );
        Ok(item)
    }

    fn message_item(msg: &Message) -> StoreResult<super::Item> {
        Self::item(
            RecordKind::Message,
            keys::merchant_pk(&msg.merchant_id),
            keys::message_sk(&msg.conversation_id, &msg.id),
            msg,
        )
    }

    async fn mid_marker(&self, m: &MerchantId, mid: &Mid) -> StoreResult<Option<MidMarker>> {
        self.get(keys::merchant_pk(m), keys::mid_sk(mid)).await
    }

    async fn customer_item(
        &self,
        m: &MerchantId,
        id: &CustomerId,
    ) -> StoreResult<Option<CustomerItem>> {
        self.get(keys::merchant_pk(m), keys::customer_sk(id)).await
    }

    async fn ensure_customer(
        &self,
        m: &MerchantId,
        page: &PageId,
        psid: &Psid,
    ) -> StoreResult<CustomerItem> {
        let id = keys::customer_id_for(m, page, psid);
        if let Some(c) = self.customer_item(m, &id).await? {
            return Ok(c);
        }
        let item = CustomerItem {
            customer: Customer {
                id: id.clone(),
                merchant_id: m.clone(),
                channel: Channel::Messenger,
                page_id: page.clone(),
                psid: psid.clone(),
                name: None,
                email: None,
                phone: None,
                notes: None,
                created_at: OffsetDateTime::now_utc(),
            },
            current_conversation_id: None,
            order_refs: Vec::new(),
        };
        match self
            .put_new(
                Self::item(
                    RecordKind::Customer,
                    keys::merchant_pk(m),
                    keys::customer_sk(&id),
                    &item,
                )?,
                "customer exists",
            )
            .await
        {
            Ok(()) => Ok(item),
            Err(AwsError::Conflict(_)) => {
                self.customer_item(m, &id).await?.ok_or(AwsError::NotFound)
            }
            Err(e) => Err(e),
        }
    }

    async fn conversation_item_of(
        &self,
        m: &MerchantId,
        id: &ConversationId,
    ) -> StoreResult<Option<ConversationItem>> {
        self.get(keys::merchant_pk(m), keys::conversation_sk(id))
            .await
    }

    /// Stores a message from the platform in the customer's conversation, once per `mid`.
    /// Inbound messages (and postbacks) open or reopen the conversation and move the messaging
    /// window; outbound ones (typed in Meta's own inbox) only add to it.
    pub async fn ingest_message(
        &self,
        m: &MerchantId,
        msg: IncomingMessage,
    ) -> StoreResult<Ingested> {
        for attempt in 0..MAX_OPTIMISTIC_RETRIES {
            if self.mid_marker(m, &msg.mid).await?.is_some() {
                return Ok(Ingested::Duplicate);
            }
            let customer = self.ensure_customer(m, &msg.page, &msg.psid).await?;
            let current = match &customer.current_conversation_id {
                Some(id) => self.conversation_item_of(m, id).await?,
                None => None,
            };
            let inbound = msg.direction == Direction::Inbound;
            let starts_new = match &current {
                None => true,
                Some(c) => {
                    inbound
                        && c.conversation.status.on_customer_message()
                            == CustomerMessageEffect::StartNew
                }
            };
            let at_ms = u64::try_from(now_ms(msg.at)).unwrap_or(0);
            let (mut conv, version) = match (&current, starts_new) {
                (Some(c), false) => (c.conversation.clone(), Some(c.version)),
                _ => (
                    Conversation {
                        id: ConversationId::generate(),
                        merchant_id: m.clone(),
                        channel: Channel::Messenger,
                        customer_id: customer.customer.id.clone(),
                        page_id: msg.page.clone(),
                        psid: msg.psid.clone(),
                        status: ConversationStatus::Open,
                        assignee: None,
                        order_refs: Vec::new(),
                        created_at: msg.at,
                        last_activity_at: msg.at,
                        last_customer_message_at: None,
                    },
                    None,
                ),
            };
            if msg.at > conv.last_activity_at {
                conv.last_activity_at = msg.at;
            }
            if inbound {
                conv.status = ConversationStatus::Open;
                if conv.last_customer_message_at.is_none_or(|t| msg.at > t) {
                    conv.last_customer_message_at = Some(msg.at);
                }
            }
            let message = Message {
                id: MessageId::generate_at(at_ms),
                merchant_id: m.clone(),
                conversation_id: conv.id.clone(),
                direction: msg.direction,
                text: msg.text.clone(),
                attachments: msg.attachments.clone(),
                status: if inbound {
                    MessageStatus::Received
                } else {
                    MessageStatus::Sent
                },
                mid: Some(msg.mid.clone()),
                author: None,
                postback_payload: msg.postback_payload.clone(),
                reaction: None,
                created_at: msg.at,
                error: None,
                attempts: 0,
                attempt_started_at: None,
            };
            let marker = MidMarker {
                conversation_id: conv.id.clone(),
                message_id: message.id.clone(),
            };
            let pk = keys::merchant_pk(m);
            let mut tx = vec![
                self.tx_put(
                    Self::item(
                        RecordKind::MidMarker,
                        pk.clone(),
                        keys::mid_sk(&msg.mid),
                        &marker,
                    )?,
                    Some("attribute_not_exists(PK)"),
                ),
                self.tx_put(Self::message_item(&message)?, None),
            ];
            let next = ConversationItem {
                conversation: conv.clone(),
                version: version.map_or(0, |v| v + 1),
            };
            match version {
                Some(v) => {
                    let mut put =
                        self.tx_put(Self::conversation_item(&next)?, Some("version = :v"));
                    if let Some(p) = put.put.as_mut() {
                        p.expression_attribute_values =
                            Some([(":v".to_owned(), AttributeValue::N(v.to_string()))].into());
                    }
                    tx.push(put);
                }
                None => {
                    tx.push(self.tx_put(
                        Self::conversation_item(&next)?,
                        Some("attribute_not_exists(PK)"),
                    ));
                    // The customer's current conversation moves only if nobody moved it meanwhile.
                    let expected = customer
                        .current_conversation_id
                        .as_ref()
                        .map(ToString::to_string);
                    let mut upd = self.tx_update(
                        pk.clone(),
                        keys::customer_sk(&customer.customer.id),
                        "SET current_conversation_id = :new",
                        vec![(":new", s(&conv.id))],
                        Some(if expected.is_some() {
                            "current_conversation_id = :old"
                        } else {
                            "attribute_not_exists(current_conversation_id)"
                        }),
                    );
                    if let (Some(u), Some(old)) = (upd.update.as_mut(), expected) {
                        u.expression_attribute_values
                            .get_or_insert_with(Default::default)
                            .insert(":old".into(), AttributeValue::S(old));
                    }
                    tx.push(upd);
                }
            }
            match self.transact(tx, "changed meanwhile").await {
                Ok(()) => return Ok(Ingested::Stored(Box::new(message))),
                Err(AwsError::Conflict(_)) => back_off(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(AwsError::Conflict(
            "conversation kept changing; the record will be retried",
        ))
    }

    /// An echo of a reply we sent (its metadata named it): the reply is `sent`, with Meta's id.
    /// Returns false when the echo's mid was recorded before (nothing to do).
    pub async fn confirm_reply(
        &self,
        m: &MerchantId,
        conversation: &ConversationId,
        message: &MessageId,
        mid: &Mid,
    ) -> StoreResult<bool> {
        let Some(msg) = self.message(m, conversation, message).await? else {
            return Err(AwsError::NotFound);
        };
        self.record_sent(&msg, mid).await
    }

    /// Marks a reply sent with Meta's `message_id`, once: the Send API answer and the echo may
    /// both report it, in either order.
    pub async fn record_sent(&self, msg: &Message, mid: &Mid) -> StoreResult<bool> {
        let pk = keys::merchant_pk(&msg.merchant_id);
        let marker = MidMarker {
            conversation_id: msg.conversation_id.clone(),
            message_id: msg.id.clone(),
        };
        let mut update = self.tx_update(
            pk.clone(),
            keys::message_sk(&msg.conversation_id, &msg.id),
            "SET #s = :sent, mid = :mid",
            vec![
                (":sent", s("sent")),
                (":mid", s(mid)),
                (":q", s("queued")),
                (":sending", s("sending")),
                (":failed", s("failed")),
            ],
            Some("attribute_exists(PK) AND (#s IN (:q, :sending, :failed))"),
        );
        if let Some(u) = update.update.as_mut() {
            u.expression_attribute_names = Some([("#s".to_owned(), "status".to_owned())].into());
        }
        let tx = vec![
            self.tx_put(
                Self::item(RecordKind::MidMarker, pk, keys::mid_sk(mid), &marker)?,
                Some("attribute_not_exists(PK)"),
            ),
            update,
        ];
        match self.transact(tx, "already recorded").await {
            Ok(()) => Ok(true),
            Err(AwsError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The message stored for a `mid`, if any.
    pub async fn message_for_mid(&self, m: &MerchantId, mid: &Mid) -> StoreResult<Option<Message>> {
        match self.mid_marker(m, mid).await? {
            Some(marker) => {
                self.message(m, &marker.conversation_id, &marker.message_id)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Whether a `mid` is already stored (an echo of something we have).
    pub async fn knows_mid(&self, m: &MerchantId, mid: &Mid) -> StoreResult<bool> {
        Ok(self.mid_marker(m, mid).await?.is_some())
    }

    /// Moves the customer's outbound messages up to `watermark` to `to` (delivered or read).
    pub async fn apply_watermark(
        &self,
        m: &MerchantId,
        page: &PageId,
        psid: &Psid,
        watermark: OffsetDateTime,
        to: MessageStatus,
    ) -> StoreResult<usize> {
        let cid = keys::customer_id_for(m, page, psid);
        let Some(customer) = self.customer_item(m, &cid).await? else {
            return Ok(0);
        };
        let Some(conv) = customer.current_conversation_id else {
            return Ok(0);
        };
        let upper = MessageId::max_at(u64::try_from(now_ms(watermark)).unwrap_or(0));
        let res = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(keys::merchant_pk(m)))
            .expression_attribute_values(":lo", s(keys::messages_prefix(&conv)))
            .expression_attribute_values(":hi", s(keys::message_sk(&conv, &upper)))
            .scan_index_forward(false)
            .limit(200)
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        let mut moved = 0;
        for item in res.items.unwrap_or_default() {
            let msg: Message = Self::parse(item)?;
            if msg.direction != Direction::Outbound {
                continue;
            }
            let Some(next) = msg.status.advanced_by_watermark(to) else {
                continue;
            };
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(
                    keys::merchant_pk(m),
                    keys::message_sk(&conv, &msg.id),
                )))
                .update_expression("SET #s = :next")
                .condition_expression("#s = :was")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":next", s(next.as_str()))
                .expression_attribute_values(":was", s(msg.status.as_str()))
                .send()
                .await;
            match res {
                Ok(_) => moved += 1,
                Err(e) if super::is_condition_failed(&e) => {}
                Err(e) => return Err(AwsError::dynamo(e)),
            }
        }
        Ok(moved)
    }

    /// A customer's reaction to one of the messages we hold.
    pub async fn record_reaction(
        &self,
        m: &MerchantId,
        mid: &Mid,
        reaction: Option<&str>,
    ) -> StoreResult<bool> {
        let Some(marker) = self.mid_marker(m, mid).await? else {
            return Ok(false);
        };
        let key = Self::key(
            keys::merchant_pk(m),
            keys::message_sk(&marker.conversation_id, &marker.message_id),
        );
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            // Never create a partial message item for a message that is gone.
            .condition_expression("attribute_exists(PK)");
        let req = match reaction {
            Some(r) => req
                .update_expression("SET reaction = :r")
                .expression_attribute_values(":r", s(r)),
            None => req.update_expression("REMOVE reaction"),
        };
        super::written(req.send().await)
    }

    pub async fn set_attachment(
        &self,
        m: &MerchantId,
        conversation: &ConversationId,
        message: &MessageId,
        index: usize,
        attachment: &StoredAttachment,
    ) -> StoreResult<()> {
        let value: AttributeValue = serde_dynamo::to_attribute_value(attachment)
            .map_err(|e| AwsError::Corrupt(e.to_string()))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::message_sk(conversation, message),
            )))
            .update_expression(format!("SET attachments[{index}] = :a"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":a", value)
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(())
    }

    // ---- what the API reads and changes -------------------------------------------------------

    pub async fn conversation(
        &self,
        m: &MerchantId,
        id: &ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        Ok(self
            .conversation_item_of(m, id)
            .await?
            .map(|c| c.conversation))
    }

    /// Conversations, most recent activity first.
    pub async fn list_conversations(
        &self,
        m: &MerchantId,
        filter: &ConversationFilter,
        cursor: Option<&str>,
        limit: i32,
    ) -> StoreResult<Page<Conversation>> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::conversations_by_activity_pk(m)))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(
                cursor
                    .map(|c| decode_cursor(c, m, CursorScope::Conversations))
                    .transpose()?,
            );
        let mut conditions = Vec::new();
        if let Some(st) = filter.status {
            conditions.push("#s = :status");
            q = q
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(
                    ":status",
                    serde_dynamo::to_attribute_value(st)
                        .map_err(|e| AwsError::Corrupt(e.to_string()))?,
                );
        }
        if let Some(a) = &filter.assignee {
            conditions.push("assignee = :assignee");
            q = q.expression_attribute_values(":assignee", s(a));
        }
        if !conditions.is_empty() {
            q = q.filter_expression(conditions.join(" AND "));
        }
        let out = q.send().await.map_err(AwsError::dynamo)?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| Self::parse::<ConversationItem>(i).map(|c| c.conversation))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page {
            items,
            next_cursor: out.last_evaluated_key.as_ref().and_then(encode_cursor),
        })
    }

    /// Changes status and/or assignee (`Some(None)` unassigns).
    pub async fn update_conversation(
        &self,
        m: &MerchantId,
        id: &ConversationId,
        status: Option<ConversationStatus>,
        assignee: Option<Option<UserId>>,
    ) -> StoreResult<Conversation> {
        self.change_conversation(m, id, |c| {
            if let Some(st) = status {
                c.status = st;
            }
            if let Some(a) = &assignee {
                c.assignee = a.clone();
            }
            true
        })
        .await?
        .ok_or(AwsError::NotFound)
    }

    /// Reads, changes and writes back a conversation, retrying when another writer got there
    /// first (the `version` attribute). `change` returns false when there is nothing to write.
    /// None when the conversation does not exist.
    async fn change_conversation(
        &self,
        m: &MerchantId,
        id: &ConversationId,
        change: impl Fn(&mut Conversation) -> bool,
    ) -> StoreResult<Option<Conversation>> {
        for attempt in 0..MAX_OPTIMISTIC_RETRIES {
            let Some(mut c) = self.conversation_item_of(m, id).await? else {
                return Ok(None);
            };
            if !change(&mut c.conversation) {
                return Ok(Some(c.conversation));
            }
            let version = c.version;
            c.version += 1;
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::conversation_item(&c)?))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(Some(c.conversation)),
                Err(e) if super::is_condition_failed(&e) => back_off(attempt).await,
                Err(e) => return Err(AwsError::dynamo(e)),
            }
        }
        Err(AwsError::Conflict("conversation kept changing"))
    }

    /// Links an order reference to a conversation; the customer shows it too (POLICY E9).
    pub async fn link_order(
        &self,
        m: &MerchantId,
        id: &ConversationId,
        order_ref: &str,
    ) -> StoreResult<Conversation> {
        let conv = self.conversation(m, id).await?.ok_or(AwsError::NotFound)?;
        if conv.order_refs.iter().any(|o| o == order_ref) {
            return Ok(conv);
        }
        let pk = keys::merchant_pk(m);
        let list = AttributeValue::L(vec![s(order_ref)]);
        let empty = AttributeValue::L(vec![]);
        let tx = vec![
            self.tx_update(
                pk.clone(),
                keys::conversation_sk(id),
                "SET order_refs = list_append(if_not_exists(order_refs, :empty), :o), version = version + :one",
                vec![(":o", list.clone()), (":empty", empty.clone()), (":one", AttributeValue::N("1".into()))],
                Some("attribute_exists(PK)"),
            ),
            self.tx_update(
                pk,
                keys::customer_sk(&conv.customer_id),
                "SET order_refs = list_append(if_not_exists(order_refs, :empty), :o)",
                vec![(":o", list), (":empty", empty)],
                Some("attribute_exists(PK)"),
            ),
        ];
        self.transact(tx, "conversation or customer missing")
            .await?;
        self.conversation(m, id).await?.ok_or(AwsError::NotFound)
    }

    pub async fn customer(
        &self,
        m: &MerchantId,
        id: &CustomerId,
    ) -> StoreResult<Option<CustomerView>> {
        Ok(self.customer_item(m, id).await?.map(|c| CustomerView {
            customer: c.customer,
            current_conversation_id: c.current_conversation_id,
            order_refs: c.order_refs,
        }))
    }

    /// Corrects what the merchant knows about a customer (POLICY A19: correction).
    pub async fn update_customer(
        &self,
        m: &MerchantId,
        id: &CustomerId,
        name: Option<Option<String>>,
        email: Option<Option<String>>,
        phone: Option<Option<String>>,
        notes: Option<Option<String>>,
    ) -> StoreResult<CustomerView> {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::merchant_pk(m), keys::customer_sk(id))))
            .condition_expression("attribute_exists(PK)");
        for (field, value) in [
            ("name", name),
            ("email", email),
            ("phone", phone),
            ("notes", notes),
        ] {
            match value {
                Some(Some(v)) => {
                    sets.push(format!("#{field} = :{field}"));
                    req = req
                        .expression_attribute_names(format!("#{field}"), field)
                        .expression_attribute_values(format!(":{field}"), s(v));
                }
                Some(None) => {
                    removes.push(format!("#{field}"));
                    req = req.expression_attribute_names(format!("#{field}"), field);
                }
                None => {}
            }
        }
        if sets.is_empty() && removes.is_empty() {
            return self.customer(m, id).await?.ok_or(AwsError::NotFound);
        }
        let mut expr = String::new();
        if !sets.is_empty() {
            expr.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        match req.update_expression(expr).send().await {
            Ok(_) => {}
            Err(e) if super::is_condition_failed(&e) => return Err(AwsError::NotFound),
            Err(e) => return Err(AwsError::dynamo(e)),
        }
        self.customer(m, id).await?.ok_or(AwsError::NotFound)
    }

    /// Messages of a conversation, oldest first.
    pub async fn list_messages(
        &self,
        m: &MerchantId,
        conversation: &ConversationId,
        cursor: Option<&str>,
        limit: i32,
    ) -> StoreResult<Page<Message>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
            .expression_attribute_values(":pk", s(keys::merchant_pk(m)))
            .expression_attribute_values(":p", s(keys::messages_prefix(conversation)))
            .limit(limit)
            .set_exclusive_start_key(
                cursor
                    .map(|c| decode_cursor(c, m, CursorScope::Messages(conversation)))
                    .transpose()?,
            )
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Self::parse)
            .collect::<StoreResult<Vec<Message>>>()?;
        Ok(Page {
            items,
            next_cursor: out.last_evaluated_key.as_ref().and_then(encode_cursor),
        })
    }

    pub async fn message(
        &self,
        m: &MerchantId,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> StoreResult<Option<Message>> {
        self.get(keys::merchant_pk(m), keys::message_sk(conversation, id))
            .await
    }

    /// The reply made earlier with this client idempotency key, if any.
    pub async fn reply_for_client_id(
        &self,
        conv: &Conversation,
        client_id: &str,
    ) -> StoreResult<Option<Message>> {
        let m = &conv.merchant_id;
        let key: Option<ReplyKey> = self
            .get(
                keys::merchant_pk(m),
                keys::reply_key_sk(&conv.id, client_id),
            )
            .await?;
        match key {
            Some(k) => self.message(m, &conv.id, &k.message_id).await,
            None => Ok(None),
        }
    }

    /// Queues an agent's reply, once per client idempotency key: the same key again returns the
    /// reply made the first time (`false`: nothing new was created).
    pub async fn create_reply(
        &self,
        conv: &Conversation,
        client_id: &str,
        text: &str,
        author: &UserId,
    ) -> StoreResult<(Message, bool)> {
        let m = &conv.merchant_id;
        let key_sk = keys::reply_key_sk(&conv.id, client_id);
        let now = OffsetDateTime::now_utc();
        let message = Message {
            id: MessageId::generate(),
            merchant_id: m.clone(),
            conversation_id: conv.id.clone(),
            direction: Direction::Outbound,
            text: Some(text.to_owned()),
            attachments: Vec::new(),
            status: MessageStatus::Queued,
            mid: None,
            author: Some(author.clone()),
            postback_payload: None,
            reaction: None,
            created_at: now,
            error: None,
            attempts: 0,
            attempt_started_at: None,
        };
        let pk = keys::merchant_pk(m);
        let tx = vec![
            self.tx_put(
                Self::item(
                    RecordKind::ReplyKey,
                    pk.clone(),
                    key_sk.clone(),
                    &ReplyKey {
                        message_id: message.id.clone(),
                    },
                )?,
                Some("attribute_not_exists(PK)"),
            ),
            self.tx_put(Self::message_item(&message)?, None),
        ];
        match self.transact(tx, "same client_id").await {
            Ok(()) => {
                // The reply is stored and will be sent; the inbox order is only a nicety.
                if let Err(e) = self.touch_conversation(m, &conv.id, now).await {
                    tracing::warn!(error = %e, "could not move the conversation's activity time");
                }
                Ok((message, true))
            }
            Err(AwsError::Conflict(_)) => {
                let existing = self
                    .reply_for_client_id(conv, client_id)
                    .await?
                    .ok_or(AwsError::NotFound)?;
                Ok((existing, false))
            }
            Err(e) => Err(e),
        }
    }

    async fn touch_conversation(
        &self,
        m: &MerchantId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.change_conversation(m, id, |c| {
            let later = at > c.last_activity_at;
            if later {
                c.last_activity_at = at;
            }
            later
        })
        .await?;
        Ok(())
    }

    /// Claims a reply for a send attempt: only from `expected` (and, for a retry of an attempt
    /// whose outcome is unknown, only that same attempt), so two workers never both send.
    pub async fn claim_send_attempt(
        &self,
        msg: &Message,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(&msg.merchant_id),
                keys::message_sk(&msg.conversation_id, &msg.id),
            )))
            .update_expression("SET #s = :sending, attempts = :next, attempt_started_at = :now")
            .condition_expression("#s = :was AND attempts = :attempts")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":was", s(msg.status.as_str()))
            .expression_attribute_values(":attempts", AttributeValue::N(msg.attempts.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((msg.attempts + 1).to_string()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await;
        super::written(res)
    }

    /// The attempt is known not to have been delivered (Meta refused it): back to `queued` for
    /// a later try, or `failed` for good.
    pub async fn finish_attempt(
        &self,
        msg: &Message,
        status: MessageStatus,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(&msg.merchant_id),
                keys::message_sk(&msg.conversation_id, &msg.id),
            )))
            .condition_expression("#s = :sending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":next", s(status.as_str()));
        req = match error {
            Some(e) => req
                .update_expression("SET #s = :next, #e = :err")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":err", s(e)),
            None => req.update_expression("SET #s = :next"),
        };
        match req.send().await {
            Ok(_) => Ok(()),
            // An echo confirmed it meanwhile: the confirmation wins.
            Err(e) if super::is_condition_failed(&e) => Ok(()),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }
}
