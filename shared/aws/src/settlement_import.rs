//! Importing one settlement flat file (POLICY A8), the same way for an upload and for the
//! scheduled import: check the whole file, archive it, then store its sums.
//!
//! Nothing of a malformed file is stored: the first pass parses the whole file and only counts;
//! writing starts after it accepted every line. The second pass parses the file again and writes
//! each order's sums as the stream passes it, so memory stays flat however long the file is.

use crate::blobs::{Blobs, merchant_key};
use crate::store::settlements::{ImportStart, SettlementRecord, SettlementSource};
use crate::{AwsError, Store};
use bytes::Bytes;
use ecomdrive_core::ids::MerchantId;
use ecomdrive_core::settlement::{
    OrderSums, ParsedSettlement, Problem, Rejection, parse_settlement,
};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use time::OffsetDateTime;

/// Order runs written per batch of the second pass.
const ORDER_BATCH: usize = 100;
/// The parser reads in blocks this big.
const READ_BUFFER: usize = 1 << 20;

/// A settlement file as received: in memory (a direct upload) or on disk (a download), plain or
/// gzip-compressed (recognised by its magic bytes, whatever the name or content type says).
#[derive(Clone, Debug)]
pub enum SettlementFile {
    Bytes(Bytes),
    Path(PathBuf),
}

/// The most a file may unpack to: a few hundred bytes of gzip must not become terabytes.
#[derive(Clone, Copy, Debug)]
pub struct SizeLimit(pub u64);

impl SettlementFile {
    fn is_gzip(&self) -> std::io::Result<bool> {
        let mut magic = [0u8; 2];
        let n = match self {
            Self::Bytes(b) => {
                let n = b.len().min(2);
                magic[..n].copy_from_slice(&b[..n]);
                n
            }
            Self::Path(p) => std::fs::File::open(p)?.read(&mut magic)?,
        };
        Ok(n == 2 && magic == [0x1f, 0x8b])
    }

    /// The file's text, unpacked when it is gzip, refusing to read past `limit`.
    fn reader(&self, limit: SizeLimit) -> std::io::Result<Box<dyn BufRead + Send>> {
        let raw: Box<dyn Read + Send> = match self {
            Self::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
            Self::Path(p) => Box::new(std::fs::File::open(p)?),
        };
        let plain: Box<dyn Read + Send> = if self.is_gzip()? {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(raw)))
        } else {
            raw
        };
        Ok(Box::new(BufReader::with_capacity(
            READ_BUFFER,
            Capped {
                inner: plain,
                left: limit.0,
            },
        )))
    }

    fn content_type(&self) -> std::io::Result<&'static str> {
        Ok(if self.is_gzip()? {
            "application/gzip"
        } else {
            "text/tab-separated-values"
        })
    }
}

/// A reader that fails once more than its limit was read (the parser reports it as a problem).
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file unpacks to more than the size allowed",
            )
        })?;
        Ok(n)
    }
}

/// How an import ended. Only a failure to reach AWS is an error: the rest are answers.
#[derive(Clone, Debug)]
pub enum ImportOutcome {
    Imported(SettlementRecord),
    /// The same content was imported before (a retry, or the schedule and an upload).
    AlreadyImported(SettlementRecord),
    /// Malformed: nothing was stored.
    Rejected(Rejection),
    /// The settlement id is taken by different content: the stored one stays.
    Conflict(SettlementRecord),
}

/// Where an import's file came from, for the record.
#[derive(Clone, Debug)]
pub struct Origin {
    pub source: SettlementSource,
    pub report_id: Option<String>,
}

#[derive(Clone)]
pub struct SettlementImporter {
    pub store: Store,
    pub blobs: Blobs,
    pub limit: SizeLimit,
}

