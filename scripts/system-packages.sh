#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing (quiet when all present).
#   scripts/system-packages.sh ffmpeg            (dashboard: Gradio streaming audio)
#   scripts/system-packages.sh ffmpeg chromium espeak-ng   (tests: real-browser test, the example plug-in engine)
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
