//! Settlements and costs in the store (POLICY A3, A8).
//!
//! A settlement is kept as its summary and its sums, never as lines: one item per posted day, per
//! SKU and day, and per order run (see `ecomdrive_core::settlement`), written with
//! `BatchWriteItem`, so a settlement costs writes per order, not per line.
//!
//! An import is idempotent and never mixes two contents: it starts by a conditional write of the
//! summary with status `importing` and the file's fingerprint, which succeeds only when the
//! settlement is new, is being imported with the same content, or its import stopped
//! [`STALE_IMPORT`] ago; the sums are written under keys that depend only on the content (so a
//! retry overwrites them with the same values) and carry the fingerprint; the status turns
//! `imported` last. Readers count only the sums of imported settlements with their fingerprint,
//! so what a stopped import of other content left behind never counts.

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys, n, now_ms, rfc3339, s};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use ecomdrive_core::ids::{MerchantId, SettlementUploadId, UserId};
use ecomdrive_core::settlement::cogs::UnitCost;
use ecomdrive_core::settlement::{
    Charge, ChargeAmount, DaySums, OrderSums, ParsedSettlement, Rejection, SettlementId,
    SettlementSummary, SkuDaySums,
};
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use time::{Date, OffsetDateTime};

/// DynamoDB's limit of items in one `BatchWriteItem`.
pub const BATCH_WRITE_LIMIT: usize = 25;
/// How often a batch's unprocessed items are sent again before the import gives up (and its
/// queue retries it: the writes are idempotent).
const BATCH_ATTEMPTS: u32 = 8;
/// Batches in flight at once.
const BATCHES_IN_FLIGHT: usize = 4;
/// More settlements than a merchant has in decades (two a month).
const MAX_SETTLEMENTS: usize = 5_000;
/// An import that started this long ago and did not finish has stopped (a function runs at most
/// 15 minutes): another content of the settlement may take its place.
pub const STALE_IMPORT: time::Duration = time::Duration::hours(1);
/// Bound on the sums read for one P&L request.
const MAX_SUMS: usize = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Importing,
    Imported,
}

/// Where a settlement came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementSource {
    /// The scheduled import, from the Reports API.
    Amazon,
    /// A file the merchant uploaded.
    Upload,
}

/// A settlement as stored: the file's summary and totals, and the import's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    #[serde(flatten)]
    pub summary: SettlementSummary,
    pub marketplace: Option<String>,
    pub detail_lines: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub lines_total: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
    pub reconciles: bool,
    pub order_runs: u64,
    /// The settlement's totals per charge (e.g. `Order`/`ItemFees`/`Commission`): its fees by
    /// kind, taxes, refunds... at a glance.
    #[serde(default)]
    pub charges: Vec<ChargeAmount>,
    pub fingerprint: String,
    pub status: ImportStatus,
    pub source: SettlementSource,
    /// The raw file in the data bucket.
    pub archive_key: String,
    /// The Amazon report it came from (scheduled imports).
    #[serde(default)]
    pub report_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// `started_at` in milliseconds: the number the stale-import condition compares.
    #[serde(default)]
    pub started_ms: i64,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub imported_at: Option<OffsetDateTime>,
}

impl SettlementRecord {
    /// The record an import starts with.
    pub fn importing(
        parsed: &ParsedSettlement,
        source: SettlementSource,
        archive_key: String,
        report_id: Option<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            summary: parsed.summary.clone(),
            marketplace: parsed.marketplace.clone(),
            detail_lines: parsed.detail_lines,
            lines_total: parsed.lines_total,
            difference: parsed.difference,
            reconciles: parsed.reconciles,
            order_runs: parsed.order_runs,
            charges: charge_totals(&parsed.by_day),
            fingerprint: parsed.fingerprint.clone(),
            status: ImportStatus::Importing,
            source,
            archive_key,
            report_id,
            started_at: now,
            started_ms: now_ms(now),
            imported_at: None,
        }
    }

    pub fn id(&self) -> &SettlementId {
        &self.summary.settlement_id
    }
}

/// How the start of an import went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportStart {
    /// Go on: the settlement is new, or an earlier import of the same content did not finish.
    Started,
    /// The same content is imported already.
    AlreadyImported(SettlementRecord),
    /// The settlement id is taken by different content: the stored one stays.
    Conflict(SettlementRecord),
}

/// Sums of a settlement, with the settlement (and the content) they belong to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled<T> {
    pub settlement_id: SettlementId,
    pub fingerprint: String,
    #[serde(flatten)]
    pub sums: T,
}

