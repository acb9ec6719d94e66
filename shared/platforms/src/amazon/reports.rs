//! Reports API 2021-06-30, for the seller's settlement reports.
//!
//! Amazon writes a settlement report (`GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`) by itself at
//! the end of each settlement period; it cannot be requested. So EcomDrive lists the finished ones
//! (getReports), asks where each document is (getReportDocument: a presigned S3 URL, valid five
//! minutes) and streams it from there, gunzipping on the way when Amazon compressed it.

use std::fmt;
use std::io::{self, Write};

use ecomdrive_core::Secret;
use flate2::write::MultiGzDecoder;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{AmazonClient, GET_REPORT_DOCUMENT, GET_REPORTS, decode, model};
use crate::error::PlatformError;
use crate::outbound::Method;

/// The settlement report type: the V2 flat file (tab-separated), one per settlement period.
pub const SETTLEMENT_REPORT_TYPE: &str = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2";

/// A report document is refused beyond this (after decompression): a settlement of a large seller
/// is hundreds of MB, never this.
pub const MAX_REPORT_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// getReports' largest page.
const PAGE_SIZE: &str = "100";

/// One report as getReports lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub report_id: String,
    pub report_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_time: OffsetDateTime,
    /// For a settlement report: the settlement period.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub data_start_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub data_end_time: Option<OffsetDateTime>,
    /// `DONE`, `IN_QUEUE`, `IN_PROGRESS`, `CANCELLED` or `FATAL`.
    pub processing_status: String,
    /// Present once the report is `DONE` (and has content).
    #[serde(default)]
    pub report_document_id: Option<String>,
}

/// One page of getReports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportsPage {
    pub reports: Vec<Report>,
    /// `None` on the last page.
    pub next_token: Option<String>,
}

/// Where a report's content is. The URL is presigned: whoever has it can read the seller's
/// settlement for five minutes, so it is a secret and `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportDocument {
    pub report_document_id: String,
    pub url: String,
    /// `GZIP` when Amazon compressed the document; `None` when it is plain.
    pub compression_algorithm: Option<String>,
}

impl fmt::Debug for ReportDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportDocument")
            .field("report_document_id", &self.report_document_id)
            .field("url", &"<presigned, not shown>")
            .field("compression_algorithm", &self.compression_algorithm)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportList {
    #[serde(default)]
    reports: Vec<Report>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentAnswer {
    report_document_id: String,
    url: String,
    #[serde(default)]
    compression_algorithm: Option<String>,
}

impl AmazonClient {
    /// One page of the seller's finished settlement reports, newest first (Amazon's order), 100 a
    /// page.
    ///
    /// `created_since` is sent in UTC to the second; without it Amazon looks 90 days back (it
    /// keeps reports no longer). With `next_token`, Amazon wants the token as the only parameter,
    /// so `created_since` is not sent then. getReports allows about one request in 45 s (burst 10):
    /// a long throttle comes back as [`PlatformError::RateLimited`].
    pub async fn get_settlement_reports(
        &self,
        refresh_token: &Secret,
        created_since: Option<OffsetDateTime>,
        next_token: Option<&str>,
    ) -> Result<ReportsPage, PlatformError> {
        let since = created_since.map(model::amazon_timestamp).transpose()?;
        let params: Vec<(&str, &str)> = match next_token.filter(|t| !t.is_empty()) {
            Some(token) => vec![("nextToken", token)],
            None => {
                let mut params = vec![
                    ("reportTypes", SETTLEMENT_REPORT_TYPE),
                    ("processingStatuses", "DONE"),
                    ("pageSize", PAGE_SIZE),
                ];
                if let Some(since) = since.as_deref() {
                    params.push(("createdSince", since));
                }
                params
            }
        };
        let body = self
            .spapi(
                &GET_REPORTS,
                refresh_token,
                Method::GET,
                &["reports", "2021-06-30", "reports"],
                &params,
                "application/json",
            )
            .await?;
        let list: ReportList = decode(&body)?;
        Ok(ReportsPage {
            reports: list.reports,
            next_token: model::non_empty(list.next_token),
        })
    }

    /// Where a report's content is (getReportDocument). The URL expires five minutes after this
    /// answer: download it at once.
    pub async fn get_report_document(
        &self,
        refresh_token: &Secret,
        report_document_id: &str,
    ) -> Result<ReportDocument, PlatformError> {
        check_document_id(report_document_id)?;
        let body = self
            .spapi(
                &GET_REPORT_DOCUMENT,
                refresh_token,
                Method::GET,
                &["reports", "2021-06-30", "documents", report_document_id],
                &[],
                "application/json",
            )
            .await?;
        let answer: DocumentAnswer = decode(&body)?;
        Ok(ReportDocument {
            report_document_id: answer.report_document_id,
            url: answer.url,
            compression_algorithm: model::non_empty(answer.compression_algorithm),
        })
    }

    /// Streams a report document into `sink`, gunzipped when Amazon compressed it, and returns the
    /// bytes written to `sink`.
    ///
    /// The document never sits whole in memory. The presigned URL carries its own authorisation,
    /// so no access token is sent; it must be on the allow-list like any other. Refused: a non-2xx
    /// answer ([`PlatformError::UnexpectedStatus`], e.g. 403 once the URL expired: ask
    /// [`AmazonClient::get_report_document`] again), more than the limit (4 GiB unless
    /// [`AmazonClient::with_report_document_limit`] says otherwise) downloaded or written
    /// ([`PlatformError::TooLarge`]), a broken gzip stream ([`PlatformError::Decode`]). `sink` may
    /// hold part of the document after an error; nothing is retried here.
    pub async fn download_report_document(
        &self,
        document: &ReportDocument,
        sink: &mut (dyn Write + Send),
    ) -> Result<u64, PlatformError> {
        let limit = self.max_report_document_bytes;
        let gzip = match document.compression_algorithm.as_deref() {
            None => false,
            Some(algorithm) if algorithm.eq_ignore_ascii_case("GZIP") => true,
            Some(_) => {
                return Err(PlatformError::Decode(
                    "the report document uses a compression algorithm other than GZIP".into(),
                ));
            }
        };
        let mut counted = Counted {
            inner: sink,
            written: 0,
            limit,
            over: false,
        };
        if gzip {
            let mut decoder = MultiGzDecoder::new(&mut counted);
            let downloaded = self
                .http
                .download(&document.url, limit, |chunk| {
                    decoder.write_all(chunk).map_err(sink_error)
                })
                .await;
            let finished = decoder.try_finish().map_err(sink_error);
            drop(decoder);
            // The limit is the most telling reason: the decoder only reports a failed write.
            if counted.over {
                return Err(too_large(limit));
            }
            downloaded?;
            finished?;
        } else {
            self.http
                .download(&document.url, limit, |chunk| {
                    counted.write_all(chunk).map_err(sink_error)
                })
                .await
                .map_err(|error| {
                    if counted.over {
                        too_large(limit)
                    } else {
                        error
                    }
                })?;
        }
        counted.flush().map_err(sink_error)?;
        Ok(counted.written)
    }

    /// Replaces the largest report document [`AmazonClient::download_report_document`] accepts
    /// (4 GiB by default; tests use a small one).
    pub fn with_report_document_limit(mut self, max_bytes: u64) -> Self {
        self.max_report_document_bytes = max_bytes;
        self
    }
}

/// Counts what reaches the caller's sink, and stops at the limit.
struct Counted<'a> {
    inner: &'a mut (dyn Write + Send),
    written: u64,
    limit: u64,
    over: bool,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written.saturating_add(buf.len() as u64) > self.limit {
            self.over = true;
            return Err(io::Error::other(
                "the report document passed its size limit",
            ));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn too_large(limit: u64) -> PlatformError {
    PlatformError::TooLarge {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    }
}

/// A gzip stream that is not one is Amazon's fault; anything else is the sink's (a full disk).
fn sink_error(error: io::Error) -> PlatformError {
    match error.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            PlatformError::Decode("the report document is not a valid gzip stream".into())
        }
        kind => PlatformError::Transport(format!("could not write the report document: {kind}")),
    }
}

