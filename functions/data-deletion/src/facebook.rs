//! The Meta data deletion and deauthorize callbacks (placeholder until built).
use crate::DeletionState;
use axum::Router;

pub fn routes() -> Router<DeletionState> {
    Router::new()
}
