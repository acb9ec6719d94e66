//! Exports of a merchant's data (POLICY A19): the export record the merchant polls, and the read
//! of every item of the merchant's partition, a page at a time, that the `data-export` job
//! streams into the export file.

use super::kinds::RecordKind;
use super::settlements::SettledPeriod;
use super::{Item, Store, StoreResult, keys};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::data_rights::ExportFormat;
use ecomdrive_core::ids::{ExportId, MerchantId, UserId};
use ecomdrive_core::settlement::{DaySums, SettlementId, SkuDaySums};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Queued,
    Running,
    Done,
    /// The last try failed; `error` says why in words safe to show.
    Failed,
}

/// One export the merchant asked for, and its file once done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub id: ExportId,
    pub merchant_id: MerchantId,
    pub format: ExportFormat,
    pub status: ExportStatus,
    pub requested_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The zip in the data bucket, once done (it expires by the bucket's lifecycle rule).
    #[serde(default)]
    pub object_key: Option<String>,
    /// Records per file of the zip (by file name without extension), once done.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Why it failed, never a secret nor an AWS message.
    #[serde(default)]
    pub error: Option<String>,
}

impl ExportRecord {
    /// A new export, queued.
    pub fn queued(
        merchant_id: MerchantId,
        format: ExportFormat,
        requested_by: UserId,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: ExportId::generate(),
            merchant_id,
            format,
            status: ExportStatus::Queued,
            requested_by,
            requested_at: now,
            finished_at: None,
            object_key: None,
            counts: BTreeMap::new(),
            error: None,
        }
    }
}

/// One item of a merchant's partition as the merchant's record: its kind (the `kind` attribute,
/// empty when missing) and its fields, without the table's keys and TTL.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionItem {
    pub kind: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Attributes that are the table's bookkeeping, not the record: keys, the index keys, the kind
/// (the export's file says it) and the TTL.
const TABLE_ATTRIBUTES: [&str; 6] = [
    keys::PK,
    keys::SK,
    keys::GSI1PK,
    keys::GSI1SK,
    keys::KIND,
    keys::EXPIRES_AT,
];

/// An item as a [`PartitionItem`].
pub fn partition_item(mut item: Item) -> StoreResult<PartitionItem> {
    let kind = match item.remove(keys::KIND) {
        Some(AttributeValue::S(k)) => k,
        _ => String::new(),
    };
    for a in TABLE_ATTRIBUTES {
        item.remove(a);
    }
    let fields = serde_dynamo::from_item(item).map_err(|e| AwsError::Corrupt(e.to_string()))?;
    Ok(PartitionItem { kind, fields })
}

/// Reads every item of one merchant's partition, one DynamoDB page (at most 1 MB) at a time,
/// consistently, without the items whose TTL has passed: memory holds one page, however large the
/// partition.
pub struct PartitionReader<'a> {
    store: &'a Store,
    pk: String,
    start: Option<Item>,
    done: bool,
    now: OffsetDateTime,
}

impl PartitionReader<'_> {
    /// The next page (possibly empty when every item of it expired); `None` once all were read.
    pub async fn next_page(&mut self) -> StoreResult<Option<Vec<PartitionItem>>> {
        if self.done {
            return Ok(None);
        }
        let res = self
            .store
            .client
            .query()
            .table_name(&self.store.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(self.pk.clone()))
            .set_exclusive_start_key(self.start.take())
            .consistent_read(true)
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        self.start = res.last_evaluated_key;
        self.done = self.start.is_none();
        res.items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !Store::expired(i, self.now))
            .map(partition_item)
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }
}