/// Report document ids go into the URL path: Amazon's are like
/// `amzn1.spdoc.1.4.eu.46e350c8-…T2ISMRNPULE4S7.107`, letters, digits, `.`, `-`, `_`. Never `/`
/// or `?`, and never starting with a dot, so an id cannot be `..` or point elsewhere.
fn check_document_id(id: &str) -> Result<(), PlatformError> {
    let valid = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(PlatformError::InvalidInput(
            "an Amazon report document id is letters, digits, `.`, `-` or `_`".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids_cannot_leave_their_path_segment() {
        assert!(
            check_document_id(
                "amzn1.spdoc.1.4.eu.46e350c8-1e6f-4cc4-8721-3165f5bd4744.T2ISMRNPULE4S7.107"
            )
            .is_ok()
        );
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a?b",
            "a b",
            "a%2Fb",
            &"1".repeat(201),
        ] {
            assert!(check_document_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_document_s_debug_never_shows_its_url() {
        let document = ReportDocument {
            report_document_id: "amzn1.spdoc.1".into(),
            url: "https://tortuga-prod-eu.s3-eu-west-1.amazonaws.com/d?X-Amz-Signature=abc".into(),
            compression_algorithm: Some("GZIP".into()),
        };
        let text = format!("{document:?}");
        assert!(
            text.contains("amzn1.spdoc.1") && text.contains("GZIP"),
            "{text}"
        );
        assert!(
            !text.contains("tortuga") && !text.contains("Signature"),
            "{text}"
        );
    }

    #[test]
    fn reports_parse_from_amazon_s_json() {
        let list: ReportList = serde_json::from_str(
            r#"{"reports":[{"reportType":"GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2",
                "processingEndTime":"2026-03-16T02:10:00+00:00","processingStatus":"DONE",
                "marketplaceIds":["A21TJRUUN4KGV"],"reportDocumentId":"amzn1.spdoc.1.4.eu.x",
                "reportId":"51234019876","dataEndTime":"2026-03-15T00:00:00+00:00",
                "createdTime":"2026-03-16T02:04:32.123Z","dataStartTime":"2026-03-01T00:00:00+00:00"}],
                "nextToken":""}"#,
        )
        .unwrap();
        let report = &list.reports[0];
        assert_eq!(report.report_id, "51234019876");
        assert_eq!(
            report.data_start_time,
            Some(time::macros::datetime!(2026-03-01 00:00 UTC))
        );
        assert_eq!(model::non_empty(list.next_token), None);
    }
}
