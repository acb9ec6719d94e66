//! Reports API 2021-06-30, for settlement reports: getReports (with Amazon's parameter rules and
//! `nextToken` paging), getReportDocument, and the document download its presigned URL points to.
//!
//! Only the demo seller has reports (see `settlement.rs`); the others get empty lists. The
//! download stands in for Amazon's S3 bucket: no access token, a signature in the query that the
//! sandbox issued within the last five minutes, S3's XML error otherwise.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::AmazonSandbox;
use crate::dates::{iso, parse_iso};
use crate::error::ApiError;
use crate::ids;
use crate::operation::{Fault, Operation};
use crate::sandbox::{INDIA_MARKETPLACE, SandboxState};
use crate::settlement::{DemoSettlement, SETTLEMENT_REPORT_TYPE};
use crate::spapi::{Answer, Caller, Params};

/// getReports: `pageSize` is 1 to 100, 10 when not given.
const MAX_PAGE_SIZE: usize = 100;
const DEFAULT_PAGE_SIZE: usize = 10;
/// Amazon keeps reports 90 days, and `createdSince` defaults to that.
const RETENTION: Duration = Duration::days(90);
/// `reportTypes` and `marketplaceIds` take 1 to 10 values.
const MAX_LIST_VALUES: usize = 10;
const PROCESSING_STATUSES: [&str; 5] = ["CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"];
/// Amazon's presigned document URLs expire after five minutes.
const DOCUMENT_URL_LIFETIME: Duration = Duration::minutes(5);
/// The download route's path prefix (the sandbox's stand-in for S3).
pub(crate) const DOCUMENTS_PATH: &str = "/_documents";
/// The query parameter carrying the download's signature (S3's name).
const SIGNATURE_PARAM: &str = "X-Amz-Signature";

/// A getReports query, and where its next page starts: what a `nextToken` stands for.
#[derive(Debug, Clone)]
pub(crate) struct ReportsCursor {
    seller_id: String,
    report_types: Vec<String>,
    statuses: Option<Vec<String>>,
    marketplaces: Option<Vec<String>>,
    since: OffsetDateTime,
    until: OffsetDateTime,
    page_size: usize,
    /// The (createdTime, reportId) of the last report already returned (newest first).
    resume_after: Option<(OffsetDateTime, String)>,
}

/// Who may download a document, until when: what a presigned URL's signature stands for.
#[derive(Debug, Clone)]
pub(crate) struct DocumentGrant {
    pub seller_id: String,
    pub report_document_id: String,
    pub expires_at: OffsetDateTime,
}

fn list_param(params: &Params, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    if params.raw(name).is_none() {
        return Ok(None);
    }
    let values = params.list(name);
    if values.is_empty() || values.len() > MAX_LIST_VALUES {
        return Err(ApiError::invalid_input(format!(
            "{name} must have 1 to {MAX_LIST_VALUES} values"
        )));
    }
    Ok(Some(values.into_iter().map(str::to_owned).collect()))
}

fn date_param(params: &Params, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    params
        .raw(name)
        .map(|raw| {
            parse_iso(raw).ok_or_else(|| {
                ApiError::invalid_input(format!("{name} must be an ISO 8601 date-time: {raw}"))
            })
        })
        .transpose()
}

impl ReportsCursor {
    /// Validates a first-page query as Amazon does.
    fn from_params(
        params: &Params,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Self, ApiError> {
        let report_types = list_param(params, "reportTypes")?.ok_or_else(|| {
            ApiError::invalid_input("Either reportTypes or nextToken is required")
        })?;
        let statuses = list_param(params, "processingStatuses")?;
        if let Some(unknown) = statuses
            .iter()
            .flatten()
            .find(|s| !PROCESSING_STATUSES.contains(&s.as_str()))
        {
            return Err(ApiError::invalid_input(format!(
                "processingStatuses has an invalid value: {unknown}"
            )));
        }
        let marketplaces = list_param(params, "marketplaceIds")?;
        let page_size = match params.raw("pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_input("pageSize must be an integer from 1 to 100")
                })?,
        };
        let since = date_param(params, "createdSince")?.unwrap_or(now - RETENTION);
        let until = date_param(params, "createdUntil")?.unwrap_or(now);
        if since > until {
            return Err(ApiError::invalid_input(
                "createdSince must be before createdUntil",
            ));
        }
        Ok(Self {
            seller_id: caller.seller_id.clone(),
            report_types,
            statuses,
            marketplaces,
            since,
            until,
            page_size,
            resume_after: None,
        })
    }

    fn selects(&self, report: &DemoSettlement) -> bool {
        let wanted = |list: &Option<Vec<String>>, value: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        };
        self.report_types
            .iter()
            .any(|t| t == SETTLEMENT_REPORT_TYPE)
            && wanted(&self.statuses, "DONE")
            && wanted(&self.marketplaces, INDIA_MARKETPLACE)
            && self.since <= report.created
            && report.created <= self.until
            && self
                .resume_after
                .as_ref()
                .is_none_or(|(at, id)| (report.created, &report.report_id) < (*at, id))
    }

    /// One page, newest first, and the `nextToken` after it.
    fn page(mut self, reports: &[DemoSettlement], state: &mut SandboxState) -> Value {
        let mut selected: Vec<&DemoSettlement> =
            reports.iter().filter(|r| self.selects(r)).collect();
        selected.sort_by(|a, b| (b.created, &b.report_id).cmp(&(a.created, &a.report_id)));
        let more = selected.len() > self.page_size;
        selected.truncate(self.page_size);
        let listed: Vec<Value> = selected.iter().map(|r| report_json(r)).collect();
        let last_listed = selected
            .last()
            .filter(|_| more)
            .map(|r| (r.created, r.report_id.clone()));

        let mut body = Map::new();
        body.insert("reports".to_owned(), Value::Array(listed));
        if last_listed.is_some() {
            self.resume_after = last_listed;
            let token = ids::next_token();
            body.insert("nextToken".to_owned(), json!(token));
            state.report_next_tokens.insert(token, self);
        }
        Value::Object(body)
    }
}

