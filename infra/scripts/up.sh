#!/usr/bin/env bash
# The README's first command: the whole system on this machine, in the foreground.
# Installs what it needs (the Python venv with the AWS emulator), builds, starts the emulator,
# creates the resources from template.yaml, starts the Meta sandbox and the local identity
# provider, serves every HTTP function on one port (ECOMDRIVE_PORT, default 3000), runs the queue
# functions from pollers, prints a line with `ready` and the URL, and stops it all on Ctrl-C.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$repo_root/infra/scripts/venv.sh"
cd "$repo_root"
cargo build --quiet -p ecomdrive-local --bin local-stack
exec target/debug/local-stack
