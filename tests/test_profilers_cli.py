"""``python -m profiling profile`` as a user runs it: real subprocess, real Piper, real store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from profiling.store.results import ResultsStore
from tests.cli_in_process import in_process
from tests.conftest import REPO_ROOT


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "profiling", "profile", "--data-dir", str(data_dir), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )


def test_cli_profile_prints_hot_functions_overhead_and_stores_artifacts(tmp_path: Path) -> None:
    result = run_cli("--engine", "piper", "--with", "cprofile,line", "--repeats", "1", "--warmup", "0",
                     "--text", "Hello there, profiler.", "--line-func", "engines.text.normalize_text",
                     data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "=== cprofile: ok" in out and "=== line: ok" in out
    assert "phoneme_ids_to_audio" in out and "self.session.run(" in out
    assert out.count("overhead ") >= 2
    store = ResultsStore(tmp_path)
    runs = store.runs_dataframe()
    assert len(runs) == 4  # per profiler: one plain + one profiled run
    stored = [store.load_run(run_id) for run_id in runs["run_id"]]
    profiled = [r for r in stored if r.annotations["profiler"] != "none"]
    assert sorted(r.annotations["profiler"] for r in profiled) == ["cprofile", "line"]
    for record in profiled:
        kinds = {a.kind for a in store.artifacts(record.run_id)}
        assert f"{record.annotations['profiler']}:overhead" in kinds
        assert all(a.path.is_file() for a in store.artifacts(record.run_id))


@pytest.mark.parametrize(("args", "message"), [
    (("--with", "cprofile,flame"), "unknown profiler 'flame'"),
    (("--with", "torch"), "not a torch engine"),
    (("--line-func", "piper.voice.PiperVoice.nope"), "has no attribute 'nope'"),
    (("--pyspy-rate", "0"), "py-spy rate"),
    (("--repeats", "0"), "repeats must be at least 1"),
    (("--engine", "nosuch"), "unknown engine 'nosuch'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, stderr = in_process("profile", "--data-dir", str(tmp_path), *args, capsys=capsys)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("error: ") and message in stderr
    assert "Traceback" not in stderr
    assert ResultsStore(tmp_path).count_runs() == 0  # refused before any run


def test_a_refusal_through_the_real_process_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("--with", "cprofile,flame", data_dir=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown profiler 'flame'" in result.stderr
    assert "Traceback" not in result.stderr and ResultsStore(tmp_path).count_runs() == 0
