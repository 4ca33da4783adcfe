"""Arguments shared by the subcommands that run an engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engines.base import DEFAULT_MAX_TEXT_CHARS, SynthesisSettings, Voice
from engines.errors import InputError
from engines.registry import DEFAULT_ENGINE
from profiling import api
from profiling.run.inputs import DEFAULT_TEXT, MAX_CHARS_ENV, default_max_chars, parse_knobs
from profiling.store.results import ResultsStore


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default=DEFAULT_ENGINE, help="engine name (see `engines`)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="", help="fp32, fp16, bf16 or int8 (default: the engine's first)")
    parser.add_argument(
        "--knob", action="append", default=[], metavar="NAME=VALUE",
        help="engine knob (repeatable); `engines --knobs` lists them",
    )
    parser.add_argument("--seed", type=int, default=0)
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--text", help="text to synthesize")
    text.add_argument("--text-file", type=Path, help="read the text from this UTF-8 file")
    parser.add_argument(
        "--max-chars", type=int, default=default_max_chars(),
        help=f"refuse longer text (default {DEFAULT_MAX_TEXT_CHARS}, or ${MAX_CHARS_ENV})",
    )
    parser.add_argument("--reference-audio", type=Path, help="reference WAV (cloning engines)")
    parser.add_argument("--reference-text", help="transcript of the reference audio")
    parser.add_argument("--speaker", help="named speaker (multi-speaker engines)")


def add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="results store directory (default $TTSPERF_DATA_DIR or ~/.ttsperf)",
    )


def open_store(args: argparse.Namespace) -> ResultsStore:
    return api.open_store(args.data_dir)


def engine_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments ``add_engine_args`` declares, as keywords of the API's ``*_request`` functions."""
    return dict(
        device=args.device, precision=args.precision, seed=args.seed, max_chars=args.max_chars,
        speaker=args.speaker, reference_audio=args.reference_audio, reference_text=args.reference_text,
        knobs=parse_knobs(args.knob),
    )


def settings_from_args(args: argparse.Namespace) -> SynthesisSettings:
    return api.settings(args.engine, args.device, args.precision, args.seed, parse_knobs(args.knob))


def voice_from_args(args: argparse.Namespace) -> Voice:
    return api.voice(args.speaker, args.reference_audio, args.reference_text)


def text_from_args(args: argparse.Namespace) -> str:
    if args.text_file is not None:
        try:
            return args.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read --text-file {args.text_file}: {error}") from None
    return args.text if args.text is not None else DEFAULT_TEXT


class LazyBar:
    """A progress bar that appears at the first update: bad input, refused before any run, prints one line alone."""

    def __init__(self, desc: str, disable: bool) -> None:
        self.desc, self.disable = desc, disable
        self.bar: tqdm | None = None

    def update(self, done: int, total: int, postfix: str = "") -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="run", file=sys.stderr, disable=self.disable,
                            leave=False)
        if postfix:
            self.bar.set_postfix_str(postfix)
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> LazyBar:
        return self

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.close()
