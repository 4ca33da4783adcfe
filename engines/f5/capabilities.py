"""F5-TTS capabilities as data: devices, precisions, refusals and every knob.

No torch or f5_tts import here: the registry and dashboard read this cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engines.base import Capabilities, KnobKind, KnobPhase, KnobRefusal, KnobSpec, KnobValue, read_knobs
from engines.torch_settings import BF16_CUDA_REFUSAL, TORCH_KNOB_REFUSALS, torch_knobs

SAMPLE_RATE = 24000

#: Shipped YAML configs with a DiT backbone (the E2TTS configs use UNetT).
SHIPPED_ARCHITECTURES: tuple[str, ...] = ("F5TTS_v1_Base", "F5TTS_v1_Small", "F5TTS_Base", "F5TTS_Small")
TINY_ARCHITECTURE = "tiny"
ARCHITECTURES: tuple[str, ...] = (*SHIPPED_ARCHITECTURES, TINY_ARCHITECTURE)

PRECISION_CHOICES: tuple[str, ...] = ("fp32", "fp16", "bf16")
ODE_METHODS: tuple[str, ...] = ("euler", "midpoint")
CHUNKERS: tuple[str, ...] = ("f5", "lab")
STREAM_MODES: tuple[str, ...] = ("chunked", "pseudo")
#: NFE values for which F5 uses its Empirically Pruned Step Sampling schedule.
EPSS_STEPS: tuple[int, ...] = (5, 6, 7, 10, 12, 16)
#: reference_preprocess: F5's own reference preprocessing, or the file as given.
REFERENCE_PREPROCESS: tuple[str, ...] = ("f5", "none")

_LOAD = KnobPhase.LOAD

F5_KNOBS: tuple[KnobSpec, ...] = (
    # --- what is loaded -------------------------------------------------------------
    *torch_knobs(
        weights_help="checkpoint: model_file + vocoder_dir from disk (never the hub); random-full: the "
        "`architecture` config with random weights (audio is noise); random-tiny: ~1 M params, for tests",
        warmup_default=0,
    ),
    KnobSpec(
        "architecture", KnobKind.CHOICE, "F5TTS_v1_Base", phase=_LOAD, choices=ARCHITECTURES,
        help="DiT config shipped with f5-tts (checkpoint and random-full); random-tiny ignores it",
    ),
    KnobSpec(
        "model_file", KnobKind.TEXT, "", phase=_LOAD,
        help="weights=checkpoint: the DiT checkpoint (.safetensors or .pt, released EMA layout)",
    ),
    KnobSpec(
        "vocab_file", KnobKind.TEXT, "", phase=_LOAD,
        help="weights=checkpoint: vocab.txt of the checkpoint; empty = the vocab.txt f5-tts ships",
    ),
    KnobSpec(
        "vocoder_dir", KnobKind.DIRECTORY, "", phase=_LOAD,
        help="weights=checkpoint: local Vocos directory (config.yaml + pytorch_model.bin)",
    ),
    KnobSpec(
        "use_ema", KnobKind.BOOL, True, phase=_LOAD,
        help="weights=checkpoint: load the EMA weights (what the released checkpoints hold)",
    ),
    KnobSpec(
        "weights_seed", KnobKind.INT, 0, phase=_LOAD, minimum=0, maximum=2**31 - 1, step=1,
        help="random weights: seed of the initialisation (same seed = same weights at any precision)",
    ),
    # --- how it runs ------------------------------------------------------------------
    KnobSpec(
        "vocoder_precision", KnobKind.CHOICE, "fp32", phase=_LOAD, choices=PRECISION_CHOICES,
        help="Vocos weights and input dtype (fp16 refused on CPU: its ISTFT has no float16 FFT there)",
    ),
    # --- per call -----------------------------------------------------------------------
    KnobSpec(
        "nfe_step", KnobKind.INT, 32, minimum=1, maximum=128, step=1,
        help="ODE steps (5, 6, 7, 10, 12, 16 use F5's EPSS schedule; others uniform). With the DiT cast "
        "to bf16, 16 and 26+ are refused (the time grid rounds together); fp16 cast: 72+",
    ),
    KnobSpec(
        "cfg_strength", KnobKind.FLOAT, 2.0, minimum=0.0, maximum=10.0, step=0.1,
        help="classifier-free guidance; 0 skips the unconditional pass (half the DiT batch)",
    ),
    KnobSpec(
        "sway_sampling_coef", KnobKind.FLOAT, -1.0, minimum=-1.0, maximum=1.0, step=0.05,
        help="sway sampling of the time steps (F5 default -1)",
    ),
    KnobSpec(
        "ode_method", KnobKind.CHOICE, "euler", choices=ODE_METHODS,
        help="ODE solver: euler (1 DiT evaluation per step) or midpoint (2 per step)",
    ),
    KnobSpec(
        "speed", KnobKind.FLOAT, 1.0, minimum=0.3, maximum=3.0, step=0.05,
        help="speaking rate: scales the estimated duration",
    ),
    KnobSpec(
        "cross_fade_s", KnobKind.FLOAT, 0.15, minimum=0.0, maximum=1.0, step=0.01,
        help="linear cross-fade between chunks (F5 default 0.15 s)",
    ),
    KnobSpec(
        "reference_preprocess", KnobKind.CHOICE, "f5", choices=REFERENCE_PREPROCESS,
        help="f5: what F5's API does to the reference first (clip over 12 s at a silence, trim silent edges, "
        "add 50 ms silence; cached per file like F5); none: the file as given, cut at 12 s (longer or "
        "shorter prompt than F5's, so a different generated length and cost)",
    ),
    KnobSpec(
        "chunker", KnobKind.CHOICE, "f5", choices=CHUNKERS,
        help="f5: F5's chunk_text (max bytes from the reference's speaking rate); lab: the lab chunker "
        "(short first chunk, same max size)",
    ),
    KnobSpec(
        "first_chunk_max_chars", KnobKind.INT, 20, minimum=5, maximum=500, step=1,
        help="chunker=lab: longest first chunk (the first audio comes sooner)",
    ),
    KnobSpec(
        "chunk_batch_size", KnobKind.INT, 1, minimum=1, maximum=16, step=1,
        help="synthesize: text chunks sampled together in one padded DiT batch",
    ),
    KnobSpec(
        "stream_mode", KnobKind.CHOICE, "chunked", choices=STREAM_MODES,
        help="chunked: each text chunk generated and yielded when ready (cross-faded); pseudo: F5's own "
        "streaming (a chunk generated whole, then sliced)",
    ),
    KnobSpec(
        "stream_slice_samples", KnobKind.INT, 2048, minimum=256, maximum=96000, step=256,
        help="stream_mode=pseudo: samples per yielded slice (F5 default 2048)",
    ),
)

F5_CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    precisions=PRECISION_CHOICES,
    precision_note="F5-TTS runs in torch float formats; no int8 path ships with it",
    streaming=True,
    voice_cloning=True,
    sample_rate=SAMPLE_RATE,
    framework="torch",
    knobs=F5_KNOBS,
    refusals=(BF16_CUDA_REFUSAL,),
    #: Measured on this stack (engine-facts): Vocos' ISTFT calls torch.fft, whose CPU backends have no
    #: float16 kernels, so fp16 Vocos fails on CPU mid-run.
    knob_refusals=(
        KnobRefusal(
            knob="vocoder_precision", value="fp16", device="cpu",
            reason="Vocos' inverse STFT runs torch.fft, which has no float16 kernels on CPU "
            "(use vocoder_precision=bf16 or fp32)",
        ),
        *TORCH_KNOB_REFUSALS,
    ),
)


@dataclass(frozen=True)
class F5Knobs:
    """F5's own knobs, typed (the shared torch ones are engines.torch_settings.TorchSettings)."""

    architecture: str
    model_file: str
    vocab_file: str
    vocoder_dir: str
    use_ema: bool
    weights_seed: int
    vocoder_precision: str
    nfe_step: int
    cfg_strength: float
    sway_sampling_coef: float
    ode_method: str
    speed: float
    cross_fade_s: float
    chunker: str
    first_chunk_max_chars: int
    chunk_batch_size: int
    stream_mode: str
    stream_slice_samples: int

    @classmethod
    def of(cls, knobs: Mapping[str, KnobValue]) -> F5Knobs:
        return read_knobs(cls, F5_CAPABILITIES, knobs)
