"""The CLI in this process: what ``python -m profiling ARGS`` runs (``main``), its exit code and stderr.

Refusals take this path: a subprocess each costs an interpreter start-up and the imports. Every command keeps at
least one test through a real process (what the user types), so the process path is still covered.
"""

from __future__ import annotations

import pytest

from profiling.cli.main import main


def in_process(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's refusals exit, as they do in the real process
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err
