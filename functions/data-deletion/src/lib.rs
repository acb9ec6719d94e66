//! `data-deletion`: deletion requests from the public form and from Meta's callbacks (HTTP side),
//! and the job that carries out every queued deletion (job side). POLICY A19, E15.
//!
//! - [`form`]: `GET/POST /data-deletion`, `GET /data-deletion/confirm`, `GET /data-deletion/status/{code}`.
//! - [`facebook`]: `POST /data-deletion/facebook` and `POST /data-deletion/facebook/deauthorize`.
//! - [`job`]: the `deletions` queue's handler.
//!
//! The same [`router`] runs in Lambda (`lambda_http`) and in the local stack.

pub mod facebook;
pub mod form;
pub mod job;

use axum::Router;
use ecomdrive_aws::{Mailer, Queue, Store, TokenVault};
use ecomdrive_core::Secret;
use ecomdrive_platforms::outbound::OutboundHttp;
use ecomdrive_runtime::secrets::{MetaAppSecrets, MetaEndpoints, SecretCache};
use serde::Deserialize;
use std::sync::Arc;

/// The form's own secret in Secrets Manager: `{"form_signing_key": "..."}`. It signs the CSRF
/// tokens and the e-mailed confirmation links.
#[derive(Debug, Clone, Deserialize)]
pub struct FormSecrets {
    pub form_signing_key: Secret,
}

#[derive(Clone, Debug)]
pub struct DeletionConfig {
    /// Where these pages are reached from outside: links in e-mails and Meta's status URL.
    pub public_base_url: String,
}

/// What the HTTP side needs.
#[derive(Clone)]
pub struct DeletionState {
    pub store: Store,
    pub vault: TokenVault,
    /// The `deletions` queue: the job side carries the deletions out.
    pub deletions: Queue,
    pub mailer: Mailer,
    pub form_secrets: SecretCache<FormSecrets>,
    /// The Meta app secret verifies `signed_request`.
    pub meta_secrets: SecretCache<MetaAppSecrets>,
    pub meta: MetaEndpoints,
    pub http: OutboundHttp,
    pub config: Arc<DeletionConfig>,
}

/// Every HTTP route of the function (all outside `/v1`).
pub fn router(state: DeletionState) -> Router {
    Router::new()
        .merge(form::routes())
        .merge(facebook::routes())
        .with_state(state)
}