/// The imported settlements by id, with the fingerprint of the content that counts.
struct Imported(HashMap<SettlementId, String>);

impl Imported {
    fn of(settlements: &[SettlementRecord]) -> Self {
        Self(
            settlements
                .iter()
                .filter(|s| s.status == ImportStatus::Imported)
                .map(|s| (s.id().clone(), s.fingerprint.clone()))
                .collect(),
        )
    }

    fn counts<T>(&self, sums: &Settled<T>) -> bool {
        self.0.get(&sums.settlement_id) == Some(&sums.fingerprint)
    }
}

/// What the P&L of a period reads: the imported settlements and their sums in the period.
#[derive(Clone, Debug, Default)]
pub struct SettledPeriod {
    pub settlements: Vec<SettlementRecord>,
    pub days: Vec<Settled<DaySums>>,
    pub sku_days: Vec<Settled<SkuDaySums>>,
}

/// Where the scheduled import got to: reports created before this were all looked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementImportState {
    #[serde(with = "time::serde::rfc3339")]
    pub reports_seen_until: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_run_at: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// The presigned URL was handed out; the file is not there yet (or not announced).
    AwaitingFile,
    Queued,
    Running,
    Imported,
    AlreadyImported,
    /// The file is malformed: `problems` says where.
    Rejected,
    /// The settlement id is taken by different content.
    Conflict,
    Failed,
}

/// A large settlement file uploaded through a presigned URL and imported by `settlement-import`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementUpload {
    pub upload_id: SettlementUploadId,
    pub status: UploadStatus,
    pub object_key: String,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default)]
    pub settlement_id: Option<SettlementId>,
    #[serde(default)]
    pub problems: Option<Rejection>,
    /// What went wrong, in words for the merchant (never an internal error).
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredUnitCost {
    #[serde(flatten)]
    cost: UnitCost,
    #[serde(with = "time::serde::rfc3339")]
    uploaded_at: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct ReportMark {
    report_id: String,
    settlement_id: SettlementId,
}

/// The sums of every day, per charge.
fn charge_totals(days: &[DaySums]) -> Vec<ChargeAmount> {
    let mut totals: BTreeMap<&Arc<Charge>, Decimal> = BTreeMap::new();
    for c in days.iter().flat_map(|d| &d.charges) {
        *totals.entry(&c.charge).or_default() += c.amount;
    }
    totals
        .into_iter()
        .map(|(charge, amount)| ChargeAmount {
            charge: charge.clone(),
            amount,
        })
        .collect()
}

/// Splits writes into `BatchWriteItem`-sized groups.
pub(crate) fn batches<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(items.len().div_ceil(BATCH_WRITE_LIMIT));
    let mut rest = items.into_iter().peekable();
    while rest.peek().is_some() {
        out.push(rest.by_ref().take(BATCH_WRITE_LIMIT).collect());
    }
    out
}

impl Store {
    // ---- import ---------------------------------------------------------------------------

