//! What the sandbox was asked and what it answered, for tests and for a person to look at.
//!
//! Records never hold a secret or a token: bodies are not kept (LWA's form carries the client
//! secret), tokens travel in headers, and the values of sensitive query parameters are
//! replaced by `REDACTED`.

use serde::Serialize;
use time::OffsetDateTime;

/// One HTTP request to the sandbox (LWA, consent or SP-API) and the status answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (empty when none), sensitive values redacted.
    pub query: String,
    pub status: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One `createProductReviewAndSellerFeedbackSolicitation` request, whatever its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SolicitationRequest {
    pub order_id: String,
    /// The `marketplaceIds` query value as sent (empty when missing).
    pub marketplace_id: String,
    /// The HTTP status answered: 201 sent, 403 not eligible, 429 throttled...
    pub status: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

const SENSITIVE: [&str; 7] = [
    "client_secret",
    "code",
    "refresh_token",
    "access_token",
    "spapi_oauth_code",
    "x-amz-access-token",
    // The signature of a presigned report document URL: whoever has it can read the document.
    "x-amz-signature",
];

/// The query string with the values of [`SENSITIVE`] parameters replaced, the rest as sent.
pub(crate) fn redact_query(raw: &str) -> String {
    raw.split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            if SENSITIVE.contains(&decoded.to_ascii_lowercase().as_str()) {
                format!("{name}=REDACTED")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_redacted_and_the_rest_kept_as_sent() {
        assert_eq!(
            redact_query("MarketplaceIds=A21TJRUUN4KGV&LastUpdatedAfter=2025-01-01T00%3A00%3A00Z"),
            "MarketplaceIds=A21TJRUUN4KGV&LastUpdatedAfter=2025-01-01T00%3A00%3A00Z"
        );
        assert_eq!(
            redact_query("client_id=app&client_secret=s3cret&refresh_token=Atzr%7Cx&code=abc"),
            "client_id=app&client_secret=REDACTED&refresh_token=REDACTED&code=REDACTED"
        );
        assert_eq!(redact_query(""), "");
    }
}
