"""The lab's F5 engine against F5's own API on the same checkpoint, reference, text, NFE and seed.

F5's side is ``F5TTS.infer`` itself (reference preprocessing, chunking, duration rule, sampling,
Vocos), with the model and vocoder loaded by F5's own ``load_model`` / ``load_vocoder`` from a
tiny random checkpoint saved in the released layout: nothing reaches the hub.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("f5_tts")
pytest.importorskip("torch")

from engines.base import SynthesisSettings, Voice  # noqa: E402
from engines.f5.engine import F5Engine  # noqa: E402
from engines.f5.reference import DEFAULT_REFERENCE_TEXT, default_reference_audio  # noqa: E402
from engines.validation import resolve_settings  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

TEXT = "The lab must generate what F5 generates."
NFE = 4
SEED = 1234


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from engines.f5.build import build_random, save_released_layout

    files = save_released_layout(build_random("tiny", seed=0), tmp_path_factory.mktemp("f5parity"))
    return {"model": files.model_file, "vocab": files.vocab_file, "vocos": files.vocoder_dir}


def f5_api_infer(released: dict[str, Path], reference: Path) -> np.ndarray:
    """F5TTS.infer with the model built by F5's loaders (F5TTS() itself only knows shipped configs)."""
    from f5_tts.api import F5TTS
    from f5_tts.infer.utils_infer import load_model, load_vocoder
    from f5_tts.model import DiT

    from engines.f5.build import TINY_DIT

    api = F5TTS.__new__(F5TTS)
    api.mel_spec_type, api.target_sample_rate, api.device = "vocos", 24000, "cpu"
    api.ema_model = load_model(DiT, dict(TINY_DIT), str(released["model"]), "vocos", str(released["vocab"]),
                               "euler", True, "cpu")
    api.vocoder = load_vocoder("vocos", is_local=True, local_path=str(released["vocos"]), device="cpu")
    wave, rate, _ = api.infer(str(reference), DEFAULT_REFERENCE_TEXT, TEXT, show_info=lambda *_: None,
                              progress=None, nfe_step=NFE, seed=SEED)
    assert rate == 24000
    return np.asarray(wave, dtype=np.float32)


def lab_synthesize(released: dict[str, Path], reference: Path, preprocess: str) -> np.ndarray:
    knobs = {"weights": "checkpoint", "architecture": "tiny", "model_file": str(released["model"]),
             "vocab_file": str(released["vocab"]), "vocoder_dir": str(released["vocos"]), "nfe_step": NFE,
             "torch_threads": 1, "reference_preprocess": preprocess}
    settings = resolve_settings(F5Engine.capabilities, SynthesisSettings("f5", knobs=knobs, seed=SEED), ("cpu",))
    engine = F5Engine()
    engine.load(settings)
    voice = Voice(reference_audio=reference, reference_text=DEFAULT_REFERENCE_TEXT)
    return engine.synthesize(TEXT, voice, settings).samples


def test_lab_engine_generates_what_f5s_api_generates(released: dict[str, Path]) -> None:
    reference = default_reference_audio()
    theirs = f5_api_infer(released, reference)
    ours = lab_synthesize(released, reference, "f5")
    assert len(ours) == len(theirs)
    assert np.allclose(ours, theirs, atol=1e-5), float(np.max(np.abs(ours - theirs)))
    # Without F5's preprocessing the prompt keeps its silent edges: a different length, as the issue measured.
    as_given = lab_synthesize(released, reference, "none")
    assert len(as_given) != len(theirs)
