//! What the retention sweeper reads and changes (POLICY A20, A5, E16): the list of merchants, a
//! merchant's audit records old enough to lose their IP address, its conversations idle long
//! enough to be deleted, its account closing, and whether a deletion under way still has a run
//! holding it.
//!
//! The rules (which period, from when) are `ecomdrive_core::retention`'s; this module only finds
//! the candidates by key range, so a sweep reads what may be due, not the whole table, and pages
//! through them so memory stays flat however much a merchant holds. Every write is conditional:
//! a sweep that runs twice, or beside the API, changes nothing twice.

use super::members::Merchant;
use super::{Item, Store, StoreResult, keys, now_ms, rfc3339, s};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use ecomdrive_core::data_rights::DeletionReceipt;
use ecomdrive_core::ids::{AuditId, ConversationId, DeletionId, MerchantId};
use serde::Deserialize;
use time::OffsetDateTime;

/// Items per page of a sweep's listing: small enough that a page's writes finish long before
/// anything else changes them, large enough that a quiet merchant is one round trip.
pub const SWEEP_PAGE: i32 = 100;

/// The sort key prefix of the merchants list ([`keys::merchant_index_sk`]).
const MERCHANT_INDEX_PREFIX: &str = "MERCHANT#";

/// The receipt's attribute holding until when (epoch seconds) a run of the deletion holds it: the
/// one [`Store::claim_deletion`] sets and [`Store::release_deletion`] removes. Read only here
/// (the lease is the deletion module's); a test claims a deletion and reads it back through
/// [`Store::deletion_with_lease`], so a rename there fails it.
const DELETION_LEASE_UNTIL: &str = "lease_until";

/// The largest ULID time (48 bits): ids at it sort after every real id at any earlier time.
const ULID_MAX_MS: u64 = (1 << 48) - 1;

/// Where a sweep's listing goes on: DynamoDB's last evaluated key, opaque to callers. Never
/// leaves the process (unlike the API's cursors, which are checked against the merchant).
#[derive(Clone, Debug)]
pub struct SweepCursor(Item);

/// One page of a sweep's listing and where the next one starts.
#[derive(Clone, Debug)]
pub struct SweepPage<T> {
    pub items: Vec<T>,
    pub next: Option<SweepCursor>,
}

/// The fields of an audit record POLICY A5 is about.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AuditUsage {
    pub id: AuditId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ip_anonymised: bool,
}

/// A deletion's receipt and until when a run holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionWithLease {
    pub receipt: DeletionReceipt,
    /// Until when the run that last claimed the deletion holds it; `None` when no run holds it
    /// (never claimed, or given back). A time in the past is a lease that ran out: its run died.
    pub lease_until: Option<OffsetDateTime>,
}

/// A conversation and when its last message was.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConversationActivity {
    pub id: ConversationId,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
}

/// A page of parsed items and where the next one starts.
fn page_of<T: serde::de::DeserializeOwned>(
    items: Option<Vec<Item>>,
    last_evaluated_key: Option<Item>,
) -> StoreResult<SweepPage<T>> {
    Ok(SweepPage {
        items: items
            .unwrap_or_default()
            .into_iter()
            .map(Store::parse)
            .collect::<StoreResult<_>>()?,
        next: last_evaluated_key.map(SweepCursor),
    })
}

