"""Quality beside speed: relative WER with pocketsphinx on real Piper audio, fidelity and the Pareto front."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.base import Audio, SynthesisSettings
from profiling.analysis import plots
from profiling.analysis.pareto import sweep_quality
from profiling.audio.intelligibility import WER_LABEL, Recognizer, pooled_wer, transcribe_and_score, word_errors
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore
from profiling.store.sweeps import sweep_runs_dataframe
from profiling.sweeps.execute import run_sweep
from profiling.sweeps.spec import spec_from_mapping
from profiling.texts.textsets import load_text_set


def test_word_error_rate_counts_edits() -> None:
    assert word_errors("The birch canoe slid.", "the birch canoe slid").errors == 0
    assert word_errors("a b c d", "a x c").errors == 2  # one substitution, one deletion
    assert word_errors("a b", "a b c d").errors == 2  # insertions count
    assert word_errors("It's easy", "its easy").errors == 1
    assert word_errors("one two three four", "").wer == 1.0


def test_piper_speech_is_recognised_far_better_than_reversed_speech() -> None:
    pool = EnginePool()
    recognizer = Recognizer()
    sentences = [item.text for item in load_text_set("harvard").items[:3]]
    forward, backward = [], []
    for sentence in sentences:
        request = BenchRequest(SynthesisSettings("piper", knobs={"deterministic": True}), sentence, repeats=1,
                               warmup=0)
        audio = run_bench(request, pool, None).audio
        assert audio is not None
        forward.append(transcribe_and_score(recognizer, audio, sentence))
        reversed_audio = Audio(np.ascontiguousarray(audio.samples[::-1]), audio.sample_rate)
        backward.append(transcribe_and_score(recognizer, reversed_audio, sentence))
    assert pooled_wer(forward) < 0.6  # pocketsphinx is weak: the number is relative, not a score
    assert pooled_wer(backward) > pooled_wer(forward) + 0.3
    assert "relative" in WER_LABEL


def test_sweep_quality_fidelity_wer_and_pareto(isolated_data_dir: Path) -> None:
    store = ResultsStore(isolated_data_dir)
    spec = spec_from_mapping({
        "name": "quality",
        "engines": [{"engine": "piper", "knobs": {"deterministic": True},
                     "grid": {"graph_optimization": ["basic", "all"], "length_scale": [1.0, 1.3]}}],
        "texts": {"inline": ["The birch canoe slid on the smooth planks."]},
        "repeats": 1, "warmup": 0, "reference": {"graph_optimization": "all", "length_scale": 1.0},
    })
    run_sweep(spec, store)
    quality = sweep_quality(store, "quality").set_index("config_label")
    reference = quality.loc["piper fp32 graph_optimization=all length_scale=1.0"]
    assert reference["is_reference"] and reference["fidelity_distance"] == 0.0
    # deterministic audio: graph optimisation alone barely moves it; a slower speaking rate moves it a lot
    same_rate = quality.loc["piper fp32 graph_optimization=basic length_scale=1.0", "fidelity_distance"]
    slower = quality.loc["piper fp32 graph_optimization=all length_scale=1.3", "fidelity_distance"]
    assert same_rate < slower
    assert quality["relative_wer"].between(0, 2).all()
    assert quality["pareto_wer"].any() and quality["pareto_fidelity"].any()
    # the plots draw from the same frames
    runs = sweep_runs_dataframe(store, "quality")
    assert len(plots.pareto(quality.reset_index(), "fidelity_distance").data) >= 2
    assert len(plots.rtf_box(runs).data) >= 1
    assert len(plots.stage_breakdown(store.stages_dataframe(), runs).data) >= 3
