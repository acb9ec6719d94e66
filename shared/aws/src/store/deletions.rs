//! Deletion requests and their receipts (POLICY A19, E15, A11): `DELETION#<code>`, outside any
//! merchant's partition so the receipt outlives what it deletes, and the tombstone
//! `DELETED#<merchant>` that makes a deleted merchant's routes answer 410 Gone for good.
//!
//! Asking for a merchant's deletion does, at once, what must not wait for the job: the receipt
//! and the tombstone (one transaction, so a second request finds the first one's receipt), and
//! every platform token deleted ([`Store::forget_merchant_tokens`]). The job
//! (`deletion_jobs`) then removes the data itself.

use super::kinds::RecordKind;
use super::members::Membership;
use super::{Item, Store, StoreResult, keys, s};
use crate::{AwsError, TokenContext, TokenVault};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use ecomdrive_core::Secret;
use ecomdrive_core::data_rights::{
    DeletionChannel, DeletionReceipt, DeletionStatus, DeletionSubject,
};
use ecomdrive_core::ids::{DeletionId, MerchantId, PageId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use time::OffsetDateTime;

/// The attribute naming the Facebook user (app-scoped id) on the records that came from their
/// authorization: whoever writes a `FBUSER#` index item also writes this on the merchant's
/// record it points from, so a deletion finds the index item from the merchant's own data.
pub const FACEBOOK_USER_ATTRIBUTE: &str = "facebook_user_id";

/// The queue attribute `kind` of a deletion job ([`ecomdrive_core::data_rights::DeletionJob`] on
/// the `deletions` queue): whoever queues one (the API, the job itself) sends it under this name.
pub const DELETION_JOB_KIND: &str = "deletion";

/// The receipt's attributes (outside [`DeletionReceipt`]) naming the run that holds the
/// deletion and until when (epoch seconds): see [`Store::claim_deletion`]. A completed receipt
/// is written whole, without them.
const LEASE_HOLDER: &str = "lease_holder";
const LEASE_UNTIL: &str = "lease_until";

/// A merchant being deleted (or deleted) → its deletion. Ids only: it is kept after the data is
/// gone, so the merchant's routes keep answering 410 Gone.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Tombstone {
    merchant_id: MerchantId,
    deletion_id: DeletionId,
}

/// The answer to a merchant deletion request.
#[derive(Clone, Debug)]
pub struct MerchantDeletion {
    pub receipt: DeletionReceipt,
    /// False when the merchant was already being deleted: `receipt` is that deletion's.
    pub created: bool,
}

/// What [`Store::forget_merchant_tokens`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokensForgotten {
    /// Pages whose token was deleted (and which were disconnected).
    pub page_tokens: u64,
    /// The authorizing Facebook user's token.
    pub messenger_authorization: bool,
    /// The Amazon refresh token.
    pub amazon: bool,
}

/// The receipt once its deletion is done: status, completion time, and no personal data left (the
/// subject's ids are dropped; its kind, the dates and the counts stay as the proof).
pub fn completed(mut receipt: DeletionReceipt, now: OffsetDateTime) -> DeletionReceipt {
    receipt.status = DeletionStatus::Done;
    receipt.completed_at.get_or_insert(now);
    receipt.subject = None;
    receipt
}

impl Store {
    /// Records a new deletion request (its receipt, pending).
    pub async fn create_deletion(&self, receipt: &DeletionReceipt) -> StoreResult<()> {
        self.put_new(Self::receipt_item(receipt)?, "deletion exists")
            .await
    }

    fn receipt_item(receipt: &DeletionReceipt) -> StoreResult<Item> {
        Self::item(
            RecordKind::DeletionReceipt,
            keys::deletion_pk(&receipt.id),
            keys::DELETION_RECEIPT_SK.into(),
            receipt,
        )
    }

    /// A deletion's receipt by its confirmation code.
    pub async fn deletion(&self, id: &DeletionId) -> StoreResult<Option<DeletionReceipt>> {
        self.get(keys::deletion_pk(id), keys::DELETION_RECEIPT_SK.into())
            .await
    }

