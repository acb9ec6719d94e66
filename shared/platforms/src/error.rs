//! The one error type of the platform clients: the allow-listed HTTP client and the clients of
//! Meta and Amazon built on it. No variant ever carries a URL, a token or a secret.

use crate::outbound::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    // ---- outbound HTTP
    /// Stopped by the allow-list: nothing was sent.
    #[error("outbound request refused: {0}")]
    Refused(#[from] Refusal),
    /// The connection could not be opened: nothing was sent, so retrying is safe.
    #[error("could not connect: {0}")]
    Connect(String),
    /// No complete answer in time: the other side may or may not have acted (outcome unknown).
    #[error("outbound request timed out")]
    Timeout,
    /// The exchange failed after the connection was open (reset, bad framing...).
    #[error("outbound transport error: {0}")]
    Transport(String),
    /// The answer had a status the caller does not accept (see [`OutboundHttp::fetch_bounded`]).
    #[error("unexpected HTTP status {0}")]
    UnexpectedStatus(u16),
    /// The body is larger than the caller's limit; reading stopped at the limit.
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The HTTP client could not be built (TLS setup): a deployment fault.
    #[error("outbound HTTP client could not be built: {0}")]
    Setup(String),
    // ---- the platform's answer
    /// Meta answered with its error object, e.g. code 10 / subcode 2018278 (outside the window),
    /// 190 (token invalid), 4/32/613 (rate limits), 551 (person unavailable).
    #[error("Meta refused (HTTP {http_status}, code {code}{}): {message}", subcode_text(*.subcode))]
    Api {
        http_status: u16,
        code: i64,
        subcode: Option<i64>,
        /// Meta's message, with anything token-like removed.
        message: String,
    },
    /// Login with Amazon refused a token request with its OAuth error, e.g. `invalid_grant` (the
    /// seller revoked our app, or the authorization code was used already) or `invalid_client`.
    #[error("Login with Amazon refused (HTTP {http_status}, {error}): {description}")]
    Lwa {
        http_status: u16,
        /// The OAuth error code.
        error: String,
        /// LWA's `error_description`, with anything token-like removed.
        description: String,
    },
    /// The Selling Partner API answered with its error list (the first one is kept), e.g.
    /// 403 `Unauthorized` (token expired, role missing, or solicitation not available) or 400
    /// `InvalidInput`.
    #[error("SP-API refused (HTTP {http_status}, {code}): {message}")]
    SpApi {
        http_status: u16,
        code: String,
        /// Amazon's message and details, with anything token-like removed.
        message: String,
    },
    /// The platform throttled us (HTTP 429) for longer than the client waits: nothing was done,
    /// try again after this delay.
    #[error("rate limited by the platform, retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The platform answered 2xx with something we could not read.
    #[error("unexpected answer from the platform: {0}")]
    Decode(String),
    /// Our own input was unusable (empty text, bad Page id...): nothing was sent.
    #[error("invalid request to the platform: {0}")]
    InvalidInput(String),
}

impl PlatformError {
    /// True when the platform may have acted on the request although it failed: a timeout, a
    /// broken exchange or a 5xx. For a call that changes something (a Send API message, an Amazon
    /// review request) the caller must not simply send it again; it should check first, or give up.
    ///
    /// Conservative: a timeout while getting the access token that precedes a call also answers
    /// true, though nothing was sent then.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            PlatformError::Timeout | PlatformError::Transport(_) => true,
            PlatformError::UnexpectedStatus(status) => *status >= 500,
            PlatformError::Api { http_status, .. } | PlatformError::SpApi { http_status, .. } => {
                *http_status >= 500
            }
            _ => false,
        }
    }
}

fn subcode_text(subcode: Option<i64>) -> String {
    subcode.map(|s| format!("/{s}")).unwrap_or_default()
}
