//! Clients for the outside platforms EcomDrive talks to: Meta's Graph API and Amazon's Selling
//! Partner API with Login with Amazon.
//!
//! Every byte that leaves for the internet goes through [`outbound::OutboundHttp`], which refuses
//! any host that is not one of the listed processors (POLICY E11, A12) before a connection is made.
//! The platform clients ([`meta::MetaClient`], [`amazon::AmazonClient`]) are built on it and never
//! hold a raw HTTP client.

pub mod amazon;
pub mod error;
pub mod meta;
pub mod outbound;

pub use amazon::{
    AmazonClient, AmazonConfig, AmazonOrder, AmazonOrderItem, INDIA_MARKETPLACE_ID, Money,
    OrdersPage, OrdersQuery, RetryPolicy, consent_url,
};
pub use error::PlatformError;
pub use meta::{
    MessageTag, MessagingType, MetaClient, MetaConfig, OutgoingMessage, PageAccess, SentMessage,
};
pub use outbound::{
    AllowList, LoopbackPorts, Method, OutboundHttp, OutboundRequest, OutboundResponse, Refusal,
    Timeouts,
};
