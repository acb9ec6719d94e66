//! Fixed-window rate limits shared by every Lambda instance: a counter item per window, raised
//! with a conditional update so the limit holds whatever the concurrency (POLICY A15, E12).
//!
//! Two homes for the counters: a merchant's own calls count in its partition
//! ([`Store::rate_limit`]); the public deletion form, which has no merchant, counts per IP address
//! or e-mail under a hash of it ([`Store::form_rate_limit`]), so no raw address is stored.

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::MerchantId;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Whether the call was allowed, and if not, how long until the window resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after_secs: u64 },
}

/// The window `t` falls in: its start (epoch seconds, a multiple of `window_secs`).
fn window_start(t: i64, window_secs: i64) -> i64 {
    t - t.rem_euclid(window_secs)
}

/// Seconds until the window of `t` ends; at least 1, so `Retry-After` never says "now".
fn retry_after(t: i64, window_secs: i64) -> u64 {
    u64::try_from(window_start(t, window_secs) + window_secs - t)
        .unwrap_or(1)
        .max(1)
}

/// The partition of a form counter: SHA-256 of the scope and the key material, so the table
/// never holds the IP address or e-mail being limited, and one scope's counters cannot collide
/// with another's.
fn form_scope_hash(scope: &str, key_material: &str) -> String {
    hex::encode(Sha256::digest(format!("{scope}|{key_material}").as_bytes()))
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
        self.count_call(
            keys::merchant_pk(m),
            scope,
            RecordKind::RateCounter,
            limit,
            window_secs,
            now,
        )
        .await
    }

    /// Counts one call of the public form's `scope` (e.g. `deletion-ip`) for `key_material` (the
    /// caller's IP address, an e-mail...); at most `limit` per `window_secs`. Only a hash of the
    /// two is stored. A guessable key (an IPv4 address) should come already keyed by the caller
    /// (an HMAC with a secret), so the stored hash cannot be reversed by trying every address.
    pub async fn form_rate_limit(
        &self,
        scope: &str,
        key_material: &str,
        limit: u32,
        window_secs: i64,
        now: OffsetDateTime,
    ) -> StoreResult<RateDecision> {
        self.count_call(
            keys::form_rate_pk(&form_scope_hash(scope, key_material)),
            scope,
            RecordKind::FormRateCounter,
            limit,
            window_secs,
            now,
        )
        .await
    }

    /// One fixed-window counter item `pk` / `RATE#<scope>#<window start>`, raised only while
    /// below `limit`; it expires (TTL) one window after its own ends.
    async fn count_call(
        &self,
        pk: String,
        scope: &str,
        kind: RecordKind,
        limit: u32,
        window_secs: i64,
        now: OffsetDateTime,
    ) -> StoreResult<RateDecision> {
        let t = now.unix_timestamp();
        let start = window_start(t, window_secs);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, keys::rate_sk(scope, start))))
            .update_expression("ADD calls :one SET expires_at = :exp, #k = :kind")
            .condition_expression("attribute_not_exists(calls) OR calls < :limit")
            .expression_attribute_names("#k", keys::KIND)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":kind", AttributeValue::S(kind.as_str().into()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((start + window_secs * 2).to_string()),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(e) if super::is_condition_failed(&e) => Ok(RateDecision::Limited {
                retry_after_secs: retry_after(t, window_secs),
            }),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_retry_after_counts_to_their_end() {
        assert_eq!(window_start(7_200, 3_600), 7_200);
        assert_eq!(window_start(10_799, 3_600), 7_200);
        assert_eq!(retry_after(7_200, 3_600), 3_600);
        assert_eq!(retry_after(10_799, 3_600), 1);
    }

    #[test]
    fn form_counters_store_a_hash_never_the_address_and_scopes_do_not_collide() {
        let h = form_scope_hash("deletion-ip", "192.0.2.7");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("192.0.2.7"));
        assert_eq!(h, form_scope_hash("deletion-ip", "192.0.2.7"));
        assert_ne!(h, form_scope_hash("deletion-email", "192.0.2.7"));
        assert_ne!(h, form_scope_hash("deletion-ip", "192.0.2.8"));
    }
}
