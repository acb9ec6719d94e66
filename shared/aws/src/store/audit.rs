//! The security audit log (POLICY A14, A21): every state-changing action of a user, who, what, when.

use super::{Store, StoreResult, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::{AuditId, MerchantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Audit records are deleted two years after they were written (POLICY A20), by TTL.
pub const AUDIT_RETENTION: time::Duration = time::Duration::days(730);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: AuditId,
    pub merchant_id: MerchantId,
    pub actor: UserId,
    /// What was done, e.g. `messenger.page.connect`.
    pub action: String,
    /// The object it was done to (an id, never personal data).
    pub target: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Store {
    pub async fn audit(
        &self,
        m: &MerchantId,
        actor: &UserId,
        action: &str,
        target: Option<&str>,
    ) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let rec = AuditRecord {
            id: AuditId::generate(),
            merchant_id: m.clone(),
            actor: actor.clone(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            at: now,
        };
        let mut item = Self::item("audit", keys::merchant_pk(m), keys::audit_sk(&rec.id), &rec)?;
        item.insert(
            keys::EXPIRES_AT.into(),
            AttributeValue::N((now + AUDIT_RETENTION).unix_timestamp().to_string()),
        );
        self.put(item).await
    }

    /// The merchant's most recent audit records, newest first.
    pub async fn audit_log(&self, m: &MerchantId, max: usize) -> StoreResult<Vec<AuditRecord>> {
        self.query_prefix_ordered(keys::merchant_pk(m), keys::AUDIT_PREFIX, max, false)
            .await?
            .into_iter()
            .map(Self::parse)
            .collect()
    }
}
