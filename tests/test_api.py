"""The Python API (profiling.api): real Piper runs, the real store, importable from outside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engines.errors import InputError
from profiling import api
from profiling.store.results import ResultsStore

TEXT = "Hello there. This sentence streams in two chunks at least."


def test_bench_from_outside_the_checkout_and_import_profiling_stays_light(
    tmp_path: Path, isolated_data_dir: Path
) -> None:
    code = (
        "import json, sys\n"
        "import profiling\n"
        "light = not [m for m in ('pandas', 'gradio', 'onnxruntime', 'plotly') if m in sys.modules]\n"
        "from profiling import bench\n"
        "result = bench('piper', 'Hello there.', repeats=2, deterministic=True)\n"
        "frame = result.to_dataframe()\n"
        "print(json.dumps({'light': light, 'rows': len(frame), 'warmups': int(frame['warmup'].sum()),\n"
        "                  'ok': bool((frame['status'] == 'ok').all()), 'plot': type(result.plot()).__name__,\n"
        "                  'db': str(result.db_path), 'module': profiling.__file__}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["light"], "import profiling must not import the heavy packages"
    assert (got["rows"], got["warmups"], got["ok"], got["plot"]) == (3, 1, True, "Figure")
    assert Path(got["db"]).parent == isolated_data_dir
    assert ResultsStore(isolated_data_dir).count_runs() == 3


def test_stream_sweep_profile_and_runs(isolated_data_dir: Path) -> None:
    streamed = api.stream("piper", TEXT, first_chunk_max_chars=20, repeats=1, warmup=0, deterministic=True)
    frame = streamed.to_dataframe()
    assert len(frame) == 1 and frame["chunks"].iloc[0] >= 2 and frame["first_audible_s"].iloc[0] > 0
    assert streamed.plot().layout.title.text.startswith("Stream timeline")

    swept = api.sweep({"name": "api-test", "engines": [{"engine": "piper", "knobs": {"deterministic": True},
                                                       "grid": {"length_scale": [1.0, 1.3]}}],
                       "texts": {"inline": ["Turn left here."]}, "repeats": 1, "warmup": 0, "save_audio": False})
    assert swept.outcome.completed == 2 and len(swept.to_dataframe()) == 2
    assert len(swept.table()) == 2 and len(swept.plot().data) >= 1

    profiled = api.profile("piper", "Profile me.", profilers="cprofile", repeats=1, warmup=0)
    table = profiled.to_dataframe()
    assert list(table["profiler"]) == ["cprofile"] and table["status"].iloc[0] == "ok"
    assert table["overhead_ratio"].iloc[0] > 0 and profiled.artifact_paths()
    assert any("cumulative" in name.lower() or "cprofile" in name for name in profiled.tables())

    stored = api.runs()
    runs = stored.to_dataframe()
    assert set(runs["mode"]) == {"batch", "stream"} and len(runs) >= 1 + 2 + 2
    assert "api-test" in set(stored.sweeps()["name"]) and not stored.groups().empty


def test_bad_input_is_an_input_error_and_stores_nothing(isolated_data_dir: Path) -> None:
    with pytest.raises(InputError, match="above its maximum"):
        api.bench("piper", "Hello.", repeats=1, length_scale=99)
    with pytest.raises(InputError, match="unknown knob"):
        api.bench("piper", "Hello.", repeats=1, no_such_knob=1)
    with pytest.raises(InputError, match="only apply to the lab chunker"):
        api.stream("piper", "Hello.", chunker="engine", first_chunk_max_chars=10)
    with pytest.raises(InputError, match="choose the lab chunker"):
        api.stream_sweep(api.stream_request("piper", "Hello.", chunker="engine"), (10, 40))
    with pytest.raises(InputError, match="4 or more batches"):
        api.calibrate("piper", "Hello.", batches=2)
    with pytest.raises(InputError, match="at least 2 pairs"):
        api.ab("piper", "Hello.", pairs=1)
    assert ResultsStore(isolated_data_dir).count_runs() == 0


def test_a_front_end_finds_everything_in_the_api_package() -> None:
    """What the dashboard and the CLI use beside the entry points: types, figures, tables, input parsers."""
    from profiling.api import figures, inputs, tables, types
    from profiling.core.records import RunRecord

    for module in (api, types, figures, tables, inputs):
        assert module.__all__ and not [n for n in module.__all__ if not hasattr(module, n)], module.__name__
    assert types.RunRecord is RunRecord  # re-exported, not redeclared


def test_device_for_falls_back_to_the_cpu_where_the_engine_cannot_run() -> None:
    from engines.registry import engine_class

    here = {d.split(":", 1)[0] for d in engine_class("piper").machine_devices()}
    assert api.device_for("piper", "cuda") == ("cuda" if "cuda" in here else "cpu")
    assert api.device_for("piper", "tpu") == "cpu"
    assert api.default_device() in ("cpu", "cuda")


def test_from_profiling_import_sweep_and_load_are_the_api_functions_in_any_import_order() -> None:
    """The subpackages (``sweeps``, ``loadgen``) never shadow the API's functions, whatever was imported first."""
    for first in ("import profiling.sweeps.execute", "import profiling.loadgen", "from profiling import bench"):
        code = (f"{first}\nfrom profiling import sweep, load, api\n"
                "print(sweep is api.sweep, load is api.load)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "True True", first


def test_load_through_the_api_measures_the_null_target(tmp_path: Path) -> None:
    run = api.load(null_target=True, rates=(4.0,), duration_s=2.0, max_requests=20, warmup=0, data_dir=tmp_path)
    frame = run.to_dataframe()
    assert list(frame["offered_per_s"]) == [4.0] and frame["sent"].iloc[0] >= 1
    assert frame["ok"].iloc[0] == frame["sent"].iloc[0]  # the null target answers every request
    assert len(run.requests()) >= frame["sent"].iloc[0]
    assert {t.name for t in run.plot().data} >= {"TTFA p95 (lab rule)", "TTFA p95 (tts_bench rule)"}
