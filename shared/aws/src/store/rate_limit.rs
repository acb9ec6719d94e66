//! Fixed-window rate limits shared by every Lambda instance: a counter item per window, raised
//! with a conditional update so the limit holds whatever the concurrency (POLICY A15, E12).

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::MerchantId;
use time::OffsetDateTime;

/// Whether the call was allowed, and if not, how long until the window resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after_secs: u64 },
}

impl Store {
    /// Counts one call of `scope` for the merchant; at most `limit` per `window_secs`.
    pub async fn rate_limit(
        &self,
        m: &MerchantId,
        scope: &str,
        limit: u32,
        window_secs: i64,
        now: OffsetDateTime,
    ) -> StoreResult<RateDecision> {
        let t = now.unix_timestamp();
        let window_start = t - t.rem_euclid(window_secs);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::rate_sk(scope, window_start),
            )))
            .update_expression("ADD calls :one SET expires_at = :exp, #k = :kind")
            .condition_expression("attribute_not_exists(calls) OR calls < :limit")
            .expression_attribute_names("#k", keys::KIND)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(
                ":kind",
                AttributeValue::S(RecordKind::RateCounter.as_str().into()),
            )
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((window_start + window_secs * 2).to_string()),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(e) if super::is_condition_failed(&e) => Ok(RateDecision::Limited {
                retry_after_secs: u64::try_from(window_start + window_secs - t)
                    .unwrap_or(1)
                    .max(1),
            }),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }
}
