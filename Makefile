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
SYNC := $(UV) sync --locked --quiet

.PHONY: dashboard test lint lock check-lock

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
	@$(SYNC) --extra all --extra test
	@$(PY) -c "import TTS, f5_tts, pytest, playwright"
	@touch $@ $(VENV)/.base

dashboard: $(VENV)/.base
	@scripts/system-packages.sh ffmpeg
	@$(PY) app.py

test: $(VENV)/.all check-lock
	@scripts/system-packages.sh ffmpeg chromium espeak-ng
	@$(PY) -m ruff check --quiet .
	@$(PY) -m pytest -q

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
