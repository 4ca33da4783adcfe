"""Shared fixtures. Every test gets its own results-store directory, never ~/.ttsperf."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "ttsperf-data"
    monkeypatch.setenv("TTSPERF_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for torch tests: on a shared 2-core runner two threads mostly wait on each
    other (5-10x slower here). The thread count is process-wide, so the previous count is restored."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
