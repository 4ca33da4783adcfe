"""The SQLite results store: round trip, DataFrames, and no damage from failed or killed writes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from engines.base import Audio, SynthesisSettings
from profiling.core.environment import capture_environment
from profiling.core.hardware import DeviceInfo
from profiling.core.records import ChunkTiming, RunMode, RunRecord
from profiling.core.timer import StageTiming
from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT


def make_record(batch_id: str = "batch", **overrides: object) -> RunRecord:
    fields: dict = dict(
        engine="piper",
        settings=SynthesisSettings("piper", knobs={"length_scale": 1.0, "deterministic": True}),
        mode=RunMode.STREAM,
        text="Hello there.",
        environment=capture_environment(),
        batch_id=batch_id,
        synth_s=0.5,
        audio_s=2.0,
        ttfa_s=0.1,
        stages=[StageTiming("phonemization", 1, 0.01, 0.01, 0), StageTiming("model_inference", 2, 0.4, 0.4, 0)],
        chunks=[ChunkTiming(0, "Hello there.", 0.1, 2.0)],
        series={"token_s": [0.1, 0.2]},
        annotations={"voice_cache": "miss", "model_reused": False},
    )
    fields.update(overrides)
    return RunRecord(**fields)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    record = make_record()
    store.save_run(record)
    loaded = store.load_run(record.run_id)
    assert loaded == record
    assert loaded.rtf == pytest.approx(0.25)


def test_a_run_stored_with_the_flat_device_fields_loads_into_device_info(tmp_path: Path) -> None:
    """Runs stored before DeviceInfo kept the device beside the other environment fields."""
    store = ResultsStore(tmp_path)
    record = make_record()
    store.save_run(record)
    data = record.to_dict()
    data["environment"].pop("device")
    data["environment"].update(
        device="cuda:1", device_name="NVIDIA H200", device_memory_gib=139.8, device_capability="9.0",
        device_uuid="GPU-1234", device_physical="3", cuda_visible_devices="2,3",
    )
    with sqlite3.connect(store.db_path) as conn:  # the row exactly as the older code wrote it
        conn.execute("UPDATE runs SET record_json = ? WHERE run_id = ?", (json.dumps(data), record.run_id))
    device = store.load_run(record.run_id).environment.device
    assert device == DeviceInfo(id="cuda:1", name="NVIDIA H200", memory_gib=139.8, capability="9.0",
                                uuid="GPU-1234", visible_devices="2,3", physical="3")
    assert device.is_cuda and store.runs_dataframe()["run_id"].tolist() == [record.run_id]


def test_dataframes_hold_runs_and_stages(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for index in range(3):
        store.save_run(make_record(repeat_index=index, warmup=index == 0))
    runs = store.runs_dataframe()
    assert len(runs) == 3
    assert runs["rtf"].tolist() == pytest.approx([0.25] * 3)
    assert runs["warmup"].tolist() == [True, False, False]
    stages = store.stages_dataframe()
    assert len(stages) == 6
    assert set(stages["stage"]) == {"phonemization", "model_inference"}


def test_audio_is_written_as_int16_wav(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    samples = (0.5 * np.sin(np.linspace(0, 200, 22050))).astype(np.float32)
    record = make_record()
    store.save_run(record, Audio(samples, 22050))
    data, rate = soundfile.read(store.load_run(record.run_id).audio_path, dtype="int16")
    assert rate == 22050 and len(data) == 22050
    assert abs(int(data.max()) - int(0.5 * 32767)) < 50
    assert not list(store.audio_dir().glob("*.tmp"))


def test_failed_write_leaves_no_partial_run(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    good = make_record()
    store.save_run(good)
    # Two stages with one name violate the stages primary key after the runs row was inserted.
    bad = make_record(stages=[StageTiming("x", 1, 0.1, 0.1, 0), StageTiming("x", 1, 0.1, 0.1, 0)])
    with pytest.raises(sqlite3.IntegrityError):
        store.save_run(bad)
    assert store.count_runs() == 1
    with pytest.raises(KeyError):
        store.load_run(bad.run_id)
    assert store.load_run(good.run_id) == good


WRITER = """
import sys
from tests.test_store import make_record
from profiling.store.results import ResultsStore
store = ResultsStore(sys.argv[1])
print("ready", flush=True)
while True:
    store.save_run(make_record(batch_id="killed"))
"""


def test_killed_writer_never_corrupts_earlier_runs(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    earlier = [make_record(batch_id="earlier") for _ in range(5)]
    for record in earlier:
        store.save_run(record)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while store.count_runs() < 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)  # mid-write, most likely inside a transaction
    writer.wait()
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reopened = ResultsStore(tmp_path)
    assert [reopened.load_run(r.run_id) for r in earlier] == earlier
    frame = reopened.runs_dataframe()
    killed = frame[frame["batch_id"] == "killed"]
    assert len(killed) >= 20
    # Every stored run is whole: its stages are all there.
    stages = reopened.stages_dataframe()
    assert (stages.groupby("run_id").size() == 2).all()
    assert set(stages["run_id"]) == set(frame["run_id"])
