#!/usr/bin/env bash
# Prints requirements.txt (what a Hugging Face Space installs: the base set) from uv.lock.
# No hashes: a Space adds its own packages (gradio, spaces) to the same pip call, and pip's
# hash-checking mode would refuse those. uv.lock keeps the hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# Generated from uv.lock by scripts/export-requirements.sh (make lock); do not edit by hand."
.uv/bin/uv export --frozen --no-dev --no-emit-project --no-hashes --no-header --no-annotate --quiet
