"""Coqui XTTS v2 as a lab engine: local checkpoint or offline random weights.

torch and TTS are imported inside methods only: ``import TTS`` takes ~12 s and
the registry imports this module to read capabilities.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engines.base import Audio, AudioChunk, Engine, SynthesisSettings, Voice, read_knobs
from engines.errors import InputError, LoadError
from engines.hooks import NULL_HOOK, StageHook
from engines.torch_devices import TorchDevices, zerogpu_refusal
from engines.torch_settings import TorchSettings
from engines.xtts.capabilities import RANDOM_DEFAULT_TOKENS, SAMPLE_RATE, XTTS_CAPABILITIES, XttsKnobs
from engines.xtts.precision import PrecisionPlan, module_dtypes
from engines.xtts.voice_cache import ConditioningSettings, VoiceCache, VoiceProfile, cache_key, default_cache_dir

if TYPE_CHECKING:
    from engines.xtts.pipeline import GenerationSettings, StreamSettings, XttsRuntime


class XttsEngine(TorchDevices, Engine):
    name = "xtts"
    capabilities = XTTS_CAPABILITIES
    hot_functions = (
        "TTS.tts.layers.xtts.gpt_inference.GPT2InferenceModel.forward",
        "TTS.tts.layers.xtts.gpt.GPT.generate",
        "TTS.tts.layers.xtts.hifigan_decoder.HifiDecoder.forward",
        "engines.xtts.pipeline.synthesize",
        "engines.xtts.pipeline.condition",
    )

    def __init__(self) -> None:
        super().__init__()
        self._torch_settings: TorchSettings | None = None
        self._runtime: XttsRuntime | None = None
        self._weights = ""
        self._checkpoint_dir: Path | None = None
        self._caches: dict[Path | None, VoiceCache] = {}
        self._facts: dict[str, str] = {}

    # --- machine and load --------------------------------------------------------------
    @staticmethod
    def _knobs(settings: SynthesisSettings) -> XttsKnobs:
        return read_knobs(XttsKnobs, XTTS_CAPABILITIES, settings.knobs)

    @classmethod
    def check_request(cls, settings: SynthesisSettings, voice: Voice) -> None:
        """XTTS always clones: with no reference and no named speaker the run is refused before load."""
        refused = zerogpu_refusal(TorchSettings.of(XTTS_CAPABILITIES, settings.knobs).compile)
        if refused:
            raise InputError(refused)
        if voice.reference_audio is None and voice.speaker is None:
            raise InputError("XTTS clones a voice: give reference audio (a 3-10 s WAV) or a named speaker")
        if voice.reference_audio is not None and not Path(voice.reference_audio).is_file():
            raise InputError(f"reference audio not found: {voice.reference_audio}")

    @property
    def random_weights(self) -> bool:
        return self._weights.startswith("random")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        torch_settings = TorchSettings.of(XTTS_CAPABILITIES, settings.knobs)
        knobs = self._knobs(settings)
        weights = torch_settings.weights
        checkpoint = knobs.checkpoint_dir
        plan = PrecisionPlan(settings.precision, torch_settings.precision_mode, settings.device_kind)
        if weights == "checkpoint":
            if not checkpoint:
                raise LoadError("weights=checkpoint needs checkpoint_dir (config.json, model.pth, vocab.json)")
            from engines.xtts.build import check_checkpoint_dir

            check_checkpoint_dir(Path(checkpoint).expanduser())  # before the 12 s import
        with hook.stage("import"):
            import torch

            from engines.xtts import build
        torch_settings.apply_threads()
        torch_settings.apply(settings.device_kind)
        self._torch_settings = torch_settings
        with hook.stage("build_model"):
            if weights == "checkpoint":
                directory = Path(checkpoint).expanduser().resolve()
                model, config = build.load_checkpoint(directory, use_deepspeed=knobs.use_deepspeed)
                stat = (directory / "model.pth").stat()
                identity = f"checkpoint:{directory}:{stat.st_size}:{stat.st_mtime_ns}"
                self._checkpoint_dir = directory
            else:
                arch = build.ARCHITECTURES[weights.removeprefix("random-")]
                # The stand-in vocab is deterministic per architecture: one file, rewritten atomically.
                work_dir = Path(tempfile.gettempdir()) / f"ttsperf-xtts-{arch.name}"
                model, config = build.build_random(arch, seed=0, work_dir=work_dir)
                identity = f"random:{arch.name}:seed0"
        device = torch.device(settings.device)
        with hook.stage("to_device"):
            model.to(device)
        with hook.stage("precision"):
            from engines.xtts.precision import apply_precision

            apply_precision(model, plan)
        if torch_settings.compile:
            with hook.stage("compile"):
                self._compile(model, torch_settings.compile_mode)
        from engines.xtts.pipeline import XttsRuntime

        self._runtime = XttsRuntime(
            model=model, config=config, plan=plan, device=device,
            identity=f"{identity}|{settings.device}|{settings.precision}|{plan.mode}",
            max_gen_tokens=model.gpt.max_gen_mel_tokens,
        )
        self._weights = weights
        self.settings = settings
        counts = build.parameter_counts(model)
        self._facts = {
            "weights": weights,
            "architecture": "checkpoint" if weights == "checkpoint" else weights.removeprefix("random-"),
            "params_total": str(counts["total"]),
            "params_gpt": str(counts["gpt"]),
            "params_hifigan": str(counts["hifigan"]),
            "params_speaker_encoder": str(counts["speaker_encoder"]),
            "precision_mode": plan.mode if plan.half else "-",
            "dtype.params": self._param_dtypes(),
        }
        if self._checkpoint_dir is not None:
            self._facts["checkpoint_dir"] = str(self._checkpoint_dir)
        hook.annotate("dtype.params", self._facts["dtype.params"])
        for _ in range(torch_settings.warmup):
            with hook.stage("warmup"):
                self._warmup(settings)

    @staticmethod
    def _compile(model: object, mode: str) -> None:
        # Per block, not the whole generate loop: HF's cache objects break whole-graph capture.
        for block in model.gpt.gpt.h:  # type: ignore[attr-defined]
            block.compile(mode=mode, dynamic=True)
        model.hifigan_decoder.waveform_decoder.compile(mode=mode, dynamic=True)  # type: ignore[attr-defined]

    def _param_dtypes(self) -> str:
        model = self._require().model
        return (
            f"gpt={module_dtypes(model.gpt)};hifigan={module_dtypes(model.hifigan_decoder.waveform_decoder)};"
            f"speaker_encoder={module_dtypes(model.hifigan_decoder.speaker_encoder)}"
        )

    def _warmup(self, settings: SynthesisSettings) -> None:
        import torch

        from engines.xtts import pipeline

        runtime = self._require()
        # A synthetic 1 s voice: warm-up needs compute of the right shapes, not a real speaker.
        t = torch.arange(pipeline.GPT_SAMPLE_RATE) / pipeline.GPT_SAMPLE_RATE
        audio = (0.3 * torch.sin(2 * torch.pi * 180 * t) + 0.01 * torch.randn_like(t))[None, :]
        profile = pipeline.condition(runtime, audio, self._conditioning_settings(settings), NULL_HOOK)
        gen = self._generation_settings(settings)
        warm = replace(gen, max_audio_tokens=4, fixed_length=True, length_model=False)
        pipeline.synthesize(runtime, "warm up.", profile, warm, NULL_HOOK)

    def _apply_torch_switches(self, settings: SynthesisSettings) -> None:
        if self._torch_settings is not None:
            self._torch_settings.apply(settings.device_kind)

    def unload(self) -> None:
        self._runtime = None
        self._caches.clear()
        super().unload()

    def describe_model(self) -> dict[str, str]:
        return dict(self._facts) if self._runtime is not None else {}

    def _require(self) -> XttsRuntime:
        if self._runtime is None:
            raise RuntimeError("XttsEngine.load() must run before synthesis")
        return self._runtime

    # --- settings ----------------------------------------------------------------------
    def _conditioning_settings(self, settings: SynthesisSettings) -> ConditioningSettings:
        knobs = self._knobs(settings)
        return ConditioningSettings(
            gpt_cond_len=knobs.gpt_cond_len,
            gpt_cond_chunk_len=knobs.gpt_cond_chunk_len,
            max_ref_len=knobs.max_ref_len,
            sound_norm_refs=knobs.sound_norm_refs,
        )

    def _generation_settings(self, settings: SynthesisSettings) -> GenerationSettings:
        from engines.xtts.pipeline import GenerationSettings

        knobs = self._knobs(settings)
        tokens = knobs.max_audio_tokens
        length_model = self.random_weights and tokens == 0
        if tokens == 0:
            tokens = RANDOM_DEFAULT_TOKENS if self.random_weights else self._require().max_gen_tokens
        return GenerationSettings.of(
            knobs, max_audio_tokens=tokens, fixed_length=self.random_weights, length_model=length_model
        )

    def _stream_settings(self, settings: SynthesisSettings) -> StreamSettings:
        from engines.xtts.pipeline import StreamSettings

        knobs = self._knobs(settings)
        return StreamSettings(
            chunk_size=knobs.stream_chunk_size,
            overlap=knobs.overlap_wav_len,
            decoder=knobs.stream_decoder,
            context_frames=knobs.stream_context_frames,
        )

    def _cache(self, settings: SynthesisSettings) -> VoiceCache | None:
        knobs = self._knobs(settings)
        mode = knobs.voice_cache
        if mode == "off":
            return None
        disk: Path | None = None
        if mode == "memory+disk":
            configured = knobs.voice_cache_dir
            disk = Path(configured).expanduser() if configured else default_cache_dir()
        if disk not in self._caches:
            self._caches[disk] = VoiceCache(disk)
        return self._caches[disk]

    # --- synthesis ---------------------------------------------------------------------
    def _voice_profile(self, voice: Voice, settings: SynthesisSettings, hook: StageHook) -> VoiceProfile:
        from engines.xtts import pipeline

        runtime = self._require()
        if voice.reference_audio is None:
            return self._named_speaker(voice)
        audio, raw = pipeline.read_reference(Path(voice.reference_audio), hook)
        cond_settings = self._conditioning_settings(settings)
        cache = self._cache(settings)
        if cache is None:
            hook.annotate("voice_cache", "off")
            return pipeline.condition(runtime, audio, cond_settings, hook)
        key = cache_key(raw, cond_settings, runtime.identity)
        profile, source = cache.get(key)
        if profile is not None:
            hook.annotate("voice_cache", "hit")
            hook.annotate("voice_cache_source", source)
            # What this hit saved: the conditioning time paid when the entry was computed.
            hook.annotate("voice_cache_saving_s", profile.conditioning_s)
            return profile
        hook.annotate("voice_cache", "miss")
        start = time.perf_counter()
        computed = pipeline.condition(runtime, audio, cond_settings, hook)
        profile = replace(computed, conditioning_s=time.perf_counter() - start)
        hook.annotate("voice_cache_saving_s", 0.0)
        cache.put(key, profile)
        return profile

    def _named_speaker(self, voice: Voice) -> VoiceProfile:
        runtime = self._require()
        manager = getattr(runtime.model, "speaker_manager", None)
        speakers = manager.speakers if manager is not None else {}
        if voice.speaker is None:
            hint = f" or a speaker ({', '.join(list(speakers)[:5])}...)" if speakers else ""
            raise InputError(f"XTTS clones a voice: give reference audio (3-10 s WAV){hint}")
        if voice.speaker not in speakers:
            raise InputError(
                f"unknown XTTS speaker '{voice.speaker}'"
                + (f" (this checkpoint has {len(speakers)}, e.g. {', '.join(list(speakers)[:5])})" if speakers
                   else ": this model has no speakers_xtts.pth; give reference audio instead")
            )
        entry = speakers[voice.speaker]
        return VoiceProfile(entry["gpt_cond_latent"], entry["speaker_embedding"])

    def _check_text(self, text: str, settings: SynthesisSettings) -> None:
        knobs = self._knobs(settings)
        language = knobs.language
        if not text.strip():
            raise InputError("text is empty: enter something to synthesize")
        import importlib.util

        # coqui splits text at or over the language's char limit with spaCy's sentencizer.
        if knobs.enable_text_splitting and len(text) >= 82:
            if importlib.util.find_spec("spacy") is None:
                raise InputError("enable_text_splitting needs spaCy for text this long (pip install spacy)")
        if language in ("ja", "zh-cn", "ko"):
            needed = {"ja": "cutlet", "zh-cn": "pypinyin", "ko": "hangul_romanize"}[language]
            if importlib.util.find_spec(needed) is None:
                raise InputError(f"language '{language}' needs the '{needed}' package (pip install {needed})")

    def synthesize(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Audio:
        from engines.xtts import pipeline

        self._check_text(text, settings)
        runtime = self._require()
        self._apply_torch_switches(settings)
        hook.annotate("dtype.params", self._facts["dtype.params"])
        profile = self._voice_profile(voice, settings, hook)
        samples = pipeline.synthesize(runtime, text, profile, self._generation_settings(settings), hook)
        return Audio(samples, SAMPLE_RATE)

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        from engines.xtts import pipeline

        self._check_text(text, settings)
        runtime = self._require()
        self._apply_torch_switches(settings)
        hook.annotate("dtype.params", self._facts["dtype.params"])
        profile = self._voice_profile(voice, settings, hook)
        chunks = pipeline.stream(
            runtime, text, profile, self._generation_settings(settings), self._stream_settings(settings), hook
        )
        for index, samples in enumerate(chunks):
            # Chunks follow GPT tokens, not words: the text goes with the first chunk only.
            yield AudioChunk(Audio(samples, SAMPLE_RATE), text if index == 0 else "", index)
