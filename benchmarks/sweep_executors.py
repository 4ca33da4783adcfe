"""The same Piper sweep on the local executor and on Ray (1 and 2 workers): wall time, per-run RTF, model loads.

    python benchmarks/sweep_executors.py --executor local --json /tmp/local.json
    python benchmarks/sweep_executors.py --executor ray --workers 2 --json /tmp/ray2.json
    python benchmarks/sweep_executors.py --report /tmp/local.json /tmp/ray1.json /tmp/ray2.json \
        --out docs/benchmarks/piper-sweep-ray-cpu.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from profiling.core.environment import capture_environment  # noqa: E402
from profiling.store.results import ResultsStore  # noqa: E402
from profiling.store.sweeps import sweep_runs_dataframe  # noqa: E402
from profiling.sweeps.execute import ExecutorChoice, run_sweep  # noqa: E402
from profiling.sweeps.plan import plan  # noqa: E402
from profiling.sweeps.scheduler import reloads, schedule, unit_id  # noqa: E402
from profiling.sweeps.spec import load_sweep_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "sweeps" / "piper_quick.yaml"


def measure(executor: str, workers: int) -> dict[str, object]:
    spec = load_sweep_spec(SPEC)
    sweep_plan = plan(spec)
    old_order = [unit_id(i.config.settings) for i in sweep_plan.items]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(tmp)
        started = time.monotonic()
        outcome = run_sweep(spec, store, executor=ExecutorChoice(executor, workers=workers))
        wall = time.monotonic() - started
        runs = sweep_runs_dataframe(store, spec.name)
        every = store.runs_dataframe()
    return {
        "executor": executor, "workers": workers, "wall_s": wall, "runs": outcome.ran, "errors": outcome.errors,
        "failure": outcome.failure, "loads": int(every["load_s"].notna().sum()), "warmups": int(every["warmup"].sum()),
        "old_order_loads": 1 + sum(a != b for a, b in zip(old_order, old_order[1:], strict=False)),
        "scheduled_loads_one_worker": reloads(schedule(sweep_plan)),
        "rtf": [float(v) for v in runs["rtf"]], "per_worker": outcome.per_worker,
        "by_config": {k: float(v) for k, v in runs.groupby("config_label")["rtf"].median().items()},
        "load_before": load_before, "load_after": Path("/proc/loadavg").read_text().split()[:3],
    }


def report(paths: list[Path], out: Path) -> None:
    results = [json.loads(p.read_text()) for p in paths]
    env = capture_environment()
    first = results[0]
    lines = [
        f"# The same Piper sweep: local executor vs Ray on CPU ({datetime.now(timezone.utc):%Y-%m-%d})",
        "",
        f"Sweep: `sweeps/piper_quick.yaml` (graph_optimization x length_scale, audio_1s texts, 3 repeats: "
        f"{first['runs']} measured runs). Command: `python benchmarks/sweep_executors.py --executor ... "
        "--workers ...`, each under the exclusive CPU lock, fresh store each time.",
        f"Device: {env.cpu_model}, {env.logical_cores} logical cores; Python {env.python}; ray "
        f"{env.packages.get('ray', '2.60.0')}; onnxruntime {env.packages.get('onnxruntime', '?')}; commit "
        f"{env.git_commit}. Ray: a local instance (`ray.init(num_cpus=2)`), 1 CPU per worker.",
        "",
        "| executor | workers | wall s | model loads (measured) | RTF median | p10-p90 | runs per worker |"
        " load avg before / after |",
        "|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in results:
        rtf = np.array(r["rtf"])
        workers = ", ".join(str(n) for n in r["per_worker"].values())
        lines.append(
            f"| {r['executor']} | {r['workers']} | {r['wall_s']:.1f} | {r['loads']} | {np.median(rtf):.3f} | "
            f"{np.percentile(rtf, 10):.3f}-{np.percentile(rtf, 90):.3f} | {workers} | "
            f"{' '.join(r['load_before'])} / {' '.join(r['load_after'])} |")
    lines += [
        "",
        f"Model loads the old order (one shuffled item per run) implied for this sweep: {first['old_order_loads']}; "
        f"the scheduler's order on one worker: {first['scheduled_loads_one_worker']} (counted from the plans).",
        "",
        "Median RTF per configuration:",
        "",
        "| configuration | " + " | ".join(f"{r['executor']} x{r['workers']}" for r in results) + " |",
        "|---|" + "--:|" * len(results),
    ]
    for label in first["by_config"]:
        lines.append(f"| {label} | " + " | ".join(f"{r['by_config'].get(label, float('nan')):.3f}" for r in results)
                     + " |")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor", default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--report", type=Path, nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.report:
        report(args.report, args.out)
        return
    result = measure(args.executor, args.workers)
    args.json.write_text(json.dumps(result))
    print({k: v for k, v in result.items() if k != "rtf"})


if __name__ == "__main__":
    main()
