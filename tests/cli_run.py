"""The CLI in this process: what ``python -m profiling ARGS`` runs (``main``), with its exit code and output.

Refusals and most runs take this path: a subprocess each costs an interpreter start-up and the imports. Every
command keeps at least one test through a real process (what the user types), so the process path is covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from profiling.cli.main import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_main(*args: str, capsys: pytest.CaptureFixture[str]) -> CliResult:
    capsys.readouterr()  # what the test printed before is not the command's
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's refusals exit, as they do in the real process
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def in_process(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and stderr: what a refusal test reads."""
    result = run_main(*args, capsys=capsys)
    return result.code, result.err
