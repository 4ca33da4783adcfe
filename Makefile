# `make dashboard` and `make test` do all the set-up on a fresh machine; stamps keep a second run quiet.
# The environment comes from uv.lock (every package pinned with hashes); `make lock` is the only way to
# change it. pyproject.toml keeps the ranges; the lock is what gets installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := .uv/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export GRADIO_ANALYTICS_ENABLED := False
# --compile-bytecode: the .pyc files are written once at install. Where PYTHONDONTWRITEBYTECODE is set (as on this
# project's VM) Python never writes them, so every process (each test subprocess, server, kernel) compiled
# torch/transformers again: `import torch, transformers.pipelines` took 12 s instead of 5.5 s on 2 cores.
SYNC := $(UV) sync --locked --quiet --compile-bytecode

.PHONY: dashboard lab notebooks-reference test lint lock check-lock gpu-rehearsal device-wheels

$(UV): scripts/uv-bootstrap.txt
	@$(PYTHON) -m pip install -q --disable-pip-version-check --no-warn-script-location \
		--require-hashes --target .uv -r scripts/uv-bootstrap.txt 2>&1 | grep -v "^WARNING: " || true
	@touch $@

# --inexact: the dashboard's base install leaves the extras of an earlier `make test` in place.
$(VENV)/.base: pyproject.toml uv.lock | $(UV)
	@$(SYNC) --inexact
	@$(PY) -c "import engines.piper_engine, gradio"
	@touch $@

$(VENV)/.all: pyproject.toml uv.lock | $(UV)
	@$(SYNC) --extra all --extra test --extra notebooks
	@$(PY) -c "import TTS, f5_tts, kokoro_onnx, pytest, playwright, jupyterlab"
	@touch $@ $(VENV)/.base

dashboard: $(VENV)/.base
	@scripts/system-packages.sh ffmpeg
	@$(PY) app.py

# JupyterLab from the lock (the `notebooks` extra) on notebooks/. The .venv's python is registered as the
# kernel "ttsperf" inside the .venv (--sys-prefix: nothing written to the home directory); the notebooks'
# own "Python 3" kernel is the same interpreter. Listens on 127.0.0.1 only and prints its URL with the
# token (no password prompt); opens a browser only where there is a display. LAB_PORT=... to move it.
LAB_PORT ?= 8888
LAB_FLAGS := --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.root_dir=notebooks \
	--MappingKernelManager.default_kernel_name=ttsperf --LabApp.news_url=None \
	--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate $(if $(filter 0,$(shell id -u)),--allow-root)

$(VENV)/.lab: pyproject.toml uv.lock | $(UV)
	@$(SYNC) --inexact --extra notebooks
	@$(PY) -c "import jupyterlab, ipykernel, engines.piper_engine"
	@$(PY) -m ipykernel install --sys-prefix --name ttsperf --display-name "Python 3 (ttsperf .venv)" >/dev/null
	@touch $@ $(VENV)/.base

lab: $(VENV)/.lab
	@scripts/system-packages.sh ffmpeg
	@$(PY) -m jupyter lab $(LAB_FLAGS) $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser)

# Executes every notebook on its quick settings (those of tests/test_notebooks.py) against an empty store and
# writes docs/notebooks/*.html: plots as PNG, each page saying the machine, date, commit and command.
notebooks-reference: $(VENV)/.all
	@scripts/system-packages.sh ffmpeg chromium
	$(PY) scripts/render_notebooks.py

# Two pytest-xdist workers, one test file each at a time (--dist loadfile: a module's servers and models are
# set up once), handed out in collection order (--no-loadscope-reorder: xdist would otherwise order files by their
# test count; tests/conftest.py puts the heaviest first); tests marked `alone` (they compare timings) run while
# the other worker waits (tests/conftest.py).
test: $(VENV)/.all check-lock
	@scripts/system-packages.sh ffmpeg chromium espeak-ng
	@$(PY) -m ruff check --quiet .
	@$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.all
	$(PY) -m ruff check .

# Relock after editing pyproject.toml (existing pins kept); `make lock UPGRADE=1` moves every pin to the newest
# version pyproject.toml allows. Then regenerate requirements.txt; run `make test` and commit both.
lock: | $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)
	scripts/export-requirements.sh > requirements.txt

# Fails when pyproject.toml and uv.lock disagree, or requirements.txt is not what the lock gives.
check-lock: | $(UV)
	@scripts/check-lock.sh

# --- the GPU machine, rehearsed here (docs/gpu.md) -------------------------------------------------
# The lent GPU machine has Python 3.12, torch 2.11, transformers 5.17 and no registry: the suite's
# missing packages travel as wheels (.whl/, scripts/device-wheels.sh). The rehearsal builds that
# environment here (scripts/gpu-machine-packages.txt from the registry, the wheels with --no-deps
# --target, as there) and runs the GPU suite's CPU path on tiny models. Not part of `make test`.
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
GPU_ENV := .gpu-rehearsal

device-wheels:
	scripts/device-wheels.sh

$(GPU_ENV)/.base: scripts/gpu-machine-packages.txt | $(UV)
	@test -x $(GPU_ENV)/bin/python || $(UV) venv -q -p $(PYTHON312) $(GPU_ENV)
	@$(UV) pip install -q --python $(GPU_ENV)/bin/python -r scripts/gpu-machine-packages.txt
	@touch $@

gpu-rehearsal: $(GPU_ENV)/.base
	@test -n "$$(ls .whl/*.whl 2>/dev/null)" || scripts/device-wheels.sh
	@rm -rf $(GPU_ENV)/site
	@$(UV) pip install -q --python $(GPU_ENV)/bin/python --no-deps --no-index --target $(GPU_ENV)/site .whl/*.whl
	PYTHONPATH=$(GPU_ENV)/site $(GPU_ENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_device_timing.py
	PYTHONPATH=$(GPU_ENV)/site $(GPU_ENV)/bin/python benchmarks/gpu_suite.py --tiny --device cpu \
		--repeats 1 --warmup 1 --budget-s $${BUDGET_S:-900} --out $(GPU_ENV)/out
