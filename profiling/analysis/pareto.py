"""Speed beside quality for a sweep: per configuration median RTF, fidelity, relative WER, Pareto front.

Fidelity is the log-mel distance of a configuration's audio from the reference
configuration's audio for the same text and seed (0 = identical). WER is relative
(see ``profiling.audio.intelligibility``). Both need the sweep's saved audio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile

from engines.base import Audio
from profiling.analysis.compare import measured_runs
from profiling.audio.intelligibility import Recognizer, pooled_wer, transcribe_and_score
from profiling.audio.quality import log_mel_distance
from profiling.store.results import ResultsStore
from profiling.store.sweeps import sweep_runs_dataframe


def read_audio(path: str) -> Audio:
    samples, rate = soundfile.read(path, dtype="float32", always_2d=False)
    if samples.ndim > 1:
        samples = samples.mean(axis=1).astype(np.float32)
    return Audio(samples, int(rate))


def pareto_front(frame: pd.DataFrame, speed: str, quality: str) -> pd.Series:
    """True for rows no other row beats on both axes (lower is better on both: RTF and error/distance)."""
    values = frame[[speed, quality]].to_numpy(dtype=float)
    front = []
    for i, (s, q) in enumerate(values):
        dominated = any(
            (s2 <= s and q2 <= q) and (s2 < s or q2 < q) for j, (s2, q2) in enumerate(values) if j != i
        )
        front.append(bool(not dominated and np.isfinite(s) and np.isfinite(q)))
    return pd.Series(front, index=frame.index, name="pareto")


def _audio_by_config_text(runs: pd.DataFrame, store: ResultsStore) -> dict[tuple[str, str], tuple[Audio, str]]:
    """The last saved WAV per (configuration, text), with the text it speaks."""
    chosen: dict[tuple[str, str], tuple[Audio, str]] = {}
    with_audio = runs.sort_values("created_at")
    for row in with_audio.itertuples():
        record = store.load_run(row.run_id)
        if record.audio_path:
            chosen[(row.config_key, row.text_id)] = (read_audio(record.audio_path), record.text)
    return chosen


def sweep_quality(store: ResultsStore, sweep: str, wer: bool = True) -> pd.DataFrame:
    """One row per configuration: median RTF, fidelity (mean log-mel distance to the reference), relative WER."""
    runs = measured_runs(sweep_runs_dataframe(store, sweep))
    if runs.empty:
        return pd.DataFrame()
    audio = _audio_by_config_text(runs, store)
    references = set(runs.loc[runs["is_reference"], "config_key"])
    reference_by_engine = {
        engine: key for key, engine in runs[runs["config_key"].isin(references)][["config_key", "engine"]].values
    }
    recognizer = Recognizer() if wer else None
    rows = []
    for (key, label), group in runs.groupby(["config_key", "config_label"], sort=False):
        engine = group["engine"].iloc[0]
        ref_key = reference_by_engine.get(engine)
        distances, transcripts = [], []
        for text_id in group["text_id"].unique():
            if (key, text_id) not in audio:
                continue
            clip, text = audio[(key, text_id)]
            if ref_key is not None and (ref_key, text_id) in audio:
                distances.append(log_mel_distance(clip, audio[(ref_key, text_id)][0]))
            if recognizer is not None:
                transcripts.append(transcribe_and_score(recognizer, clip, text))
        rows.append({
            "config_key": key, "config_label": label, "engine": engine, "precision": group["precision"].iloc[0],
            "is_reference": key == ref_key, "runs": len(group), "median_rtf": float(group["rtf"].median()),
            "fidelity_distance": float(np.mean(distances)) if distances else float("nan"),
            "relative_wer": pooled_wer(transcripts) if transcripts else float("nan"),
            "random_weights": bool(group["random_weights"].any()),
        })
    frame = pd.DataFrame(rows)
    frame["pareto_wer"] = pareto_front(frame, "median_rtf", "relative_wer")
    frame["pareto_fidelity"] = pareto_front(frame, "median_rtf", "fidelity_distance")
    return frame
