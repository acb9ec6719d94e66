//! Any bytes given to the settlement parser are parsed or refused with reasons, never a panic.
//! Run: `cargo +nightly fuzz run settlement_parser -- -max_total_time=600` (from the repo root).
#![no_main]

use ecomdrive_core::settlement::parse_settlement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut runs = 0u64;
    match parse_settlement(data, |_| runs += 1) {
        Ok(parsed) => assert_eq!(parsed.order_runs, runs),
        Err(rejection) => {
            assert!(!rejection.problems.is_empty());
            assert!(rejection.problems.iter().all(|p| !p.reason.is_empty() && p.line >= 1));
        }
    }
});
