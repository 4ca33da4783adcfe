"""Build XTTS offline: random weights from the config classes, or a local checkpoint.

Random architectures come from ``XttsArgs`` alone, so anything built here can
be saved in the released layout (``config.json``, ``model.pth``,
``vocab.json``) and loaded back through coqui's own ``Xtts.load_checkpoint``.
Nothing here reaches the model hub.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.errors import LoadError
from engines.xtts.tokenizer import RELEASED_VOCAB_SIZE, stand_in_vocab

if TYPE_CHECKING:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

REQUIRED_FILES: tuple[str, ...] = ("config.json", "model.pth", "vocab.json")
OPTIONAL_FILES: tuple[str, ...] = ("speakers_xtts.pth",)
#: Lab-only shape facts XttsConfig cannot hold (it drops unknown keys); absent in released checkpoints.
LAB_ARCH_FILE = "ttsperf_arch.json"

#: Inference settings of the released v2 config.json (XttsConfig's own defaults differ).
RELEASED_INFERENCE = {
    "temperature": 0.75,
    "length_penalty": 1.0,
    "repetition_penalty": 5.0,
    "top_k": 50,
    "top_p": 0.85,
    "gpt_cond_len": 30,
    "gpt_cond_chunk_len": 4,
    "max_ref_len": 30,
    "sound_norm_refs": False,
}


@dataclass(frozen=True)
class Architecture:
    """The XttsArgs fields that differ between the full v2 architecture and the tiny one."""

    name: str
    gpt_layers: int
    gpt_n_model_channels: int
    gpt_n_heads: int
    vocab_size: int  # 6681: the trained stand-in BPE; otherwise the char-level vocab padded to this (0 = none)
    #: HiFi-GAN upsample_initial_channel; 512 is the released value XttsArgs always builds.
    hifigan_channels: int = 512

    def model_args(self) -> dict[str, Any]:
        return {
            "gpt_layers": self.gpt_layers,
            "gpt_n_model_channels": self.gpt_n_model_channels,
            "gpt_n_heads": self.gpt_n_heads,
            # The GPT latents feed HiFi-GAN directly: its input width is the GPT width.
            "decoder_input_dim": self.gpt_n_model_channels,
            # v2 values (XttsArgs defaults are v1's 8194-token codebook).
            "gpt_num_audio_tokens": 1026,
            "gpt_start_audio_token": 1024,
            "gpt_stop_audio_token": 1025,
            "gpt_use_perceiver_resampler": True,
            "gpt_max_audio_tokens": 605,
            "gpt_max_text_tokens": 402,
            "gpt_max_prompt_tokens": 70,
        }


FULL = Architecture("full", gpt_layers=30, gpt_n_model_channels=1024, gpt_n_heads=16, vocab_size=RELEASED_VOCAB_SIZE)
# A released-width HiFi-GAN costs ~1 s per second of audio on this CPU, so tiny narrows it too.
# XttsArgs cannot express that width: it travels in ttsperf_arch.json and LabXtts.init_models reads it.
TINY = Architecture(
    "tiny", gpt_layers=2, gpt_n_model_channels=128, gpt_n_heads=2, vocab_size=0, hifigan_channels=64
)
ARCHITECTURES = {"full": FULL, "tiny": TINY}


def make_config(arch: Architecture) -> XttsConfig:
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig

    config = XttsConfig(model_args=XttsArgs(**arch.model_args()))
    for key, value in RELEASED_INFERENCE.items():
        setattr(config, key, value)
    return config


def xtts_class(hifigan_channels: int = 512) -> type[Xtts]:
    """coqui's Xtts, or a subclass whose init_models() builds a narrower HiFi-GAN.

    Xtts.load_checkpoint() calls init_models() before loading the state dict, so
    the subclass goes through the real loader with strict key and shape checks.
    """
    from TTS.tts.models.xtts import Xtts

    if hifigan_channels == 512:
        return Xtts
    return _lab_xtts(hifigan_channels)


@functools.cache
def _lab_xtts(hifigan_channels: int) -> type[Xtts]:
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder
    from TTS.tts.models.xtts import Xtts

    class LabXtts(Xtts):
        def init_models(self) -> None:
            super().init_models()
            args = self.args
            self.hifigan_decoder = HifiDecoder(
                input_sample_rate=args.input_sample_rate,
                output_sample_rate=args.output_sample_rate,
                output_hop_length=args.output_hop_length,
                ar_mel_length_compression=args.gpt_code_stride_len,
                decoder_input_dim=args.decoder_input_dim,
                d_vector_dim=args.d_vector_dim,
                cond_d_vector_in_each_upsampling_layer=args.cond_d_vector_in_each_upsampling_layer,
                upsample_initial_channel_decoder=hifigan_channels,
            )

    LabXtts.__name__ = LabXtts.__qualname__ = f"LabXtts{hifigan_channels}"
    return LabXtts


def build_random(arch: Architecture, seed: int, work_dir: Path | None = None) -> tuple[Xtts, XttsConfig]:
    """An eval-mode Xtts with seeded random weights and a stand-in vocab written to ``work_dir``."""
    import torch
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="ttsperf-xtts-"))
    vocab = stand_in_vocab(work_dir / "vocab.json", arch.vocab_size)
    config = make_config(arch)
    config.model_args.tokenizer_file = str(vocab)
    torch.manual_seed(seed)
    model = xtts_class(arch.hifigan_channels)(config)
    # The GPT only exists once a tokenizer is set and init_models() runs again.
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(vocab))
    model.init_models()
    model.eval()
    return model, config


def check_checkpoint_dir(directory: Path) -> None:
    """Raise LoadError naming every missing file of the released layout."""
    if not directory.is_dir():
        raise LoadError(f"XTTS checkpoint directory not found: {directory}")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise LoadError(
            f"XTTS checkpoint directory {directory} lacks {', '.join(missing)} "
            f"(expected {', '.join(REQUIRED_FILES)}; optional {', '.join(OPTIONAL_FILES)})"
        )


def load_checkpoint(directory: Path, use_deepspeed: bool = False) -> tuple[Xtts, XttsConfig]:
    """Load a released-layout directory through coqui's own loader (never the hub)."""
    from TTS.tts.configs.xtts_config import XttsConfig

    check_checkpoint_dir(directory)
    config = XttsConfig()
    try:
        config.load_json(str(directory / "config.json"))
        lab_file = directory / LAB_ARCH_FILE
        lab = json.loads(lab_file.read_text(encoding="utf-8")) if lab_file.is_file() else {}
        hifigan_channels = int(lab.get("hifigan_channels", 512))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LoadError(f"cannot read the config in {directory}: {error}") from None
    model = xtts_class(hifigan_channels)(config)
    try:
        model.load_checkpoint(config, checkpoint_dir=str(directory), eval=True, use_deepspeed=use_deepspeed)
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise LoadError(f"cannot load XTTS checkpoint from {directory}: {error}") from None
    return model, config


