"""Sweeps: spec files, deterministic plans and keys, real Piper runs, and resume after a real SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.errors import InputError
from profiling.analysis.compare import reference_ratios
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore
from profiling.store.sweeps import completed_keys, sweep_runs_dataframe
from profiling.sweeps.execute import run_sweep
from profiling.sweeps.plan import plan
from profiling.sweeps.scheduler import reloads, schedule, unit_id
from profiling.sweeps.spec import load_sweep_spec, spec_from_mapping
from profiling.texts.textsets import TARGET_AUDIO_S, load_text_set, text_set_names
from tests.cli_in_process import run_main
from tests.conftest import REPO_ROOT

TINY = {
    "name": "tiny",
    "engines": [{"engine": "piper", "knobs": {"deterministic": True}, "grid": {"length_scale": [1.0, 1.2]}}],
    "texts": {"inline": ["Hello there.", "Turn left here."]},
    "repeats": 2,
    "warmup": 1,
}


def test_text_sets_ship_with_the_project() -> None:
    names = text_set_names()
    for name in ("short", "medium", "long", "audio_1s", "audio_5s", "audio_10s", "audio_30s", "harvard"):
        assert name in names
        assert len(load_text_set(name)) >= 2
    assert load_text_set("audio_30s").target_audio_s == TARGET_AUDIO_S["audio_30s"] == 30.0
    # sized sets grow with their target: characters are a fair proxy for audio length
    mean_chars = [
        sum(len(i.text) for i in load_text_set(n).items) / len(load_text_set(n)) for n in TARGET_AUDIO_S
    ]
    assert mean_chars == sorted(mean_chars)
    assert len(load_text_set("harvard")) == 20
    with pytest.raises(InputError, match="unknown text set"):
        load_text_set("nope")


def test_yaml_and_toml_give_the_same_plan(tmp_path: Path) -> None:
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text(
        "name: tiny\nengines:\n  - engine: piper\n    knobs: {deterministic: true}\n"
        "    grid: {length_scale: [1.0, 1.2]}\ntexts: {inline: [Hello there., Turn left here.]}\n"
        "repeats: 2\nwarmup: 1\n"
    )
    toml_file = tmp_path / "s.toml"
    toml_file.write_text(
        'name = "tiny"\nrepeats = 2\nwarmup = 1\n[texts]\ninline = ["Hello there.", "Turn left here."]\n'
        '[[engines]]\nengine = "piper"\nknobs = { deterministic = true }\ngrid = { length_scale = [1.0, 1.2] }\n'
    )
    a, b = plan(load_sweep_spec(yaml_file)), plan(load_sweep_spec(toml_file))
    keys_a = [i.run_key(r) for i in a.items for r in i.repeats]
    keys_b = [i.run_key(r) for i in b.items for r in i.repeats]
    assert keys_a == keys_b and len(set(keys_a)) == a.total_runs == 2 * 2 * 2
    # defaults filled in: writing a knob's default explicitly names the same configuration
    explicit = spec_from_mapping({**TINY, "engines": [{
        "engine": "piper", "knobs": {"deterministic": True, "noise_scale": 0.667}, "grid": {"length_scale": [1.0, 1.2]},
    }]})
    assert [c.key for c in plan(explicit).configs] == [c.key for c in a.configs]


def test_shuffled_order_is_random_but_reproducible() -> None:
    spec = spec_from_mapping({**TINY, "shuffle": True, "repeats": 4, "seed": 3})
    first = [i.run_key(i.repeats[0]) for i in plan(spec).items]
    again = [i.run_key(i.repeats[0]) for i in plan(spec).items]
    other = [i.run_key(i.repeats[0]) for i in plan(spec_from_mapping({**TINY, "shuffle": True, "repeats": 4,
                                                                        "seed": 4})).items]
    assert first == again and sorted(first) == sorted(other) and first != other
    assert first != sorted(first, key=lambda k: (k.split("/")[0], k))


def test_scheduler_interleaves_inside_a_loaded_model_and_alternates_models_in_blocks() -> None:
    piper = plan(load_sweep_spec(REPO_ROOT / "sweeps" / "piper_settings.yaml"))  # 4 models x 2 length_scales
    blocks = schedule(piper)
    units = [b.unit for b in blocks]
    assert len(set(units)) == 4 and piper.spec.block_count == 3 and len(blocks) == 12
    assert units[:4] == units[4:8][::-1] == units[8:]  # serpentine: A B C D | D C B A | A B C D
    assert reloads(blocks) == 4 + 3 + 3
    for block in blocks:
        assert {unit_id(r.config.settings) for r in block.runs} == {block.unit}  # one loaded model per block
        labels = [r.config.label for r in block.runs]
        assert len(set(labels)) == 2  # both length_scales of that model, interleaved run by run:
        assert any(a != b for a, b in zip(labels, labels[1:], strict=False))
        assert labels != sorted(labels)
    seqs = [r.seq for b in blocks for r in b.runs]
    assert seqs == list(range(piper.total_runs))
    # the old one-item-per-run shuffle reloaded the model on most runs
    old = [unit_id(i.config.settings) for i in piper.items]
    assert sum(a != b for a, b in zip(old, old[1:], strict=False)) > 5 * reloads(blocks)
    # resuming keeps each run's position
    done = {r.run_key for r in blocks[0].runs} | {blocks[5].runs[0].run_key}
    rest = schedule(piper, done)
    assert [r.seq for b in rest for r in b.runs] == [s for s in seqs if s not in
                                                     {r.seq for r in blocks[0].runs} | {blocks[5].runs[0].seq}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"engines": [{"engine": "piper", "grid": {"length_scale": [9.0]}}]}, "above its maximum"),
        ({"engines": [{"engine": "piper", "grid": {"no_such_knob": [1]}}]}, "unknown knob"),
        ({"engines": [{"engine": "nope"}]}, "unknown engine"),
        ({"colour": "red"}, "unknown key"),
        ({"texts": "no_such_set"}, "unknown text set"),
        ({"repeats": 0}, "repeats must be"),
        ({"chunking": {"max_chars": [50]}}, "only applies to mode: stream"),
        ({"blocks": 0}, "blocks must be"),
    ],
)
def test_bad_specs_fail_before_anything_runs(change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan(spec_from_mapping({**TINY, **change}))


def test_synthesis_time_axes_share_a_loaded_model_and_ratios_state_sensitivity(isolated_data_dir: Path) -> None:
    store = ResultsStore(isolated_data_dir)
    spec = spec_from_mapping({**TINY, "name": "axes", "texts": {"inline": ["Turn left here."]},
                              "engines": [{"engine": "piper", "knobs": {"deterministic": True},
                                           "grid": {"length_scale": [1.0, 1.1], "intra_op_threads": [1, 2]}}]})
    blocks = schedule(plan(spec))
    assert len({b.unit for b in blocks}) == 2  # intra_op_threads is a load knob, length_scale is per call
    run_sweep(spec, store, pool=EnginePool())
    assert store.runs_dataframe()["load_s"].notna().sum() == reloads(blocks)  # no load for a length_scale
    runs = sweep_runs_dataframe(store, "axes").sort_values("seq")
    for _, unit in runs.groupby("unit"):
        assert unit["length_scale"].nunique() == 2  # both per-call values ran on the one loaded model
    versus = reference_ratios(runs)
    assert len(versus) == 3 * 2 and versus["detectable"].gt(0).all()


def test_cli_bad_sweep_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Through `main` in this process; `sweep` runs as a real process in the killed-sweep test below.
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nengines: [{engine: piper, grid: {length_scale: [99]}}]\n")
    result = run_main("sweep", str(bad), "--data-dir", str(tmp_path / "d"), capsys=capsys)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "above its maximum" in result.stderr
    assert "Traceback" not in result.stderr


def test_sweep_runs_through_the_store_and_a_rerun_runs_nothing(isolated_data_dir: Path) -> None:
    store = ResultsStore(isolated_data_dir)
    spec = spec_from_mapping(TINY)
    outcome = run_sweep(spec, store)
    assert (outcome.ran, outcome.already_done, outcome.errors, outcome.completed) == (8, 0, 0, 8)
    runs = sweep_runs_dataframe(store, "tiny")
    assert len(runs) == 8 and runs["run_key"].is_unique
    assert set(runs["config_label"]) == {"piper fp32 length_scale=1.0", "piper fp32 length_scale=1.2"}
    assert runs["rtf"].gt(0).all() and not runs["warmup"].any()
    # runs keep the schedule's order and start times: seq order is start-time order, all on this machine
    ordered = runs.sort_values("seq")
    assert list(ordered["created_at"]) == sorted(ordered["created_at"]) and ordered["seq"].is_unique
    assert set(runs["executor"]) == {"local"} and set(runs["worker"]) == {"local"}
    assert runs["node"].str.len().gt(0).all()
    # one warm-up per model load, stored and flagged, never keyed
    all_runs = store.runs_dataframe()
    assert all_runs["warmup"].sum() == 1 and len(all_runs) == 9
    # slower speech really is longer audio: the grid value reached the engine
    medians = runs.groupby("length_scale")["audio_s"].median()
    assert medians[1.2] > medians[1.0]
    again = run_sweep(spec, store)
    assert (again.ran, again.already_done) == (0, 8)
    assert store.count_runs() == 9
    # growing the sweep runs only the new repeats
    more = run_sweep(spec_from_mapping({**TINY, "repeats": 3}), store)
    assert (more.ran, more.already_done) == (4, 8)


def test_killed_sweep_resumes_without_losing_or_repeating_runs(tmp_path: Path) -> None:
    spec_file = tmp_path / "resume.yaml"
    spec_file.write_text(
        "name: resume\nengines:\n  - engine: piper\n    knobs: {deterministic: true}\n"
        "    grid: {length_scale: [1.0, 1.1]}\ntexts: {inline: [Turn left here.]}\n"
        "repeats: 8\nwarmup: 1\nshuffle: true\n"
    )
    data_dir = tmp_path / "data"
    db = data_dir / "runs.sqlite"
    total = 2 * 1 * 8
    process = subprocess.Popen(
        [sys.executable, "-m", "profiling", "sweep", str(spec_file), "--data-dir", str(data_dir), "--no-progress"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    killed_at = _wait_for_runs(db, at_least=3, process=process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    store = ResultsStore(data_dir)
    before = completed_keys(store, "resume")
    assert 3 <= len(before) < total, f"kill came too late ({killed_at} runs)"
    _assert_intact(db)

    result = _cli("sweep", str(spec_file), "--data-dir", str(data_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    resumed = f"{total}/{total} runs stored ({len(before)} from earlier attempts, {total - len(before)} now"
    assert resumed in result.stdout
    after = completed_keys(store, "resume")
    assert before <= after and len(after) == total
    runs = store.runs_dataframe()
    measured = runs[~runs["warmup"]]
    assert len(measured) == total  # no orphan measured run: key and run share one transaction
    keys = [store.load_run(r).annotations["sweep_run_key"] for r in measured["run_id"]]
    assert len(keys) == len(set(keys)) == total  # no (config, text, repeat) ran twice
    _assert_intact(db)


def _wait_for_runs(db: Path, at_least: int, process: subprocess.Popen, limit_s: float = 120) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "sweep exited early"
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                    count = conn.execute("SELECT COUNT(*) FROM sweep_runs").fetchone()[0]
            except sqlite3.OperationalError:  # table not created yet
                count = 0
            if count >= at_least:
                return int(count)
        time.sleep(0.02)
    raise AssertionError("the sweep did not store runs in time")


def _assert_intact(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = conn.execute("SELECT COUNT(*) FROM sweep_runs k LEFT JOIN runs r USING (run_id)"
                               " WHERE r.run_id IS NULL").fetchone()[0]
        assert orphans == 0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiling", *args], cwd=REPO_ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)


def test_shipped_sweep_files_plan() -> None:
    files = sorted((REPO_ROOT / "sweeps").glob("*.yaml")) + sorted((REPO_ROOT / "sweeps").glob("*.toml"))
    assert any(f.name == "piper_settings.yaml" for f in files)
    for path in files:
        spec = load_sweep_spec(path)
        if any(e.engine != "piper" for e in spec.engines):
            continue  # torch engines: planning would import them; the notebooks run those
        sweep_plan = plan(spec)
        assert sweep_plan.total_runs > 0 and len(sweep_plan.reference_keys) == len(spec.engines)
    piper = plan(load_sweep_spec(REPO_ROOT / "sweeps" / "piper_settings.yaml"))
    varied = {name for config in piper.configs for name, _ in config.varied}
    assert varied == {"intra_op_threads", "graph_optimization", "length_scale"}


def test_hostile_sweep_files_are_one_line_errors(tmp_path) -> None:
    from engines.errors import InputError
    from profiling.sweeps.spec import load_sweep_spec

    cases = {
        "deep.yaml": "a: " + "[" * 5000 + "]" * 5000,
        "huge.yaml": "name: x\n# " + "a" * 300_000,
        "list.yaml": "- not\n- a mapping\n",
        "deep.toml": "a = " + "[" * 5000 + "]" * 5000,
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as error:
            load_sweep_spec(path)
        assert "\n" not in str(error.value) and str(path) in str(error.value), name
