"""Build or load the RVC pieces: the v2 synthesizer, HuBERT, RMVPE and the retrieval index.

Each piece has real loading code (a local file or folder, never a hub id) and an offline random-weight build
from its own config: full size (the real compute profile) and tiny (tests). rvc-next provides the model code;
its modules import only what they use, so each piece costs only its own imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.convert.rvc.capabilities import RANDOM, RANDOM_FULL
from engines.errors import LoadError

SAMPLE_RATE_NAMES = {40000: "40k", 48000: "48k"}
FEATURE_DIM = {"v1": 256, "v2": 768}

# Tiny synthesizer: the v2 layout with narrow layers. The upsample rates keep the hop (10 ms) of each rate.
_TINY_UPSAMPLE = {40000: ([10, 10, 2, 2], [16, 16, 4, 4]), 48000: ([12, 10, 2, 2], [24, 20, 4, 4])}


@dataclass
class Voice:
    """A loaded synthesizer and what the pipeline needs to know of it."""

    net_g: Any
    version: str
    sample_rate: int
    source: str  # "random-full", "random-tiny" or the model file's path
    parameters: int


def full_config(sample_rate: int) -> list[Any]:
    """The 18-value small-model config of RVC's own v2 training config at ``sample_rate``."""
    from rvc_next.engine.models.checkpoint import small_config_from_hparams
    from rvc_next.engine.train.hparams import HParams, default_config

    return small_config_from_hparams(HParams(**default_config("v2", SAMPLE_RATE_NAMES[sample_rate])))


def tiny_config(sample_rate: int) -> list[Any]:
    rates, kernels = _TINY_UPSAMPLE[sample_rate]
    return [1025, 32, 16, 16, 32, 2, 1, 3, 0, "1", [3], [[1, 3, 5]], rates, 32, kernels, 1, 16, sample_rate]


def random_voice(weights: str, sample_rate: int, device: str, half: bool, seed: int = 0) -> Voice:
    import torch
    from rvc_next.engine.models.loader import synthesizer_class

    config = full_config(sample_rate) if weights == RANDOM_FULL else tiny_config(sample_rate)
    torch.manual_seed(seed)
    net_g = synthesizer_class("v2", True)(*config, is_half=half)
    del net_g.enc_q  # training only, as in every exported model
    net_g = net_g.eval().to(device)
    net_g = net_g.half() if half else net_g.float()
    return Voice(net_g, "v2", sample_rate, weights, count_parameters(net_g))


def load_voice_file(path_text: str, expected_rate: int, device: str, half: bool) -> Voice:
    """A local RVC small model (.pth); refused with the reason when it is not a v2 model at ``expected_rate``."""
    from rvc_next.engine.errors import ModelFormatError
    from rvc_next.engine.models.checkpoint import read_small_model
    from rvc_next.engine.models.loader import build_synthesizer

    path = Path(path_text).expanduser()
    if not path.is_file():
        raise LoadError(f"RVC model file not found: {path}")
    with path.open("rb") as handle:
        magic = handle.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":  # neither torch's zip format nor a legacy pickle
        raise LoadError(f"RVC model {path.name} is not a PyTorch model file (.pth)")
    try:
        small = read_small_model(path)
    except ModelFormatError as error:
        raise LoadError(f"RVC model {path.name}: {error}") from None
    if small.version != "v2":
        raise LoadError(f"RVC model {path.name} is a {small.version} model; this stage runs v2 models")
    if not small.pitch_guidance:
        raise LoadError(f"RVC model {path.name} has no pitch guidance (f0=0); this stage runs pitch-guided models")
    if small.target_sample_rate != expected_rate:
        raise LoadError(
            f"RVC model {path.name} is a {small.target_sample_rate} Hz model, but model_sample_rate={expected_rate}: "
            "set model_sample_rate to the model's rate"
        )
    try:
        net_g = build_synthesizer(small, device, half)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:  # weights that do not fit the config
        raise LoadError(f"RVC model {path.name} does not build: {type(error).__name__}: {error}") from None
    return Voice(net_g, "v2", small.target_sample_rate, str(path), count_parameters(net_g))


def save_voice(voice: Voice, path: Path) -> Path:
    """Write ``voice`` as an RVC small model (fp16 weights, as exports are): for load benchmarks and tests."""
    from rvc_next.engine.models.checkpoint import SmallModel, write_small_model

    config = full_config(voice.sample_rate) if voice.source == RANDOM_FULL else tiny_config(voice.sample_rate)
    weight = {k: v.half() for k, v in voice.net_g.state_dict().items()}
    small = SmallModel(weight=weight, config=config, info="ttsperf random weights (noise)",
                       sr=SAMPLE_RATE_NAMES[voice.sample_rate], pitch_guidance=True, version="v2")
    write_small_model(small, path)
    return path


