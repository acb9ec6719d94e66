//! The public data-deletion form (placeholder until built).
use crate::DeletionState;
use axum::Router;

pub fn routes() -> Router<DeletionState> {
    Router::new()
}
