//! The sandbox's one error type.
//!
//! A [`GraphError`] is an answer in Meta's own error shape (what a Graph client must handle);
//! the other variants are mistakes of whoever drives the sandbox (a test, the local stack).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error exactly as the Graph API returns it.
///
/// Shape from Meta's "Graph API › Handling Errors" and the Messenger Platform page
/// "Common Error Codes": `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The HTTP status Meta answers with (400 for nearly every error).
    pub http_status: u16,
    pub message: String,
    /// Meta's `type`: `OAuthException` for most, `GraphMethodException` for some.
    pub kind: String,
    pub code: i64,
    pub subcode: Option<i64>,
}

impl GraphError {
    pub fn new(code: i64, subcode: Option<i64>, message: impl Into<String>) -> Self {
        Self {
            http_status: 400,
            message: message.into(),
            kind: "OAuthException".to_owned(),
            code,
            subcode,
        }
    }

    pub fn with_status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    pub fn with_kind(mut self, kind: &str) -> Self {
        self.kind = kind.to_owned();
        self
    }

    /// Meta's error body. `fbtrace_id` is random, as Meta's is per request.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": crate::ids::fbtrace_id(),
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        json!({ "error": error })
    }

    // The errors the sandbox answers, each with Meta's documented code and wording.

    /// Graph API › Handling Errors: code 104, no token at all.
    pub(crate) fn token_missing() -> Self {
        Self::new(
            104,
            None,
            "An access token is required to request this resource.",
        )
    }

    /// Messenger "Common Error Codes": 190, invalid OAuth access token.
    pub(crate) fn token_invalid() -> Self {
        Self::new(
            190,
            None,
            "Invalid OAuth access token - Cannot parse access token",
        )
    }

    /// Access Token Guide › errors: 190 with subcode 460 (session invalidated).
    pub(crate) fn token_revoked() -> Self {
        Self::new(
            190,
            Some(460),
            "Error validating access token: The session has been invalidated because the user \
             changed their password or Facebook has changed the session for security reasons.",
        )
    }

    /// Access Token Guide › errors: 190 with subcode 463 (expired).
    pub(crate) fn token_expired() -> Self {
        Self::new(
            190,
            Some(463),
            "Error validating access token: Session has expired.",
        )
    }

    /// Graph API › Securing Requests: a wrong `appsecret_proof`.
    pub(crate) fn bad_appsecret_proof() -> Self {
        Self::new(
            100,
            None,
            "Invalid appsecret_proof provided in the API argument",
        )
        .with_kind("GraphMethodException")
    }

    /// Graph API › Handling Errors: 210, this call needs a Page access token.
    pub(crate) fn page_token_required() -> Self {
        Self::new(
            210,
            None,
            "(#210) A page access token is required to request this resource.",
        )
    }

    /// Messenger "Common Error Codes": 100, invalid parameter.
    pub(crate) fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::new(100, None, format!("(#100) {}", detail.into()))
    }

    /// Graph API › Handling Errors: 2500, a path the Graph API does not have.
    pub(crate) fn unknown_path(path: &str) -> Self {
        Self::new(2500, None, format!("Unknown path components: {path}"))
    }
}

/// Everything that can go wrong in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// An answer in Meta's error shape (Graph and Send API endpoints).
    #[error("Graph API error {}: {}", .0.code, .0.message)]
    Graph(GraphError),
    /// The Page is not one of the sandbox's Pages.
    #[error("the sandbox has no Page {0}")]
    UnknownPage(String),
    /// Bad input from whoever drives the sandbox (a test or the local routes).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The sandbox needs its own base URL (for attachment URLs) before it is served.
    #[error("the sandbox has no base URL yet: call serve() or set_base_url() first")]
    NotServing,
    /// Binding the loopback listener failed.
    #[error("could not bind the sandbox listener: {0}")]
    Bind(#[source] std::io::Error),
    /// The webhook POST did not get an HTTP answer (refused, timed out).
    #[error("webhook POST to {url} failed: {source}")]
    Webhook {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl From<GraphError> for SandboxError {
    fn from(error: GraphError) -> Self {
        Self::Graph(error)
    }
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        if let Self::Graph(error) = &self {
            let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::BAD_REQUEST);
            return (status, axum::Json(error.body())).into_response();
        }
        // The local routes answer RFC 9457 problems, like the rest of EcomDrive's HTTP surface.
        let (status, kind, title) = match &self {
            Self::UnknownPage(_) | Self::InvalidInput(_) => {
                (StatusCode::BAD_REQUEST, "bad-request", "Bad request")
            }
            Self::NotServing => (
                StatusCode::SERVICE_UNAVAILABLE,
                "sandbox-not-serving",
                "Sandbox not serving",
            ),
            Self::Webhook { .. } => (
                StatusCode::BAD_GATEWAY,
                "webhook-unreachable",
                "Webhook unreachable",
            ),
            Self::Bind(_) | Self::Graph(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "sandbox-failure",
                "Sandbox failure",
            ),
        };
        let body = json!({
            "type": format!("/problems/meta-sandbox/{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}