def save_checkpoint(model: Xtts, config: XttsConfig, directory: Path, arch: Architecture | None = None) -> Path:
    """Write ``model`` in the released layout: config.json, model.pth ({"model": state}), vocab.json.

    A non-released HiFi-GAN width adds ttsperf_arch.json (coqui ignores the file).
    """
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    if arch is not None and arch.hifigan_channels != 512:
        lab = {"architecture": arch.name, "hifigan_channels": arch.hifigan_channels}
        (directory / LAB_ARCH_FILE).write_text(json.dumps(lab), encoding="utf-8")
    vocab_src = Path(config.model_args.tokenizer_file)
    (directory / "vocab.json").write_bytes(vocab_src.read_bytes())
    saved = make_config_copy(config)
    saved.model_args.tokenizer_file = ""  # the loader finds vocab.json beside model.pth
    (directory / "config.json").write_text(json.dumps(saved.to_dict(), indent=2), encoding="utf-8")
    # The released file lacks what init_gpt_for_inference() adds (gpt_inference.*, gpt.wte aliasing
    # mel_embedding); the loader's first strict load_state_dict expects exactly that.
    inference_only = ("gpt.gpt_inference.", "gpt.gpt.wte.")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(inference_only)}
    torch.save({"model": state}, directory / "model.pth")
    return directory


def make_config_copy(config: XttsConfig) -> XttsConfig:
    from TTS.tts.configs.xtts_config import XttsConfig

    copy = XttsConfig()
    copy.from_dict(config.to_dict())
    return copy


def parameter_counts(model: Xtts) -> dict[str, int]:
    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    return {
        "total": count(model),
        "gpt": count(model.gpt),
        "hifigan": count(model.hifigan_decoder.waveform_decoder),
        "speaker_encoder": count(model.hifigan_decoder.speaker_encoder),
    }
