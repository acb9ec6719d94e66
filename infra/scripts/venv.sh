#!/usr/bin/env bash
# Creates the project's Python virtualenv (<repo>/.venv) with the tools in
# infra/requirements.txt: the AWS emulator (moto) and cfn-lint.
#
# Idempotent and fast when nothing changed: a stamp file in the venv holds the
# sha256 of requirements.txt it was built from; the install runs only when that
# differs (or the venv is missing or broken).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo_root/.venv"
requirements="$repo_root/infra/requirements.txt"
stamp="$venv/.requirements.sha256"

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] \
    && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "venv.sh: creating $venv" >&2
    python3 -m venv "$venv"
fi

echo "venv.sh: installing infra/requirements.txt" >&2
# Remove the stamp first so an interrupted install is retried next time.
rm -f "$stamp"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$requirements"
echo "$wanted" > "$stamp"
