//! The local stack: the AWS emulator, provisioning from template.yaml, the local identity
//! provider, the composition of every function on one port, and the queue pollers.

pub mod emails;
pub mod emulator;
pub mod error;
pub mod idp;
pub mod poller;
pub mod provision;
pub mod stack;

pub use error::LocalError;
