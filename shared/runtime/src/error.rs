//! The errors of this crate. Two enums because they answer differently: an [`AuthError`] is the
//! caller's fault (401) unless the keys are unreachable (503); a [`ConfigError`] is ours (the
//! function is misconfigured or a dependency is down).
//!
//! No message here ever contains a token, a secret value or a secret's JSON.

use crate::problem::Problem;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
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
}

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::KeysUnavailable(_) => Problem::service_unavailable(),
            AuthError::MissingToken => Problem::unauthorized(),
            // Safe to tell the caller why: the messages are fixed strings.
            other => Problem::unauthorized().with_detail(other.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
