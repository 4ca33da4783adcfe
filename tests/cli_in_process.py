"""``python -m profiling ARGS`` in the test's own process: what the real process runs (``main``), without the
interpreter start-up and the torch/engine imports a subprocess pays again. Tests keep one real subprocess per
command path (what the user types) and send the other calls of that path, refusals above all, through here."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from profiling.cli.main import main


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str, capsys: pytest.CaptureFixture[str]) -> Ran:
    capsys.readouterr()  # drop what the test printed before
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's refusals exit, as they do in the real process
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return Ran(code, out, err)


def in_process(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and stderr: what a refusal test reads."""
    ran = run_main(*args, capsys=capsys)
    return ran.returncode, ran.stderr
