#!/usr/bin/env bash
# Wheels for the lent GPU machine (no registry there): what it lacks for the GPU suite, CPython 3.12
# manylinux x86-64, no dependencies resolved (each one named here), one version each (uv.lock's), into
# the git-ignored .whl/. Prints the total size: it travels with the working tree (64 MiB in all).
# What that machine has: scripts/gpu-machine-packages.txt and /work/shared/notes/engine-facts.md.
set -eo pipefail
cd "$(dirname "$0")/.."
OUT=.whl
PIP=("${PYTHON:-python3}" -m pip --disable-pip-version-check --quiet)
# Pure-Python or manylinux wheels the GPU machine lacks (coqui-tts for XTTS, f5-tts for F5, and theirs).
NAMES=(
    coqui-tts coqpit-config coqui-tts-trainer anyascii inflect typeguard num2words pysbd monotonic-alignment-search
    librosa soxr audioread pooch decorator soundfile cffi pycparser standard-aifc standard-sunau
    f5-tts vocos x-transformers einx loguru torch-einops-utils ema-pytorch cached-path pypinyin rjieba
    unidecode pydub omegaconf hydra-core frozendict jaraco-functools more-itertools platformdirs
    torchcodec ko-speech-tools
    fastapi starlette pydantic pydantic-core annotated-types typing-inspection annotated-doc uvicorn opentelemetry-api
    rvc-next
)
# rvc-next: the RVC row's model code (pure Python; it imports each piece on its own). Not faiss-cpu (18 MiB) or
# praat-parselmouth (11 MiB): that row runs rmvpe without an index, which needs neither.
# fastapi ... opentelemetry-api (fastapi imports it): the serving target, for the load row. Not httpx (the load
# generator's, with httpcore, h11, anyio): huggingface-hub 1.x, on that machine, requires it (assumed, not checked).
# torchcodec: coqui-tts 0.28 refuses to import without it on torch >= 2.9, but only looks it up; the lab
# reads audio with soundfile, so it is never loaded (its FFmpeg libraries need not exist there).
# Published as sdists only: built here into pure-Python wheels.
SDIST_ONLY=(transformers-stream-generator docopt encodec antlr4-python3-runtime)
# One version each: the one uv.lock pins (the version the tests here run), else the newest.
version() {
    python3 - "$1" <<'PY'
import sys, tomllib
name = sys.argv[1]
# A package locked at two versions (one per Python range) gives the one for 3.12 (or one with no range).
candidates = [p for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == name]
def for_312(package):
    markers = package.get("resolution-markers", [])
    return not markers or any("3.12" in m and "< '3.12'" not in m for m in markers)
chosen = next((p for p in candidates if for_312(p)), candidates[0] if candidates else None)
if chosen:
    print(chosen["version"])
PY
}
spec() { local v; v=$(version "$1"); if [ -n "$v" ]; then echo "$1==$v"; else echo "$1"; fi; }
rm -rf "$OUT" && mkdir -p "$OUT"
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64 manylinux_2_5_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64; do
    PLATFORMS+=(--platform "$p")
done
quiet() { grep -v "^WARNING: Location" || true; }  # a local pip config's missing find-links folders
specs=(); for name in "${NAMES[@]}"; do specs+=("$(spec "$name")"); done
"${PIP[@]}" download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --abi abi3 --abi none "${PLATFORMS[@]}" --platform any -d "$OUT" "${specs[@]}" 2>&1 | quiet
specs=(); for name in "${SDIST_ONLY[@]}"; do specs+=("$(spec "$name")"); done
"${PIP[@]}" wheel --no-deps -w "$OUT" "${specs[@]}" 2>&1 | quiet
count=$(ls "$OUT"/*.whl | wc -l)
dupes=$(ls "$OUT"/*.whl | xargs -n1 basename | cut -d- -f1 | tr '[:upper:]' '[:lower:]' | sort | uniq -d)
if [ -n "$dupes" ]; then echo "two versions of: $dupes" >&2; exit 1; fi
echo "$count wheels in $OUT/: $(du -cb "$OUT"/*.whl | tail -1 | awk '{printf "%.1f MiB", $1/1048576}')"
