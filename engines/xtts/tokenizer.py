"""A stand-in ``vocab.json`` for XTTS, built with the ``tokenizers`` library.

coqui-tts ships no vocab, and the released one comes from the hub. This
character-level BPE carries XTTS's special and language tokens, so
``VoiceBpeTokenizer`` encodes text exactly as it would with the real file
(``[en]`` prefix, ``[SPACE]`` between words); only the ids differ. That is
enough for random weights: the compute per token is the same.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

#: Released XTTS v2 order for the first ids: [STOP]=0, [UNK]=1, [SPACE]=2.
SPECIAL_TOKENS: tuple[str, ...] = ("[STOP]", "[UNK]", "[SPACE]", "[START]")
LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi",
)
#: The released vocab has 6681 entries; padding to it keeps the text embedding full size.
RELEASED_VOCAB_SIZE = 6681

_ACCENTED = "àâäçéèêëîïôöùûüÿñßæœáíóúãõąćęłńśźżčďěňřšťůžğışő"
_CHARACTERS = string.ascii_lowercase + string.digits + string.punctuation + _ACCENTED


def build_vocab(path: Path, pad_to: int = 0) -> Path:
    """Write a char-level BPE tokenizer JSON to ``path``; ``pad_to`` pads the vocab with unused tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    language_tokens = [f"[{lang}]" for lang in LANGUAGES]
    specials = [*SPECIAL_TOKENS, *language_tokens]
    vocab: dict[str, int] = {}
    for token in (*specials, *_CHARACTERS):
        vocab.setdefault(token, len(vocab))
    for index in range(len(vocab), pad_to):
        vocab[f"[unused{index}]"] = index
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    # Added as special tokens so "[en]" and "[SPACE]" are matched whole, as in the released file.
    tokenizer.add_special_tokens(specials)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)  # atomic: another process may be reading the same file
    return path
