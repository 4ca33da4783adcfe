"""F5-TTS engine: flow-matching DiT + Vocos, every stage timed, every NFE step kept.

The pipeline is F5's own ``infer_batch_process`` taken apart so each stage can be
timed: reference audio -> reference mel -> text preparation -> duration estimate ->
ODE solve (``CFM.sample``, each DiT evaluation timed) -> Vocos decode -> cross-fade.
torch and f5_tts are imported inside methods only (the registry reads the
capabilities from this module; ``import f5_tts.model`` drags in the trainer).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import Audio, AudioChunk, Engine, SynthesisSettings, Voice
from engines.errors import InputError
from engines.f5.capabilities import (
    EPSS_STEPS,
    F5_CAPABILITIES,
    SAMPLE_RATE,
    SHIPPED_ARCHITECTURES,
    TINY_ARCHITECTURE,
    F5Knobs,
)
from engines.f5.checkpoint import resolve_checkpoint_files
from engines.f5.chunking import CrossfadeJoiner, plan_chunks
from engines.f5.precision import PrecisionPlan, check_precision
from engines.f5.reference import TARGET_RMS, ReferenceAudio, read_reference, resolve_voice
from engines.hooks import NULL_HOOK, StageHook
from engines.torch_devices import TorchDevices, zerogpu_refusal
from engines.torch_settings import TorchSettings

if TYPE_CHECKING:
    import torch

    from engines.f5.build import F5Model

HOP_LENGTH = 256
WARMUP_TEXT = "Warm up the model."


@dataclass(frozen=True)
class _Prompt:
    """The reference prompt ready for sampling: mel frames on the device and its text."""

    mel: torch.Tensor  # (1, frames, 100) fp32
    text: str
    frames: int  # samples // hop, how F5 cuts the prompt off the generated mel
    rms: float
    seconds: float


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class F5Engine(TorchDevices, Engine):
    name = "f5"
    capabilities = F5_CAPABILITIES
    hot_functions = (
        "f5_tts.model.cfm.CFM.sample",
        "f5_tts.model.backbones.dit.DiT.forward",
        "f5_tts.model.modules.DiTBlock.forward",
        "vocos.pretrained.Vocos.decode",
        "engines.f5.engine.F5Engine._generate",
    )

    def __init__(self) -> None:
        super().__init__()
        self._model: F5Model | None = None
        self._plan: PrecisionPlan | None = None
        self._device = "cpu"
        self._weights = "random-tiny"
        self._compiled = False
        self._torch_settings: TorchSettings | None = None
        self._references: dict[tuple[str, str, str], ReferenceAudio] = {}

    # --- machine and loading ----------------------------------------------------------------
    @property
    def random_weights(self) -> bool:
        return self._weights != "checkpoint"

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        # Everything that can be refused is refused before torch is even imported.
        check_precision(settings)
        torch_settings = TorchSettings.of(F5_CAPABILITIES, settings.knobs)
        knobs = F5Knobs.of(settings.knobs)
        weights = torch_settings.weights
        files = (
            resolve_checkpoint_files(knobs.model_file, knobs.vocab_file, knobs.vocoder_dir)
            if weights == "checkpoint" else None
        )
        architecture = TINY_ARCHITECTURE if weights == "random-tiny" else knobs.architecture
        if weights == "random-full" and architecture not in SHIPPED_ARCHITECTURES:
            raise InputError(f"weights=random-full needs a shipped architecture, not {architecture!r}")
        with hook.stage("import"):
            from engines.f5.trainer_imports import stand_in_for_trainer_imports

            stood_in = stand_in_for_trainer_imports()
            # utils_infer (chunk_text, loaders) and jieba's dictionary load on first use: pay
            # for both here so the first measured run does not.
            from f5_tts.infer import utils_infer  # noqa: F401
            from f5_tts.model.utils import convert_char_to_pinyin

            from engines.f5 import build
            from engines.f5.precision import dit_weight_dtype, torch_dtype

            convert_char_to_pinyin(["warm up"])
        device = settings.device if settings.device_kind == "cpu" else self._cuda_device(settings.device)
        plan = PrecisionPlan.from_settings(settings)
        self._check_time_grid(settings, dit_weight_dtype(plan))
        torch_settings.apply_threads()
        torch_settings.apply(settings.device_kind)
        self._torch_settings = torch_settings
        if files is not None:
            with hook.stage("load_checkpoint"):
                model = build.load_checkpoint_model(files, architecture, knobs.use_ema, device)
        else:
            with hook.stage("build_random"):
                model = build.build_random(architecture, knobs.weights_seed)
        with hook.stage("to_device"):
            model.cfm.to(device)
            model.cfm.transformer.to(dit_weight_dtype(plan))
            model.vocoder.to(device=device, dtype=torch_dtype(plan.vocoder))
        self._model, self._plan, self._device, self._weights = model, plan, device, weights
        self._compiled = torch_settings.compile
        if self._compiled:
            with hook.stage("compile_setup"):  # lazy: the real compile happens in the first NFE step
                model.cfm.transformer.compile(mode=torch_settings.compile_mode)
        self.settings = settings
        for _ in range(torch_settings.warmup):
            with hook.stage("warmup"):
                self.synthesize(WARMUP_TEXT, Voice(), settings, NULL_HOOK)
        hook.annotate("dtype.dit_params", str(next(model.cfm.transformer.parameters()).dtype))
        if stood_in:
            hook.annotate("trainer_imports_stood_in", ",".join(stood_in))

    @staticmethod
    def _cuda_device(device: str) -> str:
        return device if ":" in device else "cuda:0"

    def unload(self) -> None:
        self._model = None
        self._plan = None
        if "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        super().unload()

    def describe_model(self) -> dict[str, str]:
        if self._model is None or self._plan is None:
            return {}
        model = self._model
        return {
            "weights": "random" if self.random_weights else "trained",
            "architecture": model.architecture,
            "source": model.source,
            "dit_parameters": str(model.dit_parameters),
            "vocoder_parameters": str(model.vocoder_parameters),
            "dit_dtype": str(next(model.cfm.transformer.parameters()).dtype),
            "dit_precision": f"{self._plan.dit} ({self._plan.dit_mode})",
            "vocoder_dtype": str(next(model.vocoder.parameters()).dtype),
            "compiled": str(self._compiled),
        }

    def _require(self) -> tuple[F5Model, PrecisionPlan]:
        if self._model is None or self._plan is None:
            raise RuntimeError("F5Engine.load() must run before synthesis")
        return self._model, self._plan

    def _sync(self) -> Callable[[], None] | None:
        if not self._device.startswith("cuda"):
            return None
        import torch

        device = self._device
        return lambda: torch.cuda.synchronize(device)

    # --- the pipeline stages ----------------------------------------------------------------
    def _prepare_prompt(self, voice: Voice, settings: SynthesisSettings, hook: StageHook) -> _Prompt:
        import torch
        import torchaudio.functional

        model, _ = self._require()
        preprocess = str(settings.knobs.get("reference_preprocess", "f5"))
        with hook.stage("reference_audio_load"):
            path, text = resolve_voice(voice)
            reference = self._reference(path, text, preprocess, hook)
            audio = torch.from_numpy(reference.samples).unsqueeze(0)
            rms = float(torch.sqrt(torch.mean(torch.square(audio))))
            if rms < TARGET_RMS:  # F5 lifts quiet prompts to the target loudness
                audio = audio * TARGET_RMS / max(rms, 1e-8)
            if reference.sample_rate != SAMPLE_RATE:
                audio = torchaudio.functional.resample(audio, reference.sample_rate, SAMPLE_RATE)
            audio = audio.to(self._device)
        with hook.stage("reference_mel"):
            with torch.inference_mode():
                mel = model.cfm.mel_spec(audio).permute(0, 2, 1)
        hook.annotate("dtype.reference_mel", str(mel.dtype))
        return _Prompt(mel, reference.text, audio.shape[-1] // HOP_LENGTH, rms, audio.shape[-1] / SAMPLE_RATE)

    def _reference(self, path: Path, text: str, preprocess: str, hook: StageHook) -> ReferenceAudio:
        """F5 caches its preprocessed reference per file content (md5); so does the lab."""
        try:
            digest = hashlib.md5(path.read_bytes()).hexdigest()
        except OSError as error:
            raise InputError(f"cannot read reference audio {path}: {error.strerror or error}") from None
        key = (digest, text, preprocess)
        cached = self._references.get(key)
        hook.annotate("reference_preprocess", preprocess)
        hook.annotate("reference_cached", cached is not None)
        if cached is None:
            cached = read_reference(path, text, preprocess)
            self._references = {**dict(list(self._references.items())[-7:]), key: cached}
        return cached

    def _plan_chunks(self, text: str, prompt: _Prompt, settings: SynthesisSettings, hook: StageHook) -> list[str]:
        knobs = F5Knobs.of(settings.knobs)
        chunker = knobs.chunker
        with hook.stage("text_preparation"):
            chunks = plan_chunks(
                text, chunker, prompt.text, prompt.seconds, knobs.speed, knobs.first_chunk_max_chars,
            )
        if not chunks:
            raise InputError("the text has nothing F5-TTS can speak")
        hook.annotate("chunker", chunker)
        hook.annotate("chunks", len(chunks))
        return chunks

    def _generate(
        self, texts: list[str], prompt: _Prompt, settings: SynthesisSettings, hook: StageHook
    ) -> list[np.ndarray]:
        """One ODE solve for a batch of text chunks; returns each chunk's waveform."""
        import torch
        from f5_tts.model.utils import convert_char_to_pinyin, list_str_to_idx

        from engines.f5.ode import timed_nfe
        from engines.f5.precision import dit_autocast, torch_dtype

        model, plan = self._require()
        knobs = F5Knobs.of(settings.knobs)
        speed = knobs.speed
        nfe_step = knobs.nfe_step
        with hook.stage("text_preparation"):
            texts = [text.strip() for text in texts]  # lab chunks keep their trailing space
            pinyin = convert_char_to_pinyin([prompt.text + text for text in texts])
            tokens = list_str_to_idx(pinyin, model.vocab_char_map).to(self._device)
        with hook.stage("duration_estimate"):
            ref_bytes = len(prompt.text.encode("utf-8"))
            mel_frames = prompt.mel.shape[1]
            ends = []
            for index, text in enumerate(texts):
                text_bytes = len(text.encode("utf-8"))
                local_speed = 0.3 if text_bytes < 10 else speed  # F5 slows very short text down
                estimate = prompt.frames + int(prompt.frames / ref_bytes * text_bytes / local_speed)
                # CFM.sample never generates less than the prompt or text length plus one frame.
                ends.append(max(int((tokens[index] != -1).sum()) + 1, mel_frames + 1, estimate))
            duration = torch.tensor(ends, device=self._device, dtype=torch.long)
        sway = knobs.sway_sampling_coef
        with hook.stage("ode_solve"):
            model.cfm.odeint_kwargs = {"method": knobs.ode_method}
            cond = prompt.mel.expand(len(texts), -1, -1)
            with torch.inference_mode(), dit_autocast(plan, self._device.split(":")[0]), \
                    timed_nfe(model.cfm, hook, self._sync()) as timed:
                mel, trajectory = model.cfm.sample(
                    cond=cond, text=tokens, duration=duration, steps=nfe_step,
                    cfg_strength=knobs.cfg_strength, sway_sampling_coef=sway,
                    seed=settings.seed,
                )
            del trajectory
        hook.annotate("nfe_evaluations", timed.calls)
        hook.annotate("torch_threads", torch.get_num_threads())
        hook.annotate("ode_schedule", "epss" if nfe_step in EPSS_STEPS else "uniform")
        hook.annotate("dtype.ode_solve", str(timed.output_dtype))
        hook.annotate("dtype.ode_state", str(mel.dtype))
        hook.annotate("dtype.dit_params", str(next(model.cfm.transformer.parameters()).dtype))
        waves = []
        with hook.stage("vocoder_decode"), torch.inference_mode():
            vocoder_dtype = torch_dtype(plan.vocoder)
            for index, end in enumerate(ends):
                generated = mel[index: index + 1, prompt.frames: end, :].to(vocoder_dtype).permute(0, 2, 1)
                wave = model.vocoder.decode(generated)
                hook.annotate("dtype.vocoder_decode", str(wave.dtype))
                wave = wave.float()
                if prompt.rms < TARGET_RMS:
                    wave = wave * prompt.rms / TARGET_RMS
                waves.append(wave.squeeze(0).cpu().numpy().astype(np.float32))
        hook.annotate("dtype.vocoder_params", str(next(model.vocoder.parameters()).dtype))
        return waves

    # --- the Engine API -----------------------------------------------------------------------
    @staticmethod
    def _check_time_grid(settings: SynthesisSettings, dtype: torch.dtype) -> None:
        from engines.f5.ode import time_grid_refusal

        knobs = F5Knobs.of(settings.knobs)
        reason = time_grid_refusal(knobs.nfe_step, knobs.sway_sampling_coef, dtype)
        if reason:
            raise InputError(reason)

    @classmethod
    def check_request(cls, settings: SynthesisSettings, voice: Voice) -> None:
        """Knob combinations (and voices) that cannot run are refused before anything loads or is stored."""
        resolve_voice(voice)  # a named speaker, or reference audio without its transcript
        check_precision(settings)
        refused = zerogpu_refusal(TorchSettings.of(F5_CAPABILITIES, settings.knobs).compile)
        if refused:
            raise InputError(refused)
        plan = PrecisionPlan.from_settings(settings)
        if plan.casts_dit:
            from engines.f5.precision import dit_weight_dtype

            cls._check_time_grid(settings, dit_weight_dtype(plan))

    def _check(self, settings: SynthesisSettings) -> None:
        """Refuse what cannot run before any stage starts (the per-call knobs may differ from load's)."""
        check_precision(settings)
        model, _ = self._require()
        if self._torch_settings is not None:
            self._torch_settings.apply(settings.device_kind)  # process-wide: another engine may have changed them
        self._check_time_grid(settings, next(model.cfm.transformer.parameters()).dtype)

    def synthesize(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Audio:
        self._check(settings)
        prompt = self._prepare_prompt(voice, settings, hook)
        chunks = self._plan_chunks(text, prompt, settings, hook)
        knobs = F5Knobs.of(settings.knobs)
        batch_size = knobs.chunk_batch_size
        waves: list[np.ndarray] = []
        for start in range(0, len(chunks), batch_size):
            waves.extend(self._generate(chunks[start: start + batch_size], prompt, settings, hook))
        with hook.stage("crossfade"):
            joiner = CrossfadeJoiner(int(knobs.cross_fade_s * SAMPLE_RATE))
            pieces = [joiner.push(wave) for wave in waves]
            pieces.append(joiner.finish())
            samples = np.concatenate(pieces).astype(np.float32)
        return Audio(samples, SAMPLE_RATE)

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        """chunked: each text chunk generated on its own and yielded when ready (cross-faded, the
        fade tail held back for the next); pseudo: F5's own streaming, a whole chunk generated
        and then cut into fixed slices."""
        self._check(settings)
        knobs = F5Knobs.of(settings.knobs)
        mode = knobs.stream_mode
        hook.annotate("stream_mode", mode)
        prompt = self._prepare_prompt(voice, settings, hook)
        chunks = self._plan_chunks(text, prompt, settings, hook)
        if mode == "pseudo":
            yield from self._pseudo_stream(chunks, prompt, settings, hook)
            return
        joiner = CrossfadeJoiner(int(knobs.cross_fade_s * SAMPLE_RATE))
        for index, chunk in enumerate(chunks):
            (wave,) = self._generate([chunk], prompt, settings, hook)
            with hook.stage("crossfade"):
                ready = joiner.push(wave)
                if index == len(chunks) - 1:
                    ready = np.concatenate([ready, joiner.finish()]).astype(np.float32)
            yield AudioChunk(Audio(ready, SAMPLE_RATE), chunk, index)

    def _pseudo_stream(
        self, chunks: list[str], prompt: _Prompt, settings: SynthesisSettings, hook: StageHook
    ) -> Iterator[AudioChunk]:
        piece = F5Knobs.of(settings.knobs).stream_slice_samples
        index = 0
        for chunk in chunks:
            (wave,) = self._generate([chunk], prompt, settings, hook)
            for start in range(0, len(wave), piece):
                text = chunk if start == 0 else ""
                yield AudioChunk(Audio(wave[start: start + piece].astype(np.float32), SAMPLE_RATE), text, index)
                index += 1

    def __repr__(self) -> str:
        details: Any = self.describe_model() or "not loaded"
        return f"F5Engine({details})"
