//! The API's one error type; every variant becomes an RFC 9457 problem with a stable `type`.

use axum::response::{IntoResponse, Response};
use ecomdrive_aws::AwsError;
use ecomdrive_runtime::problem::{FieldError, Problem};
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    /// Also what a non-member gets for anything under a merchant: nothing is revealed.
    #[error("not found")]
    NotFound,
    #[error("not allowed for your role")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("conflict: {detail}")]
    Conflict { kind: &'static str, detail: String },
    /// A file refused whole: its first problems by line (line, reason), and whether there were more.
    #[error("the file was rejected")]
    Rejected {
        problems: Vec<(u64, String)>,
        more: bool,
    },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("outside the messaging window: {0}")]
    OutsideWindow(String),
    /// What was asked for is gone for good (a deleted merchant): 410.
    #[error("gone: {0}")]
    Gone(String),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// The platform (Meta) refused or could not be reached.
    #[error("platform error: {0}")]
    Platform(String),
    /// A dependency of ours is down (identity provider keys, secrets): try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, detail)])
    }

    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Conflict {
            kind,
            detail: detail.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<AwsError> for ApiError {
    fn from(e: AwsError) -> Self {
        match e {
            AwsError::NotFound => ApiError::NotFound,
            AwsError::Conflict(what) => ApiError::conflict("conflict", what),
            AwsError::BadCursor => ApiError::BadRequest("invalid cursor".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::Unauthorized => Problem::unauthorized(),
            ApiError::NotFound => Problem::not_found(),
            ApiError::Forbidden => Problem::forbidden(),
            ApiError::BadRequest(d) => Problem::bad_request(d),
            ApiError::Invalid(errors) => Problem::unprocessable(errors),
            ApiError::Conflict { kind, detail } => {
                Problem::new(StatusCode::CONFLICT, kind, "Conflict").with_detail(detail)
            }
            ApiError::Rejected { problems, more } => {
                let first = problems.first().map_or(0, |p| p.0);
                let listed: Vec<serde_json::Value> = problems
                    .into_iter()
                    .map(|(line, reason)| serde_json::json!({"line": line, "reason": reason}))
                    .collect();
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "file-rejected",
                    "The file was rejected; nothing of it was stored",
                )
                .with_detail(format!("the first problem is on line {first}"))
                .with_extra("problems", listed)
                .with_extra("more_problems", more)
            }
            ApiError::UnsupportedMediaType(d) => Problem::unsupported_media_type(d),
            ApiError::PayloadTooLarge => Problem::payload_too_large(),
            ApiError::OutsideWindow(detail) => Problem::new(
                StatusCode::CONFLICT,
                "outside-messaging-window",
                "The customer's messaging window is closed",
            )
            .with_detail(detail),
            ApiError::Gone(detail) => Problem::gone(detail),
            ApiError::RateLimited { retry_after_secs } => {
                Problem::too_many_requests(retry_after_secs)
            }
            ApiError::Platform(detail) => {
                tracing::warn!(error = %detail, "platform call failed");
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "platform-error",
                    "The platform refused the request or could not be reached",
                )
            }
            ApiError::Unavailable(detail) => {
                tracing::error!(error = %detail, "a dependency is unavailable");
                Problem::service_unavailable()
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
