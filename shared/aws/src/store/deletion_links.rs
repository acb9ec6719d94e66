//! The confirmation links the public deletion form e-mails (POLICY E15, A19): `DELLINK#<id>`,
//! single use, expiring (TTL). The signed token in the e-mail carries only the link id; what it
//! confirms (whose account) stays here.

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys, n, rfc3339};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use ecomdrive_core::ids::UserId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeletionLink {
    pub link_id: String,
    /// The user the address belonged to when the link was asked for. `None` when no account has
    /// that address: such a link is never sent, it exists so that both answers of the form do
    /// the same work.
    pub user_id: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Epoch seconds; also the item's TTL.
    pub expires_at: i64,
    #[serde(default)]
    pub used: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
}

/// What taking a link found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TakenLink {
    /// This call used it: no other call ever will.
    Taken(DeletionLink),
    /// Used before.
    Used,
    Expired,
    /// No such link (never made, or removed by TTL).
    Unknown,
}

/// The e-mail index item (ids only); see `members.rs`, which writes it.
#[derive(Deserialize)]
struct EmailIndex {
    user_id: UserId,
}

impl Store {
    pub async fn create_deletion_link(&self, link: &DeletionLink) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::DeletionLink,
            keys::deletion_link_pk(&link.link_id),
            keys::DELETION_LINK_SK.into(),
            link,
        )?;
        self.put_new(item, "deletion link exists").await
    }

    /// Marks the link used if it is unused and unexpired at `now`, in one conditional write:
    /// of any number of concurrent calls, exactly one gets [`TakenLink::Taken`].
    pub async fn take_deletion_link(
        &self,
        link_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<TakenLink> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::deletion_link_pk(link_id),
                keys::DELETION_LINK_SK,
            )))
            .update_expression("SET used = :yes, used_at = :at")
            .condition_expression("attribute_exists(PK) AND used = :no AND expires_at > :now")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":at", AttributeValue::S(rfc3339(now)))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => Ok(TakenLink::Taken(Self::parse(
                out.attributes.ok_or(AwsError::NotFound)?,
            )?)),
            // Refused: read it once more only to say why (the rare path).
            Err(e) if super::is_condition_failed(&e) => {
                let raw = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(
                        keys::deletion_link_pk(link_id),
                        keys::DELETION_LINK_SK,
                    )))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(AwsError::dynamo)?
                    .item;
                Ok(match raw.map(Self::parse::<DeletionLink>).transpose()? {
                    None => TakenLink::Unknown,
                    Some(l) if l.used => TakenLink::Used,
                    Some(_) => TakenLink::Expired,
                })
            }
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// Gives a taken link back when what it confirms could not be recorded (nothing was queued),
    /// so the person can open it again instead of starting over.
    pub async fn release_deletion_link(&self, link_id: &str) -> StoreResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::deletion_link_pk(link_id),
                keys::DELETION_LINK_SK,
            )))
            .update_expression("SET used = :no REMOVE used_at")
            .condition_expression("attribute_exists(PK) AND used = :yes")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if super::is_condition_failed(&e) => Err(AwsError::NotFound),
            Err(e) => Err(AwsError::dynamo(e)),
        }
    }

    /// The user whose (normalised) e-mail address this is, if any: the public form's lookup.
    pub async fn user_id_by_email(&self, email: &str) -> StoreResult<Option<UserId>> {
        Ok(self
            .get::<EmailIndex>(keys::email_pk(email), keys::EMAIL_USER_SK.into())
            .await?
            .map(|i| i.user_id))
    }
}
