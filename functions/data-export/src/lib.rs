//! `data-export` (POLICY A19, access and portability): everything EcomDrive holds for a merchant,
//! every record kind, in one zip in S3 that the merchant downloads through an expiring link.
//!
//! The job reads the merchant's partition once, a page at a time, and spools each record to a
//! temporary file of its kind on local disk (memory holds one page and each file's column
//! names); then writes the zip from those files (a JSON array or a CSV per kind, the attachment
//! files, the monthly P&L, `manifest.json`), uploads it to `exports/<merchant>/<export>.zip`
//! (the bucket expires it after days), and marks the export done.
//!
//! An export never outlives its merchant's deletion. The deletion job erases the partition and
//! `exports/<merchant>/` once; whatever an export wrote after that would stay for good. So the job
//! looks for the merchant's tombstone (`Store::merchant_deletion`) before it starts, before it
//! uploads and before its final save, and stops when it finds one: nothing more written, its own
//! zip removed, and no error (a retry would find the same). Every save of the export record is
//! conditional on the record still being there, so a deletion that erased it between a check and
//! the save is not undone either.

pub mod archive;
pub mod files;
pub mod kinds;
pub mod pnl;

use archive::{Archive, AttachmentCounts, Manifest, OmittedKind};
use aws_lambda_events::event::sqs::SqsMessage;
use ecomdrive_aws::blobs::export_key;
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::exports::{ExportRecord, ExportStatus};
use ecomdrive_aws::store::kinds::RecordKind;
use ecomdrive_aws::{AwsError, Blobs, Store};
use ecomdrive_core::data_rights::ExportJob;
use ecomdrive_core::settlement::cogs::CostHistory;
use files::Spool;
use kinds::AttachmentFile;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use time::{Date, OffsetDateTime};

/// The job's name in the audit log.
pub const JOB: &str = "data-export";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the record is not an export job: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
    /// An item whose kind this code does not know (written by newer code, or damaged): the export
    /// stops rather than leave it out silently or write it unchecked.
    #[error("an item of unknown kind {0:?}")]
    UnknownKind(String),
    #[error("local disk: {0}")]
    Disk(#[from] std::io::Error),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The merchant's deletion was asked for while the export ran: it stops, writing nothing.
    #[error("the merchant is being deleted")]
    MerchantDeleted,
}

impl ExportError {
    /// What the merchant is told: never an AWS message, a key or a record.
    pub fn reason(&self) -> &'static str {
        match self {
            ExportError::UnknownKind(_) => {
                "the export met a record it cannot export yet; we have been alerted"
            }
            ExportError::Disk(_) | ExportError::Zip(_) | ExportError::Task(_) => {
                "the export file could not be written; request a new export"
            }
            ExportError::BadRecord(_) | ExportError::Store(_) => {
                "the data could not be read or the file stored; request a new export"
            }
            // Never saved (the record goes with the merchant); said for completeness.
            ExportError::MerchantDeleted => "the account is being deleted",
        }
    }
}

#[derive(Clone)]
pub struct Exporter {
    pub store: Store,
    pub blobs: Blobs,
    /// Where the spooled records and the zip are written (Lambda's ephemeral storage).
    pub work_dir: PathBuf,
}

/// What a finished export holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub object_key: String,
    /// Records per file (name without extension), and `attachments`.
    pub counts: BTreeMap<String, u64>,
}

