//! `settlement-import` (POLICY A8): brings every Amazon settlement into EcomDrive.
//!
//! Two triggers: a schedule fans out one queue message per connected merchant, and the queue
//! carries two kinds of job: look for the merchant's new settlement reports (Reports API
//! 2021-06-30, `GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`, status DONE, every page, since the
//! last run) and import each, or import one large file the merchant uploaded to S3. A document is
//! streamed to the function's disk (gunzipped on the way), archived in S3 and imported by
//! [`SettlementImporter`]: checked whole before anything is stored, idempotent.

use aws_lambda_events::event::sqs::SqsMessage;
use ecomdrive_aws::settlement_import::{ImportOutcome, Origin, SettlementFile, SettlementImporter};
use ecomdrive_aws::store::settlements::{
    SettlementImportState, SettlementSource, SettlementUpload, UploadStatus,
};
use ecomdrive_aws::{AwsError, Queue, Store, TokenContext, TokenVault};
use ecomdrive_core::Secret;
use ecomdrive_core::amazon::jobs::{MerchantJob, SettlementJob};
use ecomdrive_core::ids::{MerchantId, SettlementUploadId};
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::amazon::{AmazonClient, Report};
use ecomdrive_runtime::amazon::AmazonApi;
use ecomdrive_runtime::sqs::to_bodies;
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// The largest settlement file downloaded and imported (unpacked). Amazon's are far smaller; the
/// function's disk (EphemeralStorage, 4 GB) holds it.
pub const MAX_FILE_BYTES: u64 = 3 << 30;
/// Each run asks for reports created this long before the last run's newest one: a report
/// Amazon lists late is not missed (imported ones are skipped by their report id).
pub const OVERLAP: Duration = Duration::days(7);
/// Amazon lists reports of the last 90 days at most.
const AMAZON_HISTORY: Duration = Duration::days(90);
/// The queue's `maxReceiveCount` (template.yaml): the last delivery of a job.
pub const MAX_RECEIVES: u32 = 5;
/// Pages of reports read in one run; Amazon pages by 100.
const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the record is not a settlement job: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
    #[error("Amazon: {0}")]
    Amazon(#[from] PlatformError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("local disk: {0}")]
    Disk(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct SettlementImport {
    pub store: Store,
    pub vault: TokenVault,
    pub amazon: AmazonApi,
    /// The settlement-import queue (the fan-out writes to it).
    pub queue: Queue,
    pub importer: SettlementImporter,
    /// Where documents are written while they are imported.
    pub work_dir: PathBuf,
}

/// What one merchant's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportsOutcome {
    pub listed: u64,
    pub imported: u64,
    pub already_imported: u64,
    /// Malformed or conflicting reports: logged, left for a person.
    pub refused: u64,
    /// Reports that could not be imported this time (tried again on the next run).
    pub failed: u64,
    /// The job's connection is gone or was replaced: nothing fetched.
    pub not_connected: bool,
}

impl SettlementImport {
    /// The schedule's fan-out: one message per merchant with a live connection.
    pub async fn fan_out(&self) -> Result<usize, ImportError> {
        let jobs: Vec<SettlementJob> = self
            .store
            .live_amazon_jobs()
            .await?
            .into_iter()
            .map(SettlementJob::Reports)
            .collect();
        let n = jobs.len();
        self.queue.send_all(to_bodies(&jobs)).await?;
        tracing::info!(merchants = n, "settlement import fanned out");
        Ok(n)
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), ImportError> {
        let job: SettlementJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| ImportError::BadRecord(e.to_string()))?;
        let now = OffsetDateTime::now_utc();
        match job {
            SettlementJob::Reports(job) => {
                let outcome = self.import_reports(&job, now).await?;
                tracing::info!(merchant_id = %job.merchant_id, ?outcome, "settlement reports done");
            }
            SettlementJob::Upload {
                merchant_id,
                upload_id,
            } => {
                let last_try = receive_count(&record) >= MAX_RECEIVES;
                let status = self
                    .import_upload(&merchant_id, &upload_id, now, last_try)
                    .await?;
                tracing::info!(%merchant_id, %upload_id, ?status, "settlement upload done");
            }
        }
        Ok(())
    }

    /// Imports the merchant's settlement reports Amazon made since the last run.
    pub async fn import_reports(
        &self,
        job: &MerchantJob,
        now: OffsetDateTime,
    ) -> Result<ReportsOutcome, ImportError> {
        let m = &job.merchant_id;
        let not_connected = ReportsOutcome {
            not_connected: true,
            ..Default::default()
        };
        let Some(conn) = self.store.amazon_connection(m).await? else {
            return Ok(not_connected);
        };
        if conn.connection_id != job.connection_id || !conn.token_valid {
            return Ok(not_connected);
        }
        let refresh = self
            .vault
            .open(
                &TokenContext::amazon_seller(m, &conn.selling_partner_id),
                &conn.refresh_token_ciphertext,
            )
            .await?;
        let client = self
            .amazon
            .client()
            .await
            .map_err(|e| ImportError::Config(e.to_string()))?
            .with_report_document_limit(MAX_FILE_BYTES);
        let since = self
            .store
            .settlement_import_state(m)
            .await?
            .map(|s| (s.reports_seen_until - OVERLAP).max(now - AMAZON_HISTORY));
        let reports = match list_reports(&client, &refresh, since).await {
            Err(PlatformError::Lwa { error, .. }) if error == "invalid_grant" => {
                self.store
                    .mark_amazon_token_invalid(m, &conn.connection_id)
                    .await?;
                return Ok(not_connected);
            }
            other => other?,
        };
        let mut outcome = ReportsOutcome {
            listed: reports.len() as u64,
            ..Default::default()
        };
        let mut first_failed: Option<OffsetDateTime> = None;
        for report in &reports {
            if self
                .store
                .imported_report(m, &report.report_id)
                .await?
                .is_some()
            {
                outcome.already_imported += 1;
                continue;
            }
            // A disconnect while importing stops it before the next download.
            if self
                .store
                .amazon_connection(m)
                .await?
                .is_none_or(|c| c.connection_id != conn.connection_id)
            {
                return Ok(ReportsOutcome {
                    not_connected: true,
                    ..outcome
                });
            }
            let imported = match self.import_report(m, &client, &refresh, report, now).await {
                Ok(imported) => imported,
                // A rate limit ends the run: the queue's next try goes on from here.
                Err(e @ ImportError::Amazon(PlatformError::RateLimited { .. })) => return Err(e),
                Err(e) => {
                    // One report that fails must not hold back the others: it is tried again
                    // on the next run (the watermark stays before it).
                    outcome.failed += 1;
                    first_failed = first_failed.or(Some(report.created_time));
                    tracing::error!(
                        merchant_id = %m, report_id = %report.report_id, error = %e,
                        "a settlement report could not be imported"
                    );
                    continue;
                }
            };
            match imported {
                ImportOutcome::Imported(_) => outcome.imported += 1,
                ImportOutcome::AlreadyImported(_) => outcome.already_imported += 1,
                ImportOutcome::Rejected(rejection) => {
                    outcome.refused += 1;
                    tracing::error!(
                        merchant_id = %m, report_id = %report.report_id, ?rejection,
                        "an Amazon settlement report was refused by the parser"
                    );
                }
                ImportOutcome::Conflict(stored) => {
                    outcome.refused += 1;
                    tracing::error!(
                        merchant_id = %m, report_id = %report.report_id,
                        settlement_id = %stored.id(),
                        "an Amazon settlement report differs from the settlement stored under its id"
                    );
                }
            }
        }
        let newest = reports.iter().map(|r| r.created_time).max();
        let seen_until = match first_failed {
            Some(failed) => failed,
            None => newest.unwrap_or(now),
        };
        let state = SettlementImportState {
            reports_seen_until: seen_until.min(now),
            last_run_at: now,
        };
        self.store.save_settlement_import_state(m, &state).await?;
        Ok(outcome)
    }

    async fn import_report(
        &self,
        m: &MerchantId,
        client: &AmazonClient,
        refresh: &Secret,
        report: &Report,
        now: OffsetDateTime,
    ) -> Result<ImportOutcome, ImportError> {
        let document_id = report.report_document_id.as_deref().unwrap_or_default();
        let document = client.get_report_document(refresh, document_id).await?;
        let path = self
            .work_dir
            .join(format!("settlement-report-{}", report.report_id));
        let file = TempFile(path.clone());
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
            client.download_report_document(&document, &mut out).await?;
            std::io::Write::flush(&mut out)?;
        }
        let outcome = self
            .importer
            .import(
                m,
                SettlementFile::Path(path),
                Origin {
                    source: SettlementSource::Amazon,
                    report_id: Some(report.report_id.clone()),
                },
                now,
            )
            .await?;
        if let ImportOutcome::Imported(s) | ImportOutcome::AlreadyImported(s) = &outcome {
            self.store
                .mark_report_imported(m, &report.report_id, s.id())
                .await?;
        }
        drop(file);
        Ok(outcome)
    }

    /// Imports a file the merchant uploaded through a presigned URL, and records how it went.
    /// `last_try`: the queue will not deliver the job again, so a failure is recorded as the
    /// upload's status instead of leaving it `running` for ever.
    pub async fn import_upload(
        &self,
        m: &MerchantId,
        id: &SettlementUploadId,
        now: OffsetDateTime,
        last_try: bool,
    ) -> Result<UploadStatus, ImportError> {
        let Some(mut upload) = self.store.settlement_upload(m, id).await? else {
            return Err(ImportError::BadRecord(format!("no upload {id}")));
        };
        if !matches!(upload.status, UploadStatus::Queued | UploadStatus::Running) {
            return Ok(upload.status); // a redelivery of a finished job
        }
        upload.status = UploadStatus::Running;
        upload.updated_at = now;
        self.store.save_settlement_upload(m, &upload, None).await?;
        let done = match self.run_upload(m, upload.clone(), now).await {
            Ok(done) => done,
            Err(e) if last_try => {
                tracing::error!(merchant_id = %m, upload_id = %id, error = %e, "settlement upload failed");
                finished(upload, UploadStatus::Failed, now, |u| {
                    u.error = Some("the file could not be imported: upload it again".into());
                })
            }
            Err(e) => return Err(e),
        };
        self.store.save_settlement_upload(m, &done, None).await?;
        // The archive keeps the file under the settlement: the upload object is not needed.
        self.importer.blobs.delete(&done.object_key).await?;
        Ok(done.status)
    }

    async fn run_upload(
        &self,
        m: &MerchantId,
        upload: SettlementUpload,
        now: OffsetDateTime,
    ) -> Result<SettlementUpload, ImportError> {
        let path = self.work_dir.join(format!(
            "settlement-upload-{}-{}",
            upload.upload_id,
            ulid::Ulid::new()
        ));
        let _file = TempFile(path.clone());
        let downloaded = self
            .importer
            .blobs
            .download_to(&upload.object_key, &path)
            .await?;
        if downloaded.is_none() {
            return Ok(finished(upload, UploadStatus::Failed, now, |u| {
                u.error = Some("no file was uploaded to the upload URL".into());
            }));
        }
        let origin = Origin {
            source: SettlementSource::Upload,
            report_id: None,
        };
        let outcome = self
            .importer
            .import(m, SettlementFile::Path(path), origin, now)
            .await?;
        Ok(upload_result(upload, outcome, now))
    }
}

