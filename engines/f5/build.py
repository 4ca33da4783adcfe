"""Building F5-TTS offline: from the shipped YAML configs (random weights) or a local checkpoint.

Heavy module (torch, f5_tts, vocos): import it only inside engine methods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from engines.errors import LoadError
from engines.f5.capabilities import TINY_ARCHITECTURE
from engines.f5.checkpoint import VOCOS_CONFIG, VOCOS_WEIGHTS, CheckpointFiles, shipped_config, shipped_vocab

#: About 1 M parameters: full synthesis in well under a second per NFE step on a laptop CPU.
TINY_DIT: dict[str, Any] = {
    "dim": 128, "depth": 2, "heads": 2, "dim_head": 64, "ff_mult": 2, "text_dim": 64,
    "conv_layers": 1, "text_mask_padding": True, "qk_norm": None, "pe_attn_head": None,
}

#: charactr/vocos-mel-24khz, the vocoder F5-TTS loads (13.5 M parameters), as Vocos' own config.
VOCOS_FULL: dict[str, Any] = {
    "feature_extractor": {
        "class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
        "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"},
    },
    "backbone": {
        "class_path": "vocos.models.VocosBackbone",
        "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8},
    },
    "head": {
        "class_path": "vocos.heads.ISTFTHead",
        "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "same"},
    },
}


def _tiny_vocos() -> dict[str, Any]:
    config = copy.deepcopy(VOCOS_FULL)
    config["backbone"]["init_args"].update(dim=64, intermediate_dim=128, num_layers=1)
    config["head"]["init_args"]["dim"] = 64
    return config


VOCOS_TINY: dict[str, Any] = _tiny_vocos()

#: F5's inference constants (utils_infer), fixed by the released models.
MEL_SPEC_KWARGS: dict[str, Any] = {
    "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mel_channels": 100,
    "target_sample_rate": 24000, "mel_spec_type": "vocos",
}


@dataclass
class F5Model:
    """What synthesis needs: the CFM (DiT inside), its vocoder, the vocab and where it came from."""

    cfm: nn.Module
    vocoder: nn.Module
    vocab_char_map: dict[str, int]
    architecture: str
    source: str

    @property
    def dit_parameters(self) -> int:
        return sum(p.numel() for p in self.cfm.transformer.parameters())

    @property
    def vocoder_parameters(self) -> int:
        return sum(p.numel() for p in self.vocoder.parameters())


def dit_config(architecture: str) -> dict[str, Any]:
    """The DiT arguments of a shipped config (``model.arch`` of its YAML), or the tiny one."""
    if architecture == TINY_ARCHITECTURE:
        return dict(TINY_DIT)
    path = shipped_config(architecture)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise LoadError(f"f5-tts config {path} cannot be read: {error}") from None
    if config["model"]["backbone"] != "DiT":
        raise LoadError(f"{architecture} is not a DiT model")
    return dict(config["model"]["arch"])


def vocos_config(architecture: str) -> dict[str, Any]:
    return copy.deepcopy(VOCOS_TINY if architecture == TINY_ARCHITECTURE else VOCOS_FULL)


def build_vocos(config: dict[str, Any]) -> nn.Module:
    """Vocos from its config classes, the way ``Vocos.from_hparams`` does it, without a file."""
    from vocos import Vocos
    from vocos.pretrained import instantiate_class

    return Vocos(
        feature_extractor=instantiate_class(args=(), init=config["feature_extractor"]),
        backbone=instantiate_class(args=(), init=config["backbone"]),
        head=instantiate_class(args=(), init=config["head"]),
    )


def _build_cfm(architecture: str, vocab_file: Path) -> tuple[nn.Module, dict[str, int]]:
    # Same composition as f5_tts.infer.utils_infer.load_model.
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer

    vocab_char_map, vocab_size = get_tokenizer(str(vocab_file), "custom")
    transformer = DiT(**dit_config(architecture), text_num_embeds=vocab_size, mel_dim=MEL_SPEC_KWARGS["n_mel_channels"])
    cfm = CFM(
        transformer=transformer,
        mel_spec_kwargs=dict(MEL_SPEC_KWARGS),
        odeint_kwargs={"method": "euler"},
        vocab_char_map=vocab_char_map,
    )
    return cfm, vocab_char_map


def randomise_zero_init(dit: nn.Module, std: float = 0.02) -> int:
    """DiT zero-initialises its AdaLN modulations and output projection (so a fresh model
    predicts zero flow and every block's gate is shut). Give them small random values so the
    flow is non-zero and the compute is what a trained model does. Returns tensors changed."""
    changed = 0
    layers = [block.attn_norm.linear for block in dit.transformer_blocks]
    layers += [dit.norm_out.linear, dit.proj_out]
    with torch.no_grad():
        for layer in layers:
            nn.init.normal_(layer.weight, std=std)
            nn.init.normal_(layer.bias, std=std)
            changed += 2
    return changed


def build_random(architecture: str, seed: int) -> F5Model:
    """A model of ``architecture`` with random weights, the same for the same seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cfm, vocab_char_map = _build_cfm(architecture, shipped_vocab())
        randomise_zero_init(cfm.transformer)
        vocoder = build_vocos(vocos_config(architecture))
    return F5Model(cfm.eval(), vocoder.eval(), vocab_char_map, architecture, f"random (seed {seed})")


def load_checkpoint_model(files: CheckpointFiles, architecture: str, use_ema: bool, device: str) -> F5Model:
    """Load a released checkpoint through f5-tts's own ``load_checkpoint`` and ``load_vocoder``."""
    from f5_tts.infer.utils_infer import load_checkpoint, load_vocoder

    cfm, vocab_char_map = _build_cfm(architecture, files.vocab_file)
    try:
        # dtype pinned to fp32: load_checkpoint would silently cast to fp16 on CUDA; the
        # lab's precision settings decide the dtype afterwards.
        cfm = load_checkpoint(cfm, str(files.model_file), device, dtype=torch.float32, use_ema=use_ema)
    except (RuntimeError, KeyError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LoadError(
            f"cannot load {files.model_file.name} as {architecture} (use_ema={use_ema}): {first_line}"
        ) from None
    try:
        vocoder = load_vocoder("vocos", is_local=True, local_path=str(files.vocoder_dir), device=device)
    except (RuntimeError, KeyError, OSError, ValueError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LoadError(f"cannot load Vocos from {files.vocoder_dir}: {first_line}") from None
    return F5Model(cfm.eval(), vocoder.eval(), vocab_char_map, architecture, f"checkpoint {files.model_file}")


def save_released_layout(model: F5Model, directory: Path, model_format: str = "safetensors") -> CheckpointFiles:
    """Write ``model`` the way F5-TTS releases are laid out (EMA keys, vocab.txt, Vocos dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {f"ema_model.{k}": v.detach().cpu().contiguous() for k, v in model.cfm.state_dict().items()}
    if model_format == "safetensors":
        from safetensors.torch import save_file

        model_file = directory / "model.safetensors"
        save_file(state, str(model_file))
    elif model_format == "pt":
        model_file = directory / "model.pt"
        torch.save({"ema_model_state_dict": {**state, "initted": torch.tensor(True), "step": torch.tensor(0)}},
                   model_file)
    else:
        raise ValueError(f"unknown model format {model_format!r}")
    vocab_file = directory / "vocab.txt"
    inverse = sorted(model.vocab_char_map.items(), key=lambda item: item[1])
    vocab_file.write_text("".join(f"{char}\n" for char, _ in inverse), encoding="utf-8")
    vocoder_dir = directory / "vocos"
    vocoder_dir.mkdir(exist_ok=True)
    config = VOCOS_TINY if model.architecture == TINY_ARCHITECTURE else VOCOS_FULL
    (vocoder_dir / VOCOS_CONFIG).write_text(yaml.safe_dump(config), encoding="utf-8")
    torch.save(model.vocoder.state_dict(), vocoder_dir / VOCOS_WEIGHTS)
    return CheckpointFiles(model_file, vocab_file, vocoder_dir)
