"""XTTS on random weights: RTF and TTFA against text length, with a fixed token count and with the length model.

Before issue 14 random-weight XTTS generated a fixed 32 audio tokens whatever the text
(``max_audio_tokens=32`` reproduces that); with the length model it generates what the
text needs (engines/xtts/length_model.py). One model load, stream mode (the windowed
HiFi-GAN decoder, so the decoder cost stays linear), one measured run per point.

    python benchmarks/xtts_length_bench.py --weights random-full --note "$(uptime)"
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xtts_bench import make_reference  # noqa: E402  (this directory is on sys.path)

from engines.base import SynthesisSettings, Voice  # noqa: E402
from engines.xtts.length_model import estimate_audio_tokens  # noqa: E402
from profiling.core.records import RunMode, RunRecord  # noqa: E402
from profiling.run.runner import BenchRequest, EnginePool, run_bench  # noqa: E402

TEXTS: tuple[str, ...] = (
    "Turn left at the next corner.",
    "The weather service expects light rain this afternoon, so take an umbrella if you walk home.",
    "Measuring speech synthesis tells us where the time goes. A careful benchmark repeats each run and "
    "reports the spread, not just the best number, and it says which machine it ran on.",
)
RULES: tuple[tuple[str, int], ...] = (("fixed 32 tokens (before)", 32), ("length model (after)", 0))


def cpu_name() -> str:
    from profiling.roofline.ceilings import device_name

    return device_name("cpu") or platform.machine()


def settings_for(args: argparse.Namespace, tokens: int) -> SynthesisSettings:
    knobs: dict[str, object] = {
        "weights": args.weights, "max_audio_tokens": tokens, "voice_cache": "memory", "warmup": 1,
        "stream_decoder": "windowed", "stream_chunk_size": 20, "torch_threads": args.threads,
    }
    return SynthesisSettings("xtts", device="cpu", knobs=knobs, seed=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="random-full", choices=("random-full", "random-tiny"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--note", default="")
    parser.add_argument("--only", type=int, nargs="*", default=None,
                        help="run only these points (0-based, in table order), e.g. to finish a cut-short run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "xtts-length-model-cpu.md")
    args = parser.parse_args()
    reference = make_reference(Path(tempfile.mkdtemp(prefix="ttsperf-len-")))
    voice = Voice(reference_audio=reference)
    pool = EnginePool()
    rows: list[tuple[str, str, RunRecord]] = []
    # Warm-up, unmeasured: loads the model, caches the voice's conditioning, warms the allocator.
    load_s = run_bench(BenchRequest(settings_for(args, 4), TEXTS[0], voice, RunMode.STREAM, 1, 0), pool, None).load_s
    points = [(text, rule, tokens) for text in TEXTS for rule, tokens in RULES]
    for index, (text, rule, tokens) in enumerate(points):
        if args.only is not None and index not in args.only:
            continue
        batch = run_bench(BenchRequest(settings_for(args, tokens), text, voice, RunMode.STREAM, 1, 0), pool, None)
        record = batch.records[-1]
        rows.append((text, rule, record))
        print(f"{len(text):4d} chars {rule:26s} tokens {record.annotations.get('gpt_tokens')} "
              f"audio {record.audio_s:.2f} s synth {record.synth_s:.2f} s RTF {record.rtf:.2f} "
              f"TTFA {record.ttfa_s:.2f} s {record.error}", flush=True)
        write_report(args, rows, load_s)  # after every row: a run cut short keeps what it measured
    pool.clear()
    print(f"wrote {args.out}")
    return 0


def write_report(args: argparse.Namespace, rows: list[tuple[str, str, RunRecord]], load_s: float | None) -> None:
    lines = [
        "# XTTS on random weights: RTF and TTFA against text length, before and after the length model",
        "",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Device: CPU ({cpu_name()}, "
        f"{args.threads} torch threads). Weights: {args.weights} (random: audio is noise, compute is the "
        f"architecture's). torch {metadata.version('torch')}, coqui-tts {metadata.version('coqui-tts')}. "
        f"Model load {load_s or 0:.1f} s (not in the figures).",
        "",
        f"Command: `python benchmarks/xtts_length_bench.py --weights {args.weights} --threads {args.threads}`",
        "(under `flock -x /tmp/ttsperf-cpu.lock`).",
        f"Load average: {args.note or 'not recorded'}",
        "",
        "Stream mode, windowed HiFi-GAN decoder, 20 tokens per chunk, voice conditioning cached (a cold 4-token "
        "run first is not shown), one measured run per row. Before: a fixed 32 audio tokens (about 1.5 s) whatever "
        "the text. After: the tokens the length model expects trained XTTS to generate for the text "
        "(syllables / 4.78 syllables per second x 21.53 tokens per second for English).",
        "",
        "| text chars | rule | expected tokens | tokens | audio s | synth s | RTF | TTFA s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for text, rule, record in rows:
        expected = estimate_audio_tokens(text, "en", 602) if "length" in rule else 32
        lines.append(
            f"| {len(text)} | {rule} | {expected} | {record.annotations.get('gpt_tokens', '')} | "
            f"{record.audio_s:.2f} | {record.synth_s:.2f} | {record.rtf:.2f} | {record.ttfa_s:.2f} |"
        )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
