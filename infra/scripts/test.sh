#!/usr/bin/env bash
# The README's test command. Without arguments it runs every check: cargo fmt --check,
# cargo clippy -D warnings, cfn-lint on template.yaml, then every test of the workspace against a
# fresh local AWS emulator (moto), started here on a free loopback port and stopped on exit.
# Tests never skip: without AWS_ENDPOINT_URL they fail, so run them through this script.
#
#   infra/scripts/test.sh                                            # everything (what CI runs)
#   infra/scripts/test.sh -p ecomdrive-tests --test suite template   # only these cargo test arguments
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$repo_root/infra/scripts/venv.sh"
# The browser tests drive Debian's Chromium (tests/browser/).
"$repo_root/infra/scripts/chromium.sh"
cd "$repo_root"

if [[ $# -eq 0 ]]; then
    echo "test.sh: cargo fmt --check" >&2
    cargo fmt --all -- --check
    echo "test.sh: cargo clippy -D warnings" >&2
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    echo "test.sh: cfn-lint template.yaml" >&2
    infra/scripts/cfn-lint.sh
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p .local
log=".local/emulator-test.log"
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true' EXIT

# Wait (at most 30 s) until the emulator accepts connections.
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
        echo "test.sh: the AWS emulator exited; see $log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "test.sh: the AWS emulator did not answer on port $port within 30 s; see $log" >&2
    exit 1
fi

# Every SDK client (tests and functions alike) goes to the emulator, with fake credentials.
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=ap-south-1
export AWS_ACCESS_KEY_ID=AKIDLOCALFAKEKEY0000
export AWS_SECRET_ACCESS_KEY=local-fake-secret-access-key
export AWS_EC2_METADATA_DISABLED=true

if [[ $# -eq 0 ]]; then
    set -- --workspace
fi
cargo test "$@"
