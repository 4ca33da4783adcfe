"""XTTS v2 benchmark: the full-size architecture with random weights, per precision mode.

Random weights, so the audio is noise, but the compute is the released v2
architecture's (~467 M parameters). Generation is fixed at ``--tokens`` audio
tokens (stop token suppressed) so every precision does the same work.

    python benchmarks/xtts_bench.py --device cpu               # -> docs/benchmarks/xtts-cpu.md
    python benchmarks/xtts_bench.py --device cuda              # -> docs/benchmarks/xtts-cuda.md
    python benchmarks/xtts_bench.py --decoder-sweep --device cpu  # streaming HiFi-GAN cost vs length

Every run goes through profiling.run.runner.run_bench, like the CLI and dashboard.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.base import SynthesisSettings, Voice  # noqa: E402
from engines.errors import InputError  # noqa: E402
from profiling.core.environment import capture_environment  # noqa: E402
from profiling.core.records import RunMode, RunRecord, RunStatus  # noqa: E402
from profiling.core.stats import measured  # noqa: E402
from profiling.run.runner import BenchRequest, EnginePool, run_bench  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog."
#: (precision, precision_mode): every way the engine offers to run.
ALL_MODES: tuple[tuple[str, str], ...] = (
    ("fp32", "autocast"),
    ("bf16", "autocast"),
    ("bf16", "cast"),
    ("fp16", "autocast"),
    ("fp16", "cast"),
    ("int8", "autocast"),
)
STAGES: tuple[tuple[str, str], ...] = (
    ("reference_audio_load", "ref load"),
    ("speaker_conditioning", "conditioning"),
    ("text_normalization", "text norm"),
    ("tokenization", "tokenize"),
    ("gpt_prefill", "GPT prefill"),
    ("gpt_decode", "GPT decode"),
    ("gpt_latent_pass", "latent pass"),
    ("hifigan_decode", "HiFi-GAN"),
    ("post_processing", "post"),
)


@dataclass
class ModeResult:
    precision: str
    mode: str
    load_s: float | None
    batch: list[RunRecord]
    stream: list[RunRecord]
    error: str = ""


def median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def stage_median(records: list[RunRecord], name: str) -> float:
    return median([s.inclusive_s for r in records for s in r.stages if s.name == name])


def make_reference(directory: Path) -> Path:
    """Real speech from the bundled Piper voice (deterministic): XTTS needs a voice to clone."""
    import soundfile

    from engines.piper_engine import PiperEngine

    engine = PiperEngine()
    settings = SynthesisSettings("piper", knobs={"deterministic": True})
    engine.load(settings)
    audio = engine.synthesize(
        "This reference voice was made by Piper for the XTTS benchmark. It speaks for a few seconds.",
        Voice(), settings,
    )
    path = directory / "reference.wav"
    soundfile.write(path, audio.samples, audio.sample_rate)
    return path


def settings_for(args: argparse.Namespace, precision: str, mode: str, **extra: object) -> SynthesisSettings:
    knobs: dict[str, object] = {
        "weights": args.weights,
        "precision_mode": mode,
        "max_audio_tokens": args.tokens,
        "voice_cache": "off",  # every run pays conditioning: the cold-voice cost is in the table
        "warmup": 1,
        **extra,
    }
    if args.threads:
        knobs["torch_threads"] = args.threads
    return SynthesisSettings("xtts", device=args.device, precision=precision, knobs=knobs, seed=0)


def run_mode(args: argparse.Namespace, reference: Path, precision: str, mode: str) -> ModeResult:
    pool = EnginePool()
    voice = Voice(reference_audio=reference)
    try:
        batch = run_bench(
            BenchRequest(settings_for(args, precision, mode), TEXT, voice, RunMode.BATCH, args.repeats, args.warmup),
            pool, None,
        )
        stream = run_bench(
            BenchRequest(
                settings_for(args, precision, mode), TEXT, voice, RunMode.STREAM, args.stream_repeats, 0,
            ),
            pool, None,
        )
    except InputError as error:
        return ModeResult(precision, mode, None, [], [], error=str(error))
    finally:
        pool.clear()
    failed = [r for r in batch.records + stream.records if r.status is RunStatus.ERROR]
    return ModeResult(
        precision, mode, batch.load_s, measured(batch.records), measured(stream.records),
        error=failed[0].error if failed else "",
    )


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"  # NaN -> "-"


def render(args: argparse.Namespace, results: list[ModeResult], started: str, wall_s: float) -> str:
    env = capture_environment()
    device = env.gpu_name if args.device.startswith("cuda") and env.gpu_name else env.cpu_model
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("torch", "coqui-tts", "transformers") if _installed(name)
    )
    lines = [
        f"# XTTS v2 benchmark on {args.device} ({args.weights}, {args.tokens} audio tokens)",
        "",
        f"- Date: {started} (wall time {wall_s / 60:.1f} min)",
        f"- Device: {device}; {env.logical_cores} logical cores, {env.memory_gib:.0f} GiB RAM",
        f"- Versions: Python {platform.python_version()}, {versions}",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- Text: \"{TEXT}\" ({len(TEXT)} chars), reference: Piper joe voice, deterministic",
        f"- Runs: {args.warmup} warm-up + {args.repeats} measured batch runs, {args.stream_repeats} stream run(s) "
        "(stream_chunk_size 20, coqui decoder) per mode; voice cache off, so every run pays conditioning",
        "- Weights are RANDOM (released v2 shapes): audio is noise, generation length fixed by suppressing the "
        "stop token. Times are medians in seconds.",
    ]
    if args.note:
        lines.append(f"- Note: {args.note}")
    lines += ["", "## Stage medians per precision", ""]
    header = ["precision", "mode", "dtypes seen (params / GPT matmul / HiFi-GAN out)", "load",
              *[label for _, label in STAGES], "s/token", "tokens/s", "synth", "audio", "RTF",
              "TTFA batch", "TTFA stream", "peak RSS MB"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for result in results:
        if result.error or not result.batch:
            lines.append(f"| {result.precision} | {result.mode} | refused/failed: {result.error} |"
                         + " |" * (len(header) - 3))
            continue
        batch = result.batch
        first = batch[0]
        dtypes = " / ".join(str(first.annotations.get(k, "?")) for k in
                            ("dtype.params", "dtype.gpt_decode", "dtype.hifigan_decode"))
        token_s = median([v for r in batch for v in r.series.get("gpt_token_s", [])])
        tps = median([float(r.annotations.get("gpt_tokens_per_s", float("nan"))) for r in batch])
        row = [
            result.precision, result.mode if result.precision in ("fp16", "bf16") else "-", dtypes,
            fmt(result.load_s or float("nan"), 1),
            *[fmt(stage_median(batch, name), 3) for name, _ in STAGES],
            fmt(token_s, 3), fmt(tps, 2),
            fmt(median([r.synth_s for r in batch])), fmt(median([r.audio_s for r in batch])),
            fmt(median([r.rtf for r in batch])), fmt(median([r.ttfa_s for r in batch])),
            fmt(median([r.ttfa_s for r in result.stream])),
            fmt(median([r.peak_rss_mb for r in batch]), 0),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Where the time goes (share of median synth time, batch mode)", ""]
    for result in results:
        if result.error or not result.batch:
            continue
        total = median([r.synth_s for r in result.batch])
        shares = sorted(((stage_median(result.batch, n) / total, label) for n, label in STAGES), reverse=True)
        top = ", ".join(f"{label} {share:.0%}" for share, label in shares[:4] if share == share)
        lines.append(f"- {result.precision} {result.mode}: {top}")
    lines.append("")
    return "\n".join(lines)


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def decoder_sweep(args: argparse.Namespace) -> str:
    """Streaming HiFi-GAN cost against length: coqui's full re-decode vs the windowed decoder.

    Uses the full-size HiFi-GAN (released shapes) on random GPT latents: no GPT run needed, and
    the decoder function is identical in both paths, so the join differences are meaningful.
    """
    import numpy as np
    import torch

    from engines.xtts import build
    from engines.xtts.windowed_decode import CoquiStreamDecoder, WindowedStreamDecoder

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = build.FULL if args.weights == "random-full" else build.TINY
    model, _ = build.build_random(arch, seed=0, work_dir=Path(tempfile.mkdtemp()))
    model.to(args.device)
    dim = arch.gpt_n_model_channels
    speaker = torch.nn.functional.normalize(torch.randn(1, 512, 1, device=args.device), dim=1)
    with torch.inference_mode():  # first-call set-up (oneDNN primitives, allocator) kept out of the rows
        model.hifigan_decoder(torch.randn(1, args.chunk, dim, device=args.device), g=speaker)
    rows = []
    for length in args.sweep_lengths:
        latents = torch.randn(1, length, dim, device=args.device)
        with torch.inference_mode():
            start = time.perf_counter()
            full = model.hifigan_decoder(latents, g=speaker).reshape(-1).cpu().numpy()
            full_s = time.perf_counter() - start
            outputs = {}
            for name in ("coqui", "windowed"):
                decoder = (
                    CoquiStreamDecoder(model, speaker, args.overlap) if name == "coqui"
                    else WindowedStreamDecoder(model.hifigan_decoder, speaker, args.overlap, args.context_frames)
                )
                chunks, cost = [], 0.0
                for end in range(args.chunk, length + args.chunk, args.chunk):
                    end = min(end, length)
                    start = time.perf_counter()
                    chunks.append(decoder.push(latents[:, :end], is_final=end == length).cpu())
                    cost += time.perf_counter() - start
                    if end == length:
                        break
                joins = np.cumsum([len(c) for c in chunks])[:-1]
                outputs[name] = (torch.cat(chunks).numpy(), cost, joins, decoder.frames_decoded)
        coqui_wav, coqui_s, joins, coqui_frames = outputs["coqui"]
        windowed_wav, windowed_s, _, windowed_frames = outputs["windowed"]
        full_frames = len(full) // 256
        n = min(len(coqui_wav), len(windowed_wav), len(full))
        half = 2 * args.overlap or 512
        near = np.zeros(n, dtype=bool)
        for j in joins:
            near[max(0, j - half): min(n, j + half)] = True
        reference = full[:n]
        rows.append({
            "tokens": length, "audio_s": len(full) / 24000, "full_s": full_s, "coqui_s": coqui_s,
            "windowed_s": windowed_s, "full_frames": full_frames, "coqui_frames": coqui_frames,
            "windowed_frames": windowed_frames,
            "coqui_join": relative_rms(coqui_wav[:n], reference, near),
            "windowed_join": relative_rms(windowed_wav[:n], reference, near),
            "coqui_rest": relative_rms(coqui_wav[:n], reference, ~near),
            "windowed_rest": relative_rms(windowed_wav[:n], reference, ~near),
            "len_equal": len(coqui_wav) == len(windowed_wav) == len(full),
        })
        print(rows[-1], file=sys.stderr, flush=True)
    return render_sweep(args, rows)


def relative_rms(signal: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """RMS of (signal - reference) over ``mask``, relative to the reference's overall RMS."""
    import numpy as np

    if not mask.any():
        return 0.0
    scale = float(np.sqrt(np.mean(reference**2))) or 1.0
    return float(np.sqrt(np.mean((signal[mask] - reference[mask]) ** 2))) / scale


