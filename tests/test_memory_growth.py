"""The lab must not be what grows: RSS over many runs through the lab against the engine alone (real Piper)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "memory_growth.py"
RUNS, SETTLE = 60, 10
#: Slack for allocator noise between two processes; a leak of a record's audio per run (~0.5 MB) exceeds it.
SLACK_MB = 8.0


def growth(variant: str) -> float:
    import json

    output = subprocess.run([sys.executable, str(SCRIPT), "--variant", variant, "--runs", str(RUNS),
                             "--settle", str(SETTLE), "--json"], capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT).stdout
    return float(json.loads(output.strip().splitlines()[-1])["growth_mb"])


def test_growth_through_the_lab_stays_near_the_engine_alone() -> None:
    engine, measured, bench = growth("engine"), growth("measure"), growth("bench")
    assert measured <= engine + SLACK_MB, (engine, measured)
    assert bench <= engine + SLACK_MB, (engine, bench)
