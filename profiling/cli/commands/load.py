"""``load``: open-loop (or closed-loop) load test against the lab server, the null target or a URL."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

from engines.errors import InputError
from engines.registry import DEFAULT_ENGINE
from profiling import api
from profiling.audio.playback import PlaybackSettings
from profiling.cli.commands.common import add_store_args, open_store
from profiling.loadgen.client import ClientOptions, RequestRow
from profiling.loadgen.metrics import RateMetrics, Slo
from profiling.loadgen.null_target import FaultSettings
from profiling.loadgen.runner import LoadTest
from profiling.loadgen.schedule import parse_rates
from profiling.loadgen.targets import TargetSpec
from profiling.run.inputs import parse_knobs
from profiling.serve.voices import parse_voice_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("load", help="load test a speech server: percentiles, goodput, capacity")
    target = parser.add_argument_group("target (default: the lab server, started and stopped here)")
    target.add_argument("--engine", default=DEFAULT_ENGINE, help="engine the lab server runs")
    target.add_argument("--workers", type=int, default=1, help="engine replicas in the lab server")
    target.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE", help="engine knob")
    target.add_argument("--device", default="cpu")
    target.add_argument("--convert", default="", metavar="STAGE",
                        help="the lab server converts every chunk with this stage (rvc) before sending it")
    target.add_argument("--convert-knob", action="append", default=[], metavar="NAME=VALUE", help="stage knob")
    target.add_argument("--queue-size", type=int, default=64, help="server queue before 429")
    target.add_argument("--url", default="", help="test this server instead (loopback)")
    target.add_argument("--null", action="store_true", help="the built-in null target: the generator's own ceiling")
    target.add_argument("--faults", default="", help="null target faults as JSON (FaultSettings fields)")
    voices = parser.add_argument_group("voices (cloning engines: xtts, f5; the lab server offers `default`)")
    voices.add_argument("--voice", action="append", default=[], metavar="NAME=PATH[,text=TRANSCRIPT]",
                        help="a reference voice the lab server offers (repeatable; passed as serve --voice)")
    voices.add_argument("--client-voice", default="default", metavar="NAME",
                        help="the voice every request asks for (default: default)")
    load = parser.add_argument_group("load")
    load.add_argument("--rates", default="", help="requests per second, comma-separated (open loop, Poisson)")
    load.add_argument("--users", default="", help="concurrent users, comma-separated (closed loop)")
    load.add_argument("--burstiness", type=float, default=1.0, help="gamma shape: 1 Poisson, <1 burstier")
    load.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per rate (default 20)")
    load.add_argument("--max-requests", type=int, default=1000, help="at most this many requests per rate")
    load.add_argument("--warmup", type=int, default=2, help="first requests of each rate left out (default 2)")
    load.add_argument("--seed", type=int, default=0)
    load.add_argument("--text-set", default="medium", help="prompts, in file order (default medium)")
    load.add_argument("--max-in-flight", type=int, default=256, help="arrivals over this are dropped")
    load.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds")
    load.add_argument("--drain", type=float, default=30.0, help="seconds in-flight requests get after the last arrival")
    load.add_argument("--format", choices=("pcm", "wav"), default="pcm")
    load.add_argument("--prebuffer-ms", type=float, default=0.0, help="simulated player pre-buffer")
    slo = parser.add_argument_group("SLO")
    slo.add_argument("--slo-ttfa-ms", type=float, default=800.0, help="audible TTFA bound (default 800)")
    slo.add_argument("--slo-percentile", type=int, default=95, choices=(50, 90, 95, 99))
    slo.add_argument("--slo-underruns", type=int, default=0, help="underruns allowed (default 0)")
    slo.add_argument("--slo-error-rate", type=float, default=0.0, help="error rate allowed (default 0)")
    parser.add_argument("--label", default="")
    parser.add_argument("--no-store", action="store_true", help="do not store the test")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    add_store_args(parser)
    parser.set_defaults(handler=run)


def _test_from_args(args: argparse.Namespace) -> LoadTest:
    if args.url and args.null:
        raise InputError("give --url or --null, not both")
    if not (math.isfinite(args.drain) and 0 <= args.drain <= 3600):
        raise InputError(f"--drain must be in [0, 3600] seconds, got {args.drain:g}")
    if not (math.isfinite(args.duration) and 0 < args.duration <= 3600):
        raise InputError(f"--duration must be in (0, 3600] seconds, got {args.duration:g}")
    kind = "url" if args.url else "null" if args.null else "lab"
    spec = TargetSpec(kind=kind, engine=args.engine, workers=args.workers, device=args.device,
                      knobs=tuple(parse_knobs(args.knob).items()), queue_size=args.queue_size,
                      request_timeout_s=args.timeout, url=args.url, faults=FaultSettings.from_json(args.faults),
                      convert=args.convert.strip(), convert_knobs=tuple(parse_knobs(args.convert_knob).items()))
    if (args.convert or args.convert_knob) and kind != "lab":
        raise InputError("--convert and --convert-knob apply to the lab server, not --url or --null")
    if args.convert_knob and not args.convert:
        raise InputError("--convert-knob needs --convert (e.g. --convert rvc)")
    if kind == "lab" and not 1 <= args.workers <= 64:
        raise InputError(f"--workers must be between 1 and 64, got {args.workers}")
    if args.voice:
        if kind != "lab":
            raise InputError("--voice applies to the lab server, not --url or --null")
        options = [parse_voice_option(option) for option in args.voice]  # one line for a bad option, here
        voices = tuple((name, str(path.resolve()) + (f",text={text}" if text else "")) for name, path, text in options)
        spec = replace(spec, voices=voices)
    rates = parse_rates(args.rates) if args.rates else ()
    try:
        users = tuple(int(u) for u in args.users.split(",") if u.strip()) if args.users else ()
    except ValueError:
        raise InputError(f"--users must be whole numbers separated by commas, got {args.users!r}") from None
    if not rates and not users:
        rates = (1.0,)
    client = ClientOptions(warmup=args.warmup, max_in_flight=args.max_in_flight, request_timeout_s=args.timeout,
                           drain_s=args.drain, response_format=args.format,
                           playback=PlaybackSettings(prebuffer_ms=args.prebuffer_ms))
    client = replace(client, voice=args.client_voice.strip() or "default")
    slo = Slo(ttfa_ms=args.slo_ttfa_ms, percentile=args.slo_percentile, max_underruns=args.slo_underruns,
              max_error_rate=args.slo_error_rate)
    return LoadTest(target=spec, rates=rates, users=users, duration_s=args.duration, max_requests=args.max_requests,
                    burstiness=args.burstiness, seed=args.seed, text_set=args.text_set, client=client, slo=slo,
                    label=args.label)


def _ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:.0f}"


def rate_table(metrics: list[RateMetrics], slo: Slo) -> str:
    p = slo.percentile
    header = (f"{'load':>10} {'sent':>5} {'ok':>5} {'ttfa p50':>8} {'p95':>6} {'p99':>6} {'e2e p50':>8} {'p95':>6} "
              f"{'lag p95':>7} {'req/min':>7} {'good/min':>8} {'audio s/s':>9} {'underr':>6} {'errors':>14} "
              f"{'q wait':>6} {'cli cpu':>7}  SLO")
    lines = [header]
    for m in metrics:
        ttfa, e2e, lag = m.dist("audible_ttfa_s"), m.dist("e2e_s"), m.dist("lag_s")
        errors = ",".join(f"{k}:{v}" for k, v in sorted(m.errors.items())) or "-"
        queue = "-" if m.queue_wait_p50_s is None else f"{m.queue_wait_p50_s * 1000:.0f}"
        verdict = "met" if m.slo_met else f"missed ({m.slo_reason})"
        lines.append(
            f"{m.label:>10} {m.sent:>5} {m.ok:>5} {_ms(ttfa.p50):>8} {_ms(ttfa.p95):>6} {_ms(ttfa.p99):>6} "
            f"{_ms(e2e.p50):>8} {_ms(e2e.p95):>6} {_ms(lag.p95):>7} {m.throughput_per_min:>7.1f} "
            f"{m.goodput_per_min:>8.1f} {m.audio_s_per_s:>9.2f} {m.underruns:>6} {errors:>14} {queue:>6} "
            f"{m.client_cpu_fraction:>7.2f}  {verdict}")
    lines.append(f"times in ms (audible TTFA and E2E from dispatch; SLO on p{p}); q wait = server queue p50")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    test = _test_from_args(args)
    test.schedules()  # bad rates or durations: one line before anything starts
    store = None if args.no_store else open_store(args)

    def progress(label: str, rows: list[RequestRow], planned: int) -> None:
        if args.quiet or len(rows) % 10:
            return
        failed = sum(not r.ok for r in rows)
        print(f"  {label}: {len(rows)}/{planned} done, {failed} failed", file=sys.stderr, flush=True)

    def rate_done(m: RateMetrics) -> None:
        if not args.quiet:
            print(f"  {m.label}: {m.ok}/{m.sent} ok, SLO {'met' if m.slo_met else 'missed'}", file=sys.stderr)

    print(f"load test: {test.target.label}; {len(test.schedules())} loads x {test.duration_s:g} s; "
          f"seed {test.seed}; texts {test.text_set}", flush=True)
    result = api.run_load(test, store=store, progress=progress, on_rate=rate_done).result
    print(rate_table(result.metrics, test.slo))
    print(result.capacity.describe())
    if any(m.client_limited for m in result.metrics):
        print("note: at loads marked client-limited the generator was late (lag p95 over the bound): "
              "those figures measure the client too")
    if store is not None:
        print(f"stored load test {result.test_id} in {store.db_path}")
    return 0
