"""Kokoro-82M (shipped int8 ONNX) on this CPU: the table of docs/benchmarks/kokoro-cpu.md.

Through the lab's own paths (``profiling.api``), the results store kept out of the way (``--data-dir``):
  rtf      batch RTF and TTFA at ORT intra_op_threads 1 and 2 (per text set, median and p95 of the repeats)
  stream   streaming TTFA (first chunk ready) with the lab chunker by first-chunk size, and the engine's own
           sentence split, on a medium text
  memory   in a fresh process: RSS before and after load, then growth over N syntheses (from run --settle on)

Anchors (issue 22): sherpa-onnx's table (MacBook, 1 thread) Kokoro fp32 RTF 1.128, int8 1.972; a 4-core Xeon
RTF 0.57; Kokoro-FastAPI's first token about 3.5 s on CPU at 200 characters; target: streaming TTFA p50 with
the lab's first chunk at most 600 ms on this CPU.

    python benchmarks/kokoro_bench.py --out docs/benchmarks/kokoro-cpu.md      (the real run: a quiet machine)
    python benchmarks/kokoro_bench.py --quick                                   (a tiny check that it works)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOICE = "jm_kumo"
ANCHORS = (
    ("sherpa-onnx table, MacBook, 1 thread, Kokoro fp32", "RTF 1.128"),
    ("sherpa-onnx table, MacBook, 1 thread, Kokoro int8", "RTF 1.972"),
    ("4-core Xeon, Kokoro ONNX", "RTF 0.57"),
    ("Kokoro-FastAPI README, CPU, 200 characters", "first token about 3.5 s"),
    ("issue 22's target on this CPU", "streaming TTFA p50 <= 600 ms (lab first chunk)"),
)


@dataclass(frozen=True)
class Plan:
    text_sets: tuple[str, ...]
    texts_per_set: int
    threads: tuple[int, ...]
    repeats: int
    warmup: int
    first_chunks: tuple[int, ...]
    stream_repeats: int
    memory_runs: int
    settle: int


FULL = Plan(("audio_5s", "audio_10s"), 2, (1, 2), 5, 1, (10, 20, 40, 80), 5, 100, 5)
QUICK = Plan(("audio_1s",), 1, (1, 2), 1, 0, (20,), 1, 3, 1)
#: Fewer texts and repeats than FULL (a few minutes on this machine), figures still measured.
REDUCED = Plan(("audio_5s",), 2, (1, 2), 3, 1, (10, 20, 40), 3, 40, 5)


def _texts(name: str, count: int) -> list[str]:
    from profiling.texts.textsets import load_text_set

    return [item.text for item in load_text_set(name).items[:count]]


def rtf_rows(plan: Plan, data_dir: Path) -> list[dict[str, object]]:
    from profiling import api

    rows = []
    for threads in plan.threads:
        for text_set in plan.text_sets:
            rtf, ttfa, audio = [], [], []
            for text in _texts(text_set, plan.texts_per_set):
                run = api.bench("kokoro", text, repeats=plan.repeats, warmup=plan.warmup, data_dir=data_dir,
                                voice=VOICE, intra_op_threads=threads)
                rtf += [r.rtf for r in run.records if not r.warmup]
                ttfa += [r.ttfa_s for r in run.records if not r.warmup]
                audio += [r.audio_s for r in run.records if not r.warmup]
            rows.append({"threads": threads, "text_set": text_set, "runs": len(rtf), **_stats("rtf", rtf),
                         **_stats("ttfa_ms", [1000 * t for t in ttfa]), "audio_s": _median(audio)})
    return rows


def stream_rows(plan: Plan, data_dir: Path) -> list[dict[str, object]]:
    from profiling import api

    text = _texts("medium", 1)[0]
    rows = []
    chunkings = [("lab", size) for size in plan.first_chunks] + [("engine", None)]
    for threads in plan.threads:
        for chunker, size in chunkings:
            run = api.stream("kokoro", text, chunker=chunker, first_chunk_max_chars=size,
                             repeats=plan.stream_repeats, warmup=1, data_dir=data_dir, voice=VOICE,
                             intra_op_threads=threads)
            ttfa = [1000 * r.ttfa_s for r in run.records if not r.warmup]
            rows.append({"threads": threads, "chunker": chunker,
                         "first_chunk_max_chars": size if size is not None else "-",
                         "runs": len(ttfa), **_stats("ttfa_ms", ttfa), "text_chars": len(text)})
    return rows


def memory(runs: int, settle: int) -> dict[str, float]:
    """In this process: RSS before load, after load, after each synthesis (call it in a fresh process)."""
    import psutil

    from engines.base import SynthesisSettings, Voice
    from engines.kokoro.engine import KokoroEngine

    process = psutil.Process()
    mib = 2**20
    before = process.memory_info().rss / mib
    engine = KokoroEngine()
    settings = SynthesisSettings("kokoro", precision="int8",
                                 knobs={**KokoroEngine.capabilities.default_knobs(), "voice": VOICE})
    engine.load(settings)
    loaded = process.memory_info().rss / mib
    text = _texts("audio_5s", 1)[0]
    series = []
    for _ in range(runs):
        engine.synthesize(text, Voice(), settings)
        series.append(process.memory_info().rss / mib)
    settled = series[min(settle, len(series) - 1)]
    return {"rss_before_load_mib": before, "rss_loaded_mib": loaded, "rss_after_first_run_mib": series[0],
            "rss_settled_mib": settled, "rss_last_mib": series[-1], "growth_after_settle_mib": series[-1] - settled,
            "runs": runs, "settle": settle}


def memory_in_fresh_process(plan: Plan) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--memory-only", str(plan.memory_runs), "--settle",
                          str(plan.settle)], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    import numpy as np

    return float(np.median(values)) if values else float("nan")


def _stats(name: str, values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {f"{name}_p50": float("nan"), f"{name}_p95": float("nan")}
    return {f"{name}_p50": float(np.median(values)), f"{name}_p95": float(np.percentile(values, 95))}


def _table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "(none)"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)


def report(plan: Plan, rtf: list[dict[str, object]], stream: list[dict[str, object]], mem: dict[str, float],
           quick: bool) -> str:
    import onnxruntime

    lines = [
        f"## Kokoro-82M int8 on this CPU ({'QUICK CHECK, not a result' if quick else 'measured'})", "",
        f"- {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; onnxruntime {onnxruntime.__version__}; voice {VOICE}; plan {asdict(plan)}",
        "", "### RTF by ORT threads (batch)", "", _table(rtf),
        "", "### Streaming TTFA by first-chunk size (medium text)", "", _table(stream),
        "", "### Memory (fresh process)", "", _table([mem]),
        "", "### Anchors", "", _table([{"source": s, "figure": f} for s, f in ANCHORS]), "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny plan: checks the script runs, measures nothing")
    parser.add_argument("--reduced", action="store_true", help="fewer texts and repeats (a few minutes), measured")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: print it)")
    parser.add_argument("--data-dir", type=Path, help="results store for the runs (default: a temporary one)")
    parser.add_argument("--memory-only", type=int, metavar="RUNS", help=argparse.SUPPRESS)
    parser.add_argument("--settle", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_only is not None:
        print(json.dumps(memory(args.memory_only, args.settle)))
        return 0
    plan = QUICK if args.quick else REDUCED if args.reduced else FULL
    with tempfile.TemporaryDirectory(prefix="kokoro-bench-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        os.environ.setdefault("TTSPERF_DATA_DIR", str(data_dir))  # the assembled weights too, when unset
        rtf = rtf_rows(plan, data_dir)
        stream = stream_rows(plan, data_dir)
        mem = memory_in_fresh_process(plan)
    text = report(plan, rtf, stream, mem, args.quick)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
