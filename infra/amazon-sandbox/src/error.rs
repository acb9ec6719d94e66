//! The sandbox's one error type.
//!
//! An [`ApiError`] is an SP-API answer in Amazon's `{"errors":[...]}` shape and an
//! [`OAuthError`] an LWA answer in OAuth 2.0's shape (what an Amazon client must handle); the
//! other variants are a refused consent page, or mistakes of whoever drives the sandbox.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

/// An SP-API error: `{"errors":[{"code","message","details"}]}` ("Error responses" in the
/// SP-API models; every operation's 4xx/5xx answers with this `ErrorList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: String::new(),
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "errors": [
                { "code": self.code, "message": self.message, "details": self.details }
            ]
        })
    }

    /// An answer for a bare status (fault injection), with the code Amazon uses for it.
    pub(crate) fn for_status(status: u16) -> Self {
        match status {
            400 => Self::invalid_input("Invalid input."),
            403 => Self::unauthorized(),
            404 => Self::not_found(),
            413 => Self::new(
                413,
                "RequestEntityTooLarge",
                "The request size exceeded the limit.",
            ),
            415 => Self::new(
                415,
                "UnsupportedMediaType",
                "The media type is not supported.",
            ),
            429 => Self::quota_exceeded(),
            s if s >= 500 => Self::new(
                s,
                "InternalFailure",
                "We encountered an internal error. Please try again.",
            ),
            s => Self::new(s, "InvalidInput", "The request was refused."),
        }
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidInput", message)
    }

    /// A missing, unknown or expired `x-amz-access-token`.
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(404, "NotFound", "The requested resource was not found.")
    }

    pub(crate) fn quota_exceeded() -> Self {
        Self::new(
            429,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
        )
    }
}

/// An LWA error: `{"error","error_description"}` (RFC 6749 §5.2, which LWA follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: String,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &str, description: impl Into<String>) -> Self {
        // RFC 6749 §5.2: 401 when the client failed to authenticate, 400 otherwise.
        let status = if error == "invalid_client" { 401 } else { 400 };
        Self {
            status,
            error: error.to_owned(),
            description: description.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub(crate) fn invalid_client() -> Self {
        Self::new("invalid_client", "Client authentication failed")
    }

    /// An answer for a bare status (fault injection or the sandbox's optional rate limit).
    pub(crate) fn for_status(status: u16) -> Self {
        let error = match status {
            401 => "invalid_client",
            429 => "slow_down",
            503 => "temporarily_unavailable",
            s if s >= 500 => "server_error",
            _ => "invalid_request",
        };
        Self {
            status,
            error: error.to_owned(),
            description: "The sandbox was told to refuse this request.".to_owned(),
        }
    }
}

/// Everything that can go wrong in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// An SP-API answer in Amazon's error shape.
    #[error("SP-API error {} {}: {}", .0.status, .0.code, .0.message)]
    Api(ApiError),
    /// An LWA token endpoint answer in OAuth 2.0's error shape.
    #[error("LWA error {}: {}", .0.error, .0.description)]
    Lwa(OAuthError),
    /// The consent page could not be shown (unknown application, missing parameter...).
    #[error("consent page refused: {0}")]
    Consent(String),
    /// The sandbox has no such seller.
    #[error("the sandbox has no seller {0}")]
    UnknownSeller(String),
    /// Binding the loopback listener failed.
    #[error("could not bind the sandbox listener: {0}")]
    Bind(#[source] std::io::Error),
}

impl From<ApiError> for SandboxError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<OAuthError> for SandboxError {
    fn from(error: OAuthError) -> Self {
        Self::Lwa(error)
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => (status(error.status), axum::Json(error.body())).into_response(),
            Self::Lwa(error) => (
                status(error.status),
                // LWA marks every token answer as not cacheable, errors included.
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::PRAGMA, "no-cache"),
                ],
                axum::Json(error.body()),
            )
                .into_response(),
            // Seller Central shows a web page, never a redirect, when the request is unusable.
            Self::Consent(message) => (
                StatusCode::BAD_REQUEST,
                Html(format!(
                    "<!doctype html><title>Error</title><h1>We can't authorize this \
                     application.</h1><p>{}</p>",
                    message.replace('&', "&amp;").replace('<', "&lt;")
                )),
            )
                .into_response(),
            Self::UnknownSeller(_) => (StatusCode::BAD_REQUEST, self.to_string()).into_response(),
            Self::Bind(_) => (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response(),
        }
    }
}
