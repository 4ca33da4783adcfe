"""The registry is lazy: listing engines and reading Piper's capabilities import no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from engines.convert.base import Converter
from engines.convert.registry import CONVERTERS, get_converter_entry
from engines.errors import EngineUnavailable, InputError
from engines.registry import (
    DEFAULT_ENGINE,
    EngineEntry,
    EngineStatus,
    get_entry,
    list_engines,
    load_class,
    missing_packages,
)
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


def test_converters_share_the_engines_lookup_and_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="unknown converter 'rvcc' \\(did you mean 'rvc'\\? known: rvc\\)"):
        get_converter_entry("rvcc")
    rvc = CONVERTERS[0]
    # A class that is no Converter: one clear line naming the base class, not a bare assert.
    wrong = replace(rvc, module="engines.piper_engine", class_name="PiperEngine", requires=())
    with pytest.raises(EngineUnavailable, match="'rvc': .* is not a subclass of engines.convert.base.Converter"):
        load_class("converter", wrong, Converter)
    # A module whose own import fails (an extra's package broken or half installed): the install hint.
    (tmp_path / "ttsperf_broken_converter.py").write_text("import ttsperf_no_such_package\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = replace(rvc, module="ttsperf_broken_converter", requires=())
    with pytest.raises(EngineUnavailable, match=r"failed to import: ModuleNotFoundError: .*ttsperf_no_such_package"
                       r".*\(pip install -e \.\[rvc\]\)"):
        load_class("converter", broken, Converter)
    missing = replace(rvc, requires=("ttsperf_no_such_package",))
    with pytest.raises(EngineUnavailable, match=r"converter 'rvc' is not installed .*: pip install -e \.\[rvc\]"):
        load_class("converter", missing, Converter)