impl SettlementImporter {
    pub async fn import(
        &self,
        m: &MerchantId,
        file: SettlementFile,
        origin: Origin,
        now: OffsetDateTime,
    ) -> Result<ImportOutcome, AwsError> {
        let parsed = match self.check(file.clone()).await? {
            Ok(parsed) => parsed,
            Err(rejection) => return Ok(ImportOutcome::Rejected(rejection)),
        };
        let id = parsed.summary.settlement_id.clone();
        let archive_key = merchant_key(m, &format!("settlements/{id}/{}", parsed.fingerprint));
        let record = SettlementRecord::importing(
            &parsed,
            origin.source,
            archive_key.clone(),
            origin.report_id,
            now,
        );
        match self.store.begin_settlement_import(m, &record).await? {
            ImportStart::Started => {}
            ImportStart::AlreadyImported(stored) if stored.imported_at.is_some() => {
                return Ok(ImportOutcome::AlreadyImported(stored));
            }
            // The same content half-imported by another run: finish it here too (same writes).
            ImportStart::AlreadyImported(_) => {}
            ImportStart::Conflict(stored) => return Ok(ImportOutcome::Conflict(stored)),
        }
        self.archive(&file, &archive_key).await?;
        self.store
            .put_settlement_days(m, &record, &parsed.by_day, &parsed.by_sku_day)
            .await?;
        self.write_orders(m, &record, file).await?;
        let stored = self
            .store
            .finish_settlement_import(m, &id, &parsed.fingerprint, now)
            .await?;
        tracing::info!(
            merchant_id = %m, settlement_id = %id, lines = parsed.detail_lines,
            order_runs = parsed.order_runs, reconciles = parsed.reconciles,
            "settlement imported"
        );
        Ok(ImportOutcome::Imported(stored))
    }

    /// The first pass: the whole file checked and summed, orders only counted.
    async fn check(
        &self,
        file: SettlementFile,
    ) -> Result<Result<ParsedSettlement, Rejection>, AwsError> {
        let limit = self.limit;
        tokio::task::spawn_blocking(move || match file.reader(limit) {
            Ok(reader) => parse_settlement(reader, |_| {}),
            Err(e) => Err(unreadable(e)),
        })
        .await
        .map_err(|e| AwsError::Blob(format!("the parser stopped: {e}")))
    }

    async fn archive(&self, file: &SettlementFile, key: &str) -> Result<(), AwsError> {
        let content_type = file
            .content_type()
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        match file {
            SettlementFile::Bytes(b) => self.blobs.put(key, b.to_vec(), Some(content_type)).await,
            SettlementFile::Path(p) => self.blobs.put_file(key, p, Some(content_type)).await,
        }
    }

    /// The second pass: the parser runs on a blocking thread and hands order runs over a
    /// bounded channel to the writer, which batches them.
    async fn write_orders(
        &self,
        m: &MerchantId,
        record: &SettlementRecord,
        file: SettlementFile,
    ) -> Result<(), AwsError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(u64, OrderSums)>>(4);
        let limit = self.limit;
        let expected = record.fingerprint.clone();
        let parser = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(ORDER_BATCH);
            let mut ordinal = 0u64;
            let reader = file.reader(limit).map_err(unreadable)?;
            let again = parse_settlement(reader, |run| {
                batch.push((ordinal, run));
                ordinal += 1;
                if batch.len() == ORDER_BATCH {
                    // A closed channel means the writer failed: its error is the one reported.
                    let _ = tx.blocking_send(std::mem::take(&mut batch));
                }
            })?;
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
            Ok::<_, Rejection>(again.fingerprint)
        });
        while let Some(batch) = rx.recv().await {
            self.store.put_settlement_orders(m, record, &batch).await?;
        }
        match parser.await {
            Ok(Ok(fingerprint)) if fingerprint == expected => Ok(()),
            Ok(Ok(_)) | Ok(Err(_)) => Err(AwsError::Blob(
                "the file changed between the two passes".into(),
            )),
            Err(e) => Err(AwsError::Blob(format!("the parser stopped: {e}"))),
        }
    }
}

fn unreadable(e: std::io::Error) -> Rejection {
    Rejection {
        problems: vec![Problem {
            line: 0,
            reason: format!("the file could not be read: {e}"),
        }],
        more: false,
    }
}
