"""Entry point of ``python -m profiling``: builds the parser from the command modules.

Every user error ends as one line on stderr and exit code 2; no stack trace.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from engines.errors import InputError
from profiling.cli.commands import COMMAND_MODULES

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we want the error alone, on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def command_name(module_name: str) -> str:
    """The subcommand a module registers, by the modules' naming (``engines_cmd`` registers ``engines``,
    ``compare_load`` registers ``compare-load``)."""
    return module_name.rsplit(".", 1)[-1].removesuffix("_cmd").replace("_", "-")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Every subcommand; only the named one when ``argv`` starts with a subcommand's name.

    ``serve`` then imports the server and the engines, not the API's pandas and plotly: the lent GPU
    machine has no plotly, and its load row starts ``python -m profiling serve`` there.
    """
    parser = OneLineParser(prog="python -m profiling", description="ttsperf: TTS inference lab")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    chosen = [m for m in COMMAND_MODULES if argv and command_name(m) == argv[0]]
    for module_name in chosen or COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: runs finished so far are stored", file=sys.stderr)
        return 130
