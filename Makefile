# `make dashboard` and `make test` do all the set-up on a fresh machine; stamps keep a second run quiet.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: dashboard test lint

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: pyproject.toml | $(PY)
	$(PIP) -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import engines.piper_engine, gradio"
	touch $@

$(VENV)/.all: pyproject.toml | $(PY)
	$(PIP) -e '.[all,test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import TTS, f5_tts, pytest, playwright"
	touch $@ $(VENV)/.base

dashboard: $(VENV)/.base
	@scripts/system-packages.sh ffmpeg
	@$(PY) app.py

test: $(VENV)/.all
	@scripts/system-packages.sh ffmpeg chromium
	@$(PY) -m ruff check --quiet .
	@$(PY) -m pytest -q

lint: $(VENV)/.all
	$(PY) -m ruff check .
