"""``stream``: a measured streaming run: chunks, TTFA, first audible, underruns, stall, ITL, joins.

With ``--sweep-first-chunk`` / ``--sweep-prebuffer`` it runs the grid instead and names the
first-chunk size and pre-buffer with the earliest first audio and no underrun.
"""

from __future__ import annotations

import argparse
import math
import sys

from tqdm import tqdm

from engines.chunking import ChunkingSettings
from engines.errors import InputError
from profiling import api
from profiling.api.inputs import parse_sizes, parse_values
from profiling.api.tables import format_table, measured
from profiling.api.types import BenchRequest, RunRecord, RunStatus, SweepResult
from profiling.cli.commands.bench import conversion_line
from profiling.cli.commands.common import (
    LazyBar,
    add_engine_args,
    add_store_args,
    engine_kwargs,
    open_store,
    text_from_args,
)
from profiling.cli.commands.conversion_args import add_conversion_args, conversion_from_args

CHUNKERS = api.CHUNKERS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stream", help="streaming run: chunks, TTFA, first audible, underruns, stall, ITL, joins"
    )
    add_engine_args(parser)
    add_conversion_args(parser)
    add_store_args(parser)
    parser.add_argument("--repeats", type=int, default=1, help="measured runs (default 1)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs, stored but flagged")
    parser.add_argument(
        "--chunker", choices=CHUNKERS, default="lab",
        help="lab: the lab's chunker, one synthesis per chunk (default); engine: the engine's own stream()",
    )
    defaults = ChunkingSettings()
    parser.add_argument("--first-chunk-max-chars", type=int, default=None,
                        help=f"lab chunker: longest first chunk (default {defaults.first_chunk_max_chars})")
    parser.add_argument("--max-chars-per-chunk", type=int, default=None,
                        help=f"lab chunker: later chunks' limit (default {defaults.max_chars})")
    parser.add_argument("--sentence-only-after-s", type=float, default=None,
                        help=f"lab chunker: cut only at sentence ends after this much audio "
                             f"(default {defaults.sentence_only_after_s:g} s)")
    parser.add_argument("--prebuffer-ms", type=float, default=0.0, help="player pre-buffer (default 0)")
    parser.add_argument("--audio-block-ms", type=float, default=20.0, help="player block size (default 20)")
    parser.add_argument("--sweep-first-chunk", metavar="N,N,...",
                        help="sweep these first-chunk sizes (lab chunker), e.g. 10,20,40")
    parser.add_argument("--sweep-prebuffer", metavar="MS,MS,...",
                        help="sweep these pre-buffers in ms, e.g. 0,100,250,500")
    parser.add_argument("--label", default="", help="free text stored with the runs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab_only = {
        "--first-chunk-max-chars": args.first_chunk_max_chars, "--max-chars-per-chunk": args.max_chars_per_chunk,
        "--sentence-only-after-s": args.sentence_only_after_s, "--sweep-first-chunk": args.sweep_first_chunk,
    }
    given = [name for name, value in lab_only.items() if value is not None]
    if args.chunker == "engine" and given:
        raise InputError(f"{', '.join(given)} only apply to --chunker lab")
    request = api.stream_request(
        args.engine, text_from_args(args), chunker=args.chunker, first_chunk_max_chars=args.first_chunk_max_chars,
        max_chars_per_chunk=args.max_chars_per_chunk, sentence_only_after_s=args.sentence_only_after_s,
        prebuffer_ms=args.prebuffer_ms, audio_block_ms=args.audio_block_ms, repeats=args.repeats,
        warmup=args.warmup, label=args.label, conversion=conversion_from_args(args), **engine_kwargs(args),
    )
    api.validate_request(request)  # before anything loads, so bad input prints one line
    if request.conversion is not None:
        api.validate_conversion(request.conversion)
    if (args.sweep_first_chunk is not None or args.sweep_prebuffer is not None) and request.conversion is not None:
        raise InputError("--convert is not part of the streaming sweeps yet: run one stream per setting")
    if args.sweep_first_chunk is not None or args.sweep_prebuffer is not None:
        return run_sweep(args, request)
    store = open_store(args)
    with LazyBar(f"{args.engine} stream", args.no_progress) as bar:
        result = api.run_request(request, store=store, progress=lambda done, total, _: bar.update(done, total)).result
    failed = [r for r in result.records if r.status is RunStatus.ERROR]
    if failed:
        print(f"error: synthesis failed: {failed[0].error}", file=sys.stderr)
        return 1
    runs = measured(result.records)
    last = runs[-1]
    if last.conversion is not None:
        print(f"each chunk converted by {conversion_line(result.records)}")
    print(
        f"{args.engine} on {last.settings.device}, chunker {args.chunker}; "
        f"pre-buffer {args.prebuffer_ms:g} ms, block {args.audio_block_ms:g} ms; {len(last.text)} chars"
    )
    print(stream_report(last))
    if len(runs) > 1:
        print(f"\nover {len(runs)} measured runs:")
        print(repeats_table(runs))
    print(f"stored {len(result.records)} runs (batch {result.batch_id}) in {store.db_path}")
    return 0


