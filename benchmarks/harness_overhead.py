"""Harness overhead: a bare Piper call against the same call through the lab's measurement.

Same process, same loaded engine, interleaved rounds so machine load hits both alike:
  bare    engine.synthesize(text, voice, settings)
  timer   engine.synthesize(..., StageTimer())          (the stage hooks alone)
  full    profiling.run.runner.measure_run(...)             (timer + RSS peak + GPU readers + record)
  full (recorded synth_s)  what that run reports as synthesis time: the overhead that reaches the data

    python benchmarks/harness_overhead.py --rounds 200 --out docs/benchmarks/harness-overhead-cpu.md
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.base import DEFAULT_VOICE, SynthesisSettings  # noqa: E402
from engines.piper_engine import PiperEngine  # noqa: E402
from profiling.core.environment import capture_environment  # noqa: E402
from profiling.core.records import RunMode  # noqa: E402
from profiling.core.timer import StageTimer  # noqa: E402
from profiling.run.runner import measure_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--text", default="Hello world.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    settings = SynthesisSettings("piper", knobs={**PiperEngine.capabilities.default_knobs(), "deterministic": True})
    engine = PiperEngine()
    engine.load(settings)
    recorded: list[float] = []

    def full() -> None:
        record, _ = measure_run(engine, args.text, DEFAULT_VOICE, settings, RunMode.BATCH, "overhead")
        recorded.append(record.synth_s)

    variants = {
        "bare": lambda: engine.synthesize(args.text, DEFAULT_VOICE, settings),
        "timer": lambda: engine.synthesize(args.text, DEFAULT_VOICE, settings, StageTimer()),
        "full": full,
    }
    for call in variants.values():  # warm-up
        call()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, call in variants.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    times["full (recorded synth_s)"] = recorded[-args.rounds:]
    bare = float(np.median(times["bare"]))
    env = capture_environment()
    lines = [
        "# Harness overhead: bare Piper call vs. the same call measured",
        "",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {env.cpu_model}, {env.logical_cores} logical cores, {env.memory_gib} GiB; no GPU",
        f"- versions: Python {env.python}, " + ", ".join(f"{k} {v}" for k, v in env.packages.items()),
        f"- command: `python benchmarks/harness_overhead.py --rounds {args.rounds} --text {args.text!r}`",
        f"- {args.rounds} interleaved rounds in one process, same loaded engine",
        "",
        "| variant | median ms | p95 ms | median overhead vs bare |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        median = float(np.median(values))
        p95 = float(np.percentile(values, 95))
        lines.append(
            f"| {name} | {median * 1000:.3f} | {p95 * 1000:.3f} | "
            f"{(median - bare) * 1000:+.3f} ms ({(median / bare - 1) * 100:+.1f}%) |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
