//! The queue messages between the Amazon functions. Each names the connection it was made for:
//! after a disconnect (or a reconnect) the connection differs and the job does nothing.

use super::AmazonOrderId;
use crate::ids::{AmazonConnectionId, MerchantId, SettlementUploadId};
use serde::{Deserialize, Serialize};
use time::Date;

/// Sync one merchant's orders (`order-sync`), or plan its review requests (`solicitation-scheduler`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantJob {
    pub merchant_id: MerchantId,
    pub connection_id: AmazonConnectionId,
}

/// Request a review for one order (`solicitation-sender`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolicitationJob {
    pub merchant_id: MerchantId,
    pub connection_id: AmazonConnectionId,
    pub order_id: AmazonOrderId,
    /// The marketplace day the scheduler planned it for.
    #[serde(with = "super::iso_date")]
    pub planned_on: Date,
}

/// A job of `settlement-import`: fetch a merchant's new settlement reports from Amazon, or import
/// a file the merchant uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum SettlementJob {
    Reports(MerchantJob),
    Upload {
        merchant_id: MerchantId,
        upload_id: SettlementUploadId,
    },
}
