#!/usr/bin/env bash
# The lock guard: pyproject.toml and uv.lock agree, and requirements.txt is the lock's base set.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .uv/bin/uv lock --check --quiet 2>/tmp/ttsperf-lock-check.$$; then
    cat /tmp/ttsperf-lock-check.$$ >&2
    rm -f /tmp/ttsperf-lock-check.$$
    echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock and requirements.txt" >&2
    exit 1
fi
rm -f /tmp/ttsperf-lock-check.$$
if ! diff -u requirements.txt <(scripts/export-requirements.sh) >&2; then
    echo "requirements.txt is not generated from uv.lock: run 'scripts/export-requirements.sh > requirements.txt'" >&2
    exit 1
fi
