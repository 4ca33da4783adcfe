"""The registry is lazy: listing engines and reading Piper's capabilities import no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engines.errors import InputError
from engines.registry import DEFAULT_ENGINE, EngineEntry, EngineStatus, get_entry, list_engines, missing_packages
from tests.conftest import REPO_ROOT


def test_listing_engines_imports_no_heavy_package() -> None:
    code = (
        "import json, sys\n"
        "from engines.registry import list_engines, capabilities\n"
        "names = [s.name for s in list_engines()]\n"
        "capabilities('piper')\n"
        "capabilities('kokoro')\n"
        "heavy = [m for m in ('torch', 'TTS', 'f5_tts', 'onnxruntime', 'gradio') if m in sys.modules]\n"
        "print(json.dumps({'names': names, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert {"piper", "xtts", "f5", "kokoro"} <= set(result["names"])
    assert result["heavy"] == []


def test_default_engine_is_available_piper() -> None:
    statuses = {s.name: s for s in list_engines()}
    assert DEFAULT_ENGINE == "piper"
    assert statuses["piper"].available
    assert statuses["piper"].reason == ""


def test_missing_package_makes_engine_unavailable_with_install_hint() -> None:
    entry = EngineEntry(
        name="ghost", title="Ghost", module="engines.piper_engine", class_name="PiperEngine",
        requires=("no_such_package_ttsperf",), install_hint="pip install ghost-tts", description="",
    )
    missing = missing_packages(entry)
    assert missing == ("no_such_package_ttsperf",)
    status = EngineStatus(entry, available=not missing, missing=missing)
    assert not status.available
    assert status.reason == "missing no_such_package_ttsperf: pip install ghost-tts"


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="unknown engine 'nope' \\(known: piper"):
        get_entry("nope")