impl Store {
    /// A page of every merchant's id (the `MERCHANTS` index), in id order.
    pub async fn merchants_page(
        &self,
        after: Option<SweepCursor>,
    ) -> StoreResult<SweepPage<MerchantId>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
            .expression_attribute_values(":pk", s(keys::MERCHANTS_PK))
            .expression_attribute_values(":p", s(MERCHANT_INDEX_PREFIX))
            .projection_expression("SK")
            .limit(SWEEP_PAGE)
            .set_exclusive_start_key(after.map(|c| c.0))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        let items = out
            .items
            .unwrap_or_default()
            .iter()
            .map(merchant_of_index_item)
            .collect::<StoreResult<_>>()?;
        Ok(SweepPage {
            items,
            next: out.last_evaluated_key.map(SweepCursor),
        })
    }

    /// A deletion's receipt with its lease, for the sweeper to tell a deletion under way from one
    /// nobody is carrying out (see [`Store::claim_deletion`]).
    pub async fn deletion_with_lease(
        &self,
        id: &DeletionId,
    ) -> StoreResult<Option<DeletionWithLease>> {
        let Some(item) = self
            .get_item(keys::deletion_pk(id), keys::DELETION_RECEIPT_SK.into())
            .await?
        else {
            return Ok(None);
        };
        let lease_until = lease_until_of(&item)?;
        Ok(Some(DeletionWithLease {
            receipt: Self::parse(item)?,
            lease_until,
        }))
    }

    /// A page of the merchant's audit records made at or before `made_by`, oldest first, with
    /// only the fields POLICY A5 is about. One key range: audit ids carry their record's time.
    pub async fn audit_usage_page(
        &self,
        m: &MerchantId,
        made_by: OffsetDateTime,
        after: Option<SweepCursor>,
    ) -> StoreResult<SweepPage<AuditUsage>> {
        let upper = keys::audit_sk(&AuditId::max_at(now_ms(made_by).max(0) as u64));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(keys::merchant_pk(m)))
            .expression_attribute_values(":lo", s(keys::AUDIT_PREFIX))
            .expression_attribute_values(":hi", s(upper))
            // Only what the rule needs, and only records not done yet (read capacity is spent on
            // the whole range either way; the rule still decides each record).
            .projection_expression("#id, #at, #ip, #ua, #done")
            .filter_expression("attribute_not_exists(#done) OR #done = :no")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#ip", "ip")
            .expression_attribute_names("#ua", "user_agent")
            .expression_attribute_names("#done", "ip_anonymised")
            .limit(SWEEP_PAGE)
            .set_exclusive_start_key(after.map(|c| c.0))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        page_of(out.items, out.last_evaluated_key)
    }

    /// Cuts an audit record's IP address down to `network` (or removes it: `None`), drops its
    /// user agent and marks it done. False when there was nothing to do: already done, or the
    /// record is gone (TTL, a deletion) — an update must not bring it back as a stub.
    pub async fn anonymise_audit_ip(
        &self,
        m: &MerchantId,
        id: &AuditId,
        network: Option<&str>,
    ) -> StoreResult<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::merchant_pk(m), keys::audit_sk(id))))
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(#done) OR #done = :no)",
            )
            .expression_attribute_names("#done", "ip_anonymised")
            .expression_attribute_names("#ip", "ip")
            .expression_attribute_names("#ua", "user_agent")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false));
        req = match network {
            Some(net) => req
                .update_expression("SET #ip = :net, #done = :yes REMOVE #ua")
                .expression_attribute_values(":net", s(net)),
            None => req.update_expression("SET #done = :yes REMOVE #ip, #ua"),
        };
        super::written(req.send().await)
    }

    /// A page of the merchant's conversations whose last message was at or before `idle_since`,
    /// least recently active first: one range of the by-activity index (GSI1).
    pub async fn idle_conversations_page(
        &self,
        m: &MerchantId,
        idle_since: OffsetDateTime,
        after: Option<SweepCursor>,
    ) -> StoreResult<SweepPage<ConversationActivity>> {
        // The largest key at that millisecond: every conversation id sorts below the largest ULID.
        let upper = keys::conversations_by_activity_sk(
            now_ms(idle_since),
            &ConversationId::max_at(ULID_MAX_MS),
        );
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK <= :hi")
            .expression_attribute_values(":pk", s(keys::conversations_by_activity_pk(m)))
            .expression_attribute_values(":hi", s(upper))
            .projection_expression("#id, last_activity_at")
            .expression_attribute_names("#id", "id")
            .limit(SWEEP_PAGE)
            .set_exclusive_start_key(after.map(|c| c.0))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        page_of(out.items, out.last_evaluated_key)
    }

    /// Closes the merchant's account (the owner's choice, without deleting it): it is deleted
    /// [`ecomdrive_core::retention::CLOSED_MERCHANT`] after `now` unless reopened. Closing a
    /// closed account keeps its first date, so a retried request does not move the deletion.
    pub async fn close_merchant(
        &self,
        m: &MerchantId,
        now: OffsetDateTime,
    ) -> StoreResult<Merchant> {
        // An open account's `closed_at` is absent or NULL (how an empty Option is written).
        let res = self
            .closing_update(m)
            .update_expression("SET closed_at = :now")
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(closed_at) OR attribute_type(closed_at, :null))",
            )
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":null", s("NULL"))
            .send()
            .await;
        match res {
            Ok(out) => Self::parse(out.attributes.unwrap_or_default()),
            // Already closed (or gone): as it is.
            Err(e) if super::is_condition_failed(&e) => {
                self.merchant(m).await?.ok_or(AwsError::NotFound)
            }
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// Reopens a closed account: no deletion is due any more. A no-op on an open one.
    pub async fn reopen_merchant(&self, m: &MerchantId) -> StoreResult<Merchant> {
        let res = self
            .closing_update(m)
            .update_expression("REMOVE closed_at")
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        match res {
            Ok(out) => Self::parse(out.attributes.unwrap_or_default()),
            Err(e) if super::is_condition_failed(&e) => Err(AwsError::NotFound),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// An update of the merchant's profile that answers the profile as it is after it. Every
    /// caller conditions it on the profile existing: an update would otherwise create a stub.
    fn closing_update(
        &self,
        m: &MerchantId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::MERCHANT_PROFILE_SK,
            )))
            .return_values(ReturnValue::AllNew)
    }
}

