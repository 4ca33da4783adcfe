"""``serve``: any lab engine behind the OpenAI speech endpoint, N replicas, a bounded queue."""

from __future__ import annotations

import argparse

from engines.base import SynthesisSettings
from engines.registry import DEFAULT_ENGINE
from profiling.cli.commands.conversion_args import add_conversion_args, conversion_from_args
from profiling.run.inputs import parse_knobs
from profiling.serve.app import ServeSettings
from profiling.serve.server import ServerOptions, serve


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve an engine over HTTP (POST /v1/audio/speech)")
    parser.add_argument("--engine", default=DEFAULT_ENGINE, help="engine name (see `engines`)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (every worker)")
    parser.add_argument("--devices", default="", help="comma-separated devices, workers placed round robin")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE", help="engine knob (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="engine replicas (threads), default 1")
    parser.add_argument("--queue-size", type=int, default=32, help="requests waiting before 429 (default 32)")
    parser.add_argument("--timeout", type=float, default=60.0, help="request timeout in seconds (default 60)")
    parser.add_argument("--max-chars", type=int, default=2000, help="longest input accepted (default 2000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    add_conversion_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = SynthesisSettings(engine=args.engine, device=args.device, precision=args.precision,
                                 knobs=parse_knobs(args.knob), seed=args.seed)
    devices = tuple(d.strip() for d in args.devices.split(",") if d.strip())
    serve(ServerOptions(settings=settings, workers=args.workers, host=args.host, port=args.port,
                        queue_size=args.queue_size, devices=devices, conversion=conversion_from_args(args),
                        serve=ServeSettings(max_chars=args.max_chars, request_timeout_s=args.timeout)))
    return 0
