"""Resident memory over many runs: the engine alone against the same runs through the lab.

One process per variant (RSS is per process), the same loaded Piper voice and text, RSS read after each run:
  engine   engine.synthesize(...) in a loop                       (what the engine itself holds)
  measure  profiling.run.runner.measure_run(...) in a loop        (timer, RSS sampler, record; records dropped)
  bench    profiling.run.runner.run_bench(..., store) repeats=N   (the CLI's path: store writes, records kept)

Growth is measured from run ``--settle`` on: the first runs grow every variant alike (ONNX Runtime sizes its
buffers on the first call), which is not growth over many runs.

    python benchmarks/memory_growth.py --runs 300 --out docs/benchmarks/memory-growth-cpu.md
    python benchmarks/memory_growth.py --variant measure --runs 60 --json     (one variant, machine-readable)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("engine", "measure", "bench")
TEXT = "The quick brown fox jumps over the lazy dog. Measuring speech synthesis tells us where the time goes."


@dataclass(frozen=True)
class Growth:
    variant: str
    runs: int
    settle: int
    first_mb: float
    settled_mb: float
    last_mb: float
    growth_mb: float  # last - settled
    slope_kb_per_run: float
    largest_step_run: int
    largest_step_mb: float


def measure_variant(variant: str, runs: int, settle: int) -> Growth:
    import psutil

    from engines.base import SynthesisSettings, Voice
    from engines.registry import create_engine, engine_class
    from engines.validation import resolve_settings
    from profiling.core.records import RunMode
    from profiling.core.timer import StageTimer
    from profiling.run.runner import BenchRequest, EnginePool, measure_run, run_bench
    from profiling.store.results import ResultsStore

    process = psutil.Process()
    cls = engine_class("piper")
    settings = resolve_settings(cls.capabilities, SynthesisSettings("piper", knobs={"deterministic": True}),
                                cls.machine_devices())
    rss: list[float] = []
    if variant == "bench":
        with tempfile.TemporaryDirectory() as data_dir:
            run_bench(BenchRequest(settings=settings, text=TEXT, repeats=runs, warmup=0), EnginePool(),
                      ResultsStore(data_dir), lambda done, total, record: rss.append(process.memory_info().rss / 2**20))
    else:
        engine = create_engine("piper")
        engine.load(settings)
        for _ in range(runs):
            if variant == "engine":
                engine.synthesize(TEXT, Voice(), settings, StageTimer())
            else:
                measure_run(engine, TEXT, Voice(), settings, RunMode.BATCH, "growth")
            rss.append(process.memory_info().rss / 2**20)
    values = np.array(rss)
    steps = np.diff(values)
    step = int(np.argmax(steps)) if len(steps) else 0
    tail = values[settle - 1:]
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 1 else 0.0
    return Growth(variant, runs, settle, round(float(values[0]), 1), round(float(values[settle - 1]), 1),
                  round(float(values[-1]), 1), round(float(values[-1] - values[settle - 1]), 2),
                  round(slope * 1024, 2), step + 2, round(float(steps[step]) if len(steps) else 0.0, 1))


def run_in_subprocess(variant: str, runs: int, settle: int) -> Growth:
    command = [sys.executable, __file__, "--variant", variant, "--runs", str(runs), "--settle", str(settle), "--json"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return Growth(**json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--settle", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.variant:
        growth = measure_variant(args.variant, args.runs, args.settle)
        print(json.dumps(asdict(growth)) if args.json else growth)
        return
    results = [run_in_subprocess(v, args.runs, args.settle) for v in VARIANTS]
    from profiling.core.environment import capture_environment

    env = capture_environment()
    lines = [
        "# Resident memory over many Piper runs: engine alone vs the lab",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {env.cpu_model}, {env.logical_cores} cores; "
        f"onnxruntime {env.packages.get('onnxruntime', '?')}, lock {env.lock_sha256[:10]}",
        f"- Command: `python benchmarks/memory_growth.py --runs {args.runs} --settle {args.settle}`",
        "",
        "| variant | runs | RSS after run 1 (MB) | after run "
        f"{args.settle} | last | growth after run {args.settle} (MB) | slope (kB/run) | largest step (run: MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in results:
        lines.append(f"| {g.variant} | {g.runs} | {g.first_mb} | {g.settled_mb} | {g.last_mb} | {g.growth_mb} | "
                     f"{g.slope_kb_per_run} | {g.largest_step_run}: {g.largest_step_mb} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
