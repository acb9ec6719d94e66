//! Lambda entry point of `retention-sweeper`.

fn main() {}
