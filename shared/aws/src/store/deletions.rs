//! Deletion requests and their receipts (POLICY A19, E15): `DELETION#<code>`, outside any
//! merchant's partition so the receipt outlives what it deletes.

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use ecomdrive_core::data_rights::DeletionReceipt;
use ecomdrive_core::ids::DeletionId;

impl Store {
    /// Records a new deletion request (its receipt, pending).
    pub async fn create_deletion(&self, receipt: &DeletionReceipt) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::DeletionReceipt,
            keys::deletion_pk(&receipt.id),
            keys::DELETION_RECEIPT_SK.into(),
            receipt,
        )?;
        self.put_new(item, "deletion exists").await
    }

    /// A deletion's receipt by its confirmation code.
    pub async fn deletion(&self, id: &DeletionId) -> StoreResult<Option<DeletionReceipt>> {
        self.get(keys::deletion_pk(id), keys::DELETION_RECEIPT_SK.into())
            .await
    }
}
