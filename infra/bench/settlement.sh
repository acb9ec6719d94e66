#!/usr/bin/env bash
# The settlement parser against pandas on the same generated Amazon.in flat files (1 GB, 2 GB):
# throughput (the fastest of RUNS=3 runs each), totals, peak memory, and whether our memory
# stays flat as the file doubles.
# Run from the repo root: `bash infra/bench/settlement.sh` (SHARED defaults to ../shared).
set -euo pipefail

shared="${SHARED:-../shared}"
venv=target/bench-venv
data=target/bench-data
sizes=(1024 2048)

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import pandas' 2>/dev/null; then
    echo "making $venv (pandas from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet pandas
fi

mkdir -p "$data"
for size in "${sizes[@]}"; do
    file="$data/settlement-$size.tsv"
    if [[ ! -s "$file" ]]; then
        python3 "$shared/bench/gen_settlement.py" "$file.part" "$size"
        mv "$file.part" "$file"
    fi
done

# cargo names the binary it built: `Executable benches/settlement_file.rs (target/release/deps/…)`.
build_log=$(cargo bench -p ecomdrive-core --bench settlement_file --no-run 2>&1) || { echo "$build_log"; exit 1; }
ours=$(sed -nE 's/.*Executable .*\((.*)\).*/\1/p' <<<"$build_log" | tail -n 1)
echo "ours: $ours (release profile of the root Cargo.toml)"

runs=${RUNS:-3}

# Of two result lines, the one with more MB/s (the first may be empty).
faster() {
    if [[ -z "$1" ]]; then echo "$2"; return; fi
    awk -v a="$(figure "=" "$1")" -v b="$(figure "=" "$2")" 'BEGIN { exit !(b > a) }' && echo "$2" || echo "$1"
}

# A figure printed as `NAME NUMBER` (e.g. `total 123.45`) in a result line.
figure() { sed -nE "s/.*$1 ([0-9.?-]+).*/\\1/p" <<<"$2"; }

declare -A our_rss
for size in "${sizes[@]}"; do
    file="$data/settlement-$size.tsv"
    echo "== $file ($(du -h "$file" | cut -f1))"
    # Each program runs $runs times, alternating, with the file in the page cache (neither pays
    # for the disk); the fastest run of each counts. This machine's neighbours move single runs
    # by a quarter either way.
    line="" pandas_line="" pandas_failed=""
    for ((run = 1; run <= runs; run++)); do
        cat "$file" >/dev/null
        ours_run=$(SETTLEMENT_FILE="$file" "$ours" 2>/dev/null)
        echo "  run $run: $ours_run"
        line=$(faster "$line" "$ours_run")
        [[ -n "$pandas_failed" ]] && continue
        cat "$file" >/dev/null
        # pandas may need more memory than the machine has: say so rather than stop.
        if pandas_run=$("$venv/bin/python" "$shared/bench/pandas_settlement.py" "$file" 2>/tmp/pandas-$$.err); then
            echo "  run $run: $pandas_run"
            pandas_line=$(faster "$pandas_line" "$pandas_run")
        else
            status=$?
            pandas_failed="pandas: failed (exit $status$([[ $status -eq 137 ]] && echo ', killed: out of memory')): $(tail -n 1 /tmp/pandas-$$.err)"
        fi
        rm -f /tmp/pandas-$$.err
    done
    echo "$line"
    if [[ -n "$pandas_failed" ]]; then echo "$pandas_failed"; pandas_line=""; else echo "$pandas_line"; fi
    our_rss[$size]=$(figure "peak RSS" "$line")
    if [[ -n "$pandas_line" ]]; then
        ratio=$(awk -v a="$(figure "=" "$line")" -v b="$(figure "=" "$pandas_line")" 'BEGIN { printf "%.1f", a / b }')
        echo "throughput ratio: ${ratio}x, peak memory: ours ${our_rss[$size]} MB vs pandas $(figure "peak RSS" "$pandas_line") MB"
        ours_total=$(figure "total" "$line")
        pandas_total=$(figure "total" "$pandas_line")
        if [[ "$ours_total" == "$pandas_total" ]]; then
            echo "totals agree: $ours_total"
        else
            echo "TOTALS DIFFER: ours $ours_total, pandas $pandas_total"
        fi
    fi
done
first=${our_rss[${sizes[0]}]} second=${our_rss[${sizes[1]}]}
# Memory may grow with the distinct (SKU, day, charge) sums, never with the lines.
echo "our peak RSS from the ${sizes[0]} MiB to the ${sizes[1]} MiB file (twice the lines): $first MB -> $second MB" \
    "($(awk -v a="$first" -v b="$second" 'BEGIN { printf "%+.0f%%", (b / a - 1) * 100 }'))"