/// A report as getReports writes it.
fn report_json(report: &DemoSettlement) -> Value {
    json!({
        "reportId": report.report_id,
        "reportType": SETTLEMENT_REPORT_TYPE,
        "marketplaceIds": [INDIA_MARKETPLACE],
        "dataStartTime": iso(report.start),
        "dataEndTime": iso(report.end),
        "createdTime": iso(report.created),
        "processingStatus": "DONE",
        "processingStartTime": iso(report.created),
        "processingEndTime": iso(report.created + Duration::minutes(3)),
        "reportDocumentId": report.report_document_id,
    })
}

/// `GET /reports/2021-06-30/reports`.
pub(crate) async fn get_reports(
    State(sandbox): State<AmazonSandbox>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref());
    sandbox.sp_api(Operation::GetReports, &headers, &params, |caller| {
        list_reports(&sandbox, caller, &params)
    })
}

fn list_reports(
    sandbox: &AmazonSandbox,
    caller: &Caller,
    params: &Params,
) -> Result<Answer, ApiError> {
    let reports = sandbox.settlements(&caller.seller_id);
    sandbox.with_state(|s| {
        let cursor = match params.raw("nextToken") {
            // Amazon: "call getReports with this token as the only parameter".
            Some(token) => {
                if params.names().any(|name| name != "nextToken") {
                    return Err(ApiError::invalid_input(
                        "nextToken must be the only parameter when it is given",
                    ));
                }
                s.report_next_tokens
                    .get(token)
                    .filter(|c| c.seller_id == caller.seller_id)
                    .cloned()
                    .ok_or_else(|| ApiError::invalid_input("Invalid nextToken"))?
            }
            None => ReportsCursor::from_params(params, caller, s.now())?,
        };
        Ok((StatusCode::OK, cursor.page(&reports, s)))
    })
}

/// `GET /reports/2021-06-30/documents/{reportDocumentId}`.
pub(crate) async fn get_report_document(
    State(sandbox): State<AmazonSandbox>,
    Path(document_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query.as_deref()).with("reportDocumentId", &document_id);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    sandbox.sp_api(Operation::GetReportDocument, &headers, &params, |caller| {
        let report = sandbox
            .settlements(&caller.seller_id)
            .into_iter()
            .find(|r| r.report_document_id == document_id)
            .ok_or_else(ApiError::not_found)?;
        let base = sandbox
            .base_url()
            .or_else(|| host.map(|h| format!("http://{h}")))
            .ok_or_else(|| ApiError::for_status(500))?;
        let signature = ids::next_token();
        sandbox.with_state(|s| {
            let grant = DocumentGrant {
                seller_id: caller.seller_id.clone(),
                report_document_id: document_id.clone(),
                expires_at: s.now() + DOCUMENT_URL_LIFETIME,
            };
            s.document_grants.insert(signature.clone(), grant);
        });
        let url = format!(
            "{base}{DOCUMENTS_PATH}/{}?{SIGNATURE_PARAM}={signature}",
            report.report_document_id
        );
        let mut body = json!({ "reportDocumentId": report.report_document_id, "url": url });
        if report.gzip {
            body["compressionAlgorithm"] = json!("GZIP");
        }
        Ok((StatusCode::OK, body))
    })
}

/// `GET /_documents/{reportDocumentId}?X-Amz-Signature=…`: the document's bytes, as S3 serves
/// them (gzip bytes for a GZIP document, no `Content-Encoding`).
pub(crate) async fn download_document(
    State(sandbox): State<AmazonSandbox>,
    Path(document_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let grant = sandbox.with_state(|s| {
        let now = s.now();
        let fault = s.take_fault(Operation::DownloadReportDocument);
        let grant = params
            .get(SIGNATURE_PARAM)
            .and_then(|sig| s.document_grants.get(sig))
            .filter(|g| g.report_document_id == document_id)
            .cloned();
        (grant, now, fault)
    });
    match grant {
        (_, _, Some(Fault::Status(status) | Fault::ProcessThenFail(status))) => {
            s3_error(status, "InternalError", "We encountered an internal error.")
        }
        (_, _, Some(Fault::LwaError(_))) | (None, _, None) => s3_error(
            403,
            "AccessDenied",
            "The request signature we calculated does not match the signature you provided.",
        ),
        (Some(grant), now, None) if grant.expires_at < now => {
            s3_error(403, "AccessDenied", "Request has expired")
        }
        (Some(grant), _, None) => {
            let Some(report) = sandbox
                .settlements(&grant.seller_id)
                .into_iter()
                .find(|r| r.report_document_id == document_id)
            else {
                return s3_error(404, "NoSuchKey", "The specified key does not exist.");
            };
            let content_type = if report.gzip {
                "application/octet-stream"
            } else {
                "text/plain; charset=UTF-8"
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type)],
                report.document_bytes(),
            )
                .into_response()
        }
    }
}

/// S3's error document.
fn s3_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>{}</RequestId></Error>",
        ids::next_token()
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}
