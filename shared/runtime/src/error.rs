//! The one error type of this crate. Its variants answer differently: a bad token is the caller's
//! fault (401); unreachable keys, a missing variable or an unreadable secret are ours (503).
//!
//! No message here ever contains a token, a secret value or a secret's JSON.

use crate::problem::Problem;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    // ---- bearer tokens
    #[error("no bearer token")]
    MissingToken,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not RS256")]
    UnsupportedAlgorithm,
    #[error("the token was signed by a key we do not know")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is not an access token")]
    NotAnAccessToken,
    #[error("the token was issued to a client we do not accept")]
    WrongClient,
    /// The identity provider's keys could not be fetched or read. Not the caller's fault.
    #[error("the identity provider's signing keys are unavailable: {0}")]
    KeysUnavailable(String),
    // ---- configuration
    #[error("environment variable {name} is not set")]
    MissingVar { name: String },
    #[error("environment variable {name} is invalid: {reason}")]
    InvalidVar { name: String, reason: String },
    #[error("could not read secret {secret_id} from Secrets Manager: {reason}")]
    SecretUnavailable { secret_id: String, reason: String },
    /// `reason` never quotes the secret's content (see `secrets::describe_parse_error`).
    #[error("secret {secret_id} does not have the expected JSON shape: {reason}")]
    SecretShape { secret_id: String, reason: String },
}

impl From<RuntimeError> for Problem {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::KeysUnavailable(_)
            | RuntimeError::MissingVar { .. }
            | RuntimeError::InvalidVar { .. }
            | RuntimeError::SecretUnavailable { .. }
            | RuntimeError::SecretShape { .. } => Problem::service_unavailable(),
            RuntimeError::MissingToken => Problem::unauthorized(),
            // Safe to tell the caller why: the messages are fixed strings.
            other => Problem::unauthorized().with_detail(other.to_string()),
        }
    }
}
