//! Data rights (POLICY A19, E15): the messages of the export and deletion jobs and the deletion
//! receipt, the proof that a deletion was asked for and carried out.
//!
//! A receipt holds no personal data once its deletion is done: the subject's ids are dropped and
//! only the confirmation code, the dates, what kind of subject it was and counts per record kind
//! remain.

use crate::ids::{CustomerId, DeletionId, ExportId, MerchantId, UserId};
use crate::retention;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The format of an export: a zip of one `.json` or one `.csv` file per record kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Json,
    Csv,
}

/// A job of `data-export`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    pub merchant_id: MerchantId,
    pub export_id: ExportId,
}

/// A job of `data-deletion`: carry out the deletion its receipt describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionJob {
    pub deletion_id: DeletionId,
}

/// Whose data a deletion removes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeletionSubject {
    /// The merchant and everything it holds (its owner asked, or it stayed closed 90 days).
    Merchant { merchant_id: MerchantId },
    /// One customer of a merchant: the customer, their conversations, messages and attachments.
    Customer {
        merchant_id: MerchantId,
        customer_id: CustomerId,
    },
    /// A user's account and memberships, and every merchant whose only owner they are
    /// (the public form).
    User { user_id: UserId },
    /// What EcomDrive holds from Facebook about a Facebook user (Meta's data deletion callback):
    /// their ids, name and tokens; Pages connected through their authorization are disconnected.
    FacebookUser { facebook_user_id: String },
}

impl DeletionSubject {
    /// What kind of subject, kept on the receipt after the ids are gone.
    pub fn kind(&self) -> &'static str {
        match self {
            DeletionSubject::Merchant { .. } => "merchant",
            DeletionSubject::Customer { .. } => "customer",
            DeletionSubject::User { .. } => "user",
            DeletionSubject::FacebookUser { .. } => "facebook_user",
        }
    }
}

/// Who asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionChannel {
    /// An owner or admin through the API.
    Api,
    /// The public data-deletion form, confirmed through the e-mailed link.
    Form,
    /// Meta's data deletion callback.
    Facebook,
    /// The retention sweeper (a merchant closed for 90 days).
    Retention,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    /// Asked for and queued.
    Pending,
    /// The job has started (and may have been stopped half-way: the next run finishes it).
    Running,
    Done,
}

/// The proof of a deletion (POLICY A19): kept after the data is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionReceipt {
    /// The confirmation code.
    pub id: DeletionId,
    /// `merchant`, `customer`, `user` or `facebook_user`.
    pub subject_kind: String,
    /// Whose data; dropped when the deletion is done (the receipt then holds no personal data).
    pub subject: Option<DeletionSubject>,
    pub channel: DeletionChannel,
    pub status: DeletionStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The policy's deadline: [`retention::DELETION_DEADLINE`] after the request.
    #[serde(with = "time::serde::rfc3339")]
    pub due_by: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// How many records of each kind were deleted (and how many kept as legal records, under
    /// `kept:<kind>`).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
}

impl DeletionReceipt {
    /// A new request, pending.
    pub fn new(subject: DeletionSubject, channel: DeletionChannel, now: OffsetDateTime) -> Self {
        Self {
            id: DeletionId::generate(),
            subject_kind: subject.kind().to_owned(),
            subject: Some(subject),
            channel,
            status: DeletionStatus::Pending,
            requested_at: now,
            due_by: retention::DELETION_DEADLINE.end(now),
            completed_at: None,
            counts: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn policy_a19_a_deletion_is_due_within_thirty_days_of_the_request() {
        let now = datetime!(2026-11-22 10:00:00 UTC);
        let r = DeletionReceipt::new(
            DeletionSubject::User {
                user_id: UserId::parse("3f1c2a9e-user").unwrap(),
            },
            DeletionChannel::Form,
            now,
        );
        assert_eq!(r.due_by, datetime!(2026-12-22 10:00:00 UTC));
        assert_eq!(r.status, DeletionStatus::Pending);
        assert_eq!(r.subject_kind, "user");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["subject"]["kind"], "user");
    }
}
