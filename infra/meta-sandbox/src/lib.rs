//! A local stand-in for Meta's Graph API and Messenger webhooks, on loopback.
//!
//! Test equipment only: the local stack and the tests use it, no Lambda function links it.
//! It behaves as Meta documents (shapes, error codes, the 24-hour window and the 7-day
//! `HUMAN_AGENT` tag, signed webhooks) and records everything it was sent.
//!
//! Where to look:
//! - [`MetaSandbox`] (`sandbox.rs`): the handle, its state, clock and fault injection;
//! - `oauth.rs`: Facebook Login's manual flow (`dialog/oauth`, `oauth/access_token`);
//! - `graph.rs`: the router, token checks, `/me`, `/me/accounts`, `/{page-id}/subscribed_apps`;
//! - `send.rs`: the Send API with Meta's window rules, then the echo webhook;
//! - [`payloads`]: pure builders of webhook bodies; `webhooks.rs`: [`sign`] and posting;
//! - `simulator.rs`: a customer writing, reacting, reading (signed webhook POSTs);
//! - `callbacks.rs`: [`signed_request`] and Meta's data deletion and deauthorize callbacks;
//! - [`local_routes`]: the `/_local/...` routes the local stack mounts on its main port;
//! - `record.rs`: what was called and sent.

mod callbacks;
mod error;
mod graph;
mod ids;
pub mod local_routes;
mod oauth;
pub mod payloads;
mod record;
mod sandbox;
mod send;
mod simulator;
mod webhooks;

pub use callbacks::{
    CallbackAnswer, DATA_DELETION_PATH, DEAUTHORIZE_PATH, sign_payload, signed_request,
};
pub use error::{GraphError, SandboxError};
pub use local_routes::local_routes;
pub use record::{GraphCall, SentMessage, WebhookDelivery};
pub use sandbox::{MetaSandbox, SandboxConfig, SandboxPage, TestUser};
pub use simulator::SimulatedDelivery;
pub use webhooks::{SIGNATURE_HEADER, sign, verify};