    /// Starts (or resumes) importing a settlement; see the module docs.
    pub async fn begin_settlement_import(
        &self,
        m: &MerchantId,
        record: &SettlementRecord,
    ) -> StoreResult<ImportStart> {
        let item = Self::item(
            RecordKind::Settlement,
            keys::merchant_pk(m),
            keys::settlement_sk(record.id()),
            record,
        )?;
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(PK) OR (#status = :importing AND \
                 (fingerprint = :fp OR started_ms < :stale))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":fp", s(&record.fingerprint))
            .expression_attribute_values(":importing", s("importing"))
            .expression_attribute_values(
                ":stale",
                n(record.started_ms - STALE_IMPORT.whole_milliseconds() as i64),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(ImportStart::Started),
            Err(e) if super::is_condition_failed(&e) => {
                let stored = self
                    .settlement(m, record.id())
                    .await?
                    .ok_or(AwsError::Conflict(
                        "the settlement changed during the import",
                    ))?;
                Ok(if stored.fingerprint == record.fingerprint {
                    ImportStart::AlreadyImported(stored)
                } else {
                    ImportStart::Conflict(stored)
                })
            }
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// Writes a settlement's sums per day and per SKU and day.
    pub async fn put_settlement_days(
        &self,
        m: &MerchantId,
        record: &SettlementRecord,
        days: &[DaySums],
        sku_days: &[SkuDaySums],
    ) -> StoreResult<()> {
        let (id, fingerprint) = (record.id(), &record.fingerprint);
        let pk = keys::merchant_pk(m);
        let mut items = Vec::with_capacity(days.len() + sku_days.len());
        for day in days {
            let sk = keys::settlement_day_sk(day.day, id);
            items.push(Self::item(
                RecordKind::SettlementDay,
                pk.clone(),
                sk,
                &Settled {
                    settlement_id: id.clone(),
                    fingerprint: fingerprint.clone(),
                    sums: day,
                },
            )?);
        }
        for sku_day in sku_days {
            let sk = keys::settlement_sku_sk(sku_day.day, &sku_day.sku, id);
            items.push(Self::item(
                RecordKind::SettlementSkuDay,
                pk.clone(),
                sk,
                &Settled {
                    settlement_id: id.clone(),
                    fingerprint: fingerprint.clone(),
                    sums: sku_day,
                },
            )?);
        }
        self.batch_put(items).await
    }

    /// Writes order runs of a settlement (the import hands them over as the file streams by),
    /// each with its ordinal in the file: the key depends on the content only, not on blank
    /// lines or line endings.
    pub async fn put_settlement_orders(
        &self,
        m: &MerchantId,
        record: &SettlementRecord,
        orders: &[(u64, OrderSums)],
    ) -> StoreResult<()> {
        let (id, fingerprint) = (record.id(), &record.fingerprint);
        let pk = keys::merchant_pk(m);
        let mut items = Vec::with_capacity(orders.len());
        for (ordinal, run) in orders {
            let sk = keys::settlement_order_sk(&run.order_id, id, *ordinal);
            let mut item = Self::item(
                RecordKind::SettlementOrder,
                pk.clone(),
                sk,
                &Settled {
                    settlement_id: id.clone(),
                    fingerprint: fingerprint.clone(),
                    sums: run,
                },
            )?;
            item.insert(keys::GSI1PK.into(), s(keys::settlement_orders_by_day_pk(m)));
            item.insert(
                keys::GSI1SK.into(),
                s(keys::settlement_orders_by_day_sk(
                    run.day,
                    &run.order_id,
                    id,
                    *ordinal,
                )),
            );
            items.push(item);
        }
        self.batch_put(items).await
    }

    /// Ends an import: from now on the settlement counts.
    pub async fn finish_settlement_import(
        &self,
        m: &MerchantId,
        id: &SettlementId,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> StoreResult<SettlementRecord> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::settlement_sk(id),
            )))
            .update_expression("SET #status = :imported, imported_at = :now")
            .condition_expression("fingerprint = :fp")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":imported", s("imported"))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":fp", s(fingerprint))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => Self::parse(out.attributes.unwrap_or_default()),
            Err(e) if super::is_condition_failed(&e) => Err(AwsError::Conflict(
                "the settlement was replaced during the import",
            )),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// Puts items in batches of 25, several batches at once, sending unprocessed items again
    /// with a growing pause (DynamoDB returns them when a partition is busy).
    async fn batch_put(&self, items: Vec<super::Item>) -> StoreResult<()> {
        futures::stream::iter(batches(items))
            .map(|batch| self.write_batch(batch))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    async fn write_batch(&self, batch: Vec<super::Item>) -> StoreResult<()> {
        let mut requests: Vec<WriteRequest> = batch
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| AwsError::Dynamo(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<StoreResult<_>>()?;
        for attempt in 0..BATCH_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(AwsError::dynamo)?;
            requests = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(AwsError::Dynamo(format!(
            "{} items still unprocessed after {BATCH_ATTEMPTS} attempts",
            requests.len()
        )))
    }

    // ---- reads ----------------------------------------------------------------------------

    pub async fn settlement(
        &self,
        m: &MerchantId,
        id: &SettlementId,
    ) -> StoreResult<Option<SettlementRecord>> {
        self.get(keys::merchant_pk(m), keys::settlement_sk(id))
            .await
    }

    /// Every settlement of the merchant, imported or not, by settlement id.
    pub async fn settlements(&self, m: &MerchantId) -> StoreResult<Vec<SettlementRecord>> {
        self.query_prefix(
            keys::merchant_pk(m),
            keys::SETTLEMENT_PREFIX,
            MAX_SETTLEMENTS,
        )
        .await?
        .into_iter()
        .map(Self::parse)
        .collect()
    }

    /// The imported settlements and their sums of the days `from..=to`.
    pub async fn settled_period(
        &self,
        m: &MerchantId,
        from: Date,
        to: Date,
    ) -> StoreResult<SettledPeriod> {
        let settlements: Vec<SettlementRecord> = self
            .settlements(m)
            .await?
            .into_iter()
            .filter(|s| s.status == ImportStatus::Imported)
            .collect();
        let imported = Imported::of(&settlements);
        let (days, sku_days) = futures::try_join!(
            self.query_days::<DaySums>(m, keys::SETTLEMENT_DAY_PREFIX, from, to),
            self.query_days::<SkuDaySums>(m, keys::SETTLEMENT_SKU_PREFIX, from, to),
        )?;
        let days = days.into_iter().filter(|d| imported.counts(d)).collect();
        let sku_days = sku_days
            .into_iter()
            .filter(|d| imported.counts(d))
            .collect();
        Ok(SettledPeriod {
            settlements,
            days,
            sku_days,
        })
    }

    /// Items `<prefix><day>#…` for the days `from..=to`.
    async fn query_days<T: serde::de::DeserializeOwned>(
        &self,
        m: &MerchantId,
        prefix: &str,
        from: Date,
        to: Date,
    ) -> StoreResult<Vec<Settled<T>>> {
        let items = self
            .query_between(
                keys::merchant_pk(m),
                None,
                format!("{prefix}{from}"),
                // '$' sorts after '#': every key of the day `to`.
                format!("{prefix}{to}$"),
            )
            .await?;
        items.into_iter().map(Self::parse).collect()
    }

    /// Order runs of imported settlements posted on the days `from..=to`.
    pub async fn settled_orders_between(
        &self,
        m: &MerchantId,
        from: Date,
        to: Date,
    ) -> StoreResult<Vec<Settled<OrderSums>>> {
        let imported = self.imported_ids(m).await?;
        let items = self
            .query_between(
                keys::settlement_orders_by_day_pk(m),
                Some(keys::GSI1),
                format!("{from}"),
                format!("{to}$"),
            )
            .await?;
        let runs: Vec<Settled<OrderSums>> = items
            .into_iter()
            .map(Self::parse)
            .collect::<StoreResult<_>>()?;
        Ok(runs.into_iter().filter(|r| imported.counts(r)).collect())
    }

    /// Every run of one order in imported settlements.
    pub async fn settled_order(
        &self,
        m: &MerchantId,
        order_id: &str,
    ) -> StoreResult<Vec<Settled<OrderSums>>> {
        let imported = self.imported_ids(m).await?;
        let runs: Vec<Settled<OrderSums>> = self
            .query_prefix(
                keys::merchant_pk(m),
                &keys::settlement_order_prefix(order_id),
                MAX_SUMS,
            )
            .await?
            .into_iter()
            .map(Self::parse)
            .collect::<StoreResult<_>>()?;
        Ok(runs.into_iter().filter(|r| imported.counts(r)).collect())
    }

    async fn imported_ids(&self, m: &MerchantId) -> StoreResult<Imported> {
        Ok(Imported::of(&self.settlements(m).await?))
    }

    /// Items of a partition (of the table, or of GSI1 when `index` is set) with sort keys in
    /// `lo..=hi`, bounded by [`MAX_SUMS`].
    async fn query_between(
        &self,
        pk: String,
        index: Option<&str>,
        lo: String,
        hi: String,
    ) -> StoreResult<Vec<super::Item>> {
        let (pk_name, sk_name) = match index {
            Some(_) => (keys::GSI1PK, keys::GSI1SK),
            None => (keys::PK, keys::SK),
        };
        let mut out = Vec::new();
        let mut start = None;
        let now = OffsetDateTime::now_utc();
        loop {
            let res = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":lo", s(&lo))
                .expression_attribute_values(":hi", s(&hi))
                .set_exclusive_start_key(start)
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
            if start.is_none() {
                return Ok(out);
            }
            if out.len() >= MAX_SUMS {
                return Err(AwsError::Conflict(
                    "the period holds too much data for one request: ask for a shorter one",
                ));
            }
        }
    }

    // ---- the scheduled import's state ------------------------------------------------------

    pub async fn settlement_import_state(
        &self,
        m: &MerchantId,
    ) -> StoreResult<Option<SettlementImportState>> {
        self.get(keys::merchant_pk(m), keys::SETTLEMENT_IMPORT_SK.into())
            .await
    }

    pub async fn save_settlement_import_state(
        &self,
        m: &MerchantId,
        state: &SettlementImportState,
    ) -> StoreResult<()> {
        self.put(Self::item(
            RecordKind::SettlementImportState,
            keys::merchant_pk(m),
            keys::SETTLEMENT_IMPORT_SK.into(),
            state,
        )?)
        .await
    }

    /// The settlement a report was imported as, if it was.
    pub async fn imported_report(
        &self,
        m: &MerchantId,
        report_id: &str,
    ) -> StoreResult<Option<SettlementId>> {
        let mark: Option<ReportMark> = self
            .get(keys::merchant_pk(m), keys::settlement_report_sk(report_id))
            .await?;
        Ok(mark.map(|r| r.settlement_id))
    }

    pub async fn mark_report_imported(
        &self,
        m: &MerchantId,
        report_id: &str,
        settlement: &SettlementId,
    ) -> StoreResult<()> {
        self.put(Self::item(
            RecordKind::SettlementReport,
            keys::merchant_pk(m),
            keys::settlement_report_sk(report_id),
            &ReportMark {
                report_id: report_id.to_owned(),
                settlement_id: settlement.clone(),
            },
        )?)
        .await
    }

    // ---- uploads --------------------------------------------------------------------------

    pub async fn settlement_upload(
        &self,
        m: &MerchantId,
        id: &SettlementUploadId,
    ) -> StoreResult<Option<SettlementUpload>> {
        self.get(
            keys::merchant_pk(m),
            keys::settlement_upload_sk(id.as_str()),
        )
        .await
    }

    /// Saves an upload; with `expect`, only while its stored status is that one (so an upload is
    /// queued once, and a finished one is not reopened).
    pub async fn save_settlement_upload(
        &self,
        m: &MerchantId,
        upload: &SettlementUpload,
        expect: Option<UploadStatus>,
    ) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::SettlementUpload,
            keys::merchant_pk(m),
            keys::settlement_upload_sk(upload.upload_id.as_str()),
            upload,
        )?;
        let Some(expected) = expect else {
            return self.put(item).await;
        };
        let status = serde_json::to_value(expected)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#status = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", AttributeValue::S(status))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if super::is_condition_failed(&e) => Err(AwsError::Conflict(
                "the upload is not in that state any more",
            )),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    // ---- costs of goods (POLICY A3) -------------------------------------------------------

    /// Saves unit costs; a cost of the same SKU and date replaces the one stored.
    pub async fn put_unit_costs(
        &self,
        m: &MerchantId,
        costs: &[UnitCost],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let pk = keys::merchant_pk(m);
        let items = costs
            .iter()
            .map(|cost| {
                Self::item(
                    RecordKind::UnitCost,
                    pk.clone(),
                    keys::unit_cost_sk(&cost.sku, cost.effective_from),
                    &StoredUnitCost {
                        cost: cost.clone(),
                        uploaded_at: now,
                    },
                )
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch_put(items).await
    }

    /// Every unit cost of the merchant, by SKU then date.
    pub async fn unit_costs(&self, m: &MerchantId) -> StoreResult<Vec<UnitCost>> {
        self.query_prefix(keys::merchant_pk(m), keys::UNIT_COST_PREFIX, MAX_SUMS)
            .await?
            .into_iter()
            .map(|item| Self::parse::<StoredUnitCost>(item).map(|c| c.cost))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_batched_by_twenty_five() {
        assert!(batches(Vec::<u32>::new()).is_empty());
        let sizes =
            |n: u32| -> Vec<usize> { batches((0..n).collect()).iter().map(Vec::len).collect() };
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(25), vec![25]);
        assert_eq!(sizes(26), vec![25, 1]);
        assert_eq!(sizes(75), vec![25, 25, 25]);
        let all: Vec<u32> = batches((0..60).collect()).into_iter().flatten().collect();
        assert_eq!(
            all,
            (0..60).collect::<Vec<_>>(),
            "nothing lost or reordered"
        );
    }

    #[test]
    fn day_keys_sort_by_day_and_a_range_covers_whole_days() {
        let id = SettlementId::parse("123").unwrap();
        let d =
            |s: &str| Date::parse(s, &time::format_description::well_known::Iso8601::DATE).unwrap();
        let day = keys::settlement_sku_sk(d("2026-10-05"), "SKU#1", &id);
        assert!(day.as_str() >= "STLSKU#2026-10-05" && day.as_str() <= "STLSKU#2026-10-05$");
        assert!(keys::settlement_sku_sk(d("2026-10-06"), "A", &id).as_str() > "STLSKU#2026-10-05$");
    }
}
