"""F5-TTS benchmark: NFE x precision on the full-size architecture (F5TTS_v1_Base, random weights).

Random weights, so the audio is noise, but the compute is the released v1 Base
architecture's (~337 M DiT + 13.5 M Vocos parameters) with F5's real pipeline.
Every run goes through profiling.run.runner.run_bench, like the CLI and dashboard.

    python benchmarks/f5_bench.py --device cpu --nfe 2 4                  # -> docs/benchmarks/f5-cpu.md
    python benchmarks/f5_bench.py --device cuda --nfe 8 16 32 --repeats 5  # -> docs/benchmarks/f5-cuda.md

Fidelity: with the seed fixed, each precision's audio is compared with the fp32
audio of the same NFE (log-mel distance, 0 = identical), so a faster precision
that changes the output shows it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.base import Audio, SynthesisSettings, Voice  # noqa: E402
from engines.errors import InputError  # noqa: E402
from profiling.audio.playback import PlaybackSettings, simulate_playback  # noqa: E402
from profiling.audio.quality import log_mel_distance  # noqa: E402
from profiling.core.environment import capture_environment  # noqa: E402
from profiling.core.records import RunMode, RunRecord, RunStatus  # noqa: E402
from profiling.core.stats import measured  # noqa: E402
from profiling.run.runner import BenchRequest, EnginePool, run_bench  # noqa: E402
from profiling.store.results import ResultsStore  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog."
STREAM_TEXT = (
    "Streaming starts with a short phrase, then the rest follows. Each later chunk is generated while the "
    "first one plays, so the listener should never wait once the audio has started."
)
#: (label, knobs): F5's pseudo-streaming against chunk-wise generation with the lab chunker.
STREAM_MODES: tuple[tuple[str, dict[str, object]], ...] = (
    ("pseudo (F5 streaming: F5 chunks, generated whole, sliced)", {"stream_mode": "pseudo", "chunker": "f5"}),
    ("chunked (lab chunker, short first chunk)", {"stream_mode": "chunked", "chunker": "lab"}),
)
STAGES: tuple[tuple[str, str], ...] = (
    ("reference_audio_load", "ref load"),
    ("reference_mel", "ref mel"),
    ("text_preparation", "text prep"),
    ("duration_estimate", "duration"),
    ("ode_solve", "ODE solve"),
    ("vocoder_decode", "Vocos"),
    ("crossfade", "cross-fade"),
)
PUBLISHED = (
    "Published reference (trained F5-TTS, PyTorch, fp16/fp32 on GPU): RTF 0.15 at NFE 16 on an RTX 3090 "
    "(F5-TTS paper), 0.147 on an L20 (F5-TTS README). Those are GPU numbers; compare them with "
    "`--device cuda` tables, not with CPU ones."
)


@dataclass(frozen=True)
class Mode:
    precision: str
    dit_mode: str
    vocoder: str

    @property
    def label(self) -> str:
        return f"{self.precision} {self.dit_mode} / Vocos {self.vocoder}"

    @staticmethod
    def parse(text: str) -> Mode:
        """``bf16`` or ``bf16:cast`` or ``bf16:cast:bf16`` (precision:dit_mode:vocoder_precision)."""
        parts = text.split(":")
        precision = parts[0]
        dit_mode = parts[1] if len(parts) > 1 else "autocast"
        vocoder = parts[2] if len(parts) > 2 else "fp32"
        return Mode(precision, dit_mode, vocoder)


@dataclass
class Row:
    mode: Mode
    nfe: int
    records: list[RunRecord]
    load_s: float | None
    audio: Audio | None
    error: str = ""
    fidelity: float | None = None
    stage_medians: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> list[RunRecord]:
        return [r for r in measured(self.records) if r.status is RunStatus.OK]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_row(pool: EnginePool, store: ResultsStore, mode: Mode, nfe: int, args: argparse.Namespace) -> Row:
    settings = SynthesisSettings(
        engine="f5", device=args.device, precision=mode.precision, seed=args.seed,
        knobs={
            "weights": args.weights, "architecture": args.architecture, "nfe_step": nfe,
            "precision_mode": mode.dit_mode, "vocoder_precision": mode.vocoder,
            "compile": args.compile, "chunker": "f5", "torch_threads": args.threads,
        },
    )
    request = BenchRequest(settings=settings, text=args.text, voice=Voice(), repeats=args.repeats,
                           warmup=args.warmup, label=f"f5_bench {mode.label} nfe {nfe}")
    try:
        result = run_bench(request, pool, store)
    except InputError as error:  # refused up front: recorded as such in the table
        return Row(mode, nfe, [], None, None, error=str(error))
    row = Row(mode, nfe, result.records, result.load_s, result.audio)
    failed = [r for r in result.records if r.status is RunStatus.ERROR]
    if failed:
        row.error = failed[0].error
    for stage, _ in STAGES:
        values = [s.inclusive_s for r in row.ok for s in r.stages if s.name == stage]
        row.stage_medians[stage] = _median(values)
    return row


def stream_rows(pool: EnginePool, store: ResultsStore, mode: Mode, args: argparse.Namespace) -> list[str]:
    """TTFA, gaps and player stalls of F5's pseudo-streaming against chunk-wise generation."""
    lines = ["| stream mode | NFE | chunks yielded | TTFA s | ITL p50 s | max gap s | stall s (player, no pre-buffer) "
             "| synth s | audio s |", "|---|---|---|---|---|---|---|---|---|"]
    for nfe in args.nfe:
        for label, knobs in STREAM_MODES:
            settings = SynthesisSettings(
                engine="f5", device=args.device, precision=mode.precision, seed=args.seed,
                knobs={"weights": args.weights, "architecture": args.architecture, "nfe_step": nfe,
                       "precision_mode": mode.dit_mode, "vocoder_precision": mode.vocoder,
                       "torch_threads": args.threads, **knobs},
            )
            request = BenchRequest(settings=settings, text=args.stream_text, mode=RunMode.STREAM, repeats=1,
                                   warmup=0, label=f"f5_bench stream {knobs['stream_mode']} nfe {nfe}")
            record = run_bench(request, pool, store).records[-1]
            if record.status is not RunStatus.OK:
                lines.append(f"| {label} | {nfe} | failed: {record.error} |" + " |" * 6)
                continue
            ready = [c.ready_s for c in record.chunks]
            gaps = [b - a for a, b in zip(ready, ready[1:], strict=False)]
            report = simulate_playback(ready, [c.audio_s for c in record.chunks], PlaybackSettings())
            lines.append(
                f"| {label} | {nfe} | {len(ready)} | {record.ttfa_s:.2f} | {report.itl_p50_s:.2f} | "
                f"{max(gaps, default=0.0):.2f} | {report.total_stall_s:.2f} | {record.synth_s:.2f} | "
                f"{record.audio_s:.2f} |"
            )
            print(lines[-1], flush=True)
    return lines