    /// Asks for a merchant's deletion: its receipt and its tombstone, together. Idempotent: when
    /// the merchant is already being deleted (or was), that deletion's receipt comes back with
    /// `created: false`. Tokens are not touched here: see [`Store::forget_merchant_tokens`],
    /// which the caller runs next (it needs the platform to revoke them first).
    pub async fn request_merchant_deletion(
        &self,
        m: &MerchantId,
        channel: DeletionChannel,
        now: OffsetDateTime,
    ) -> StoreResult<MerchantDeletion> {
        let receipt = DeletionReceipt::new(
            DeletionSubject::Merchant {
                merchant_id: m.clone(),
            },
            channel,
            now,
        );
        let tombstone = Tombstone {
            merchant_id: m.clone(),
            deletion_id: receipt.id.clone(),
        };
        let tx = vec![
            self.tx_put(
                Self::receipt_item(&receipt)?,
                Some("attribute_not_exists(PK)"),
            ),
            self.tx_put(
                Self::item(
                    RecordKind::MerchantDeletedIndex,
                    keys::merchant_deleted_pk(m),
                    keys::MERCHANT_DELETED_SK.into(),
                    &tombstone,
                )?,
                Some("attribute_not_exists(PK)"),
            ),
        ];
        match self.transact(tx, "merchant already being deleted").await {
            Ok(()) => Ok(MerchantDeletion {
                receipt,
                created: true,
            }),
            Err(AwsError::Conflict(_)) => {
                let id = self
                    .merchant_deletion(m)
                    .await?
                    .ok_or(AwsError::Conflict("deletion request raced; try again"))?;
                let receipt = self.deletion(&id).await?.ok_or(AwsError::NotFound)?;
                Ok(MerchantDeletion {
                    receipt,
                    created: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The deletion of a merchant, if one was asked for (its tombstone).
    pub async fn merchant_deletion(&self, m: &MerchantId) -> StoreResult<Option<DeletionId>> {
        Ok(self
            .get::<Tombstone>(
                keys::merchant_deleted_pk(m),
                keys::MERCHANT_DELETED_SK.into(),
            )
            .await?
            .map(|t| t.deletion_id))
    }

    /// The caller's membership of a merchant and the merchant's deletion, if any, in one round
    /// trip: every request under a merchant needs both (a deleted merchant answers 410 Gone).
    pub async fn membership_and_deletion(
        &self,
        m: &MerchantId,
        user: &UserId,
    ) -> StoreResult<(Option<Membership>, Option<DeletionId>)> {
        let member_key = Self::key(keys::merchant_pk(m), keys::member_sk(user));
        let tomb_key = Self::key(keys::merchant_deleted_pk(m), keys::MERCHANT_DELETED_SK);
        let mut wanted = KeysAndAttributes::builder()
            .keys(member_key)
            .keys(tomb_key)
            .consistent_read(true)
            .build()
            .map_err(|e| AwsError::Dynamo(e.to_string()))?;
        let (mut membership, mut deletion) = (None, None);
        let now = OffsetDateTime::now_utc();
        // BatchGetItem may leave keys unprocessed under load: ask again for those.
        for _ in 0..5 {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted)
                .send()
                .await
                .map_err(AwsError::dynamo)?;
            let found = out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default();
            for item in found.into_iter().filter(|i| !Self::expired(i, now)) {
                if item.get(keys::PK).and_then(|v| v.as_s().ok())
                    == Some(&keys::merchant_deleted_pk(m))
                {
                    deletion = Some(Self::parse::<Tombstone>(item)?.deletion_id);
                } else {
                    membership = Some(Self::parse::<Membership>(item)?);
                }
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(left) if !left.keys().is_empty() => wanted = left,
                _ => return Ok((membership, deletion)),
            }
        }
        Err(AwsError::Dynamo(
            "membership lookup left unprocessed".into(),
        ))
    }

    /// Records a customer deletion request (its receipt, pending). The customer must exist: the
    /// caller checks, so an unknown customer is a 404 and nothing is queued.
    pub async fn request_customer_deletion(
        &self,
        m: &MerchantId,
        customer: &ecomdrive_core::ids::CustomerId,
        channel: DeletionChannel,
        now: OffsetDateTime,
    ) -> StoreResult<DeletionReceipt> {
        let receipt = DeletionReceipt::new(
            DeletionSubject::Customer {
                merchant_id: m.clone(),
                customer_id: customer.clone(),
            },
            channel,
            now,
        );
        self.create_deletion(&receipt).await?;
        Ok(receipt)
    }

    /// Deletes every platform token of the merchant at once (POLICY A11, A20 "API tokens at once"):
    /// each Page's token (the Page is disconnected, so webhooks for it are dropped from now on), the
    /// authorizing Facebook user's token, and the Amazon refresh token. Idempotent.
    ///
    /// The authorization goes with its `FBUSER#<id>` / `MERCHANT#<m>` index item: the merchant is
    /// going, and once the authorization is deleted the job could no longer find that item from
    /// the merchant's records when no Page connection names the person (see
    /// [`Store::forget_messenger_authorization`]).
    ///
    /// Where the platform lets a token be revoked, it is revoked first: each Page token is opened
    /// and handed to `unsubscribe` (Meta: remove our app's subscription from the Page), whose
    /// failure only gets logged, the token is deleted whatever the platform answered. Amazon's
    /// Login with Amazon has no API to revoke a refresh token: deleting it is all we can do (the
    /// seller can remove the app's authorization in Seller Central).
    pub async fn forget_merchant_tokens<F, Fut>(
        &self,
        m: &MerchantId,
        vault: &TokenVault,
        unsubscribe: F,
    ) -> StoreResult<TokensForgotten>
    where
        F: Fn(PageId, Secret) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut done = TokensForgotten::default();
        for conn in self.page_connections(m).await? {
            let page = &conn.page_id;
            let Some(sealed) = &conn.token_ciphertext else {
                continue;
            };
            match vault
                .open(&TokenContext::messenger_page(m, page), sealed)
                .await
            {
                Ok(token) => unsubscribe(page.clone(), token).await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not open a Page token to revoke it; deleting it anyway")
                }
            }
            match self.disconnect_page(m, page).await {
                Ok(()) => {}
                // The Page went meanwhile (or another merchant holds its routing): still make sure
                // no token stays on our record of it.
                Err(AwsError::Conflict(_)) => self.drop_page_token(m, page).await?,
                Err(e) => return Err(e),
            }
            done.page_tokens += 1;
        }
        done.messenger_authorization = self.forget_messenger_authorization(m).await?;
        done.amazon = self.disconnect_amazon(m).await?.is_some();
        Ok(done)
    }

    /// Deletes the merchant's Messenger authorization and the index item that leads from its
    /// Facebook user to the merchant, the index item first (a run stopped in between finds the
    /// authorization again next time). Unlike [`Store::delete_messenger_authorization`], which
    /// keeps the index item for the Pages that may still name the person, this is for a merchant
    /// being deleted. The authorization is read whether or not its TTL has passed: an expired one
    /// lingers until DynamoDB removes it, and its index item has no TTL at all. True when there
    /// was an authorization.
    async fn forget_messenger_authorization(&self, m: &MerchantId) -> StoreResult<bool> {
        let auth = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::MESSENGER_AUTH_SK,
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(AwsError::dynamo)?
            .item;
        if let Some(facebook_user) = auth.as_ref().and_then(facebook_user_of) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(
                    keys::facebook_user_pk(facebook_user),
                    keys::facebook_user_sk(m),
                )))
                .send()
                .await
                .map_err(AwsError::dynamo)?;
        }
        self.delete_messenger_authorization(m).await
    }

    async fn drop_page_token(&self, m: &MerchantId, page: &PageId) -> StoreResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::merchant_pk(m), keys::page_sk(page))))
            .update_expression("SET #s = :d REMOVE token_ciphertext")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":d", s("disconnected"))
            .send()
            .await;
        super::written(res).map(|_| ())
    }

    /// Claims a deletion for one run, `holder`, until `now + lease`, and marks it running.
    ///
    /// False when another run holds an unexpired lease, or the deletion is done (or unknown): the
    /// caller does nothing then. One run at a time is what makes the receipt's counts the proof
    /// they claim to be: SQS delivers a message at least once, a run queues its job again, and two
    /// runs of one deletion at once would both delete (harmless) and both count (wrong). A run
    /// that dies holding the lease (a timeout) loses it when it expires: the lease is no longer
    /// than the job function's timeout, and SQS redelivers the dead run's message only after the
    /// queue's visibility timeout, which is longer. Claiming again with the same `holder` renews.
    pub async fn claim_deletion(
        &self,
        id: &DeletionId,
        holder: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> StoreResult<bool> {
        let until = now + lease;
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::deletion_pk(id),
                keys::DELETION_RECEIPT_SK,
            )))
            .update_expression("SET #s = :running, #h = :h, #u = :until")
            .condition_expression(
                "attribute_exists(PK) AND #s <> :done \
                 AND (attribute_not_exists(#u) OR #u <= :now OR #h = :h)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#h", LEASE_HOLDER)
            .expression_attribute_names("#u", LEASE_UNTIL)
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(
                ":until",
                AttributeValue::N(until.unix_timestamp().to_string()),
            )
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.unix_timestamp().to_string()),
            )
            .send()
            .await;
        super::written(res)
    }

    /// Gives a deletion's lease back (only `holder`'s own): the next run may start at once.
    pub async fn release_deletion(&self, id: &DeletionId, holder: &str) -> StoreResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::deletion_pk(id),
                keys::DELETION_RECEIPT_SK,
            )))
            .update_expression("REMOVE #h, #u")
            .condition_expression("#h = :h")
            .expression_attribute_names("#h", LEASE_HOLDER)
            .expression_attribute_names("#u", LEASE_UNTIL)
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        super::written(res).map(|_| ())
    }

    /// Adds what a run deleted to the receipt's counts (atomic, so a resumed run adds up).
    pub async fn add_deletion_counts(
        &self,
        id: &DeletionId,
        counts: &BTreeMap<String, u64>,
    ) -> StoreResult<()> {
        let counts: Vec<(&String, &u64)> = counts.iter().filter(|(_, n)| **n > 0).collect();
        if counts.is_empty() {
            return Ok(());
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::deletion_pk(id),
                keys::DELETION_RECEIPT_SK,
            )))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#c", "counts");
        let mut adds = Vec::new();
        for (i, (kind, n)) in counts.into_iter().enumerate() {
            adds.push(format!("#c.#k{i} :n{i}"));
            req = req
                .expression_attribute_names(format!("#k{i}"), kind.as_str())
                .expression_attribute_values(format!(":n{i}"), AttributeValue::N(n.to_string()));
        }
        req.update_expression(format!("ADD {}", adds.join(", ")))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(())
    }

    /// Marks a deletion done (see [`completed`]): its subject's ids leave the receipt (and the
    /// lease goes with the rewrite).
    pub async fn complete_deletion(
        &self,
        id: &DeletionId,
        now: OffsetDateTime,
    ) -> StoreResult<DeletionReceipt> {
        let receipt = self.deletion(id).await?.ok_or(AwsError::NotFound)?;
        let done = completed(receipt, now);
        self.put(Self::receipt_item(&done)?).await?;
        Ok(done)
    }
}

