"""``serve``: any lab engine behind the OpenAI speech endpoint, N replicas, a bounded queue."""

from __future__ import annotations

import argparse
import os

from engines.base import SynthesisSettings
from engines.errors import InputError
from engines.registry import DEFAULT_ENGINE, default_precision
from profiling.cli.commands.conversion_args import add_conversion_args, conversion_from_args
from profiling.run.inputs import parse_knobs
from profiling.serve.app import ServeSettings
from profiling.serve.guards import API_KEY_ENV, DEFAULT_MAX_BODY_BYTES, resolve_api_key
from profiling.serve.scheduling import SchedulingSettings
from profiling.serve.server import ServerOptions, serve


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve an engine over HTTP (POST /v1/audio/speech)")
    parser.add_argument("--engine", default=DEFAULT_ENGINE, help="engine name (see `engines`)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (every worker)")
    parser.add_argument("--devices", default="", help="comma-separated devices, workers placed round robin")
    parser.add_argument("--precision", default="", help="default: the engine's first")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE", help="engine knob (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="engine replicas (threads), default 1")
    parser.add_argument("--queue-size", type=int, default=32, help="requests waiting before 429 (default 32)")
    parser.add_argument("--timeout", type=float, default=60.0, help="request timeout in seconds (default 60)")
    parser.add_argument("--max-chars", type=int, default=2000, help="longest input accepted (default 2000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    scheduling = parser.add_argument_group("scheduling (docs/serving.md)")
    scheduling.add_argument("--policy", default="fifo",
                            help="fifo, round-robin, window:K (K active streams per worker) or edf (default fifo)")
    scheduling.add_argument("--chunker", choices=("lab", "engine"), default="lab",
                            help="lab: the lab's chunker (short first chunk); engine: the engine's own split")
    scheduling.add_argument("--first-chunk-chars", type=int, default=20, help="lab chunker: first chunk (default 20)")
    scheduling.add_argument("--chunk-chars", type=int, default=150, help="lab chunker: later chunks (default 150)")
    scheduling.add_argument("--sentence-only-after", type=float, default=5.0,
                            help="lab chunker: seconds of audio after which chunks end at sentences (default 5)")
    scheduling.add_argument("--ttfa-target-ms", type=float, default=500.0,
                            help="first-chunk deadline (edf) and admission bound (default 500)")
    scheduling.add_argument("--deadline-margin-ms", type=float, default=100.0,
                            help="edf: later chunks are due this long before the player needs them (default 100)")
    scheduling.add_argument("--admit", choices=("none", "slo"), default="none",
                            help="slo: refuse (503) a request whose first chunk would already miss the target")
    scheduling.add_argument("--max-unread-chunks", type=int, default=8,
                            help="chunks a slow reader may leave unread before its stream waits (default 8)")
    scheduling.add_argument("--sample-rate", default="24000",
                            help="rate sent: 24000 (default, resampled when needed) or native")
    parser.add_argument("--voice", action="append", default=[], metavar="NAME=PATH[,text=TRANSCRIPT]",
                        help="a reference voice the server offers (repeatable)")
    parser.add_argument("--api-key", default="",
                        help=f"require Authorization: Bearer KEY on every route but /health (default: ${API_KEY_ENV}, "
                        "which keeps the key out of the process list; none when both are empty)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="largest request body, 413 beyond it (default 1 MiB; voice uploads: 10 MB)")
    add_conversion_args(parser)
    parser.set_defaults(handler=run)


def scheduling_from_args(args: argparse.Namespace) -> SchedulingSettings:
    rate = args.sample_rate.strip().lower()
    if rate != "native" and not rate.isdigit():
        raise InputError(f"--sample-rate must be a number of Hz or native, got {args.sample_rate!r}")
    return SchedulingSettings(
        policy=args.policy.strip(), chunker=args.chunker, first_chunk_chars=args.first_chunk_chars,
        chunk_chars=args.chunk_chars, sentence_only_after_s=args.sentence_only_after,
        ttfa_target_ms=args.ttfa_target_ms, deadline_margin_ms=args.deadline_margin_ms, admit=args.admit,
        max_unread_chunks=args.max_unread_chunks, output_rate=0 if rate == "native" else int(rate))


def run(args: argparse.Namespace) -> int:
    precision = args.precision or default_precision(args.engine)
    settings = SynthesisSettings(engine=args.engine, device=args.device, precision=precision,
                                 knobs=parse_knobs(args.knob), seed=args.seed)
    devices = tuple(d.strip() for d in args.devices.split(",") if d.strip())
    serve(ServerOptions(settings=settings, workers=args.workers, host=args.host, port=args.port,
                        queue_size=args.queue_size, devices=devices, conversion=conversion_from_args(args),
                        serve=ServeSettings(max_chars=args.max_chars, request_timeout_s=args.timeout),
                        scheduling=scheduling_from_args(args), voices=tuple(args.voice),
                        api_key=resolve_api_key(args.api_key, os.environ), max_body_bytes=args.max_body_bytes))
    return 0
