pub mod amazon;
pub mod inbox;
pub mod merchants;
pub mod messenger;
pub(crate) mod oauth_flow;
pub mod orders;
pub mod settlements;
