"""Kokoro-82M through the lab against kokoro-onnx's own API: same samples, same time within noise."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kokoro_onnx")

from engines.base import DEFAULT_VOICE, SynthesisSettings, Voice  # noqa: E402
from engines.chunking import ChunkingSettings, chunk_text, synthesize_chunks  # noqa: E402
from engines.errors import InputError, LoadError  # noqa: E402
from engines.kokoro import weights  # noqa: E402
from engines.kokoro.engine import KokoroEngine  # noqa: E402
from profiling.core.timer import StageTimer  # noqa: E402
from tests.cli_in_process import run_main  # noqa: E402

#: Two short sentences (two chunks of Kokoro's own stream): Kokoro runs at RTF ~0.6 here (kokoro-cpu.md), and
#: this module synthesizes the text ~18 times.
TEXT = "The birch canoe slid. Glue the sheet."


def settings(**knobs: object) -> SynthesisSettings:
    return SynthesisSettings("kokoro", precision="int8", knobs={**KokoroEngine.capabilities.default_knobs(), **knobs})


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KokoroEngine]:
    with pytest.MonkeyPatch.context() as patch:  # the weights are assembled into a scratch data dir
        patch.setenv(weights.DATA_DIR_ENV, str(tmp_path_factory.mktemp("kokoro-data")))
        engine = KokoroEngine()
        engine.load(settings())
        yield engine


def test_audio_equals_kokoro_onnx_create(engine: KokoroEngine) -> None:
    from kokoro_onnx import Kokoro

    reference = Kokoro(str(engine.describe_model()["model_file"]), str(weights.shipped_voices_path()))
    for voice, speed in (("jm_kumo", 1.0), ("jf_nezumi", 1.3)):
        expected, rate = reference.create(TEXT, voice=voice, speed=speed)
        audio = engine.synthesize(TEXT, DEFAULT_VOICE, settings(voice=voice, speed=speed))
        assert rate == audio.sample_rate == 24000
        assert audio.samples.shape == expected.shape
        assert float(np.max(np.abs(audio.samples - expected))) <= 1e-5


@pytest.mark.alone  # lab and reference timed against each other
def test_time_is_within_noise_of_kokoro_onnx_create(engine: KokoroEngine) -> None:
    from kokoro_onnx import Kokoro

    reference = Kokoro(str(engine.describe_model()["model_file"]), str(weights.shipped_voices_path()))
    # one untimed call each: a session's first run sizes ONNX Runtime's buffers
    reference.create(TEXT, voice="jm_kumo")
    engine.synthesize(TEXT, DEFAULT_VOICE, settings())
    # Interleaved runs (lab, theirs, lab, ...) so drift on a shared machine hits both sides alike.
    lab, theirs = [], []
    for _ in range(3):
        start = time.perf_counter()
        engine.synthesize(TEXT, DEFAULT_VOICE, settings())
        lab.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference.create(TEXT, voice="jm_kumo")
        theirs.append(time.perf_counter() - start)
    assert statistics.median(lab) < 1.5 * statistics.median(theirs)


def test_stages_are_reported_and_the_record_says_int8_trained(engine: KokoroEngine) -> None:
    timer = StageTimer()
    engine.synthesize(TEXT, DEFAULT_VOICE, settings(), timer)
    names = {t.name for t in timer.timings()}
    for stage in ("text_normalization", "phonemization", "tokens", "style_lookup", "model_inference",
                  "post_processing"):
        assert stage in names
    facts = engine.describe_model()
    assert facts["precision"] == "int8" and facts["weights"] == "trained" and not engine.random_weights
    assert "jm_kumo" in facts["voices"]


def test_stream_chunks_join_to_the_length_of_one_synthesis(engine: KokoroEngine) -> None:
    whole = engine.synthesize(TEXT, DEFAULT_VOICE, settings())
    own = list(engine.stream(TEXT, DEFAULT_VOICE, settings()))
    assert [c.index for c in own] == [0, 1]
    plan = chunk_text(TEXT, ChunkingSettings(first_chunk_max_chars=20))
    lab = list(synthesize_chunks(engine, plan, DEFAULT_VOICE, settings()))
    assert len(lab) == len(plan.chunks) >= 2
    for chunks in (own, lab):
        joined = sum(c.audio.duration_s for c in chunks)
        # Each piece is trimmed of the model's edge silence on its own: lengths agree within the pauses.
        assert joined == pytest.approx(whole.duration_s, rel=0.2)


def test_unknown_voice_is_one_line(engine: KokoroEngine) -> None:
    with pytest.raises(InputError, match="unknown Kokoro voice 'nobody'"):
        engine.synthesize(TEXT, Voice(speaker="nobody"), settings())
    with pytest.raises(InputError, match="unknown Kokoro voice 'nobody'"):  # before any load or stored run
        KokoroEngine.check_request(settings(), Voice(speaker="nobody"))
    with pytest.raises(InputError, match="is not one of"):
        KokoroEngine.capabilities.knob("voice").coerce("nobody")


def test_sha256_mismatch_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    parts = weights.part_paths()
    corrupted = tmp_path / "part.bin"
    data = bytearray(parts[0].read_bytes())
    data[1000] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    target = tmp_path / "cache" / weights.MODEL_FILE_NAME
    with pytest.raises(InputError, match="sha256") as error:
        weights.assemble([corrupted, *parts[1:]], weights.expected_sha256(), target)
    assert "\n" not in str(error.value)
    assert list(target.parent.iterdir()) == []


def test_missing_local_weights_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="weights file not found"):
        KokoroEngine().load(settings(weights=str(tmp_path / "nope.onnx")))


def test_shipped_weights_refuse_another_precision() -> None:
    with pytest.raises(InputError, match="shipped weights are int8"):
        KokoroEngine.check_request(SynthesisSettings("kokoro", precision="fp32"), DEFAULT_VOICE)


def test_cli_bench_runs_and_a_bad_knob_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `main` in this process (no second interpreter start-up and imports); a fresh interpreter loads Kokoro in
    # test_api_bench_and_the_server_lists_and_uses_kokoro_voices (`profiling serve --engine kokoro`).
    ok = run_main("bench", "--engine", "kokoro", "--repeats", "1", "--warmup", "0", "--no-progress", "--data-dir",
                  str(tmp_path), "--text", "Hello from Kokoro.", capsys=capsys)
    assert ok.returncode == 0, ok.stderr
    assert "model_inference" in ok.stdout and "RTF median" in ok.stdout
    bad = run_main("bench", "--engine", "kokoro", "--repeats", "1", "--warmup", "0", "--no-progress", "--data-dir",
                   str(tmp_path), "--text", "Hello.", "--knob", "voice=nobody", capsys=capsys)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "voice" in bad.stderr


def test_api_bench_and_the_server_lists_and_uses_kokoro_voices() -> None:
    import httpx

    from profiling import api
    from profiling.loadgen.targets import TargetSpec, running_target

    result = api.bench("kokoro", "Hello.", repeats=1, warmup=0, intra_op_threads=1)
    assert result.records and result.records[-1].settings.precision == "int8"
    spec = TargetSpec(kind="lab", engine="kokoro", workers=1, knobs=(("intra_op_threads", "1"),), queue_size=4)
    with running_target(spec) as target:
        voices = httpx.get(target.base_url + "/v1/audio/voices").json()["voices"]
        assert {"jm_kumo", "jf_nezumi"} <= set(voices)
        answer = httpx.post(target.base_url + "/v1/audio/speech", timeout=120,
                            json={"input": "Hello there.", "voice": "jf_nezumi", "response_format": "pcm"})
        assert answer.status_code == 200 and len(answer.content) > 24000  # over half a second of PCM16


def test_kokoro_and_piper_share_a_sweep_and_the_pareto_view(tmp_path: Path) -> None:
    from profiling import api
    from profiling.analysis.pareto import sweep_quality
    from profiling.store.results import ResultsStore

    pytest.importorskip("pocketsphinx")
    spec = {
        "name": "two-trained", "texts": {"inline": ["The birch canoe slid on the smooth planks."]},
        "repeats": 1, "warmup": 0, "save_audio": True,
        "engines": [{"engine": "piper", "knobs": {"deterministic": True, "intra_op_threads": 1}},
                    {"engine": "kokoro", "precisions": ["int8"], "knobs": {"intra_op_threads": 1},
                     "grid": {"speed": [1.0, 1.2]}}],
    }
    api.sweep(spec, data_dir=tmp_path)
    quality = sweep_quality(ResultsStore(tmp_path), "two-trained")
    assert set(quality["engine"]) == {"piper", "kokoro"} and not quality["random_weights"].any()
    assert quality["relative_wer"].notna().all() and quality["median_rtf"].gt(0).all()
    kokoro = quality[quality["engine"] == "kokoro"]
    assert kokoro["is_reference"].sum() == 1 and kokoro["fidelity_distance"].notna().all()


def test_a_local_file_runs_at_the_precision_it_holds(engine: KokoroEngine) -> None:
    local = engine.describe_model()["model_file"]
    wrong = SynthesisSettings("kokoro", precision="fp32", knobs={**settings().knobs, "weights": local})
    with pytest.raises(LoadError, match="holds int8 weights"):
        KokoroEngine().load(wrong)


@pytest.mark.gpu
def test_cuda_runs_on_the_cuda_provider(engine: KokoroEngine) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider (the gpu extra)")
    local = engine.describe_model()["model_file"]
    gpu = KokoroEngine()
    knobs = {**settings().knobs, "weights": local}
    gpu.load(SynthesisSettings("kokoro", device="cuda:0", precision="int8", knobs=knobs))
    assert gpu.describe_model()["ort_providers"].split(",")[0] == "CUDAExecutionProvider"
    assert gpu.synthesize("Hello there.", DEFAULT_VOICE, settings()).duration_s > 0.3
