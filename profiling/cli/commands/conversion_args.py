"""The post-synthesis stage's command-line arguments (bench, stream, serve, load); imports nothing heavy."""

from __future__ import annotations

import argparse

from engines.base import SynthesisSettings
from engines.errors import InputError
from profiling.run.inputs import parse_knobs


def add_conversion_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("post-synthesis stage (voice conversion)")
    group.add_argument("--convert", metavar="STAGE", help="send each run's audio through this stage (rvc)")
    group.add_argument("--convert-knob", action="append", default=[], metavar="NAME=VALUE",
                       help="stage knob (repeatable); `engines --knobs` lists them")
    group.add_argument("--convert-precision", default="fp32",
                       help="fp32 or fp16 (GPU only); the stage runs on the engine's --device")


def conversion_from_args(args: argparse.Namespace) -> SynthesisSettings | None:
    """The stage's settings, or None; a stage knob given without --convert is refused rather than ignored."""
    if not args.convert:
        if args.convert_knob:
            raise InputError("--convert-knob needs --convert (e.g. --convert rvc)")
        return None
    return SynthesisSettings(args.convert.strip(), device=args.device, precision=args.convert_precision.strip(),
                             knobs=parse_knobs(args.convert_knob), seed=args.seed)