/// The merchant an item of the `MERCHANTS` list names.
fn merchant_of_index_item(item: &Item) -> StoreResult<MerchantId> {
    item.get(keys::SK)
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix(MERCHANT_INDEX_PREFIX))
        .and_then(MerchantId::parse)
        .ok_or_else(|| AwsError::Corrupt("a merchants list item without a merchant id".into()))
}

/// Until when a receipt's lease runs, if it has one.
fn lease_until_of(item: &Item) -> StoreResult<Option<OffsetDateTime>> {
    let Some(v) = item.get(DELETION_LEASE_UNTIL) else {
        return Ok(None);
    };
    v.as_n()
        .ok()
        .and_then(|n| n.parse::<i64>().ok())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map(Some)
        .ok_or_else(|| AwsError::Corrupt("a deletion lease that is not a time".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merchants_list_names_its_merchants() {
        let m = MerchantId::generate();
        let item = Store::key(keys::MERCHANTS_PK, keys::merchant_index_sk(&m));
        assert_eq!(merchant_of_index_item(&item).unwrap(), m);
        let bad = Store::key(keys::MERCHANTS_PK, "OTHER#x");
        assert!(matches!(
            merchant_of_index_item(&bad),
            Err(AwsError::Corrupt(_))
        ));
    }

    #[test]
    fn a_lease_is_read_from_its_epoch_seconds() {
        let mut item = Item::new();
        assert_eq!(lease_until_of(&item).unwrap(), None);
        item.insert(
            DELETION_LEASE_UNTIL.into(),
            AttributeValue::N("1780000000".into()),
        );
        assert_eq!(
            lease_until_of(&item).unwrap(),
            Some(OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap())
        );
        item.insert(DELETION_LEASE_UNTIL.into(), s("soon"));
        assert!(matches!(lease_until_of(&item), Err(AwsError::Corrupt(_))));
    }

    #[test]
    fn the_idle_bound_covers_every_conversation_of_its_millisecond_and_none_after() {
        let ms = 1_780_000_000_123;
        let upper = keys::conversations_by_activity_sk(ms, &ConversationId::max_at(ULID_MAX_MS));
        for _ in 0..100 {
            let c = ConversationId::generate();
            assert!(keys::conversations_by_activity_sk(ms, &c) <= upper);
            assert!(keys::conversations_by_activity_sk(ms - 1, &c) <= upper);
            assert!(keys::conversations_by_activity_sk(ms + 1, &c) > upper);
        }
    }

    #[test]
    fn the_audit_bound_covers_every_record_of_its_millisecond_and_none_after() {
        let ms: u64 = 1_780_000_000_123;
        let upper = keys::audit_sk(&AuditId::max_at(ms));
        assert!(keys::audit_sk(&AuditId::generate_at(ms)) <= upper);
        assert!(keys::audit_sk(&AuditId::generate_at(ms - 1)) <= upper);
        assert!(keys::audit_sk(&AuditId::generate_at(ms + 1)) > upper);
        assert!(keys::AUDIT_PREFIX < upper.as_str());
    }
}
