//! A local stand-in for Amazon's Login with Amazon (LWA), the Seller Central consent page, the
//! Orders API v0, the Solicitations API v1 and the Reports API 2021-06-30 (settlement reports),
//! on loopback.
//!
//! Test equipment only: the local stack and the integration tests use it, no Lambda function
//! links it. It behaves as Amazon documents (shapes, error bodies, the getOrders rules, the
//! 5–30 day review window, rate limits) so that the code talking to Amazon can be tested
//! without Amazon, and it records everything it was asked.
//!
//! Where to look:
//! - [`AmazonSandbox`] (`sandbox.rs`): the handle, its state, clock and test controls;
//! - `lwa.rs`: the LWA token endpoint and the consent page;
//! - `spapi.rs`: what every SP-API call goes through (token, rate limit, faults, static cases);
//! - `orders_api.rs`, `solicitations.rs` and `reports.rs`: the operations themselves;
//! - `settlement.rs`: the demo seller's settlement reports ([`demo_settlement_files`]);
//! - `statics.rs`: Amazon's static sandbox cases, read from `fixtures/`;
//! - [`SandboxOrder`] (`order.rs`): the order model and its Amazon JSON; `demo.rs`: demo data;
//! - [`local_routes`]: the `/_local/amazon/...` routes the local stack mounts on its port;
//! - `record.rs`: what was asked and answered.

mod dates;
mod demo;
mod error;
mod ids;
pub mod local_routes;
mod lwa;
mod operation;
mod order;
mod orders_api;
mod rate_limit;
mod record;
mod reports;
mod sandbox;
mod settlement;
mod solicitations;
mod spapi;
mod statics;

pub use error::{ApiError, OAuthError, SandboxError};
pub use local_routes::local_routes;
pub use operation::{Fault, Operation, RateLimit};
pub use order::{FulfillmentChannel, OrderStatus, SandboxItem, SandboxOrder};
pub use record::{RecordedRequest, SolicitationRequest};
pub use sandbox::{
    AmazonSandbox, DEMO_SELLER_ID, INDIA_MARKETPLACE, IssuedTokens, SandboxConfig, SandboxSeller,
};
pub use settlement::{
    DemoSettlement, SETTLEMENT_HEADER, SETTLEMENT_REPORT_TYPE, demo_settlement_files,
    settlement_files,
};