impl Store {
    pub async fn create_export(&self, e: &ExportRecord) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::ExportJob,
            keys::merchant_pk(&e.merchant_id),
            keys::export_sk(&e.id),
            e,
        )?;
        self.put_new(item, "the export exists already").await
    }

    pub async fn export(&self, m: &MerchantId, id: &ExportId) -> StoreResult<Option<ExportRecord>> {
        self.get(keys::merchant_pk(m), keys::export_sk(id)).await
    }

    /// Saves an export's new state (the job is its only writer once it is queued), only over the
    /// record as it is: false, and nothing written, when the record is gone. A merchant deletion
    /// removes it with the rest of the partition, and a save after that must not bring a record
    /// back into the deleted partition (the deletion would never see it again).
    pub async fn save_export(&self, e: &ExportRecord) -> StoreResult<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(
                RecordKind::ExportJob,
                keys::merchant_pk(&e.merchant_id),
                keys::export_sk(&e.id),
                e,
            )?))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        super::written(res)
    }

    /// Every item of the merchant's partition, page by page: see [`PartitionReader`].
    pub fn merchant_items(&self, m: &MerchantId) -> PartitionReader<'_> {
        PartitionReader {
            store: self,
            pk: keys::merchant_pk(m),
            start: None,
            done: false,
            now: OffsetDateTime::now_utc(),
        }
    }
}

impl SettledPeriod {
    /// The currencies of the period's settlements, sorted.
    pub fn currencies(&self) -> BTreeSet<&str> {
        self.settlements
            .iter()
            .map(|s| s.summary.currency.as_str())
            .collect()
    }

    /// The period's sums of the settlements in `currency`: a P&L never adds two currencies.
    pub fn sums_in(&self, currency: &str) -> (Vec<DaySums>, Vec<SkuDaySums>) {
        let counted: HashSet<&SettlementId> = self
            .settlements
            .iter()
            .filter(|s| s.summary.currency == currency)
            .map(|s| s.id())
            .collect();
        let days = self
            .days
            .iter()
            .filter(|d| counted.contains(&d.settlement_id))
            .map(|d| d.sums.clone())
            .collect();
        let sku_days = self
            .sku_days
            .iter()
            .filter(|d| counted.contains(&d.settlement_id))
            .map(|d| d.sums.clone())
            .collect();
        (days, sku_days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_partition_item_is_the_record_without_keys_kind_and_ttl() {
        let item: Item = HashMap::from([
            (keys::PK.into(), AttributeValue::S("MERCHANT#mer_x".into())),
            (keys::SK.into(), AttributeValue::S("CONV#c".into())),
            (
                keys::GSI1PK.into(),
                AttributeValue::S("MERCHANT#mer_x#CONVS".into()),
            ),
            (keys::GSI1SK.into(), AttributeValue::S("0001#c".into())),
            (keys::KIND.into(), AttributeValue::S("conversation".into())),
            (
                keys::EXPIRES_AT.into(),
                AttributeValue::N("1700000000".into()),
            ),
            ("status".into(), AttributeValue::S("open".into())),
            ("version".into(), AttributeValue::N("3".into())),
            (
                "order_refs".into(),
                AttributeValue::L(vec![AttributeValue::S("123-1".into())]),
            ),
        ]);
        let p = partition_item(item).unwrap();
        assert_eq!(p.kind, "conversation");
        assert_eq!(
            serde_json::Value::Object(p.fields),
            serde_json::json!({"status": "open", "version": 3, "order_refs": ["123-1"]})
        );
    }

    #[test]
    fn an_item_without_a_kind_says_so_with_an_empty_kind() {
        let item: Item = HashMap::from([(keys::PK.into(), AttributeValue::S("x".into()))]);
        assert_eq!(partition_item(item).unwrap().kind, "");
    }

    #[test]
    fn an_export_record_round_trips_and_says_its_status_in_words() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let e = ExportRecord::queued(
            MerchantId::generate(),
            ExportFormat::Csv,
            UserId::parse("3f1c2a9e-user").unwrap(),
            now,
        );
        let item = Store::item(RecordKind::ExportJob, "pk".into(), "sk".into(), &e).unwrap();
        assert_eq!(item["status"], AttributeValue::S("queued".into()));
        assert_eq!(item["format"], AttributeValue::S("csv".into()));
        assert_eq!(Store::parse::<ExportRecord>(item).unwrap(), e);
    }
}
