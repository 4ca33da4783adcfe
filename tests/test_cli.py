"""`python -m profiling`: real subprocesses, real store; bad input is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from profiling.store.results import ResultsStore
from tests.cli_in_process import in_process
from tests.conftest import REPO_ROOT


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "profiling", *args, "--data-dir", str(data_dir)] if args[0] != "engines"
        else [sys.executable, "-m", "profiling", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def kept_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one run, made by the real CLI in a subprocess; the refusals must leave it as it is."""
    data_dir = tmp_path_factory.mktemp("kept-store")
    ok = cli("bench", "--repeats", "1", "--warmup", "0", "--no-progress", data_dir=data_dir)
    assert ok.returncode == 0, ok.stderr
    return data_dir


def test_bench_prints_stage_table_and_stores_runs(tmp_path: Path) -> None:
    result = cli("bench", "--engine", "piper", "--text", "Hello from the command line.", "--repeats", "2",
                 "--warmup", "1", "--knob", "deterministic=true", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    for expected in ("model_inference", "phonemization", "rtf", "ttfa_s", "RTF median", "TTFA median"):
        assert expected in result.stdout
    assert "trained weights" in result.stdout
    store = ResultsStore(tmp_path)
    frame = store.runs_dataframe()
    assert len(frame) == 3 and frame["warmup"].sum() == 1


def test_bench_reads_text_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text_file = tmp_path / "text.txt"
    text_file.write_text("One sentence. Two sentences!", encoding="utf-8")
    code, stderr = in_process("bench", "--text-file", str(text_file), "--repeats", "1", "--warmup", "0",
                              "--no-progress", "--data-dir", str(tmp_path / "store"), capsys=capsys)
    assert code == 0, stderr
    assert ResultsStore(tmp_path / "store").load_run(ResultsStore(tmp_path / "store").runs_dataframe()
                                                     ["run_id"][0]).text == "One sentence. Two sentences!"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--text", ""), "text is empty"),
        (("--text", "x" * 30, "--max-chars", "20"), "over the limit of 20"),
        (("--engine", "nope"), "unknown engine 'nope'"),
        (("--knob", "length_scale=9"), "above its maximum"),
        (("--knob", "length_scale"), "NAME=VALUE"),
        (("--precision", "fp16"), "precision 'fp16' is not supported"),
        (("--device", "cuda"), "not present on this machine"),
        (("--text-file", "/no/such/file.txt"), "cannot read --text-file"),
        (("--repeats", "0"), "repeats must be at least 1"),
        (("--bogus",), "unrecognized arguments"),
        (("--text", "Hello \x1b[31mthere."), "control character U+001B"),
        (("--knob", "length_scale=nan"), "finite number"),
        (("--knob", "length_scale=1e999"), "finite number"),
        (("--label", "run\x07"), "label contains the control character U+0007"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_keeps_the_store(
    kept_store: Path, args: tuple, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ResultsStore(kept_store).count_runs() == 1
    code, stderr = in_process("bench", "--no-progress", *args, "--data-dir", str(kept_store), capsys=capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr
    assert "Traceback" not in stderr
    assert ResultsStore(kept_store).count_runs() == 1


def test_engines_lists_availability_and_knobs(tmp_path: Path) -> None:
    result = cli("engines", "--knobs", data_dir=tmp_path)
    assert result.returncode == 0
    assert "piper" in result.stdout and "intra_op_threads" in result.stdout and "deterministic" in result.stdout


def test_text_file_with_a_nul_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    """A refusal through the real process (the others run ``main`` in this one: tests/cli_in_process.py)."""
    text_file = tmp_path / "speech.txt"
    text_file.write_bytes(b"Hello\x00there.")
    result = cli("bench", "--no-progress", "--text-file", str(text_file), data_dir=tmp_path / "store")
    assert result.returncode == 2 and "control character U+0000" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ResultsStore(tmp_path / "store").count_runs() == 0


def test_a_named_command_imports_only_its_own_module() -> None:
    """``serve`` must start where the API's plotly is absent (the lent GPU machine's load row)."""
    from profiling.cli.commands import COMMAND_MODULES
    from profiling.cli.main import build_parser, command_name

    assert [command_name(m) for m in COMMAND_MODULES] == [
        "engines", "bench", "stream", "sweep", "compare", "compare-load", "ab", "calibrate", "profile", "serve", "load",
        "trace"]
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "profiling", "serve", "--help"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--workers" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "profiling.serve.server" in imported
    assert "plotly" not in imported and "profiling.api" not in imported
    # No command named (or --help alone): every command is listed, as before.
    help_text = build_parser([]).format_help()
    assert all(name in help_text for name in ("bench", "serve", "load", "engines"))
    with pytest.raises(SystemExit):
        build_parser(["nosuch"]).parse_args(["nosuch"])
