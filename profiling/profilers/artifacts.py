"""Profiler files on disk: tables as CSV + JSON, short source paths, reloading."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path

import pandas as pd

from profiling.profilers.common import ArtifactFile, ProfileTable

_REPO_ROOT = Path(__file__).resolve().parents[2]


def short_path(filename: str) -> str:
    """A source path without the install prefix: ``piper/voice.py`` rather than ``/…/site-packages/piper/voice.py``."""
    if not filename or filename.startswith(("<", "~")):
        return filename
    for root in _path_roots():
        if filename.startswith(root):
            return filename[len(root):].lstrip(os.sep)
    return filename


def _path_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {paths.get("purelib", ""), paths.get("platlib", ""), paths.get("stdlib", ""), str(_REPO_ROOT)}
    roots.update(p for p in sys.path if p.endswith("site-packages"))
    # Longest first, so site-packages wins over the stdlib directory that contains it.
    return sorted((r for r in roots if r), key=len, reverse=True)


def write_table(table: ProfileTable, out_dir: Path, profiler: str) -> list[ArtifactFile]:
    """The table as CSV (spreadsheets) and JSON records (notebooks, the dashboard)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{profiler}-{table.name}.csv"
    json_path = out_dir / f"{profiler}-{table.name}.json"
    table.frame.to_csv(csv_path, index=False)
    json_path.write_text(
        json.dumps({"title": table.title, "rows": table.frame.to_dict(orient="records")}, default=str),
        encoding="utf-8",
    )
    return [
        ArtifactFile(f"{profiler}:table:{table.name}:csv", csv_path, table.title),
        ArtifactFile(f"{profiler}:table:{table.name}:json", json_path, table.title),
    ]


def load_table(path: Path | str) -> pd.DataFrame:
    """Read back a table written by ``write_table`` (either format)."""
    path = Path(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".json":
        return pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))["rows"])
    raise ValueError(f"not a profiler table: {path}")


def zip_files(paths: list[Path], target: Path) -> Path:
    """One zip of ``paths``, each under ``<run id>/<name>`` (its folder is the run it was stored with)."""
    import zipfile

    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, arcname=f"{path.parent.name}/{path.name}")
    return target
