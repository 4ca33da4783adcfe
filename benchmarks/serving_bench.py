"""Piper serving capacity on this machine (docs/benchmarks/piper-serving-cpu.md).

Parts, each sized for one 5-minute hold of the exclusive lock:
  --part base : thread vs process replicas (interleaved), one-at-a-time RTF (bound), the null target's ceiling
  --part grid --configs 1x1,2x1 : capacity per workers x ORT threads over --rates
Prints markdown-ready lines; writes JSON beside --out.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engines.base import SynthesisSettings, Voice
from profiling.loadgen.client import ClientOptions
from profiling.loadgen.metrics import Slo
from profiling.loadgen.null_target import FaultSettings
from profiling.loadgen.runner import LoadTest, run_load_test
from profiling.loadgen.targets import TargetSpec
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore
from profiling.texts.textsets import load_text_set

TEXTS = [item.text for item in load_text_set("medium").items]


def _settings(threads: int) -> SynthesisSettings:
    return SynthesisSettings("piper", knobs={"intra_op_threads": threads, "deterministic": True})


def _loop(engine, n: int, offset: int) -> None:  # noqa: ANN001
    settings = _settings(1)
    for i in range(n):
        for _ in engine.stream(TEXTS[(offset + i) % len(TEXTS)], Voice(), settings):
            pass


def _proc(go, done, n: int, offset: int) -> None:  # noqa: ANN001
    engine, _ = EnginePool().acquire(_settings(1))
    done.put("ready")
    while go.get():
        _loop(engine, n, offset)
        done.put("done")


def threads_vs_processes(n: int = 4, rounds: int = 2) -> dict[str, list[float]]:
    """Two replicas, n requests each, as threads and as processes, alternated to spread the machine's drift."""
    engines = [EnginePool().acquire(_settings(1))[0] for _ in range(2)]
    ctx = mp.get_context("spawn")
    go = [ctx.Queue() for _ in range(2)]
    done = [ctx.Queue() for _ in range(2)]
    procs = [ctx.Process(target=_proc, args=(go[i], done[i], n, i * n)) for i in range(2)]
    for p in procs:
        p.start()
    for d in done:
        d.get()
    out: dict[str, list[float]] = {"threads": [], "processes": []}
    for _ in range(rounds):
        ths = [threading.Thread(target=_loop, args=(engines[i], n, i * n)) for i in range(2)]
        start = time.perf_counter()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        out["threads"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for g in go:
            g.put(True)
        for d in done:
            d.get()
        out["processes"].append(time.perf_counter() - start)
    for g in go:
        g.put(False)
    for p in procs:
        p.join()
    return out


def one_at_a_time(threads: int) -> dict[str, float]:
    engine, _ = EnginePool().acquire(_settings(threads))
    settings = _settings(threads)
    engine.synthesize(TEXTS[0], Voice(), settings)
    synth, audio = [], []
    for text in TEXTS:
        start = time.perf_counter()
        result = engine.synthesize(text, Voice(), settings)
        synth.append(time.perf_counter() - start)
        audio.append(result.duration_s)
    return {"threads": threads, "rtf": float(np.sum(synth) / np.sum(audio)), "mean_audio_s": float(np.mean(audio)),
            "mean_synth_s": float(np.mean(synth))}


def load(spec: TargetSpec, rates: tuple[float, ...], duration: float, data: Path, slo: Slo):  # noqa: ANN201
    test = LoadTest(target=spec, rates=rates, duration_s=duration, seed=11, text_set="medium", slo=slo,
                    client=ClientOptions(warmup=1, request_timeout_s=40, drain_s=12))
    return run_load_test(test, ResultsStore(data))


def describe(result) -> list[dict]:  # noqa: ANN001
    rows = []
    for m in result.metrics:
        ttfa, e2e, lag = m.dist("audible_ttfa_s"), m.dist("e2e_s"), m.dist("lag_s")
        rows.append({"load": m.label, "sent": m.sent, "ok": m.ok, "ttfa_p50": ttfa.p50, "ttfa_p95": ttfa.p95,
                     "e2e_p50": e2e.p50, "e2e_p95": e2e.p95, "lag_p95": lag.p95, "req_min": m.throughput_per_min,
                     "good_min": m.goodput_per_min, "underruns": m.underruns, "errors": m.errors,
                     "sustainable": m.sustainable, "slo_met": m.slo_met, "reason": m.slo_reason,
                     "queue_p50": m.queue_wait_p50_s, "first_chunk_p50": m.server_first_chunk_p50_s,
                     "client_cpu": m.client_cpu_fraction, "server_cpu": m.server_cpu_fraction})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("base", "grid"), required=True)
    parser.add_argument("--configs", default="1x1,2x1")
    parser.add_argument("--rates", default="0.5,0.83,1.25,2")
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    slo = Slo(ttfa_ms=800, max_underruns=0)
    data = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    report: dict = {"part": args.part, "cores": os.cpu_count(), "load_before": os.getloadavg()}
    if args.part == "base":
        report["threads_vs_processes"] = threads_vs_processes()
        print("threads vs processes (2 replicas x 4 medium texts, s):", report["threads_vs_processes"], flush=True)
        report["one_at_a_time"] = [one_at_a_time(1), one_at_a_time(2)]
        print("one at a time:", report["one_at_a_time"], flush=True)
        null = load(TargetSpec(kind="null", faults=FaultSettings(audio_s=6.0, chunk_ms=500)),
                    (10.0, 25.0, 50.0, 100.0), 5.0, data, slo)
        report["null"] = describe(null)
        report["null_capacity"] = null.capacity.describe()
    else:
        report["grid"] = {}
        rates = tuple(float(r) for r in args.rates.split(","))
        for config in args.configs.split(","):
            workers, threads = (int(x) for x in config.split("x"))
            spec = TargetSpec(kind="lab", engine="piper", workers=workers, queue_size=64, request_timeout_s=40,
                              knobs=(("intra_op_threads", str(threads)), ("deterministic", "true")))
            result = load(spec, rates, args.duration, data, slo)
            report["grid"][config] = {"rows": describe(result), "capacity": result.capacity.describe()}
            print(config, result.capacity.describe(), flush=True)
            args.out.write_text(json.dumps(report, indent=1, default=str))  # each config kept if the hold ends
            for row in report["grid"][config]["rows"]:
                print("  ", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    report["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print("load", report["load_before"], "->", report["load_after"])


if __name__ == "__main__":
    main()
