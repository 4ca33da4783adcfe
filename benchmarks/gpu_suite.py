"""The GPU suite: one command for a short, lent GPU (about 15 minutes in all, no registry there).

    python benchmarks/gpu_suite.py --out gpu-out            # on a CUDA machine: full-size random weights
    python benchmarks/gpu_suite.py --tiny --device cpu ...  # the CPU path on tiny models (make gpu-rehearsal)

Rows run most informative first, each in its own process (a crash or an out-of-memory in one cannot
sink the rest), inside a time budget (6 minutes by default): a row starts only if the budget has room,
and is cut at what is left. Each row writes ``<out>/NN-name.json`` and ``.md`` the moment it ends, so a
run cut off still returns what it measured; ``summary.md`` and a short table come last. Rows:

- XTTS full size (random weights): fp32, bf16 and fp16 autocast, bf16 cast, compile on; RTF, TTFA in
  batch and in streaming with both stream decoders, per-stage times, load stages, peak GPU memory;
- F5 full size (random weights): NFE 16 and 32 at fp32/bf16/fp16, compile on; per-NFE-step time, RTF
  beside the published figures;
- timing overhead: the same F5 row with ``sync`` and ``events`` stage timing;
- Piper on CUDA: runs with onnxruntime-gpu, else is refused with the reason (the CPU build falls back).
- Two short load tests, last (FIFO, then the ``serve-policy`` row with EDF on the same arrivals): the lab's
  serving target (``python -m profiling serve``) with F5 (a torch
  engine, so it runs on the GPU; Piper would need onnxruntime-gpu, absent there) on 127.0.0.1, driven by
  the lab's load generator (closed loop, 2 users, at most 8 requests in 20 s): TTFA p50/p95, throughput,
  errors. Its server is the row's child: cut at the budget, the row's whole process group goes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Published F5-TTS figures for its base model (RTF, lower is faster), shown beside the F5 rows.
F5_PUBLISHED = "paper: RTF 0.15 at NFE 16 (RTX 3090); repo: PyTorch 0.147, TensorRT-LLM 0.040 (L20)"
TEXT = (
    "The quick brown fox jumps over the lazy dog. Measuring speech synthesis on a graphics card tells us "
    "where the time goes."
)


@dataclass(frozen=True)
class Row:
    name: str
    engine: str
    precision: str = "fp32"
    knobs: dict[str, object] = field(default_factory=dict)
    timing: str = "sync"
    stream_decoders: tuple[str, ...] = ()  # XTTS: also measure streaming with these decoders
    note: str = ""
    load: bool = False  # a load test against the served engine instead of a bench batch
    #: RVC knobs: every run's audio then goes through the RVC stage on the same device (``bench --convert rvc``).
    convert: dict[str, object] | None = None
    convert_precision: str = "fp32"
    #: Load rows: the server's scheduling policy (``serve --policy``).
    policy: str = "fifo"


#: The load row's bounds: closed loop (it never queues more than the users), a short duration, few requests.
LOAD_USERS = 2
LOAD_DURATION_S = 20.0
LOAD_MAX_REQUESTS = 8
LOAD_NOTE = (f"serving target (python -m profiling serve, 1 worker) on 127.0.0.1; closed loop, {LOAD_USERS} users, "
             f"at most {LOAD_MAX_REQUESTS} requests (the first a warm-up, not counted) or {LOAD_DURATION_S:g} s, "
             "short texts; TTFA = audible TTFA at the client (HTTP and the server's queue included)")


KOKORO_NOTE = ("trained Kokoro-82M int8 on ONNX Runtime; on CUDA it needs onnxruntime-gpu and the four model-part "
               "wheels (about 69 MiB, over the 64 MiB that travels), so on the lent machine it is refused with the "
               "reason; anchors: Kokoro-FastAPI RTF 0.02 on a 4060 Ti")
RVC_NOTE = ("text -> XTTS -> RVC v2 (rmvpe, no index), RVC on the same GPU; seed targets: RVC RTF < 0.5, "
            "XTTS+RVC overhead < 100 % of XTTS alone (see convert_rtf against tts_rtf)")


def rows(tiny: bool) -> list[Row]:
    weights = "random-tiny" if tiny else "random-full"
    xtts = {"weights": weights, "voice_cache": "off", "max_audio_tokens": 64 if not tiny else 8, "do_sample": False}
    f5 = {"weights": weights, "nfe_step": 16 if not tiny else 4}
    rvc = {"weights": weights, "f0_method": "rmvpe"}  # no index: faiss does not travel to the lent machine
    return [
        Row("xtts-fp32", "xtts", "fp32", xtts, stream_decoders=("coqui", "windowed")),
        Row("f5-fp32-nfe16", "f5", "fp32", f5, note=F5_PUBLISHED),
        Row("xtts-rvc-fp32", "xtts", "fp32", xtts, convert=rvc, note=RVC_NOTE),
        Row("xtts-bf16-autocast", "xtts", "bf16", {**xtts, "precision_mode": "autocast"}),
        Row("f5-bf16-autocast-nfe16", "f5", "bf16", {**f5, "precision_mode": "autocast"}, note=F5_PUBLISHED),
        Row("f5-fp32-nfe16-events", "f5", "fp32", f5, timing="events", note="compare with f5-fp32-nfe16 (sync)"),
        Row("xtts-fp16-autocast", "xtts", "fp16", {**xtts, "precision_mode": "autocast"}),
        Row("f5-fp16-autocast-nfe16", "f5", "fp16", {**f5, "precision_mode": "autocast"}),
        Row("xtts-fp32-compile", "xtts", "fp32", {**xtts, "compile": True, "warmup": 1}),
        Row("f5-fp32-nfe16-compile", "f5", "fp32", {**f5, "compile": True, "warmup": 1}),
        Row("f5-fp32-nfe32", "f5", "fp32", {**f5, "nfe_step": 32 if not tiny else 8}),
        Row("xtts-bf16-cast", "xtts", "bf16", {**xtts, "precision_mode": "cast"}),
        Row("f5-bf16-autocast-nfe32", "f5", "bf16", {**f5, "nfe_step": 32 if not tiny else 8}),
        Row("xtts-fp32-tf32", "xtts", "fp32", {**xtts, "tf32": True, "cudnn_benchmark": True}),
        Row("piper-cuda", "piper", "fp32", {"deterministic": True}),
        Row("xtts-rvc-fp16", "xtts", "fp32", xtts, convert=rvc, convert_precision="fp16", note=RVC_NOTE),
        Row("kokoro-int8", "kokoro", "int8", {"voice": "jm_kumo"}, note=KOKORO_NOTE),
        # F5, not XTTS: the server sends no reference voice and XTTS refuses to run without one; F5 uses
        # its bundled reference. Not Piper: its CUDA provider (onnxruntime-gpu) is absent on the lent machine.
        Row("load-f5-served", "f5", "fp32", f5, load=True, note=LOAD_NOTE),
        # The same arrivals under earliest-deadline-first: the first-audio against continuity trade on a GPU.
        Row("serve-policy-f5-edf", "f5", "fp32", f5, load=True, policy="edf", note=LOAD_NOTE + "; policy edf"),
    ]


# --- one row, in its own process ------------------------------------------------------------------


def reference_voice(engine: str) -> Any:
    from engines.base import Voice

    if engine != "xtts":
        return Voice()
    from engines.f5.reference import default_reference_audio

    return Voice(reference_audio=default_reference_audio())


def summarise(result: Any) -> dict[str, Any]:
    from profiling.core.stats import measured, summarize_series

    runs = measured(result.records)
    first = result.records[0]
    metrics = {m.name: m.median for m in result.metric_summary}
    series = {s.name: s.item.median for s in summarize_series(result.records)}
    return {
        "runs": len(runs),
        "rtf": metrics.get("rtf"),
        "synth_s": metrics.get("synth_s"),
        "ttfa_s": metrics.get("ttfa_s"),
        "audio_s": metrics.get("audio_s"),
        "gpu_peak_allocated_mb": metrics.get("gpu_peak_allocated_mb"),
        "gpu_peak_reserved_mb": metrics.get("gpu_peak_reserved_mb"),
        "gpu_util_mean_pct": metrics.get("gpu_util_mean_pct"),
        "peak_rss_mb": metrics.get("peak_rss_mb"),
        "stages_s": {s.name: s.median for s in result.stage_summary},
        "series_s": series,
        "load_s": result.load_s,
        "load_stages_s": {t.name: t.inclusive_s for t in result.load_stages},
        "recompiles_measured": sum(r.recompiles or 0 for r in runs),
        "graph_breaks_measured": sum(r.graph_breaks or 0 for r in runs),
        "timing_mode": first.timing_mode,
        "gpu_sampling": first.gpu_sampling,
        "errors": [r.error for r in result.records if r.error],
        # A converted row: the engine's and the conversion's parts of the RTF, and the stage's model load.
        "tts_rtf": metrics.get("tts_rtf"),
        "convert_rtf": metrics.get("convert_rtf"),
        "convert_load_s": first.convert_load_s,
    }


def run_load_row(row: Row, device: str, left_s: float) -> dict[str, Any]:
    """Serve ``row``'s engine here and send a short closed-loop load through the lab's load generator."""
    from profiling.loadgen.client import ClientOptions
    from profiling.loadgen.runner import LoadTest, run_load_test
    from profiling.loadgen.targets import TargetSpec

    # The server is ``python -m profiling serve`` in a subprocess: make the repository importable there
    # whatever the working directory (on the lent machine PYTHONPATH already holds the wheels' folder).
    root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    drain_s = 20.0
    # Model load gets what the budget leaves after the load itself, so the row ends before the parent cuts it.
    ready_s = max(10.0, min(240.0, left_s - LOAD_DURATION_S - drain_s - 15.0))
    spec = TargetSpec(kind="lab", engine=row.engine, workers=1, device=device, queue_size=8,
                      knobs=tuple((k, str(v)) for k, v in row.knobs.items()), request_timeout_s=60.0,
                      ready_timeout_s=ready_s, policy=row.policy)
    test = LoadTest(target=spec, users=(LOAD_USERS,), duration_s=LOAD_DURATION_S, max_requests=LOAD_MAX_REQUESTS,
                    text_set="short", client=ClientOptions(warmup=1, drain_s=drain_s), label=f"gpu_suite {row.name}")
    result = run_load_test(test, store=None)  # the suite stores nothing: its rows are its record
    (metrics,) = result.metrics
    ttfa, e2e = metrics.dist("audible_ttfa_s"), metrics.dist("e2e_s")

    def finite(value: float) -> float | None:
        return value if value == value else None  # NaN (no sample) -> null in the JSON

    return {"load": {
        "users": metrics.users, "sent": metrics.sent, "ok": metrics.ok, "errors": dict(metrics.errors),
        "error_rate": metrics.error_rate, "ttfa_p50_s": finite(ttfa.p50), "ttfa_p95_s": finite(ttfa.p95),
        "ttfa_missing": ttfa.missing, "e2e_p50_s": finite(e2e.p50), "e2e_p95_s": finite(e2e.p95),
        "throughput_per_min": metrics.throughput_per_min, "audio_s_per_s": metrics.audio_s_per_s,
        "underruns": metrics.underruns, "window_s": metrics.window_s,
        "server_first_chunk_p50_s": metrics.server_first_chunk_p50_s, "queue_wait_p50_s": metrics.queue_wait_p50_s,
        "ready_line": result.ready_line, "policy": row.policy,
    }}


def run_row(row: Row, device: str, repeats: int, warmup: int, left_s: float = 600.0) -> dict[str, Any]:
    if row.load:
        return run_load_row(row, device, left_s)
    from engines.base import SynthesisSettings
    from profiling.analysis.report import environment_lines
    from profiling.core.device import TimingMode
    from profiling.core.records import RunMode
    from profiling.run.runner import BenchRequest, EnginePool, run_bench

    pool = EnginePool()
    settings = SynthesisSettings(row.engine, device=device, precision=row.precision, knobs=row.knobs)
    voice = reference_voice(row.engine)
    conversion = (SynthesisSettings("rvc", device=device, precision=row.convert_precision, knobs=row.convert)
                  if row.convert is not None else None)
    request = BenchRequest(settings, TEXT, voice, repeats=repeats, warmup=warmup, timing=TimingMode(row.timing),
                           label=f"gpu_suite {row.name}", conversion=conversion)
    batch = run_bench(request, pool, None)
    out: dict[str, Any] = {"batch": summarise(batch)}
    out["environment"] = environment_lines(batch.records[0].environment, batch.records[0].timing_mode)
    for decoder in row.stream_decoders:
        stream_settings = settings.with_knobs(stream_decoder=decoder, stream_chunk_size=8)
        stream = run_bench(
            BenchRequest(stream_settings, TEXT, voice, RunMode.STREAM, repeats=repeats, warmup=1,
                         timing=TimingMode(row.timing)),
            pool, None,
        )
        out[f"stream_{decoder}"] = summarise(stream)
    return out


def child(args: argparse.Namespace) -> int:
    row = next(r for r in rows(args.tiny) if r.name == args.row)
    started = time.perf_counter()
    try:
        result = {"status": "ok", **run_row(row, args.device, args.repeats, args.warmup, args.left_s)}
    except Exception as error:  # a refusal or a failure is this row's result, not the suite's end
        # A load row's InputError is mostly its server failing to start: an error, not a refusal.
        refused = type(error).__name__ == "InputError" and not row.load
        result = {"status": "refused" if refused else "error",
                  "error": f"{type(error).__name__}: {error}".splitlines()[0]}
    result.update(row=asdict(row), device=args.device, seconds=round(time.perf_counter() - started, 1))
    write_row(Path(args.out), args.index, row.name, result)
    return 0


# --- the parent: budget, isolation, the table -----------------------------------------------------


def write_row(out: Path, index: int, name: str, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{index:02d}-{name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    stem.with_suffix(".md").write_text(row_markdown(result), encoding="utf-8")


def _ms(value: object) -> str:
    return f"{float(value) * 1000:.0f}" if isinstance(value, (int, float)) else "-"


def _value(value: object) -> str:
    """A table cell: floats to 4 significant digits, absent as '-'."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _num(value: object, digits: int = 3) -> str:
    return f"{float(value):.{digits}f}" if isinstance(value, (int, float)) else "-"


