"""XTTS capabilities as data: devices, precisions, refusals and every knob.

No torch or TTS import here (``import TTS`` costs ~12 s): the registry and the
dashboard read this cheaply. DeepSpeed is only a knob when it is importable.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.base import Capabilities, KnobKind, KnobPhase, KnobSpec
from engines.torch_settings import BF16_CUDA_REFUSAL, TORCH_KNOB_REFUSALS, deepspeed_available, torch_knobs
from engines.xtts.precision import REFUSALS
from engines.xtts.tokenizer import LANGUAGES
from engines.xtts.voice_cache import CACHE_MODES
from engines.xtts.windowed_decode import STREAM_DECODERS

SAMPLE_RATE = 24000
#: The v2 GPT generates at most gpt_max_audio_tokens - 3 = 602 audio tokens per sentence.
MAX_AUDIO_TOKENS = 602
#: With random weights the stop token is suppressed and this many tokens are generated (knob = 0).
RANDOM_DEFAULT_TOKENS = 32

_LOAD = KnobPhase.LOAD

_DEEPSPEED_KNOBS: tuple[KnobSpec, ...] = (
    (
        KnobSpec(
            "use_deepspeed", KnobKind.BOOL, False, phase=_LOAD,
            help="DeepSpeed inference kernels for the GPT (coqui's use_deepspeed; CUDA only)",
        ),
    )
    if deepspeed_available()
    else ()
)

XTTS_KNOBS: tuple[KnobSpec, ...] = (
    # --- what is loaded and how it runs (shared by the torch engines) -------------------------
    *torch_knobs(
        weights_help="checkpoint: checkpoint_dir through coqui's Xtts.load_checkpoint (never the hub); "
        "random-full: the released v2 architecture (~467 M params) with random weights (audio is noise); "
        "random-tiny: ~10 M params, for tests",
        warmup_default=1,
    ),
    KnobSpec(
        "checkpoint_dir", KnobKind.DIRECTORY, "", phase=_LOAD,
        help="weights=checkpoint: directory with config.json, model.pth, vocab.json (speakers_xtts.pth optional)",
    ),
    *_DEEPSPEED_KNOBS,
    # --- voice and its cache --------------------------------------------------------------
    KnobSpec(
        "voice_cache", KnobKind.CHOICE, "memory+disk", choices=CACHE_MODES,
        help="reuse conditioning (speaker embedding + GPT latents) per reference audio and settings",
    ),
    KnobSpec(
        "voice_cache_dir", KnobKind.TEXT, "",
        help="disk cache directory (empty = $TTSPERF_DATA_DIR/xtts_voice_cache or ~/.ttsperf/xtts_voice_cache)",
    ),
    KnobSpec(
        "gpt_cond_len", KnobKind.INT, 30, minimum=1, maximum=60, step=1,
        help="seconds of reference audio used for the GPT conditioning latents",
    ),
    KnobSpec(
        "gpt_cond_chunk_len", KnobKind.INT, 4, minimum=1, maximum=60, step=1,
        help="seconds per conditioning chunk (the latents are averaged over chunks)",
    ),
    KnobSpec("max_ref_len", KnobKind.INT, 30, minimum=1, maximum=120, step=1, help="reference audio cut to this (s)"),
    KnobSpec("sound_norm_refs", KnobKind.BOOL, False, help="peak-normalise the reference to 0.75"),
    # --- generation -------------------------------------------------------------------------
    KnobSpec("language", KnobKind.CHOICE, "en", choices=LANGUAGES, help="language of the text"),
    KnobSpec(
        "max_audio_tokens", KnobKind.INT, 0, minimum=0, maximum=MAX_AUDIO_TOKENS, step=1,
        help=f"GPT audio tokens per sentence (~46 ms each); 0 = the model limit ({MAX_AUDIO_TOKENS}), "
        "or with random weights the length model (the tokens trained XTTS would generate for each sentence: "
        "syllables / the language's speech rate x 21.53 tokens/s, engines/xtts/length_model.py). Random "
        "weights generate exactly this many (stop token suppressed) so runs stay comparable",
    ),
    KnobSpec("temperature", KnobKind.FLOAT, 0.75, minimum=0.01, maximum=2.0, step=0.05, help="sampling temperature"),
    KnobSpec("top_k", KnobKind.INT, 50, minimum=1, maximum=1026, step=1, help="top-k sampling"),
    KnobSpec("top_p", KnobKind.FLOAT, 0.85, minimum=0.01, maximum=1.0, step=0.01, help="nucleus sampling"),
    KnobSpec(
        "repetition_penalty", KnobKind.FLOAT, 5.0, minimum=1.0, maximum=20.0, step=0.5,
        help="penalty on repeated audio tokens",
    ),
    KnobSpec("length_penalty", KnobKind.FLOAT, 1.0, minimum=-5.0, maximum=5.0, step=0.1, help="HF length penalty"),
    KnobSpec("do_sample", KnobKind.BOOL, True, help="sample (True) or greedy (False)"),
    KnobSpec("speed", KnobKind.FLOAT, 1.0, minimum=0.25, maximum=4.0, step=0.05, help="speaking rate (latent stretch)"),
    KnobSpec(
        "enable_text_splitting", KnobKind.BOOL, False,
        help="split the text in sentences (coqui's split_sentence), one GPT pass each",
    ),
    # --- streaming -----------------------------------------------------------------------------
    KnobSpec(
        "stream_chunk_size", KnobKind.INT, 20, minimum=1, maximum=MAX_AUDIO_TOKENS, step=1,
        help="GPT tokens per streamed chunk (coqui's stream_chunk_size)",
    ),
    KnobSpec(
        "overlap_wav_len", KnobKind.INT, 1024, minimum=0, maximum=24000, step=64,
        help="samples cross-faded between streamed chunks (coqui's overlap_wav_len)",
    ),
    KnobSpec(
        "stream_decoder", KnobKind.CHOICE, "coqui", choices=STREAM_DECODERS,
        help="coqui: HiFi-GAN re-run over all latents each chunk (quadratic); windowed: only new frames "
        "plus stream_context_frames of left context (linear)",
    ),
    KnobSpec(
        "stream_context_frames", KnobKind.INT, 32, minimum=0, maximum=1024, step=1,
        help="stream_decoder=windowed: HiFi-GAN input frames (~10.7 ms each) of left context per window",
    ),
)

XTTS_CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    precisions=("fp32", "fp16", "bf16", "int8"),
    streaming=True,
    voice_cloning=True,
    sample_rate=SAMPLE_RATE,
    framework="torch",
    knobs=XTTS_KNOBS,
    refusals=(*REFUSALS, BF16_CUDA_REFUSAL),
    knob_refusals=TORCH_KNOB_REFUSALS,
)


@dataclass(frozen=True)
class GenerationKnobs:
    """The generation knobs, typed: what one call's GPT sampling and text split take.

    Declared once: XttsKnobs extends it with the rest, and the pipeline's GenerationSettings
    extends it with what the engine derives from the loaded weights.
    """

    language: str
    max_audio_tokens: int  # 0 = the model's limit, or the length model on random weights
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    length_penalty: float
    do_sample: bool
    speed: float
    enable_text_splitting: bool


@dataclass(frozen=True)
class XttsKnobs(GenerationKnobs):
    """XTTS's own knobs, typed (the shared torch ones are engines.torch_settings.TorchSettings)."""

    checkpoint_dir: str
    voice_cache: str
    voice_cache_dir: str
    gpt_cond_len: int
    gpt_cond_chunk_len: int
    max_ref_len: int
    sound_norm_refs: bool
    stream_chunk_size: int
    overlap_wav_len: int
    stream_decoder: str
    stream_context_frames: int
    use_deepspeed: bool = False  # a knob only where deepspeed is importable
