"""What the ONNX Runtime engines (Piper, Kokoro) share: their devices, session options and the CUDA check.

onnxruntime is imported inside functions only: the registry imports the engine modules to read
their capabilities, and listing engines must not load ONNX Runtime.
"""

from __future__ import annotations

from typing import Any

from engines.base import DeviceSupport

#: The ``graph_optimization`` knob's values, in ONNX Runtime's order (see ``session_options``).
GRAPH_OPTIMIZATION_LEVELS: tuple[str, ...] = ("disable", "basic", "extended", "all")
CUDA_PROVIDER = "CUDAExecutionProvider"


class OnnxRuntimeDevices(DeviceSupport):
    """The CPU always; ``cuda:0`` when this onnxruntime build has the CUDA execution provider."""

    @classmethod
    def machine_devices(cls) -> tuple[str, ...]:
        import onnxruntime

        return ("cpu", "cuda:0") if CUDA_PROVIDER in onnxruntime.get_available_providers() else ("cpu",)


def session_options(
    graph_optimization: str, execution_mode: str, intra_op_threads: int, inter_op_threads: int
) -> Any:
    """An ``onnxruntime.SessionOptions`` from the session knobs both engines declare under these names."""
    import onnxruntime

    levels = onnxruntime.GraphOptimizationLevel
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = {
        "disable": levels.ORT_DISABLE_ALL,
        "basic": levels.ORT_ENABLE_BASIC,
        "extended": levels.ORT_ENABLE_EXTENDED,
        "all": levels.ORT_ENABLE_ALL,
    }[graph_optimization]
    options.execution_mode = (
        onnxruntime.ExecutionMode.ORT_PARALLEL
        if execution_mode == "parallel"
        else onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    )
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    return options


def provider_refusal(device_kind: str, used: list[str], available: list[str]) -> str | None:
    """Why a session built for ``device_kind`` must not be measured, or None.

    ONNX Runtime falls back to the CPU, with a warning only, when the CUDA provider is missing
    from its build or fails to load (no CUDA/cuDNN libraries): the run would be stored as CUDA.
    """
    if device_kind != "cuda" or (used and used[0] == CUDA_PROVIDER):
        return None
    if CUDA_PROVIDER not in available:
        why = (
            f"this onnxruntime build has no {CUDA_PROVIDER} (available: {', '.join(available)}); install the "
            "CUDA build: pip uninstall -y onnxruntime && pip install onnxruntime-gpu (README, GPU)"
        )
    else:
        why = f"{CUDA_PROVIDER} failed to load (CUDA or cuDNN libraries missing or mismatched)"
    return f"refused: ONNX Runtime would run this on the CPU, not CUDA ({why}); session providers: {', '.join(used)}"
