#!/usr/bin/env bash
# Installs Debian's `chromium` package when it is missing: the headless browser the browser tests
# drive through Playwright (tests/browser/). Playwright's own browser download is not used: it
# fetches a build from outside the package registries, which this project's machines cannot reach.
#
# Idempotent and quiet: does nothing when /usr/bin/chromium is there. Needs root (or sudo) only
# when it has to install.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    sudo="sudo"
fi

echo "chromium.sh: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
