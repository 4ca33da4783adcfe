"""Every run records the environment it came from: the lock file's hash and whether the checkout was dirty."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

from profiling.analysis.compare import environment_note, run_groups
from profiling.core.environment import capture_environment
from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT
from tests.test_store import make_record


def test_environment_carries_the_lock_hash_and_the_dirty_flag() -> None:
    env = capture_environment()
    assert env.lock_sha256 == hashlib.sha256((REPO_ROOT / "uv.lock").read_bytes()).hexdigest()
    status = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert env.git_dirty is bool(status.strip())


def test_two_locks_are_two_environments_in_history_and_compare(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    env = capture_environment()
    other = dataclasses.replace(env, lock_sha256="f" * 64, git_dirty=True)
    for _ in range(3):
        store.save_run(make_record("batch-a", environment=env))
        store.save_run(make_record("batch-b", environment=other))
    runs = store.runs_dataframe()
    a, b = runs[runs["batch_id"] == "batch-a"], runs[runs["batch_id"] == "batch-b"]
    assert set(b["provenance"]) == {f"lock ffffffffff · {env.git_commit[:10] or 'no commit'}+dirty"}
    assert environment_note(a, a) == ""
    note = environment_note(a, b)
    assert "different environments" in note and "ffffffffff" in note and env.lock_sha256[:10] in note
    shown = dict(zip(run_groups(store)["selector"], run_groups(store)["environment"], strict=True))
    assert shown["batch-a"] != shown["batch-b"]


def test_runs_stored_before_provenance_existed_still_load(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    record = make_record("old")
    data = record.to_dict()
    for name in ("lock_sha256", "git_dirty"):
        del data["environment"][name]
    old = type(record).from_dict(data)
    store.save_run(old)
    assert store.load_run(old.run_id).environment.lock_sha256 == ""
    assert store.runs_dataframe()["provenance"].iloc[0].startswith("lock no lock")
