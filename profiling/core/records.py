"""The run record: everything one measured synthesis produced, as typed data."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from engines.base import SynthesisSettings, Voice
from profiling.core.audio_report import JoinCheck, PlaybackReport
from profiling.core.environment import EnvironmentInfo
from profiling.core.timer import SpanTiming, StageTiming

Annotation = str | float | int | bool


class RunMode(str, Enum):
    BATCH = "batch"  # whole text in one call: first audio = all audio
    STREAM = "stream"  # engine.stream(): first audio = first chunk


class RunStatus(str, Enum):
    OK = "ok"
    ERROR = "error"


@dataclass(frozen=True)
class ChunkTiming:
    """One streamed chunk: when it was ready (since the request) and how long it plays."""

    index: int
    text: str
    ready_s: float
    audio_s: float


@dataclass
class RunRecord:
    engine: str
    settings: SynthesisSettings
    mode: RunMode
    text: str
    environment: EnvironmentInfo
    batch_id: str
    repeat_index: int = 0
    warmup: bool = False
    voice: Voice = field(default_factory=Voice)
    status: RunStatus = RunStatus.OK
    error: str = ""
    load_s: float | None = None  # None when an already loaded model was reused
    synth_s: float = 0.0
    audio_s: float = 0.0
    ttfa_s: float = 0.0
    peak_rss_mb: float = 0.0
    sample_rate: int = 0
    random_weights: bool = False
    stages: list[StageTiming] = field(default_factory=list)
    chunks: list[ChunkTiming] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    annotations: dict[str, Annotation] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    #: STREAM mode: the simulated player over the chunk timings, and the checks at each join.
    playback: PlaybackReport | None = None
    joins: list[JoinCheck] = field(default_factory=list)
    #: Lab chunker warnings (chunks that had to end without punctuation).
    chunk_warnings: list[str] = field(default_factory=list)
    label: str = ""
    audio_path: str = ""
    #: How stage edges met the device: sync, events, or wall (nothing to wait for).
    timing_mode: str = "wall"
    #: The stages the engine timed while loading (first run of a batch that loaded; else empty).
    load_stages: list[StageTiming] = field(default_factory=list)
    #: CUDA runs: torch's caching allocator peaks on the run's device, reset at the run's start (MiB).
    gpu_peak_allocated_mb: float | None = None
    gpu_peak_reserved_mb: float | None = None
    #: CUDA runs: NVML's own utilisation samples over the run, and device memory in use at its end.
    gpu_util_mean_pct: float | None = None
    gpu_util_max_pct: float | None = None
    gpu_memory_used_mb: float | None = None
    #: "nvml (N samples)", or why the NVML reading was skipped.
    gpu_sampling: str = ""
    #: torch.compile (dynamo) events during this run; None when torch is not loaded.
    recompiles: int | None = None
    graph_breaks: int | None = None
    #: The post-synthesis stage (voice conversion) the audio went through; None = the engine alone.
    conversion: SynthesisSettings | None = None
    #: Seconds of the run spent converting (inside ``synth_s``, which is the whole pipeline's time).
    convert_s: float | None = None
    #: The converter's model load, on the run that loaded it (a cache miss).
    convert_load_s: float | None = None
    #: Every stage execution on the run's clock (0 = the measured window opened, as chunks' ``ready_s``),
    #: and those of the load on the load's own clock (0 = the load began); empty for runs stored before.
    spans: list[SpanTiming] = field(default_factory=list)
    load_spans: list[SpanTiming] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    )

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration (< 1 is faster than real time)."""
        return self.synth_s / self.audio_s if self.audio_s > 0 else float("nan")

    @property
    def convert_rtf(self) -> float | None:
        """The conversion's share of the real-time factor (None without conversion)."""
        if self.convert_s is None or self.audio_s <= 0:
            return None
        return self.convert_s / self.audio_s

    @property
    def tts_rtf(self) -> float | None:
        """The engine's share of the real-time factor when the run converted (None without conversion)."""
        if self.convert_s is None or self.audio_s <= 0:
            return None
        return (self.synth_s - self.convert_s) / self.audio_s

    @property
    def text_chars(self) -> int:
        return len(self.text)

    def stage(self, name: str) -> StageTiming | None:
        return next((s for s in self.stages if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = self.mode.value
        data["status"] = self.status.value
        data["settings"]["knobs"] = dict(self.settings.knobs)
        if self.conversion is not None:
            data["conversion"]["knobs"] = dict(self.conversion.knobs)
        voice = data["voice"]
        if voice["reference_audio"] is not None:
            voice["reference_audio"] = str(voice["reference_audio"])
        data["rtf"] = self.rtf
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        from pathlib import Path

        data = dict(data)
        data.pop("rtf", None)
        settings = data.pop("settings")
        conversion = data.pop("conversion", None)
        voice = dict(data.pop("voice"))
        if voice.get("reference_audio"):
            voice["reference_audio"] = Path(voice["reference_audio"])
        return cls(
            settings=SynthesisSettings(**settings),
            conversion=SynthesisSettings(**conversion) if conversion else None,
            voice=Voice(**voice),
            mode=RunMode(data.pop("mode")),
            status=RunStatus(data.pop("status")),
            environment=EnvironmentInfo.from_dict(data.pop("environment")),
            stages=[StageTiming(**s) for s in data.pop("stages")],
            load_stages=[StageTiming(**s) for s in data.pop("load_stages", [])],
            spans=[SpanTiming(**s) for s in data.pop("spans", [])],
            load_spans=[SpanTiming(**s) for s in data.pop("load_spans", [])],
            chunks=[ChunkTiming(**c) for c in data.pop("chunks")],
            playback=PlaybackReport.from_dict(p) if (p := data.pop("playback", None)) else None,
            joins=[JoinCheck(**j) for j in data.pop("joins", [])],
            **data,
        )