/// The Facebook user a merchant's record came from, when it names one.
pub(crate) fn facebook_user_of(item: &Item) -> Option<&str> {
    item.get(FACEBOOK_USER_ATTRIBUTE)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn policy_a19_a_completed_receipt_keeps_the_proof_and_drops_the_subject() {
        let asked = datetime!(2026-11-22 10:00:00 UTC);
        let mut r = DeletionReceipt::new(
            DeletionSubject::Merchant {
                merchant_id: MerchantId::generate(),
            },
            DeletionChannel::Api,
            asked,
        );
        r.counts.insert("message".into(), 12);
        let done = completed(r.clone(), asked + time::Duration::minutes(3));
        assert_eq!(done.status, DeletionStatus::Done);
        assert_eq!(done.subject, None, "no personal data left on the receipt");
        assert_eq!(done.completed_at, Some(asked + time::Duration::minutes(3)));
        assert_eq!(
            (&done.id, &done.subject_kind, done.requested_at, done.due_by),
            (&r.id, &r.subject_kind, r.requested_at, r.due_by)
        );
        assert_eq!(done.counts["message"], 12);
        let json = serde_json::to_string(&done).unwrap();
        let DeletionSubject::Merchant { merchant_id } = r.subject.unwrap() else {
            unreachable!()
        };
        assert!(!json.contains(merchant_id.as_str()), "{json}");
        // Completing again keeps the first completion time.
        let again = completed(done.clone(), asked + time::Duration::days(1));
        assert_eq!(again.completed_at, done.completed_at);
    }

    #[test]
    fn the_facebook_user_is_read_only_from_a_non_empty_attribute() {
        let mut item = Item::new();
        assert_eq!(facebook_user_of(&item), None);
        item.insert(FACEBOOK_USER_ATTRIBUTE.into(), s(""));
        assert_eq!(facebook_user_of(&item), None);
        item.insert(FACEBOOK_USER_ATTRIBUTE.into(), s("1234"));
        assert_eq!(facebook_user_of(&item), Some("1234"));
    }
}