impl Exporter {
    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), ExportError> {
        let job: ExportJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| ExportError::BadRecord(e.to_string()))?;
        self.run(&job).await
    }

    /// Runs an export. A failure marks it `failed` with a reason and answers `Err`, so the queue
    /// tries again (the next try starts over); the last try's failure stays `failed`. A finished
    /// export delivered again is left alone, and so is one whose merchant is being deleted.
    pub async fn run(&self, job: &ExportJob) -> Result<(), ExportError> {
        let m = &job.merchant_id;
        let Some(export) = self.store.export(m, &job.export_id).await? else {
            // Gone with its merchant (deleted meanwhile): nothing to do.
            tracing::warn!(merchant_id = %m, export_id = %job.export_id, "export not found");
            return Ok(());
        };
        if export.status == ExportStatus::Done {
            return Ok(());
        }
        self.run_export(export).await
    }

    /// Carries out an export whose record [`Exporter::run`] has read. The merchant's deletion may
    /// be asked for, and even carried out, at any point after that read: the export then stops
    /// with `Ok` (nothing to retry) and leaves nothing behind (see the module's documentation).
    pub async fn run_export(&self, mut export: ExportRecord) -> Result<(), ExportError> {
        let m = export.merchant_id.clone();
        if self.being_deleted(&export).await? {
            return Ok(());
        }
        export.status = ExportStatus::Running;
        export.error = None;
        if !self.store.save_export(&export).await? {
            return self.gone(&export).await;
        }
        match self.export(&export).await {
            Ok(done) => {
                // The zip is in the bucket: a deletion asked for meanwhile may have cleared
                // `exports/<merchant>/` already and would never see it.
                if self.being_deleted(&export).await? {
                    return Ok(());
                }
                export.status = ExportStatus::Done;
                export.finished_at = Some(OffsetDateTime::now_utc());
                export.object_key = Some(done.object_key);
                export.counts = done.counts;
                if !self.store.save_export(&export).await? {
                    return self.gone(&export).await;
                }
                // The record is saved; its audit goes only into a merchant not being deleted.
                if self.being_deleted(&export).await? {
                    return Ok(());
                }
                self.store
                    .audit(
                        &m,
                        &Actor::Job(JOB),
                        "export.done",
                        Some(export.id.as_str()),
                    )
                    .await?;
                tracing::info!(merchant_id = %m, export_id = %export.id, counts = ?export.counts, "export done");
                Ok(())
            }
            Err(ExportError::MerchantDeleted) => {
                self.being_deleted(&export).await?;
                Ok(())
            }
            Err(e) => {
                // Data vanishing under the export may be the deletion's doing: not a failure.
                if self.being_deleted(&export).await? {
                    return Ok(());
                }
                tracing::error!(merchant_id = %m, export_id = %export.id, error = %e, "export failed");
                export.status = ExportStatus::Failed;
                export.finished_at = Some(OffsetDateTime::now_utc());
                export.error = Some(e.reason().to_owned());
                if !self.store.save_export(&export).await? {
                    return self.gone(&export).await;
                }
                Err(e)
            }
        }
    }

    /// True when the export's merchant is being deleted (or was): the export stops here. Its
    /// zip, if a try of it uploaded one, is removed: the deletion may have cleared the merchant's
    /// exports before it was written. Idempotent, so a retried try cleans up as well.
    async fn being_deleted(&self, export: &ExportRecord) -> Result<bool, ExportError> {
        let m = &export.merchant_id;
        let Some(deletion) = self.store.merchant_deletion(m).await? else {
            return Ok(false);
        };
        self.blobs.delete(&export_key(m, &export.id)).await?;
        tracing::info!(merchant_id = %m, export_id = %export.id, deletion_id = %deletion, "merchant being deleted: export stopped");
        Ok(true)
    }

    /// The export's record is gone (its merchant's deletion erased it): the export stops, with
    /// its zip removed, as when the tombstone is found.
    async fn gone(&self, export: &ExportRecord) -> Result<(), ExportError> {
        self.blobs
            .delete(&export_key(&export.merchant_id, &export.id))
            .await?;
        tracing::warn!(merchant_id = %export.merchant_id, export_id = %export.id, "export record gone meanwhile: export stopped");
        Ok(())
    }

    /// Writes and uploads the export's zip.
    pub async fn export(&self, export: &ExportRecord) -> Result<Exported, ExportError> {
        let m = &export.merchant_id;
        let dir = WorkDir::create(&self.work_dir, export)?;
        let created_at = OffsetDateTime::now_utc();

        // 1. Every item of the partition, once, to the spool.
        let mut spool = Spool::new(dir.path());
        let mut posted = DaySpan::default();
        let mut reader = self.store.merchant_items(m);
        while let Some(page) = reader.next_page().await? {
            for item in page {
                let kind = RecordKind::parse(&item.kind)
                    .ok_or_else(|| ExportError::UnknownKind(item.kind.clone()))?;
                if matches!(
                    kind,
                    RecordKind::SettlementDay | RecordKind::SettlementSkuDay
                ) {
                    posted.see(&item.fields);
                }
                if let Some(r) = kinds::render(kind, m, item.fields) {
                    spool.append(r.file, Some(kind), &r.record)?;
                    for a in &r.attachments {
                        spool.attachment(a)?;
                    }
                }
            }
        }

        // 2. The P&L per month, a month at a time.
        if let Some((first, last)) = posted.span() {
            let costs = CostHistory::new(self.store.unit_costs(m).await?);
            for (from, to) in pnl::months(first, last) {
                let period = self.store.settled_period(m, from, to).await?;
                for record in pnl::month_records(&period, &costs) {
                    spool.append(pnl::FILE, None, &record)?;
                }
            }
        }
        let (spooled, attachment_list) = spool.finish()?;

        // 3. The zip: records, attachment files, manifest.
        let zip_path = dir.path().join("export.zip");
        let format = export.format;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let (mut archive, entries) = {
            let zip_path = zip_path.clone();
            tokio::task::spawn_blocking(move || -> Result<_, ExportError> {
                let mut archive = Archive::create(&zip_path, created_at)?;
                let mut entries = Vec::with_capacity(spooled.len());
                for s in &spooled {
                    entries.push(archive.add_records(format, s)?);
                }
                Ok((archive, entries))
            })
            .await??
        };
        for (e, name) in entries.iter().zip(entries.iter().map(|e| stem(&e.file))) {
            counts.insert(name.to_owned(), e.records);
        }
        let mut attachments = AttachmentCounts::default();
        if let Some(list) = attachment_list {
            archive = self
                .add_attachments(archive, &list, dir.path(), &mut attachments)
                .await?;
        }
        counts.insert("attachments".into(), attachments.included);
        let manifest = Manifest {
            merchant_id: m.clone(),
            export_id: export.id.clone(),
            format,
            created_at,
            files: entries,
            attachments,
            omitted: kinds::omitted()
                .map(|(k, reason)| OmittedKind {
                    kind: k.as_str(),
                    reason,
                })
                .collect(),
        };
        tokio::task::spawn_blocking(move || archive.finish(&manifest)).await??;

        // 4. Upload, unless the merchant's deletion was asked for meanwhile: the deletion may
        // already be past `exports/<merchant>/`, and would never see the zip.
        if self.store.merchant_deletion(m).await?.is_some() {
            return Err(ExportError::MerchantDeleted);
        }
        let key = export_key(m, &export.id);
        self.blobs
            .put_file(&key, &zip_path, Some("application/zip"))
            .await?;
        Ok(Exported {
            object_key: key,
            counts,
        })
    }

    /// Copies each listed attachment from the bucket into the zip, one at a time through local
    /// disk; one no longer in the bucket is counted as missing.
    async fn add_attachments(
        &self,
        mut archive: Archive,
        list: &Path,
        dir: &Path,
        counts: &mut AttachmentCounts,
    ) -> Result<Archive, ExportError> {
        let tmp = dir.join("attachment.tmp");
        for line in std::io::BufReader::new(std::fs::File::open(list)?).lines() {
            let a: AttachmentFile = serde_json::from_str(&line?).map_err(std::io::Error::from)?;
            if self.blobs.download_to(&a.object_key, &tmp).await?.is_none() {
                counts.missing += 1;
                continue;
            }
            let tmp = tmp.clone();
            archive = tokio::task::spawn_blocking(move || -> Result<Archive, ExportError> {
                archive.add_file(&a.path, &tmp)?;
                Ok(archive)
            })
            .await??;
            counts.included += 1;
        }
        Ok(archive)
    }
}

