//! Exports (POLICY A19, access and portability): an owner or admin asks for a copy of everything
//! the merchant holds, in JSON or CSV; `data-export` writes it; the status gives a download link
//! that expires in minutes once it is done.

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecomdrive_aws::store::exports::{ExportRecord, ExportStatus};
use ecomdrive_aws::store::rate_limit::RateDecision;
use ecomdrive_core::data_rights::{ExportFormat, ExportJob};
use ecomdrive_core::ids::ExportId;
use ecomdrive_core::role::Action;
use ecomdrive_runtime::problem::JsonBody;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// How long a download link works.
pub const DOWNLOAD_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Exports a merchant may start per hour: each reads the whole partition (POLICY A15).
const EXPORTS_PER_HOUR: u32 = 10;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewExport {
    /// `json` (a JSON array per kind of record) or `csv` (a spreadsheet file per kind).
    #[schema(value_type = String, example = "csv")]
    format: ExportFormat,
}

fn export_view(e: &ExportRecord, download_url: Option<String>) -> Value {
    json!({
        "id": e.id,
        "status": e.status,
        "format": e.format,
        "requested_at": crate::rfc3339(e.requested_at),
        "finished_at": e.finished_at.map(crate::rfc3339),
        "counts": (e.status == ExportStatus::Done).then_some(&e.counts),
        "error": e.error,
        "download_url": download_url,
        "download_expires_in": download_url_expiry(e),
    })
}

fn download_url_expiry(e: &ExportRecord) -> Option<u64> {
    (e.status == ExportStatus::Done).then_some(DOWNLOAD_URL_TTL.as_secs())
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/exports", tag = "data rights", params(("merchant_id" = String, Path)), request_body = NewExport, responses((status = 202, description = "Queued: poll GET .../exports/{id}"), (status = 403, description = "Agents may not export"), (status = 422, description = "format is not json or csv"), (status = 429, description = "Too many exports this hour")))]
pub async fn create_export(
    State(state): State<AppState>,
    member: Member,
    JsonBody(body): JsonBody<NewExport>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    member.require(Action::ExportData)?;
    let now = OffsetDateTime::now_utc();
    let m = &member.merchant;
    if let RateDecision::Limited { retry_after_secs } = state
        .store
        .rate_limit(m, "exports", EXPORTS_PER_HOUR, 3600, now)
        .await?
    {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let mut export = ExportRecord::queued(m.clone(), body.format, member.id().clone(), now);
    state.store.create_export(&export).await?;
    let job = ExportJob {
        merchant_id: m.clone(),
        export_id: export.id.clone(),
    };
    let queued = match serde_json::to_string(&job) {
        Ok(body) => state.exports.send(None, body).await,
        Err(e) => Err(ecomdrive_aws::AwsError::Queue(e.to_string())),
    };
    if let Err(e) = queued {
        // Not left `queued` for ever: the merchant sees it failed and asks again.
        export.status = ExportStatus::Failed;
        export.finished_at = Some(now);
        export.error = Some("the export could not be started; request it again".into());
        state.store.save_export(&export).await?;
        return Err(ApiError::Unavailable(e.to_string()));
    }
    member
        .audit(&state, "export.request", Some(export.id.as_str()))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": export.id, "status": export.status })),
    ))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/exports/{export_id}", tag = "data rights", params(("merchant_id" = String, Path), ("export_id" = String, Path)), responses((status = 200, description = "Status (queued, running, done, failed); when done, counts per file and a download_url that expires in 15 minutes"), (status = 404, description = "No such export of this merchant")))]
pub async fn get_export(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    member.require(Action::ExportData)?;
    let id = ExportId::parse(&path.1).ok_or(ApiError::NotFound)?;
    let export = state
        .store
        .export(&member.merchant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let url = match (&export.status, &export.object_key) {
        (ExportStatus::Done, Some(key)) => {
            Some(state.blobs.presigned_get(key, DOWNLOAD_URL_TTL).await?)
        }
        _ => None,
    };
    Ok(Json(export_view(&export, url)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomdrive_core::ids::{MerchantId, UserId};

    #[test]
    fn only_a_done_export_has_counts_and_a_link() {
        let mut e = ExportRecord::queued(
            MerchantId::generate(),
            ExportFormat::Json,
            UserId::parse("3f1c2a9e-user").unwrap(),
            OffsetDateTime::now_utc(),
        );
        let v = export_view(&e, None);
        assert_eq!(v["status"], "queued");
        assert_eq!(v["format"], "json");
        assert!(v["download_url"].is_null() && v["counts"].is_null());
        e.status = ExportStatus::Done;
        e.counts.insert("messages".into(), 3);
        let v = export_view(&e, Some("https://x".into()));
        assert_eq!(v["counts"]["messages"], 3);
        assert_eq!(v["download_url"], "https://x");
        assert_eq!(v["download_expires_in"], 900);
    }

    #[test]
    fn a_format_is_json_or_csv() {
        assert!(serde_json::from_str::<NewExport>(r#"{"format":"csv"}"#).is_ok());
        assert!(serde_json::from_str::<NewExport>(r#"{"format":"xml"}"#).is_err());
        assert!(serde_json::from_str::<NewExport>(r#"{}"#).is_err());
    }
}
