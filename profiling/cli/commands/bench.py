"""``bench``: repeated measured synthesis, stage table, runs stored."""

from __future__ import annotations

import argparse
import sys

from profiling import api
from profiling.analysis.report import (
    environment_lines,
    load_stage_table,
    series_table,
    stage_memory_table,
    summary_table,
)
from profiling.cli.commands.common import (
    LazyBar,
    add_engine_args,
    add_store_args,
    engine_kwargs,
    open_store,
    text_from_args,
)
from profiling.cli.commands.conversion_args import add_conversion_args, conversion_from_args
from profiling.core.device import TimingMode
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.core.stats import summarize_series


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure synthesis: stage table, RTF, TTFA")
    add_engine_args(parser)
    add_conversion_args(parser)
    add_store_args(parser)
    parser.add_argument("--repeats", type=int, default=5, help="measured runs (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs, stored but flagged")
    parser.add_argument(
        "--mode", choices=[m.value for m in RunMode], default=RunMode.BATCH.value,
        help="batch: whole text at once; stream: engine streaming (TTFA = first chunk)",
    )
    parser.add_argument("--label", default="", help="free text stored with the runs")
    parser.add_argument(
        "--timing", choices=[TimingMode.SYNC.value, TimingMode.EVENTS.value], default=TimingMode.SYNC.value,
        help="torch on CUDA: sync = wait for the device at every stage edge (exact attribution); "
        "events = CUDA events at the edges, one wait at the end (no perturbation)",
    )
    parser.add_argument("--save-audio", action="store_true", help="keep the last run's WAV")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def conversion_line(records: list[RunRecord]) -> str:
    """'rvc on cpu fp32 (weights=..., f0_method=...) (random weights in ...); model load 3.10 s; model cache
    hit on 5 of 6 runs'."""
    first = records[0]
    assert first.conversion is not None
    stage = first.conversion
    parts = first.model.get(f"{stage.engine}_random_parts", "")
    noise = f" (random weights in {parts}: the converted audio is noise)" if parts not in ("", "none") else ""
    hits = sum(1 for r in records if r.annotations.get("convert_cache") == "hit")
    load = f"{first.convert_load_s:.2f} s" if first.convert_load_s is not None else "cached"
    knobs = ", ".join(f"{k}={v}" for k, v in stage.knobs.items() if k in ("weights", "f0_method", "index", "pitch"))
    return (f"{stage.engine} on {stage.device} {stage.precision} ({knobs}){noise}; model load {load}; "
            f"model cache hit on {hits} of {len(records)} runs")


def run(args: argparse.Namespace) -> int:
    request = api.bench_request(
        args.engine, text_from_args(args), mode=args.mode, repeats=args.repeats, warmup=args.warmup,
        save_audio=args.save_audio, label=args.label, timing=args.timing, conversion=conversion_from_args(args),
        **engine_kwargs(args),
    )
    store = open_store(args)
    with LazyBar(f"{args.engine} {args.mode}", args.no_progress) as bar:
        def progress(done: int, total: int, record: RunRecord) -> None:
            bar.update(done, total, f"rtf={record.rtf:.3f}" + (" (warm-up)" if record.warmup else ""))

        result = api.run_request(request, store=store, progress=progress).result
    failed = [r for r in result.records if r.status is RunStatus.ERROR]
    if failed:
        print(f"error: synthesis failed: {failed[0].error}", file=sys.stderr)
        return 1
    first = result.records[0]
    engine_random = bool(first.annotations.get("engine_random_weights", first.random_weights))
    weights = "RANDOM WEIGHTS (audio is noise)" if engine_random else "trained weights"
    load = f"{result.load_s:.2f} s" if result.load_s is not None else "reused"
    print(
        f"{args.engine} on {first.settings.device} {first.settings.precision}, {args.mode} mode, "
        f"{weights}; {len(first.text)} chars; model load {load}"
    )
    if first.conversion is not None:
        print(f"  then {conversion_line(result.records)}")
    for line in environment_lines(first.environment, first.timing_mode):
        print(f"  {line}")
    if result.load_stages:
        print(load_stage_table(result.load_stages, result.load_s))
    stage = first.conversion.engine if first.conversion is not None else None
    converter_load = [s for s in first.load_stages if s.name.split("/")[0] == stage]
    if converter_load:
        print(load_stage_table(converter_load, first.convert_load_s))
    print(summary_table(result.stage_summary, result.metric_summary))
    memory = stage_memory_table(result.records[-1].stages)
    if memory:
        print(memory)
    compiled = [r for r in result.records if not r.warmup and r.recompiles]
    if compiled:
        print(f"warning: {len(compiled)} measured run(s) compiled (torch.compile recompiles: "
              f"{', '.join(str(r.recompiles) for r in compiled)}); raise --warmup or check input shapes")
    series = summarize_series(result.records)
    if series:
        print(series_table(series))
    rtf, ttfa = result.metric("rtf"), result.metric("ttfa_s")
    print(f"RTF median {rtf.median:.3f} (p95 {rtf.p95:.3f}); TTFA median {ttfa.median * 1000:.1f} ms")
    if first.conversion is not None:
        tts, conv = result.metric("tts_rtf"), result.metric("convert_rtf")
        print(f"RTF split: {args.engine} {tts.median:.3f} + {first.conversion.engine} {conv.median:.3f} "
              f"(conversion adds {conv.median / tts.median:.0%} to {args.engine} alone)")
    print(f"stored {len(result.records)} runs (batch {result.batch_id}) in {store.db_path}")
    return 0
