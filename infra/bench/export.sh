#!/usr/bin/env bash
# The data export (issue 5: "memory stays flat however much data there is") against the local
# AWS emulator: one merchant of each size in SIZES (message items of ~300 bytes of text), each
# exported in JSON and in CSV by the whole job (`Exporter::run`: read, spool, zip, upload), each
# export in a process of its own. Prints per export: items, seconds, items/s, zip size and the
# process's peak RSS growth during the export; then how the peak grows with the item count.
# Run from the repo root: `bash infra/bench/export.sh` (SIZES="20000 80000" by default).
# The speed is the emulator's (moto pages a 1 MB query by re-reading the partition): read the
# seconds as an upper bound, the memory as ours.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
read -r -a sizes <<<"${SIZES:-20000 80000}"
formats=(json csv)

infra/scripts/venv.sh

# cargo names the binary it built: `Executable benches/export_memory.rs (target/release/deps/…)`.
build_log=$(cargo bench -p data-export --bench export_memory --no-run 2>&1) || { echo "$build_log"; exit 1; }
bench=$(sed -nE 's/.*Executable .*\((.*)\).*/\1/p' <<<"$build_log" | tail -n 1)
echo "bench: $bench (release profile of the root Cargo.toml)"

# The emulator, on a free loopback port, stopped on exit (as infra/scripts/test.sh does).
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p .local
log=".local/emulator-bench-export.log"
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then echo "the emulator exited; see $log" >&2; exit 1; fi
    sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=ap-south-1
export AWS_ACCESS_KEY_ID=AKIDLOCALFAKEKEY0000
export AWS_SECRET_ACCESS_KEY=local-fake-secret-access-key
export AWS_EC2_METADATA_DISABLED=true

# Resources from template.yaml, and the merchants' items: prints TABLE_NAME=… and DATA_BUCKET=….
echo "seeding ${sizes[*]} items (one merchant each) into the emulator at $AWS_ENDPOINT_URL"
started=$SECONDS
seeded=$("$bench" seed "${sizes[@]}")
echo "seeded in $((SECONDS - started)) s"
export TABLE_NAME DATA_BUCKET
TABLE_NAME=$(sed -n 's/^TABLE_NAME=//p' <<<"$seeded")
DATA_BUCKET=$(sed -n 's/^DATA_BUCKET=//p' <<<"$seeded")

# A figure printed as `NAME NUMBER` (e.g. `peak growth 12.3`) in a result line.
figure() { sed -nE "s/.*$1 ([0-9.?-]+).*/\\1/p" <<<"$2"; }

declare -A growth
for size in "${sizes[@]}"; do
    for format in "${formats[@]}"; do
        line=$("$bench" run "$size" "$format")
        echo "$line"
        growth[$size-$format]=$(figure "peak growth" "$line")
    done
done

first=${sizes[0]} last=${sizes[-1]}
for format in "${formats[@]}"; do
    a=${growth[$first-$format]} b=${growth[$last-$format]}
    echo "$format: peak RSS growth during the export, $first -> $last items" \
        "($(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.0f", b / a }')x the items): $a MB -> $b MB" \
        "($(awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.1f MB", b - a }'))"
done
