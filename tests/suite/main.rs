//! The integration suite: one test binary, one module per area. Every test talks to the local AWS
//! emulator through the real SDK clients, with its own resources (`support::fresh_resources`) or
//! its own whole stack (`support::stack`), so tests run in parallel.

mod amazon_connect;
mod connect;
mod deletion;
mod deletion_form;
mod events;
mod exports;
mod inbox_flow;
mod meta_callbacks;
mod replies;
mod retention;
mod security;
mod settlements;
mod solicitations;
mod support;
mod template;
mod webhook;