def ms(seconds: float) -> str:
    return "-" if not math.isfinite(seconds) else f"{seconds * 1000:.1f} ms"


def stream_report(record: RunRecord) -> str:
    """Per-chunk table, player figures and joins of one stream run (shared with the dashboard)."""
    rows = []
    previous = 0.0
    for chunk in record.chunks:
        rows.append((str(chunk.index), repr(chunk.text.strip()), ms(chunk.ready_s - previous),
                     ms(chunk.ready_s), f"{chunk.audio_s:.2f} s"))
        previous = chunk.ready_s
    lines = [format_table(("chunk", "text", "synthesis", "ready", "duration"), rows, right=(0, 2, 3, 4))]
    report = record.playback
    if report is not None:
        lines += [
            "",
            f"TTFA {ms(report.ttfa_s)}; first audible {ms(report.first_audible_s)} "
            f"(playback starts {ms(report.playback_start_s)}, leading silence {ms(report.leading_silence_s)})",
            f"underruns {report.underrun_count}, total stall {ms(report.total_stall_s)}; "
            f"real-time safe: {'yes' if report.realtime_safe else 'no'}; "
            f"stall-free start at {ms(report.stall_free_start_s)}",
            f"inter-chunk latency p50 {ms(report.itl_p50_s)}, p95 {ms(report.itl_p95_s)}, "
            f"p99 {ms(report.itl_p99_s)} ({report.itl_count} gaps)",
        ]
        for underrun in report.underruns:
            lines.append(f"  underrun at {ms(underrun.at_s)} for {ms(underrun.duration_s)} "
                         f"(after {underrun.audio_position_s:.2f} s of audio)")
    if record.joins:
        join_rows = [
            (f"{j.left}->{j.right}", f"{j.repeat_score:.2f}", "REPEAT" if j.repeated else "ok",
             f"{j.click_jump:.3f}", f"{j.click_ratio:.1f}", "CLICK" if j.click else "ok")
            for j in record.joins
        ]
        lines += ["", format_table(("join", "repeat corr", "repeat", "jump", "jump ratio", "click"),
                                   join_rows, right=(1, 3, 4))]
    else:
        lines.append("no joins (one chunk)")
    lines += [f"chunker warning: {w}" for w in record.chunk_warnings]
    return "\n".join(lines)


def repeats_table(runs: list[RunRecord]) -> str:
    rows = [
        (str(r.repeat_index), ms(r.playback.ttfa_s), ms(r.playback.first_audible_s),
         str(r.playback.underrun_count), ms(r.playback.total_stall_s), f"{r.rtf:.3f}")
        for r in runs if r.playback is not None
    ]
    return format_table(("run", "TTFA", "first audible", "underruns", "stall", "RTF"), rows,
                        right=(0, 1, 2, 3, 4, 5))


def run_sweep(args: argparse.Namespace, request: BenchRequest) -> int:
    if request.chunking is None:
        raise InputError("the sweep varies the lab chunker's first chunk: use --chunker lab")
    sizes = (parse_sizes(args.sweep_first_chunk) if args.sweep_first_chunk is not None
             else (request.chunking.first_chunk_max_chars,))
    prebuffers = (parse_values(args.sweep_prebuffer, "pre-buffers") if args.sweep_prebuffer is not None
                  else (request.playback.prebuffer_ms,))
    store = open_store(args)
    total = (request.warmup + request.repeats) * len(sizes)
    with tqdm(total=total, desc=f"{args.engine} stream sweep", unit="run", file=sys.stderr,
              disable=args.no_progress, leave=False) as bar:
        result = api.stream_sweep(request, sizes, prebuffers, store=store, progress=lambda *_: bar.update(1))
    print(sweep_table(result))
    print(best_line(result))
    print(f"stored {total} runs (label 'stream-sweep {result.sweep_id} ...') in {store.db_path}")
    return 0


def sweep_table(result: SweepResult) -> str:
    rows = [
        (str(p.first_chunk_max_chars), f"{p.prebuffer_ms:g}", ms(p.ttfa_median_s), ms(p.first_audible_median_s),
         ms(p.stall_median_s), ms(p.stall_max_s), f"{p.underrun_runs}/{p.runs}")
        for p in result.points
    ]
    headers = ("first chunk", "pre-buffer ms", "TTFA", "first audible", "stall median", "stall max",
               "runs w/ underrun")
    return format_table(headers, rows, right=range(len(headers)))


def best_line(result: SweepResult) -> str:
    best = result.best()
    if best is None:
        return "no setting in the grid played without an underrun: try larger pre-buffers"
    return (
        f"best: first chunk {best.first_chunk_max_chars} chars, pre-buffer {best.prebuffer_ms:g} ms: "
        f"TTFA {ms(best.ttfa_median_s)}, first audible {ms(best.first_audible_median_s)}, "
        f"no underrun in {best.runs} runs"
    )
