"""Shared fixtures. Every test gets its own results-store directory, never ~/.ttsperf."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "ttsperf-data"
    monkeypatch.setenv("TTSPERF_DATA_DIR", str(data_dir))
    return data_dir