def format_table(rows: list[Row]) -> str:
    header = ["precision (DiT mode / Vocos)", "NFE", "audio s", "synth s", "RTF", "per NFE step s",
              *[label for _, label in STAGES], "fidelity", "load s", "dtypes seen"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row.error or not row.ok:
            lines.append(f"| {row.mode.label} | {row.nfe} | refused/failed: {row.error} |" + " |" * (len(header) - 3))
            continue
        ok = row.ok
        steps = [v for r in ok for v in r.series.get("nfe_step_s", [])]
        dtypes = ok[-1].annotations
        seen = f"DiT {dtypes.get('dtype.dit_params')}, out {dtypes.get('dtype.ode_solve')}, " \
               f"Vocos {dtypes.get('dtype.vocoder_params')}"
        cells = [
            row.mode.label, str(row.nfe), f"{_median([r.audio_s for r in ok]):.2f}",
            f"{_median([r.synth_s for r in ok]):.2f}", f"{_median([r.rtf for r in ok]):.2f}",
            f"{_median(steps):.2f}",
            *[f"{row.stage_medians[stage]:.3f}" for stage, _ in STAGES],
            "ref" if row.fidelity == 0.0 and row.mode.precision == "fp32" else
            ("n/a" if row.fidelity is None else f"{row.fidelity:.4f}"),
            "reused" if row.load_s is None else f"{row.load_s:.1f}",
            seen.replace("torch.", ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stream_section(lines: list[str], args: argparse.Namespace) -> str:
    if not lines:
        return ""
    return f"""
## Streaming: F5's pseudo-streaming against chunk-wise generation ({args.modes[0]})

Text ({len(args.stream_text)} chars): "{args.stream_text}". Ready times are from the start of the call;
the player is the lab's playback simulator with no pre-buffer (a stall is time the listener waits after
the audio started).

""" + "\n".join(lines) + "\n"


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def write_report(
    path: Path, rows: list[Row], args: argparse.Namespace, started: str, load_before: str, stream: list[str]
) -> None:
    env = capture_environment()
    device = env.gpu_name if args.device.startswith("cuda") and env.gpu_name else \
        f"{env.cpu_model}, {env.logical_cores} logical cores"
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("torch", "f5-tts", "vocos", "torchdiffeq")
    )
    first = next((r.ok[-1] for r in rows if r.ok), None)
    threads = first.annotations.get("torch_threads", "n/a") if first else "n/a"
    params = (f"DiT {int(first.model['dit_parameters']) / 1e6:.1f} M, Vocos "
              f"{int(first.model['vocoder_parameters']) / 1e6:.1f} M parameters") if first else "n/a"
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]).relative_to(ROOT))
                                                              if Path(sys.argv[0]).is_absolute() else sys.argv[0],
                                                              *sys.argv[1:]])
    architecture = "tiny" if args.weights == "random-tiny" else args.architecture
    text = f"""# F5-TTS on {args.device}: NFE x precision ({architecture}, {args.weights})

- Date (UTC): {started}
- Device: {device} ({args.device}); Python {env.python}; {env.platform}
- Versions: {versions}; git {env.git_commit or 'n/a'}
- Model: {architecture} architecture (F5TTS_* from the YAML f5-tts ships), {args.weights} weights ({params});
  the audio is noise but the compute is the real model's. F5's own pipeline: default reference voice
  (basic_ref_en.wav, 5.3 s), cfg 2.0, sway -1, euler, seed {args.seed}, torch.compile {args.compile},
  torch threads {threads}.
- Text ({len(args.text)} chars): "{args.text}"
- Runs: {args.warmup} warm-up + {args.repeats} measured per row; medians over measured runs.
- Command: `{command}`
- Machine load (1/5/15 min load average): {load_before} before, {load_average()} after.{args.note}

Columns: stage columns are median seconds per run (inclusive); "per NFE step" is the median time of
one DiT evaluation (CFG packs conditional and unconditional into one batch of 2); RTF = synthesis time /
audio time; fidelity = log-mel distance from the fp32 audio at the same NFE and seed (0 = identical).

{format_table(rows)}

{PUBLISHED}
{stream_section(stream, args)}"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--nfe", type=int, nargs="+", default=[8, 16, 32], help="NFE steps to measure")
    parser.add_argument("--modes", nargs="+", default=["fp32", "bf16", "bf16:cast:bf16", "fp16"],
                        help="precision[:dit_mode[:vocoder_precision]]; fp32 first gives the fidelity reference")
    parser.add_argument("--weights", default="random-full", choices=["random-full", "random-tiny"])
    parser.add_argument("--architecture", default="F5TTS_v1_Base")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the DiT")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    parser.add_argument("--stream", action="store_true",
                        help="also compare F5's pseudo-streaming with chunk-wise streaming (first mode)")
    parser.add_argument("--stream-text", default=STREAM_TEXT)
    parser.add_argument("--note", default="", help="free text appended to the header (e.g. machine load)")
    parser.add_argument("--out", type=Path, default=None, help="default docs/benchmarks/f5-<device kind>.md")
    parser.add_argument("--data-dir", type=Path, default=None, help="results store (default: a temp dir)")
    args = parser.parse_args(argv)
    args.note = f"\n- Note: {args.note}" if args.note else ""
    if args.out is None:
        args.out = ROOT / "docs" / "benchmarks" / f"f5-{args.device.split(':')[0]}.md"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_before = load_average()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="f5-bench-"))
    store = ResultsStore(data_dir)
    pool = EnginePool()
    rows: list[Row] = []
    reference: dict[int, Audio] = {}
    for mode in (Mode.parse(m) for m in args.modes):
        for nfe in args.nfe:
            row = run_row(pool, store, mode, nfe, args)
            if row.audio is not None and not row.error:
                if mode.precision == "fp32" and mode.vocoder == "fp32" and nfe not in reference:
                    reference[nfe] = row.audio
                if nfe in reference:
                    row.fidelity = log_mel_distance(row.audio, reference[nfe])
            rows.append(row)
            print(f"{mode.label} nfe {nfe}: " + (row.error or
                  f"rtf {_median([r.rtf for r in row.ok]):.2f}, fidelity {row.fidelity}"), flush=True)
        pool.clear()  # one full-size model in memory at a time
    stream = stream_rows(pool, store, Mode.parse(args.modes[0]), args) if args.stream else []
    pool.clear()
    write_report(args.out, rows, args, started, load_before, stream)
    print(f"wrote {args.out} (runs stored in {store.db_path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
