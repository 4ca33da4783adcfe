"""The GPU suite's tables and its load row (issue 12), without a GPU.

The load row itself ran in the CPU rehearsal (docs/benchmarks/gpu-rehearsal.md); here the suite's
own bookkeeping: the row list, and a load row's result going to its own table, not the bench table.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO_ROOT


def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_suite", REPO_ROOT / "benchmarks" / "gpu_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_the_load_rows_come_last_and_serve_a_torch_engine_under_two_policies() -> None:
    gpu = suite()
    for tiny in (False, True):
        rows = gpu.rows(tiny)
        assert [r.name for r in rows if r.load] == [r.name for r in rows[-2:]] == ["load-f5-served",
                                                                                    "serve-policy-f5-edf"]
        assert [r.policy for r in rows[-2:]] == ["fifo", "edf"]
        # A torch engine: Piper needs onnxruntime-gpu, absent on the lent machine.
        assert {r.engine for r in rows[-2:]} == {"f5"}


def test_a_load_rows_figures_go_to_its_own_table_and_file(tmp_path: Path) -> None:
    gpu = suite()
    bench_row, load_row = gpu.rows(True)[0], gpu.rows(True)[-2]
    from dataclasses import asdict

    bench = {"status": "ok", "row": asdict(bench_row), "batch": {"rtf": 0.5, "synth_s": 1.0, "ttfa_s": 1.0}}
    load = {"status": "ok", "row": asdict(load_row), "device": "cpu", "seconds": 30.0, "load": {
        "users": 2, "sent": 7, "ok": 6, "errors": {"http_500": 1}, "error_rate": 1 / 7, "ttfa_p50_s": 0.25,
        "ttfa_p95_s": 0.4, "throughput_per_min": 120.0, "ready_line": "ttsperf-serve ready http://127.0.0.1:1"}}
    table = gpu.summary_table([bench, load])
    assert bench_row.name in table and load_row.name not in table
    loads = gpu.load_table([bench, load])
    assert loads.splitlines()[-1] == f"| {load_row.name} | ok | fifo | 2 | 7 | 6 | 1 | 250 | 400 | 120.0 |"
    assert gpu.load_table([bench]) == "" and gpu.summary_table([load]) == ""
    gpu.write_row(tmp_path, 13, load_row.name, load)
    markdown = (tmp_path / f"13-{load_row.name}.md").read_text(encoding="utf-8")
    assert "| ttfa_p95_s | 0.4 |" in markdown and "| error_rate | 0.1429 |" in markdown
    assert "| e2e_p50_s | - |" in markdown  # absent figures shown as absent


def test_the_rvc_row_runs_xtts_then_rvc_on_the_cpu_path() -> None:
    from dataclasses import asdict

    import pytest

    pytest.importorskip("rvc_next")
    gpu = suite()
    row = next(r for r in gpu.rows(True) if r.name == "xtts-rvc-fp32")
    assert row.convert is not None and "index" not in row.convert  # faiss does not travel to the lent machine
    out = gpu.run_row(row, "cpu", repeats=1, warmup=0)
    batch = out["batch"]
    assert batch["errors"] == [] and batch["convert_rtf"] > 0 and batch["tts_rtf"] > 0
    assert batch["rtf"] == pytest.approx(batch["tts_rtf"] + batch["convert_rtf"])
    assert {"rvc/f0", "rvc/hubert", "rvc/synthesizer"} <= set(batch["stages_s"])
    markdown = gpu.row_markdown({"status": "ok", "row": asdict(row), "device": "cpu", **out})
    assert "then RVC (fp32)" in markdown and "| convert_rtf |" in markdown
