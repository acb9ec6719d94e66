//! The DynamoDB store: one table, keys in [`keys`], records from the domain crate.
//!
//! Every method over merchant data takes a [`MerchantId`]; there is no query without one.

pub mod amazon;
pub mod audit;
pub mod connections;
pub mod deletion_jobs;
pub mod deletion_links;
pub mod deletions;
pub mod exports;
pub mod inbox;
pub mod keys;
pub mod kinds;
pub mod members;
pub mod rate_limit;
pub mod retention;
pub mod settlements;

use crate::AwsError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use base64::Engine;
use ecomdrive_core::ids::MerchantId;
use kinds::RecordKind;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use time::OffsetDateTime;

pub type Item = HashMap<String, AttributeValue>;

pub type StoreResult<T> = Result<T, AwsError>;

/// A page of results and the opaque cursor of the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    // ---- generic helpers -------------------------------------------------------------------

    fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
        HashMap::from([
            (keys::PK.to_owned(), AttributeValue::S(pk.into())),
            (keys::SK.to_owned(), AttributeValue::S(sk.into())),
        ])
    }

    /// A record as an item: its fields, its keys and its kind.
    fn item<T: Serialize>(
        kind: RecordKind,
        pk: String,
        sk: String,
        record: &T,
    ) -> StoreResult<Item> {
        let mut item: Item =
            serde_dynamo::to_item(record).map_err(|e| AwsError::Corrupt(e.to_string()))?;
        item.insert(keys::PK.into(), AttributeValue::S(pk));
        item.insert(keys::SK.into(), AttributeValue::S(sk));
        item.insert(keys::KIND.into(), AttributeValue::S(kind.as_str().into()));
        Ok(item)
    }

    fn parse<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
        serde_dynamo::from_item(item).map_err(|e| AwsError::Corrupt(e.to_string()))
    }

    /// Items whose TTL has passed may still be returned by DynamoDB for a while: they count as gone.
    fn expired(item: &Item, now: OffsetDateTime) -> bool {
        match item.get(keys::EXPIRES_AT) {
            Some(AttributeValue::N(n)) => n.parse::<i64>().is_ok_and(|t| t <= now.unix_timestamp()),
            _ => false,
        }
    }

    async fn get_item(&self, pk: String, sk: String) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(out
            .item
            .filter(|i| !Self::expired(i, OffsetDateTime::now_utc())))
    }

    async fn get<T: DeserializeOwned>(&self, pk: String, sk: String) -> StoreResult<Option<T>> {
        self.get_item(pk, sk).await?.map(Self::parse).transpose()
    }

    /// Puts an item that must not exist yet.
    async fn put_new(&self, item: Item, conflict: &'static str) -> StoreResult<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(AwsError::Conflict(conflict)),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    async fn put(&self, item: Item) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(())
    }

    /// All items of a partition whose sort key starts with `prefix` (bounded by `max`).
    async fn query_prefix(&self, pk: String, prefix: &str, max: usize) -> StoreResult<Vec<Item>> {
        self.query_prefix_ordered(pk, prefix, max, true).await
    }

    /// As [`Store::query_prefix`], newest (largest sort key) first when `oldest_first` is false.
    async fn query_prefix_ordered(
        &self,
        pk: String,
        prefix: &str,
        max: usize,
        oldest_first: bool,
    ) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        let now = OffsetDateTime::now_utc();
        loop {
            let res = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":p", AttributeValue::S(prefix.to_owned()))
                .set_exclusive_start_key(start)
                .scan_index_forward(oldest_first)
                .consistent_read(true)
                .send()
                .await
                .map_err(AwsError::dynamo)?;
            out.extend(
                res.items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| !Self::expired(i, now)),
            );
            start = res.last_evaluated_key;
            if start.is_none() || out.len() >= max {
                out.truncate(max);
                return Ok(out);
            }
        }
    }
}

impl Store {
    pub(crate) fn tx_put(&self, item: Item, condition: Option<&str>) -> TransactWriteItem {
        let p = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned));
        TransactWriteItem::builder()
            .put(p.build().expect("table and item are set"))
            .build()
    }

    pub(crate) fn tx_delete(&self, pk: String, sk: String, must_exist: bool) -> TransactWriteItem {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .set_condition_expression(must_exist.then(|| "attribute_exists(PK)".to_owned()));
        TransactWriteItem::builder()
            .delete(d.build().expect("table and key are set"))
            .build()
    }

    pub(crate) fn tx_update(
        &self,
        pk: String,
        sk: String,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
        condition: Option<&str>,
    ) -> TransactWriteItem {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned));
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        TransactWriteItem::builder()
            .update(u.build().expect("table, key and expression are set"))
            .build()
    }

    pub(crate) fn tx_condition_check(
        &self,
        pk: String,
        sk: String,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> TransactWriteItem {
        let mut c = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression(condition);
        for (k, v) in values {
            c = c.expression_attribute_values(k, v);
        }
        TransactWriteItem::builder()
            .condition_check(c.build().expect("table, key and condition are set"))
            .build()
    }

    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: &'static str,
    ) -> StoreResult<()> {
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_transaction_condition_failed(&e) => Err(AwsError::Conflict(conflict)),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }
}

