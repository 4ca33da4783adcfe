"""Measured runs through the runner on real Piper: records, warm-up, load reuse, store."""

from __future__ import annotations

import pytest

from engines.base import SynthesisSettings
from engines.errors import InputError
from profiling.core.records import RunMode, RunStatus
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore

TEXT = "Measuring speech synthesis. It tells us where the time goes."


def request(**overrides: object) -> BenchRequest:
    fields: dict = dict(
        settings=SynthesisSettings("piper", knobs={"deterministic": True}), text=TEXT, repeats=3, warmup=1
    )
    fields.update(overrides)
    return BenchRequest(**fields)


@pytest.fixture(scope="module")
def pool() -> EnginePool:
    return EnginePool()


def test_bench_records_warmup_repeats_and_stores_them(pool: EnginePool, tmp_path) -> None:
    store = ResultsStore(tmp_path)
    progress: list[tuple[int, int]] = []
    result = run_bench(request(save_audio=True), pool, store, lambda d, t, r: progress.append((d, t)))
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [r.warmup for r in result.records] == [True, False, False, False]
    assert all(r.status is RunStatus.OK for r in result.records)
    first = result.records[0]
    assert first.rtf == pytest.approx(first.synth_s / first.audio_s)
    assert first.ttfa_s == first.synth_s  # batch mode: first audio is all the audio
    assert first.peak_rss_mb > 50
    assert first.environment.logical_cores >= 1 and "onnxruntime" in first.environment.packages
    assert first.settings.knobs["length_scale"] == 1.0  # defaults filled in
    assert not first.random_weights and first.model["weights"] == "trained"
    summary = {s.name: s for s in result.stage_summary}
    assert summary["model_inference"].n == 3  # warm-up left out
    assert summary["model_inference"].minimum <= summary["model_inference"].median <= summary["model_inference"].p95
    stored = store.load_batch(result.batch_id)
    assert [r.run_id for r in stored] == [r.run_id for r in result.records]
    assert stored[-1].audio_path.endswith(".wav")


def test_second_request_reuses_the_loaded_model(pool: EnginePool) -> None:
    pool.clear()
    first = run_bench(request(repeats=1, warmup=0), pool, None)
    again = run_bench(request(repeats=1, warmup=0), pool, None)
    assert first.load_s is not None and first.load_s > 0
    assert again.load_s is None  # the cached path skips the load stage entirely
    assert again.records[0].annotations["model_reused"] is True
    changed = run_bench(
        request(repeats=1, warmup=0, settings=SynthesisSettings("piper", knobs={"intra_op_threads": 1})), pool, None
    )
    assert changed.load_s is not None  # a load-phase knob changed: reload


def test_stream_mode_ttfa_is_first_chunk(pool: EnginePool) -> None:
    result = run_bench(request(mode=RunMode.STREAM, repeats=1, warmup=0), pool, None)
    record = result.records[0]
    assert len(record.chunks) == 2
    assert record.ttfa_s == record.chunks[0].ready_s < record.chunks[1].ready_s <= record.synth_s
    assert sum(c.audio_s for c in record.chunks) == pytest.approx(record.audio_s)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"text": ""}, "empty"),
        ({"text": "x" * 20, "max_chars": 10}, "over the limit"),
        ({"repeats": 0}, "repeats"),
        ({"settings": SynthesisSettings("nope")}, "unknown engine"),
        ({"settings": SynthesisSettings("piper", precision="int8")}, "precision 'int8'"),
        ({"settings": SynthesisSettings("piper", knobs={"noise_scale": 7})}, "above its maximum"),
    ],
)
def test_bad_requests_store_nothing(pool: EnginePool, tmp_path, overrides: dict, message: str) -> None:
    store = ResultsStore(tmp_path)
    run_bench(request(repeats=1, warmup=0), pool, store)
    with pytest.raises(InputError, match=message):
        run_bench(request(**overrides), pool, store)
    assert store.count_runs() == 1


def test_series_are_summarised_per_item() -> None:
    from profiling.core.environment import capture_environment
    from profiling.core.records import RunRecord
    from profiling.core.stats import summarize_series

    def record(values: list[float], warmup: bool = False) -> RunRecord:
        return RunRecord(
            engine="x", settings=SynthesisSettings("x"), mode=RunMode.BATCH, text="t",
            environment=capture_environment(), batch_id="b", warmup=warmup,
            series={"token_s": values, "nfe_t": [0.0, 0.5, 1.0]},
        )

    (summary,) = summarize_series([record([9.0] * 5, warmup=True), record([0.1, 0.2, 0.3]), record([0.2, 0.4, 0.2])])
    assert summary.name == "token_s"  # not the non-time series, not the warm-up's items
    assert summary.items_per_run == 3 and summary.item.n == 6
    assert summary.item.median == pytest.approx(0.2)
    assert summary.rate_per_s == pytest.approx(5.0)


def test_pool_unloads_the_resident_model_before_loading_the_next(tmp_path) -> None:
    """Two loads of the same engine never overlap: the old model is gone when the new one starts loading."""
    from engines.piper_engine import PiperEngine

    created: list[PiperEngine] = []
    resident_during_load: list[int] = []

    class ObservedPiper(PiperEngine):
        def load(self, settings, hook=None):  # type: ignore[no-untyped-def]
            resident_during_load.append(sum(e.describe_model() != {} for e in created))
            super().load(settings) if hook is None else super().load(settings, hook)

    def factory(name: str) -> PiperEngine:
        created.append(ObservedPiper())
        return created[-1]

    pool = EnginePool(factory=factory)
    first, _ = pool.acquire(SynthesisSettings("piper", knobs={"graph_optimization": "all"}))
    second, load_s = pool.acquire(SynthesisSettings("piper", knobs={"graph_optimization": "basic"}))
    assert load_s is not None and second is not first
    assert resident_during_load == [0, 0]  # the first model was unloaded before the second loaded
    assert first.describe_model() == {} and second.describe_model() != {}
    assert pool.loaded() == [second]
    again, reload_s = pool.acquire(SynthesisSettings("piper", knobs={"graph_optimization": "basic"}))
    assert again is second and reload_s is None
