//! Lambda entry point of `data-export`.

fn main() {}
