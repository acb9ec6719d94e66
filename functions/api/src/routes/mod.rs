pub mod inbox;
pub mod merchants;
pub mod messenger;