def row_markdown(result: dict[str, Any]) -> str:
    row = result["row"]
    lines = [f"# {row['name']} ({result['status']}, {result.get('seconds', '?')} s)", ""]
    lines.append(f"- {row['engine']} on {result.get('device')}, {row['precision']}, knobs {row['knobs']}, "
                 f"timing {row['timing']}")
    if row.get("convert") is not None:
        lines.append(f"- then RVC ({row.get('convert_precision', 'fp32')}), knobs {row['convert']}")
    if row.get("note"):
        lines.append(f"- {row['note']}")
    if result["status"] != "ok":
        lines.append(f"- {result.get('error', '')}")
        return "\n".join(lines) + "\n"
    lines += [f"- {line}" for line in result.get("environment", [])]
    if "load" in result:
        load = result["load"]
        lines += ["", "## load", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {name} | {_value(load.get(name))} |" for name in LOAD_FIELDS]
    for key in [k for k in result if k == "batch" or k.startswith("stream_")]:
        part = result[key]
        lines += ["", f"## {key}", "", "| metric | median |", "|---|---:|"]
        for name in ("rtf", "synth_s", "ttfa_s", "audio_s", "gpu_peak_allocated_mb", "gpu_peak_reserved_mb",
                     "gpu_util_mean_pct", "load_s", "recompiles_measured", "graph_breaks_measured",
                     "tts_rtf", "convert_rtf", "convert_load_s"):
            lines.append(f"| {name} | {part.get(name) if part.get(name) is not None else '-'} |")
        lines += ["", "| stage | median ms |", "|---|---:|"]
        lines += [f"| load: {k} | {_ms(v)} |" for k, v in part.get("load_stages_s", {}).items()]
        lines += [f"| {k} | {_ms(v)} |" for k, v in part.get("stages_s", {}).items()]
        lines += [f"| per item: {k} | {_ms(v)} |" for k, v in part.get("series_s", {}).items()]
    return "\n".join(lines) + "\n"


LOAD_FIELDS = ("users", "sent", "ok", "errors", "error_rate", "ttfa_p50_s", "ttfa_p95_s", "ttfa_missing",
               "e2e_p50_s", "e2e_p95_s", "throughput_per_min", "audio_s_per_s", "underruns", "window_s",
               "server_first_chunk_p50_s", "queue_wait_p50_s", "policy", "ready_line")


def load_table(results: list[dict[str, Any]]) -> str:
    """The load rows' own table (their figures are not a bench batch's); empty when none ran."""
    lines = []
    for result in results:
        if not result.get("row", {}).get("load"):
            continue
        load = result.get("load", {})
        status = result["status"] if result["status"] == "ok" else f"{result['status']}: {result.get('error', '')[:60]}"
        errors = sum(load.get("errors", {}).values()) if load else "-"
        lines.append(f"| {result['row']['name']} | {status} | {result['row'].get('policy', 'fifo')} | "
                     f"{load.get('users', '-')} | {load.get('sent', '-')} | "
                     f"{load.get('ok', '-')} | {errors} | {_ms(load.get('ttfa_p50_s'))} | "
                     f"{_ms(load.get('ttfa_p95_s'))} | {_num(load.get('throughput_per_min'), 1)} |")
    if not lines:
        return ""
    return "\n".join(["| load row | status | policy | users | sent | ok | errors | TTFA p50 ms | TTFA p95 ms "
                      "| requests/min |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|", *lines])


def summary_table(results: list[dict[str, Any]]) -> str:
    head = ("| row | status | RTF | synth ms | TTFA ms | stream TTFA ms (coqui/windowed) | peak GPU MiB | load s "
            "| recompiles |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        if result.get("row", {}).get("load"):  # its figures go to load_table
            continue
        batch = result.get("batch", {})
        streams = "/".join(_ms(result.get(f"stream_{d}", {}).get("ttfa_s")) for d in ("coqui", "windowed")
                           if f"stream_{d}" in result) or "-"
        status = result["status"] if result["status"] == "ok" else f"{result['status']}: {result.get('error', '')[:60]}"
        lines.append(
            f"| {result['row']['name']} | {status} | {_num(batch.get('rtf'))} | {_ms(batch.get('synth_s'))} | "
            f"{_ms(batch.get('ttfa_s'))} | {streams} | {_num(batch.get('gpu_peak_allocated_mb'), 0)} | "
            f"{_num(batch.get('load_s'), 1)} | {batch.get('recompiles_measured', '-')} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def parent(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("[0-9][0-9]-*.json"), *out.glob("[0-9][0-9]-*.md"), out / "summary.md"]:
        stale.unlink(missing_ok=True)  # an earlier run's rows must not pass for this run's
    deadline = time.monotonic() + args.budget_s
    chosen = [r for r in rows(args.tiny) if not args.only or r.name in args.only.split(",")]
    results: list[dict[str, Any]] = []
    for index, row in enumerate(chosen):
        left = deadline - time.monotonic()
        if left < args.min_row_s:
            result = {"status": "skipped", "error": f"time budget: {left:.0f} s left", "row": asdict(row)}
            write_row(out, index, row.name, result)
            results.append(result)
            continue
        command = [sys.executable, __file__, "--row", row.name, "--index", str(index), "--out", str(out),
                   "--device", args.device, "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
        if args.tiny:
            command.append("--tiny")
        print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {row.name} ({left:.0f} s left)", flush=True)
        command += ["--left-s", f"{left:.0f}"]
        # Its own session: a cut takes the row's children too (the load row's server, compile workers).
        process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        try:
            process.wait(timeout=left)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            write_row(out, index, row.name, {"status": "timeout", "error": f"cut at the budget ({left:.0f} s)",
                                             "row": asdict(row)})
        except BaseException:  # Ctrl-C: nothing of the row may outlive the suite
            os.killpg(process.pid, signal.SIGKILL)
            raise
        written = out / f"{index:02d}-{row.name}.json"
        if not written.exists():  # the child died before writing (a crash, a kill)
            died = {"status": "crashed", "error": "the row's process died", "row": asdict(row)}
            write_row(out, index, row.name, died)
        results.append(json.loads(written.read_text(encoding="utf-8")))
    env = next((r["environment"] for r in results if r.get("environment")), [])
    table = summary_table(results)
    loads = load_table(results)
    header = [
        "# GPU suite", "",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- command: `python benchmarks/gpu_suite.py {' '.join(sys.argv[1:])}`",
        f"- device {args.device}, {'tiny' if args.tiny else 'full-size'} random weights (audio is noise), "
        f"{args.warmup} warm-up + {args.repeats} measured runs per row, budget {args.budget_s:.0f} s",
        *[f"- {line}" for line in env],
        f"- F5 published figures, for the F5 rows: {F5_PUBLISHED}",
        "- per-stage times, load stages, per-NFE-step and per-token times: the row files (NN-row.md / .json)",
        "", *([table, ""] if table else []),
        *([loads, ""] if loads else []),
    ]
    (out / "summary.md").write_text("\n".join(header), encoding="utf-8")
    print("\n".join(header))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu-suite-out", help="folder for the row files and summary.md")
    parser.add_argument("--device", default=None, help="default: cuda:0 when torch sees a GPU, else cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny random models (the CPU rehearsal)")
    parser.add_argument("--budget-s", type=float, default=360.0, help="time budget in seconds (default 6 min)")
    parser.add_argument("--min-row-s", type=float, default=20.0, help="start no row with less time left")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated row names")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--left-s", type=float, default=600.0, help=argparse.SUPPRESS)  # budget left for the row
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda:0" if torch.cuda.is_available() else "cpu"
    return child(args) if args.row else parent(args)


if __name__ == "__main__":
    sys.exit(main())
