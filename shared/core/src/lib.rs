//! EcomDrive's domain: the types a merchant talks about and the rules that govern them, as pure
//! functions. No AWS crate, no async runtime, no I/O: everything here is tested in milliseconds.

pub mod amazon;
pub mod data_rights;
pub mod ids;
pub mod inbox;
pub mod merchant;
pub mod messaging_window;
pub mod retention;
pub mod role;
pub mod secret;
pub mod send_errors;
pub mod settlement;
pub mod signed_token;
pub mod spreadsheet;
pub mod webhook;

pub use secret::Secret;