/// Every settlement report Amazon lists since `since` (Amazon's default: 90 days), oldest first.
async fn list_reports(
    client: &AmazonClient,
    refresh: &Secret,
    since: Option<OffsetDateTime>,
) -> Result<Vec<Report>, PlatformError> {
    let mut reports = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .get_settlement_reports(refresh, since, next.as_deref())
            .await?;
        reports.extend(page.reports);
        match page.next_token {
            Some(token) => next = Some(token),
            None => break,
        }
    }
    // A report without a document has nothing to import (yet).
    reports.retain(|r| r.processing_status == "DONE" && r.report_document_id.is_some());
    reports.sort_by_key(|r| r.created_time);
    Ok(reports)
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

fn upload_result(
    upload: SettlementUpload,
    outcome: ImportOutcome,
    now: OffsetDateTime,
) -> SettlementUpload {
    match outcome {
        ImportOutcome::Imported(s) => finished(upload, UploadStatus::Imported, now, |u| {
            u.settlement_id = Some(s.summary.settlement_id);
        }),
        ImportOutcome::AlreadyImported(s) => {
            finished(upload, UploadStatus::AlreadyImported, now, |u| {
                u.settlement_id = Some(s.summary.settlement_id);
            })
        }
        ImportOutcome::Rejected(r) => finished(upload, UploadStatus::Rejected, now, |u| {
            u.problems = Some(r);
        }),
        ImportOutcome::Conflict(s) => finished(upload, UploadStatus::Conflict, now, |u| {
            u.error = Some(format!(
                "settlement {} is stored already with different content",
                s.id()
            ));
            u.settlement_id = Some(s.summary.settlement_id);
        }),
    }
}

fn finished(
    mut upload: SettlementUpload,
    status: UploadStatus,
    now: OffsetDateTime,
    with: impl FnOnce(&mut SettlementUpload),
) -> SettlementUpload {
    upload.status = status;
    upload.updated_at = now;
    with(&mut upload);
    upload
}

/// A file in the work directory, removed when the import is done with it (the function's disk
/// is reused by the next invocation).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
