//! The settlement parser on a real-sized flat file: throughput and peak memory, printed on one
//! line to compare with pandas (`infra/bench/settlement.sh` runs both).
//! Run: `SETTLEMENT_FILE=target/bench-data/settlement-1024.tsv cargo bench -p ecomdrive-core --bench settlement_file`

use ecomdrive_core::settlement::{OrderSums, parse_settlement};
use rust_decimal::Decimal;
use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;
use std::time::Instant;

/// Big enough that reading costs few system calls.
const READ_BUFFER: usize = 1 << 20;

fn main() -> ExitCode {
    let Some(path) = std::env::var_os("SETTLEMENT_FILE") else {
        println!(
            "usage: SETTLEMENT_FILE=<flat file> cargo bench -p ecomdrive-core --bench settlement_file"
        );
        return ExitCode::SUCCESS;
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("cannot open {}: {error}", path.to_string_lossy());
            return ExitCode::FAILURE;
        }
    };
    let bytes = file.metadata().map(|m| m.len()).unwrap_or_default();
    let started = Instant::now();
    // What a caller does with each order: here, add it into a checksum.
    let mut orders = 0u64;
    let mut order_lines_total = Decimal::ZERO;
    let on_order = |order: OrderSums| {
        orders += 1;
        for item in &order.items {
            for charge in &item.charges {
                order_lines_total += charge.amount;
            }
        }
    };
    let parsed = parse_settlement(BufReader::with_capacity(READ_BUFFER, file), on_order);
    let seconds = started.elapsed().as_secs_f64();
    let settlement = match parsed {
        Ok(settlement) => settlement,
        Err(rejection) => {
            eprintln!("rejected: {rejection}");
            for problem in &rejection.problems {
                eprintln!("  line {}: {}", problem.line, problem.reason);
            }
            return ExitCode::FAILURE;
        }
    };
    let mb = bytes as f64 / 1e6;
    println!(
        "ecomdrive: {mb:.0} MB in {seconds:.1}s = {:.1} MB/s, lines {}, order runs {}, total {}, peak RSS {} MB",
        mb / seconds,
        settlement.detail_lines,
        settlement.order_runs,
        settlement.lines_total,
        peak_rss_mb().map_or("?".to_owned(), |mb| format!("{mb:.0}")),
    );
    if orders != settlement.order_runs {
        eprintln!(
            "on_order was called {orders} times for {} runs",
            settlement.order_runs
        );
        return ExitCode::FAILURE;
    }
    // What the memory grows with: the sums kept per SKU and day, one per charge.
    let sku_day_sums: usize = settlement.by_sku_day.iter().map(|s| s.charges.len()).sum();
    eprintln!(
        "orders' lines total {order_lines_total}, reconciles {}, sku-days {} with {sku_day_sums} charge sums, fingerprint {}",
        settlement.reconciles,
        settlement.by_sku_day.len(),
        settlement.fingerprint
    );
    ExitCode::SUCCESS
}

/// Peak resident memory (`VmHWM`, in KiB) divided by 1024, as the pandas script reports its
/// `ru_maxrss`, so the two figures compare as they are printed.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
