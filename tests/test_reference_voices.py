"""Reference voices at several lengths (offline sources) and the sweep's voices axis."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from engines.errors import InputError
from profiling.audio.reference_voices import f5_example_references, piper_references, sweep_voices_block
from profiling.sweeps.plan import plan
from profiling.sweeps.spec import spec_from_mapping


def test_piper_references_reach_each_length_with_exact_transcripts(tmp_path: Path) -> None:
    voices = piper_references(tmp_path, (2.0, 5.0))
    assert [v.seconds >= t for v, t in zip(voices, (2.0, 5.0), strict=True)] == [True, True]
    assert voices[0].seconds < voices[1].seconds and len(voices[0].text) < len(voices[1].text)
    info = soundfile.info(str(voices[1].path))
    assert info.duration == pytest.approx(voices[1].seconds, abs=0.01)


def test_voices_axis_gives_one_configuration_per_voice(tmp_path: Path) -> None:
    pytest.importorskip("f5_tts")
    voices = f5_example_references(tmp_path)
    assert voices[1].seconds == pytest.approx(2 * voices[0].seconds, rel=0.01)
    assert "voices:" in sweep_voices_block(voices)
    entry = {"engine": "f5", "knobs": {"weights": "random-tiny"}, "grid": {"nfe_step": [2, 4]},
             "voices": [{"name": v.name, "reference_audio": str(v.path), "reference_text": v.text} for v in voices]}
    sweep_plan = plan(spec_from_mapping({"name": "voices", "engines": [entry], "texts": {"inline": ["Hi there."]}}))
    labels = [c.label for c in sweep_plan.configs]
    assert len(labels) == 4 and len({c.key for c in sweep_plan.configs}) == 4
    assert sum("voice=f5-basic-en-x2" in label for label in labels) == 2
    with pytest.raises(InputError, match="own name"):
        spec_from_mapping({"name": "dup", "engines": [{**entry, "voices": [entry["voices"][0]] * 2}]})
