"""The RVC stage behind the converter interface: load the pieces (timed), convert audio (timed per stage)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from engines.base import Audio, read_knobs
from engines.convert.base import ConversionSettings, Converter
from engines.convert.rvc import f0 as f0_methods
from engines.convert.rvc.capabilities import RANDOM, RANDOM_FULL, RANDOM_TINY, RVC_CAPABILITIES
from engines.convert.rvc.pipeline import ConversionKnobs, RvcModels, convert_16k, finish, to_16k
from engines.errors import InputError
from engines.hooks import NULL_HOOK, StageHook
from engines.torch_devices import TorchDevices

MIN_OUTPUT_RATE = 16_000
NO_FAISS = "feature retrieval needs faiss, which is not installed: pip install faiss-cpu (the rvc extra has it)"


@dataclass(frozen=True)
class LoadKnobs:
    weights: str
    model_sample_rate: str
    hubert: str
    f0_method: str
    rmvpe_weights: str
    index: str


class RvcConverter(TorchDevices, Converter):
    name: ClassVar[str] = "rvc"
    capabilities = RVC_CAPABILITIES

    def __init__(self) -> None:
        super().__init__()
        self.models: RvcModels | None = None
        self._source = ""
        self._parameters: dict[str, int] = {}
        #: The pieces built with random weights: any one of them makes the converted audio noise.
        self._random_parts: tuple[str, ...] = ()

    @classmethod
    def unavailable_options(cls) -> dict[str, dict[str, str]]:
        options = {"f0_method": f0_methods.unavailable_methods()}
        if importlib.util.find_spec("faiss") is None:
            options["index"] = {"random or a file": NO_FAISS}
        return options

    @classmethod
    def check_request(cls, settings: ConversionSettings) -> None:
        knobs = read_knobs(LoadKnobs, cls.capabilities, settings.knobs)
        missing = f0_methods.unavailable_methods().get(knobs.f0_method)
        if missing:
            raise InputError(missing)
        if knobs.index.strip() and importlib.util.find_spec("faiss") is None:
            raise InputError(f"index={knobs.index}: {NO_FAISS}")
        rate = int(settings.knobs.get("resample_rate", 0))
        if 0 < rate < MIN_OUTPUT_RATE:
            raise InputError(
                f"resample_rate={rate} is below {MIN_OUTPUT_RATE} Hz: use 0 (the model's rate) or 16000-48000"
            )
        # Paths are checked here, before the engine or any model loads: a typo costs nothing.
        for knob, builtin in (("weights", (RANDOM_FULL, RANDOM_TINY)), ("hubert", (RANDOM,)),
                              ("rmvpe_weights", (RANDOM,)), ("index", (RANDOM, ""))):
            value = str(getattr(knobs, knob)).strip()
            if value in builtin:
                continue
            if not value:
                raise InputError(f"{knob} is empty: use {' or '.join(builtin)} or a local path")
            path = Path(value).expanduser()
            if knob == "hubert" and not path.is_dir():
                raise InputError(f"hubert={value}: no such directory (use random or a local HuBERT folder)")
            if knob != "hubert" and not path.is_file():
                raise InputError(f"{knob}={value}: no such file (use {' or '.join(b or 'empty' for b in builtin)} "
                                 "or a local file)")

    @property
    def random_weights(self) -> bool:
        return bool(self._random_parts)

    def load(self, settings: ConversionSettings, hook: StageHook = NULL_HOOK) -> None:
        from engines.convert.rvc import models

        knobs = read_knobs(LoadKnobs, self.capabilities, settings.knobs)
        device, half = settings.device, settings.precision == "fp16"
        tiny = knobs.weights == RANDOM_TINY
        rate = int(knobs.model_sample_rate)
        with hook.stage("import"):  # here, not in the first conversion: resampling and the rms mix use librosa
            # librosa loads lazily: `import librosa.feature` loads next to nothing, and the first `rms` or `resample`
            # would pull in numba and scipy.signal (10-20 s here) inside the first conversion's stages.
            import rvc_next.engine.audio.dsp  # noqa: F401
            import rvc_next.engine.features.hubert  # noqa: F401
            import rvc_next.engine.models.synthesizer  # noqa: F401
            from librosa import resample  # noqa: F401
            from librosa.feature import rms  # noqa: F401
        with hook.stage("synthesizer_load"):
            if knobs.weights in (RANDOM_FULL, RANDOM_TINY):
                voice = models.random_voice(knobs.weights, rate, device, half, settings.seed)
            else:
                voice = models.load_voice_file(knobs.weights, rate, device, half)
        with hook.stage("hubert_load"):
            hubert = models.build_hubert(knobs.hubert, tiny, device, half)
        with hook.stage("f0_load"):
            provider = self._f0_provider(knobs, settings, tiny, half)
        index = None
        if knobs.index.strip():
            with hook.stage("index_load"):
                index = models.build_index(knobs.index.strip(), tiny, settings.seed)
        self.models = RvcModels(voice.net_g, hubert, provider, index, voice.sample_rate, device, half)
        self._source = voice.source
        self._parameters = {"synthesizer": voice.parameters, "hubert": models.count_parameters(hubert)}
        self._random_parts = tuple(part for part, random in (
            ("synthesizer", knobs.weights in (RANDOM_FULL, RANDOM_TINY)), ("hubert", knobs.hubert == RANDOM),
            ("rmvpe", knobs.f0_method == "rmvpe" and knobs.rmvpe_weights == RANDOM),
            ("index", knobs.index.strip() == RANDOM)) if random)
        self.settings = settings

    @staticmethod
    def _f0_provider(knobs: LoadKnobs, settings: ConversionSettings, tiny: bool, half: bool) -> f0_methods.F0Provider:
        from engines.convert.rvc import models

        filter_radius = int(settings.knobs.get("filter_radius", 3))
        if knobs.f0_method == "pm":
            return f0_methods.PmProvider()
        if knobs.f0_method == "harvest":
            return f0_methods.HarvestProvider(filter_radius)
        if knobs.f0_method == "crepe":
            return f0_methods.CrepeProvider(settings.device)
        return f0_methods.RmvpeProvider(models.build_rmvpe(knobs.rmvpe_weights, tiny, settings.device, half))

    def convert(self, audio: Audio, settings: ConversionSettings, hook: StageHook = NULL_HOOK) -> Audio:
        if self.models is None:
            raise RuntimeError("RvcConverter.convert before load")
        knobs = read_knobs(ConversionKnobs, self.capabilities, settings.knobs)
        if isinstance(self.models.f0, f0_methods.HarvestProvider):
            self.models.f0.filter_radius = knobs.filter_radius  # a per-call knob of a loaded provider
        with hook.stage("resample_in"):
            source = to_16k(audio.samples, audio.sample_rate)
        converted = convert_16k(source, self.models, knobs, hook)
        samples, rate = finish(source, converted, self.models, knobs, hook)
        return Audio(np.ascontiguousarray(samples, dtype=np.float32), rate)

    def output_sample_rate(self, settings: ConversionSettings) -> int:
        if self.models is None:
            raise RuntimeError("RvcConverter.output_sample_rate before load")
        return int(settings.knobs.get("resample_rate", 0)) or self.models.sample_rate

    def unload(self) -> None:
        self.models = None
        super().unload()

    def describe_model(self) -> dict[str, str]:
        if self.models is None:
            return {}
        knobs = read_knobs(LoadKnobs, self.capabilities, self.settings.knobs if self.settings else {})
        return {
            "rvc_weights": self._source,
            "rvc_sample_rate": str(self.models.sample_rate),
            "rvc_synthesizer_params": f"{self._parameters['synthesizer'] / 1e6:.1f}M",
            "rvc_hubert_params": f"{self._parameters['hubert'] / 1e6:.1f}M",
            "rvc_f0_method": knobs.f0_method,
            "rvc_index": knobs.index or "off",
            "rvc_random_parts": ", ".join(self._random_parts) or "none",
        }
