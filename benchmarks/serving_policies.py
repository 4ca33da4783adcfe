"""Scheduling policies side by side on this machine (docs/benchmarks/serving-policies-cpu.md).

Every configuration is the lab server (``python -m profiling serve``) with Piper, driven by the lab's load
generator on 127.0.0.1 with the same seeded Poisson arrivals:

  --part fixed    : TTFA against continuity per configuration at fixed loads; configurations interleaved
                    within each load so the machine's drift hits them alike
  --part capacity : each named configuration's capacity found by the search (at least --min-requests
                    measured requests per step)
  --part cloning  : XTTS and F5 with full-size random weights, served at a low closed-loop load (both are
                    slower than real time on two cores: shown as they are)
  --part report   : the markdown tables of everything in --out

Writes JSON lines to --out (one per measurement, appended) and prints markdown rows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from profiling.loadgen.capacity_search import SearchSettings  # noqa: E402
from profiling.loadgen.client import ClientOptions  # noqa: E402
from profiling.loadgen.metrics import RateMetrics, Slo  # noqa: E402
from profiling.loadgen.runner import LoadTest, run_load_test  # noqa: E402
from profiling.loadgen.targets import TargetSpec  # noqa: E402

PIPER_KNOBS = (("deterministic", "true"),)
#: The issue's SLO: audible TTFA p95 <= 500 ms, C100 >= 99 %, no errors (underruns counted through C100).
SLO = Slo(ttfa_ms=500.0, percentile=95, max_underruns=None, min_c100=0.99, max_error_rate=0.0)


@dataclass(frozen=True)
class Config:
    name: str
    policy: str
    chunker: str = "lab"
    first: int = 20
    chunk: int = 60
    workers: int = 2
    threads: int = 1

    def spec(self) -> TargetSpec:
        return TargetSpec(kind="lab", engine="piper", workers=self.workers, queue_size=256, request_timeout_s=60.0,
                          knobs=(*PIPER_KNOBS, ("intra_op_threads", str(self.threads))), policy=self.policy,
                          chunker=self.chunker, first_chunk_chars=self.first, chunk_chars=self.chunk)


CONFIGS = {c.name: c for c in (
    Config("fifo-engine", "fifo", chunker="engine"),  # today's server: whole requests, Piper's sentences
    Config("fifo-lab20/60", "fifo"),
    Config("rr-lab20/60", "round-robin"),
    Config("window2-lab20/60", "window:2"),
    Config("edf-lab20/60", "edf"),
    Config("edf-lab10/60", "edf", first=10),
    Config("edf-lab40/60", "edf", first=40),
    Config("edf-lab20/150", "edf", chunk=150),
    Config("edf-lab20/60-1x2", "edf", workers=1, threads=2),
)}


def figures(m: RateMetrics) -> dict[str, Any]:
    ttfa, tb, under = m.dist("audible_ttfa_s"), m.dist("audible_ttfa_tb_s"), m.dist("underrun_max_ms")

    def ms(value: float) -> float | None:
        return None if not math.isfinite(value) else round(value * 1000, 1)

    return {"load": m.label, "sent": m.sent, "ok": m.ok, "errors": m.errors, "ttfa_p50_ms": ms(ttfa.p50),
            "ttfa_p95_ms": ms(ttfa.p95), "ttfa_p99_ms": ms(ttfa.p99), "ttfa_tb_p50_ms": ms(tb.p50),
            "ttfa_tb_p95_ms": ms(tb.p95), "c100": m.c100, "underrun_p95_ms": under.p95,
            "underrun_p99_ms": under.p99, "gap_p99_ms": ms(m.gap_p99_s), "throughput_per_min": m.throughput_per_min,
            "late_chunk_share": m.late_chunk_share, "slo_met": m.slo_met, "slo_reason": m.slo_reason,
            "queue_wait_p50_ms": None if m.queue_wait_p50_s is None else round(m.queue_wait_p50_s * 1000, 1)}


def record(out: Path, entry: dict[str, Any]) -> None:
    with out.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def fixed(configs: list[Config], rates: list[float], duration_s: float, out: Path, seed: int) -> None:
    for rate_index, rate in enumerate(rates):
        for config in configs:  # interleaved: every configuration at this load before the next load
            test = LoadTest(target=config.spec(), rates=(rate,), duration_s=duration_s, seed=seed + rate_index,
                            text_set="medium", client=ClientOptions(warmup=4), slo=SLO, label=f"policies {config.name}")
            started = time.time()
            result = run_load_test(test, store=None)
            entry = {"part": "fixed", "config": config.name, "rate": rate, "seed": seed + rate_index,
                     "started_unix": started, **figures(result.metrics[0])}
            record(out, entry)
            print(json.dumps(entry), flush=True)


def capacity(configs: list[Config], settings: SearchSettings, out: Path, seed: int) -> None:
    for config in configs:
        test = LoadTest(target=config.spec(), rates=(settings.start or 1.0,), duration_s=20.0, seed=seed,
                        text_set="medium", client=ClientOptions(warmup=4), slo=SLO, find_capacity=settings,
                        label=f"policies capacity {config.name}", max_requests=10_000)
        result = run_load_test(test, store=None)
        search = result.search
        assert search is not None
        entry = {"part": "capacity", "config": config.name, "capacity": search.capacity,
                 "streams_per_core": search.streams_per_core, "cores": search.cores, "stopped": search.stopped,
                 "describe": search.describe(),
                 "steps": [{"load": s.load, "met": s.met, "reason": s.reason, "retry": s.retry,
                            "measured": s.measured} for s in search.steps],
                 "rates": [figures(m) for m in result.metrics]}
        record(out, entry)
        print(json.dumps(entry), flush=True)


def cloning(engines: list[str], out: Path, seed: int, duration_s: float) -> None:
    for engine in engines:
        knobs = {"xtts": (("weights", "random-full"),), "f5": (("weights", "random-full"), ("nfe_step", "16"))}[engine]
        spec = TargetSpec(kind="lab", engine=engine, workers=1, queue_size=8, request_timeout_s=600.0, knobs=knobs,
                          policy="edf", ready_timeout_s=600.0)
        test = LoadTest(target=spec, users=(1,), duration_s=duration_s, max_requests=3, seed=seed, text_set="short",
                        client=ClientOptions(warmup=1, request_timeout_s=600.0, stall_timeout_s=600.0, drain_s=600.0),
                        slo=replace(SLO, ttfa_ms=60_000.0), label=f"policies {engine} random-full")
        result = run_load_test(test, store=None)
        entry = {"part": "cloning", "engine": engine, "ready_line": result.ready_line, **figures(result.metrics[0]),
                 "e2e_p50_ms": round(result.metrics[0].dist("e2e_s").p50 * 1000, 1),
                 "rtf_p50": result.metrics[0].dist("rtf").p50}
        record(out, entry)
        print(json.dumps(entry), flush=True)


def _cell(value: object, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def report(out: Path) -> str:
    entries = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines: list[str] = []
    fixed_rows = [e for e in entries if e["part"] == "fixed"]
    for rate in sorted({e["rate"] for e in fixed_rows}):
        lines += [f"### {rate:g} req/s ({rate * 60:.0f} req/min)", "",
                  "| configuration | sent | ok | TTFA p50 | p95 | p99 | tb p95 | C100 | underrun p99 ms | gap p99 ms "
                  "| late chunks | req/min | SLO |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for e in (e for e in fixed_rows if e["rate"] == rate):
            verdict = "met" if e["slo_met"] else f"missed: {e['slo_reason']}"
            late = e.get("late_chunk_share")
            lines.append(
                f"| {e['config']} | {e['sent']} | {e['ok']} | {_cell(e['ttfa_p50_ms'])} | {_cell(e['ttfa_p95_ms'])} "
                f"| {_cell(e['ttfa_p99_ms'])} | {_cell(e['ttfa_tb_p95_ms'])} | {e['c100']:.1%} "
                f"| {_cell(e['underrun_p99_ms'])} | {_cell(e['gap_p99_ms'])} "
                f"| {'-' if late is None else f'{late:.1%}'} | {e['throughput_per_min']:.0f} | {verdict} |")
        lines.append("")
    for e in (e for e in entries if e["part"] == "capacity"):
        lines += [f"### capacity search: {e['config']}", "", e["describe"], "",
                  "| step | load req/s | measured | met | retry | reason |", "|---:|---:|---:|---|---|---|"]
        lines += [f"| {i + 1} | {s['load']:.3g} | {s['measured']} | {'yes' if s['met'] else 'no'} | "
                  f"{'yes' if s['retry'] else ''} | {s['reason']} |" for i, s in enumerate(e["steps"])]
        lines.append("")
    cloned = [e for e in entries if e["part"] == "cloning"]
    if cloned:
        lines += ["### cloning engines, full-size random weights (noise audio), 1 worker, closed loop 1 user", "",
                  "| engine | sent | ok | TTFA p50 ms | E2E p50 ms | RTF p50 | C100 | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        lines += [f"| {e['engine']} | {e['sent']} | {e['ok']} | {_cell(e['ttfa_p50_ms'])} | {_cell(e['e2e_p50_ms'])} "
                  f"| {_cell(e['rtf_p50'], 2)} | {e['c100']:.0%} | {e['errors'] or '-'} |" for e in cloned]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("fixed", "capacity", "cloning", "report"), required=True)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names: " + ", ".join(CONFIGS))
    parser.add_argument("--rates", default="0.8333,1.8", help="fixed loads, req/s (50 req/min is 0.8333)")
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of arrivals per fixed load")
    parser.add_argument("--min-requests", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--start", type=float, default=1.2)
    parser.add_argument("--factor", type=float, default=1.25)
    parser.add_argument("--engines", default="xtts,f5")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("serving-policies.jsonl"))
    args = parser.parse_args()
    configs = [CONFIGS[name.strip()] for name in args.configs.split(",") if name.strip()]
    if args.part == "fixed":
        fixed(configs, [float(r) for r in args.rates.split(",")], args.duration, args.out, args.seed)
    elif args.part == "capacity":
        capacity(configs, SearchSettings(min_requests=args.min_requests, max_steps=args.max_steps, start=args.start,
                                         factor=args.factor, resolution=0.05, max_step_s=180.0, budget_s=1800.0),
                 args.out, args.seed)
    elif args.part == "cloning":
        cloning([e.strip() for e in args.engines.split(",") if e.strip()], args.out, args.seed, 300.0)
    else:
        print(report(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