def render_sweep(args: argparse.Namespace, rows: list[dict[str, float]]) -> str:
    env = capture_environment()
    plot = args.out.with_suffix(".png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax, work) = plt.subplots(1, 2, figsize=(11, 4))
        tokens = [r["tokens"] for r in rows]
        for axis, key, ylabel in ((ax, "s", "total HiFi-GAN seconds"), (work, "frames", "HiFi-GAN input frames run")):
            axis.plot(tokens, [r[f"coqui_{key}"] for r in rows], "o-", label="coqui (re-decode all)")
            axis.plot(tokens, [r[f"windowed_{key}"] for r in rows], "s-", label="windowed")
            axis.plot(tokens, [r[f"full_{key}"] for r in rows], "^--", label="one full decode")
            axis.set_xlabel("GPT audio tokens streamed (~46 ms audio each)")
            axis.set_ylabel(ylabel)
            axis.legend()
            axis.grid(alpha=0.3)
        fig.suptitle(f"XTTS streaming decoder cost, chunk {args.chunk} tokens, {args.device}")
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
        plot_line = f"![decoder cost against length]({plot.name})"
    except ImportError:
        plot_line = "(matplotlib missing: no plot)"
    lines = [
        f"# XTTS streaming HiFi-GAN: coqui re-decode vs windowed ({args.device})",
        "",
        f"- Date: {datetime.now(timezone.utc).isoformat(timespec='minutes')}",
        f"- Device: {env.cpu_model if args.device == 'cpu' else env.gpu_name}; {env.logical_cores} logical cores",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- HiFi-GAN: {args.weights} shapes, random weights and random GPT latents; chunk {args.chunk} tokens, "
        f"overlap_wav_len {args.overlap}, windowed context {args.context_frames} frames",
        "- Join difference: RMS of (streamed - one full decode) within 2x overlap of each join, relative to the "
        "full decode's RMS; 'rest' is the same away from joins.",
    ]
    if args.note:
        lines.append(f"- Note: {args.note}")
    lines += ["", plot_line, "",
              "| tokens | audio s | one full decode s | coqui total s | windowed total s | coqui/windowed time | "
              "frames: full / coqui / windowed | coqui join diff | windowed join diff | coqui rest diff | "
              "windowed rest diff |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['tokens']} | {r['audio_s']:.2f} | {r['full_s']:.2f} | {r['coqui_s']:.2f} | {r['windowed_s']:.2f} | "
            f"{r['coqui_s'] / r['windowed_s']:.1f}x | {r['full_frames']} / {r['coqui_frames']} / "
            f"{r['windowed_frames']} | {r['coqui_join']:.4f} | {r['windowed_join']:.4f} | "
            f"{r['coqui_rest']:.2e} | {r['windowed_rest']:.2e} |"
        )
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--weights", default="random-full", choices=("random-full", "random-tiny"))
    parser.add_argument("--tokens", type=int, default=24, help="audio tokens generated per run (fixed)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per mode (not in the medians)")
    parser.add_argument("--stream-repeats", type=int, default=1, help="stream-mode runs per mode, for TTFA")
    parser.add_argument(
        "--modes", default=",".join(f"{p}:{m}" for p, m in ALL_MODES),
        help="comma list of precision:mode (default: all six)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--note", default="", help="free text added to the write-up (e.g. machine load)")
    parser.add_argument("--out", type=Path, default=None, help="markdown output (default docs/benchmarks/...)")
    parser.add_argument("--decoder-sweep", action="store_true", help="streaming decoder cost vs length instead")
    parser.add_argument("--sweep-lengths", type=int, nargs="+", default=[20, 40, 80, 160])
    parser.add_argument("--chunk", type=int, default=20, help="sweep: stream_chunk_size")
    parser.add_argument("--overlap", type=int, default=1024, help="sweep: overlap_wav_len")
    parser.add_argument("--context-frames", type=int, default=32, help="sweep: windowed left context")
    args = parser.parse_args(argv)
    kind = args.device.split(":")[0]
    if args.out is None:
        stem = f"xtts-stream-decoder-{kind}" if args.decoder_sweep else f"xtts-{kind}"
        args.out = ROOT / "docs" / "benchmarks" / f"{stem}.md"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.decoder_sweep:
        args.out.write_text(decoder_sweep(args), encoding="utf-8")
        print(f"wrote {args.out}")
        return 0
    started = datetime.now(timezone.utc).isoformat(timespec="minutes")
    begin = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = make_reference(Path(tmp))
        for item in args.modes.split(","):
            precision, _, mode = item.strip().partition(":")
            print(f"[xtts_bench] {precision} {mode or 'autocast'} ...", file=sys.stderr, flush=True)
            result = run_mode(args, reference, precision, mode or "autocast")
            results.append(result)
            # Written after every mode, so an interrupted run still leaves a table.
            args.out.write_text(render(args, results, started, time.perf_counter() - begin), encoding="utf-8")
            summary = result.error or f"synth median {median([r.synth_s for r in result.batch]):.1f} s"
            print(f"[xtts_bench] {precision} {mode}: {summary}", file=sys.stderr, flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
