//! Shared helpers live in suite/support.rs; this library is intentionally empty.