pub(crate) fn is_condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A conditional write's outcome: true when it was written, false when its condition did not
/// hold (the caller decides what that means: already done, gone, taken).
pub(crate) fn written<O, E>(
    res: Result<
        O,
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> StoreResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(AwsError::dynamo(e)),
    }
}

/// True when a transaction was cancelled because one of its conditions failed, or because another
/// transaction was changing the same item at that moment: either way the caller re-reads and decides.
pub(crate) fn is_transaction_condition_failed(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    match e.as_service_error() {
        Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t),
        ) => t
            .cancellation_reasons()
            .iter()
            .any(|r| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict"))),
        _ => false,
    }
}

// ---- cursors --------------------------------------------------------------------------------

/// An opaque cursor: the DynamoDB key to continue from, base64url JSON. It is checked to belong to
/// the merchant asking, so a cursor cannot be used to read another merchant's partition.
pub(crate) fn encode_cursor(key: &Item) -> Option<String> {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    let json = serde_json::to_vec(&plain).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// Which listing a cursor continues: a cursor is only good for the query that made it.
pub(crate) enum CursorScope<'a> {
    /// A merchant's conversations by activity (GSI1).
    Conversations,
    /// The messages of one conversation.
    Messages(&'a ecomdrive_core::ids::ConversationId),
    /// A merchant's orders by purchase date (GSI1).
    Orders,
    /// A merchant's review requests by order id.
    Solicitations,
}

/// Reads a cursor back, refusing one that another merchant's (or another listing's) query made:
/// DynamoDB would otherwise read from wherever the key points, or fail with a 500.
pub(crate) fn decode_cursor(
    cursor: &str,
    merchant: &MerchantId,
    scope: CursorScope<'_>,
) -> StoreResult<Item> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| AwsError::BadCursor)?;
    let plain: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| AwsError::BadCursor)?;
    let get = |k: &str| plain.get(k).map(String::as_str);
    let own = keys::merchant_pk(merchant);
    let sk = get(keys::SK).unwrap_or_default();
    let fits = get(keys::PK) == Some(own.as_str())
        && match scope {
            CursorScope::Conversations => {
                plain.len() == 4
                    && sk.starts_with("CONV#")
                    && get(keys::GSI1PK)
                        == Some(keys::conversations_by_activity_pk(merchant).as_str())
                    && get(keys::GSI1SK).is_some()
            }
            CursorScope::Messages(conversation) => {
                plain.len() == 2 && sk.starts_with(&keys::messages_prefix(conversation))
            }
            CursorScope::Orders => {
                plain.len() == 4
                    && sk.starts_with(keys::ORDER_PREFIX)
                    && get(keys::GSI1PK) == Some(keys::orders_by_purchase_pk(merchant).as_str())
                    && get(keys::GSI1SK).is_some()
            }
            CursorScope::Solicitations => {
                plain.len() == 2 && sk.starts_with(keys::SOLICITATION_PREFIX)
            }
        };
    if !fits {
        return Err(AwsError::BadCursor);
    }
    Ok(plain
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

/// A string attribute.
pub(crate) fn s(v: impl ToString) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// A number attribute.
pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Times are stored as RFC 3339 strings (UTC).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn now_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_merchants_and_listings() {
        use ecomdrive_core::ids::{ConversationId, MessageId};
        let m = MerchantId::generate();
        let other = MerchantId::generate();
        let conv = ConversationId::generate();
        let key = Store::key(
            keys::merchant_pk(&m),
            keys::message_sk(&conv, &MessageId::generate()),
        );
        let c = encode_cursor(&key).unwrap();
        assert_eq!(
            decode_cursor(&c, &m, CursorScope::Messages(&conv)).unwrap(),
            key
        );
        for refused in [
            decode_cursor(&c, &other, CursorScope::Messages(&conv)),
            decode_cursor(&c, &m, CursorScope::Messages(&ConversationId::generate())),
            decode_cursor(&c, &m, CursorScope::Conversations),
            decode_cursor("!!", &m, CursorScope::Messages(&conv)),
        ] {
            assert!(matches!(refused, Err(AwsError::BadCursor)));
        }
        let mut by_activity = Store::key(keys::merchant_pk(&m), keys::conversation_sk(&conv));
        by_activity.insert(
            keys::GSI1PK.into(),
            AttributeValue::S(keys::conversations_by_activity_pk(&m)),
        );
        by_activity.insert(keys::GSI1SK.into(), AttributeValue::S("000001#x".into()));
        let c = encode_cursor(&by_activity).unwrap();
        assert!(decode_cursor(&c, &m, CursorScope::Conversations).is_ok());
        assert!(decode_cursor(&c, &other, CursorScope::Conversations).is_err());
    }

    #[test]
    fn expired_items_count_as_gone() {
        let now = OffsetDateTime::now_utc();
        let mut item = Store::key("a", "b");
        assert!(!Store::expired(&item, now));
        item.insert(
            keys::EXPIRES_AT.into(),
            AttributeValue::N((now.unix_timestamp() - 1).to_string()),
        );
        assert!(Store::expired(&item, now));
    }
}
