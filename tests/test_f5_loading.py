"""F5-TTS loading: released checkpoint layout round trip, clear errors, the runner and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("f5_tts")
pytest.importorskip("torch")

from engines.base import SynthesisSettings, Voice  # noqa: E402
from engines.errors import InputError, LoadError  # noqa: E402
from engines.f5.engine import F5Engine  # noqa: E402
from engines.validation import resolve_settings  # noqa: E402
from profiling.core.records import RunMode, RunStatus  # noqa: E402
from profiling.run.runner import BenchRequest, EnginePool, run_bench  # noqa: E402
from profiling.store.results import ResultsStore  # noqa: E402
from tests.cli_in_process import run_main  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

TEXT = "Checkpoints load offline."


def settings(**knobs: object) -> SynthesisSettings:
    return resolve_settings(
        F5Engine.capabilities, SynthesisSettings("f5", knobs={"nfe_step": 2, "torch_threads": 1, **knobs}), ("cpu",)
    )


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random tiny model saved in the released layout, once as .safetensors and once as .pt."""
    from engines.f5.build import build_random, save_released_layout

    model = build_random("tiny", seed=0)
    root = tmp_path_factory.mktemp("f5ckpt")
    safetensors = save_released_layout(model, root / "st", "safetensors")
    pt = save_released_layout(model, root / "pt", "pt")
    return {"safetensors": safetensors.model_file, "pt": pt.model_file, "vocab": safetensors.vocab_file,
            "vocos": safetensors.vocoder_dir}


@pytest.mark.parametrize("model_format", ["safetensors", "pt"])
def test_checkpoint_round_trip_through_f5s_loaders(released: dict[str, Path], model_format: str) -> None:
    checkpoint = settings(weights="checkpoint", architecture="tiny", model_file=str(released[model_format]),
                          vocab_file=str(released["vocab"]), vocoder_dir=str(released["vocos"]))
    loaded = F5Engine()
    loaded.load(checkpoint)
    assert not loaded.random_weights
    assert loaded.describe_model()["weights"] == "trained"
    assert str(released[model_format]) in loaded.describe_model()["source"]
    random = F5Engine()
    random.load(settings(weights="random-tiny"))
    # Same weights in, same audio out: the checkpoint path reproduces the model it saved.
    from_checkpoint = loaded.synthesize(TEXT, Voice(), checkpoint)
    from_memory = random.synthesize(TEXT, Voice(), settings(weights="random-tiny"))
    assert np.array_equal(from_checkpoint.samples, from_memory.samples)


def test_full_size_architecture_comes_from_the_shipped_yaml() -> None:
    from engines.f5.build import VOCOS_FULL, dit_config

    arch = dit_config("F5TTS_v1_Base")
    assert (arch["dim"], arch["depth"], arch["heads"], arch["conv_layers"]) == (1024, 22, 16, 4)
    assert VOCOS_FULL["backbone"]["init_args"]["num_layers"] == 8


def test_random_weights_are_not_zero_flow() -> None:
    from engines.f5.build import build_random

    model = build_random("tiny", seed=3)
    assert model.cfm.transformer.proj_out.weight.abs().sum() > 0  # DiT itself zero-initialises it
    again = build_random("tiny", seed=3)
    pairs = zip(model.cfm.state_dict().values(), again.cfm.state_dict().values(), strict=True)
    assert all((a == b).all() for a, b in pairs)  # same seed, same weights


def test_missing_checkpoint_files_give_clear_errors(released: dict[str, Path], tmp_path: Path) -> None:
    base = {"weights": "checkpoint", "architecture": "tiny", "vocoder_dir": str(released["vocos"])}
    cases = [
        ({}, "needs model_file"),
        ({"model_file": str(tmp_path / "nope.safetensors")}, "checkpoint not found"),
        ({"model_file": str(tmp_path / "model.bin")}, "must end in .safetensors or .pt"),
        ({"model_file": str(released["safetensors"]), "vocab_file": str(tmp_path / "v.txt")}, "vocab file not found"),
        ({"model_file": str(released["safetensors"]), "vocoder_dir": ""}, "needs vocoder_dir"),
        ({"model_file": str(released["safetensors"]), "vocoder_dir": str(tmp_path)}, "lacks config.yaml"),
    ]
    for knobs, message in cases:
        with pytest.raises(LoadError, match=message):
            F5Engine().load(settings(**{**base, **knobs}))
    with pytest.raises(InputError, match="directory not found"):
        settings(**{**base, "vocoder_dir": str(tmp_path / "absent")})


def test_wrong_architecture_for_the_checkpoint_is_a_load_error(released: dict[str, Path]) -> None:
    wrong = settings(weights="checkpoint", architecture="F5TTS_v1_Small", model_file=str(released["safetensors"]),
                     vocoder_dir=str(released["vocos"]))
    with pytest.raises(LoadError, match="cannot load model.safetensors as F5TTS_v1_Small"):
        F5Engine().load(wrong)


def test_run_bench_records_stages_series_and_stream_chunks(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    pool = EnginePool()
    batch = run_bench(BenchRequest(settings=settings(weights="random-tiny"), text=TEXT, repeats=2, warmup=1),
                      pool, store)
    assert all(r.status is RunStatus.OK for r in batch.records)
    measured = batch.records[-1]
    assert measured.random_weights and len(measured.series["nfe_step_s"]) == 2
    assert {"ode_solve", "vocoder_decode", "reference_mel"} <= {s.name for s in measured.stages}
    assert measured.annotations["dtype.dit_params"] == "torch.float32"
    stored = store.load_run(measured.run_id)  # per-step times survive the store
    assert stored.series["nfe_step_s"] == measured.series["nfe_step_s"]
    stream = run_bench(
        BenchRequest(settings=settings(weights="random-tiny", chunker="lab"), text=TEXT + " " + TEXT * 3,
                     mode=RunMode.STREAM, repeats=1, warmup=0),
        pool, store,
    )
    record = stream.records[0]
    assert record.status is RunStatus.OK and len(record.chunks) >= 2
    ready = [c.ready_s for c in record.chunks]
    assert ready == sorted(ready) and record.ttfa_s == ready[0] < record.synth_s
    assert len(store.runs_dataframe()) == 4


def test_cli_bench_runs_and_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `main` in this process: a second interpreter would import torch and f5 again. A fresh interpreter loads F5 in
    # tests/test_serve_voices.py (`profiling serve --engine f5`), and `bench` runs as a real process in test_cli.py.
    ok = run_main("bench", "--engine", "f5", "--knob", "weights=random-tiny", "--knob", "nfe_step=2", "--knob",
                  "torch_threads=1", "--text", TEXT, "--repeats", "1", "--warmup", "0", "--no-progress", "--data-dir",
                  str(tmp_path), capsys=capsys)
    assert ok.returncode == 0, ok.stderr
    assert "RANDOM WEIGHTS" in ok.stdout and "ode_solve" in ok.stdout and "vocoder_decode" in ok.stdout
    refused = run_main("bench", "--engine", "f5", "--knob", "weights=random-tiny", "--knob", "vocoder_precision=fp16",
                       "--text", TEXT, "--repeats", "1", "--warmup", "0", "--no-progress", "--data-dir", str(tmp_path),
                       capsys=capsys)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "float16" in refused.stderr
    assert "Traceback" not in refused.stderr
