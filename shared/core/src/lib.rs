//! EcomDrive's domain: the types a merchant talks about and the rules that govern them, as pure
//! functions. No AWS crate, no async runtime, no I/O: everything here is tested in milliseconds.

pub mod secret;

pub use secret::Secret;