/// `messages.csv` → `messages`.
fn stem(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(s, _)| s)
}

/// The first and last posted day of the merchant's settlement sums, seen while streaming: the
/// months the P&L covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DaySpan(Option<(Date, Date)>);

impl DaySpan {
    fn see(&mut self, fields: &serde_json::Map<String, serde_json::Value>) {
        let Some(day) = fields.get("day").and_then(|d| d.as_str()).and_then(|d| {
            Date::parse(d, &time::format_description::well_known::Iso8601::DATE).ok()
        }) else {
            return;
        };
        self.0 = Some(match self.0 {
            None => (day, day),
            Some((a, b)) => (a.min(day), b.max(day)),
        });
    }

    fn span(self) -> Option<(Date, Date)> {
        self.0
    }
}

/// The export's own folder under the work directory, removed when the job ends however it ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(root: &Path, export: &ExportRecord) -> std::io::Result<Self> {
        // A fresh name per try: a try killed half-way leaves nothing the next one reads.
        let path = root.join(format!(
            "{}-{}",
            export.id,
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn the_pnl_covers_the_first_to_the_last_posted_day() {
        let mut span = DaySpan::default();
        assert_eq!(span.span(), None);
        for d in ["2026-03-04", "2025-12-30", "not a day", "2026-01-15"] {
            span.see(json!({"day": d}).as_object().unwrap());
        }
        span.see(json!({"sku": "x"}).as_object().unwrap());
        assert_eq!(
            span.span(),
            Some((date!(2025 - 12 - 30), date!(2026 - 03 - 04)))
        );
    }

    #[test]
    fn reasons_shown_to_the_merchant_hold_no_detail_of_the_error() {
        let e = ExportError::Store(AwsError::Dynamo("AccessDenied for arn:aws:...".into()));
        assert!(!e.reason().contains("arn"));
        assert_eq!(stem("messages.csv"), "messages");
        assert_eq!(stem("x"), "x");
    }
}
