//! What every EcomDrive function shares.
//!
//! - [`problem`]: RFC 9457 error responses and the `JsonBody` extractor.
//! - [`auth`]: Cognito access-token verification (`JwtVerifier`, the `Claims` extractor).
//! - [`logging`]: JSON log lines (`init_tracing`) and log capture for tests.
//! - [`sqs`]: the partial-batch helper for queue functions.
//! - [`secrets`]: Secrets Manager secrets cached with a TTL.
//! - [`amazon`]: the SP-API app's credentials, endpoints and client.
//! - [`env`]: reading configuration from environment variables.
//! - [`lambda`]: `run_http` / `run_sqs` / `run_sqs_or_schedule`, the whole of a function's `main`
//!   after setup.

pub mod amazon;
pub mod auth;
pub mod client;
pub mod env;
pub mod error;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod problem;
pub mod secrets;
pub mod sqs;

pub use auth::{Claims, JwtConfig, JwtVerifier, bearer_from_headers};
pub use error::RuntimeError;
pub use logging::init_tracing;
pub use problem::{FieldError, JsonBody, Problem};
pub use secrets::{MetaAppSecrets, SecretCache};