def build_hubert(source: str, tiny: bool, device: str, half: bool) -> Any:
    """HuBERT base (random, from its config) or a local HuBERT/ContentVec directory; the v2 features are 768-d."""
    import torch
    from rvc_next.engine.errors import MissingAssetError
    from rvc_next.engine.features.hubert import _model_class, load_hubert

    if source != RANDOM:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise LoadError(f"HuBERT directory not found: {folder}")
        try:
            model = load_hubert(folder, device, is_half=half)
        except MissingAssetError as error:
            raise LoadError(f"{error}: it needs config.json and model.safetensors or pytorch_model.bin") from None
        except (OSError, ValueError) as error:
            raise LoadError(f"HuBERT in {folder} does not load: {error}") from None
        if model.config.hidden_size != FEATURE_DIM["v2"]:
            raise LoadError(f"HuBERT in {folder} gives {model.config.hidden_size}-d features; v2 needs 768")
        return model
    from transformers import HubertConfig

    if tiny:
        config = HubertConfig(hidden_size=FEATURE_DIM["v2"], num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                              num_conv_pos_embedding_groups=4)
    else:
        config = HubertConfig()  # HuBERT base: 12 layers, 768-d, the ContentVec RVC v2 reads
    config.classifier_proj_size = 256
    model = _model_class()(config)
    model.hubert_normalize = False  # ContentVec's feature extractor does not normalise
    model = model.eval().to(device)
    return model.half() if half else model.to(torch.float32)


def build_rmvpe(source: str, tiny: bool, device: str, half: bool) -> Any:
    """RMVPE: a local rmvpe.pt through rvc-next's loader, or the same network with random weights."""
    from rvc_next.engine.f0.rmvpe import E2E, RMVPE, MelSpectrogram

    if source != RANDOM:
        path = Path(source).expanduser()
        if not path.is_file():
            raise LoadError(f"RMVPE weights not found: {path}")
        try:
            return RMVPE(str(path), is_half=half, device=device)
        except Exception as error:  # a corrupt or foreign checkpoint: one line
            raise LoadError(f"RMVPE weights {path.name} do not load: {type(error).__name__}: {error}") from None
    # The attributes RMVPE.__init__ sets in rvc-next 0.2.16, with a random network instead of torch.load.
    rmvpe = RMVPE.__new__(RMVPE)
    rmvpe.resample_kernel = {}
    rmvpe.is_half = bool(half) and str(device).startswith("cuda")
    rmvpe.device = device
    rmvpe.mel_extractor = MelSpectrogram(rmvpe.is_half, 128, 16000, 1024, 160, None, 30, 8000).to(device)
    network = E2E(1, 1, (2, 2), en_de_layers=2, inter_layers=1, en_out_channels=4) if tiny else E2E(4, 1, (2, 2))
    network = network.eval().to(device)
    rmvpe.model = network.half() if rmvpe.is_half else network.float()
    rmvpe.cents_mapping = np.pad(20 * np.arange(360) + 1997.3794084376191, (4, 4))
    return rmvpe


#: A random index the size of a trained voice's: ~10 minutes of training audio at 50 feature frames/s.
RANDOM_INDEX_VECTORS = {False: 30_000, True: 512}


def build_index(source: str, tiny: bool, seed: int = 0) -> Any:
    """The retrieval index: a local faiss file (via rvc-next's loader) or random vectors in RVC's IVF layout."""
    import faiss
    from rvc_next.engine.index.retrieval import LoadedIndex, load_index

    if source != RANDOM:
        path = Path(source).expanduser()
        if not path.is_file():
            raise LoadError(f"index file not found: {path}")
        try:
            loaded = load_index(path)
        except RuntimeError as error:  # faiss reports a corrupt file as RuntimeError
            first = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
            raise LoadError(f"index {path.name} is not a faiss index: {first}") from None
        if loaded.dim != FEATURE_DIM["v2"]:
            raise LoadError(f"index {path.name} holds {loaded.dim}-d vectors; v2 features are 768-d (a v1 index?)")
        return loaded
    count = RANDOM_INDEX_VECTORS[tiny]
    vectors = np.random.default_rng(seed).standard_normal((count, FEATURE_DIM["v2"])).astype(np.float32)
    # RVC's own training recipe: IVF with min(16 sqrt(N), N/39) lists, flat storage, nprobe 1.
    lists = max(1, min(int(16 * np.sqrt(count)), count // 39))
    quantizer = faiss.IndexFlatL2(FEATURE_DIM["v2"])
    index = faiss.IndexIVFFlat(quantizer, FEATURE_DIM["v2"], lists)
    index.train(vectors)
    index.add(vectors)
    index.nprobe = 1
    return LoadedIndex(path=Path(RANDOM), index=index, vectors=vectors)


def count_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))
