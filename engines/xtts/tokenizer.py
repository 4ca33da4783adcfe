"""Stand-in ``vocab.json`` files for XTTS, built with the ``tokenizers`` library.

coqui-tts ships no vocab, and the released one comes from the hub. Both stand-ins carry
XTTS's special and language tokens, so ``VoiceBpeTokenizer`` encodes text the way it
would with the real file (``[en]`` prefix, ``[SPACE]`` between words); the ids differ.

- ``build_vocab``: character level, no merges (the tiny test architecture).
- ``TRAINED_VOCAB_FILE``: a BPE with merges at the released size (6681), trained offline
  by ``train_bpe_vocab`` on English word frequencies (scripts/train_xtts_vocab.py). A
  prompt is then about as many tokens as with the released vocabulary, so the GPT's
  prefill and every decode step attend over a realistic text length. The released file
  is trained on all XTTS languages; this one on English only, so English tokenises a
  little shorter and other languages longer than with the real file.
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
#: The trained stand-in (shipped; regenerate with scripts/train_xtts_vocab.py).
TRAINED_VOCAB_FILE = Path(__file__).resolve().parent / "data" / "vocab_en_bpe6681.json"
#: Word counts are unigram probability x this (a word the LM gives 1e-7 appears once or not at all).
_CORPUS_WORDS = 5_000_000

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


def stand_in_vocab(path: Path, size: int) -> Path:
    """The released size gets the trained BPE (merges, realistic tokens per character); any
    other size the character-level vocab padded to ``size``."""
    if size == RELEASED_VOCAB_SIZE:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(TRAINED_VOCAB_FILE.read_bytes())
        os.replace(tmp, path)
        return path
    return build_vocab(path, pad_to=size)


def _specials() -> list[str]:
    return [*SPECIAL_TOKENS, *(f"[{lang}]" for lang in LANGUAGES)]


def english_word_counts(total: int = _CORPUS_WORDS) -> dict[str, int]:
    """cmudict's words (shipped with pocketsphinx) counted by the en-us LM's unigram probability."""
    import math

    from pocketsphinx import NGramModel, get_model_path

    model_dir = Path(get_model_path()) / "en-us"
    lm = NGramModel.readfile(str(model_dir / "en-us.lm.bin"))
    log_base = math.log(1.0001)  # sphinx's log domain
    counts: dict[str, int] = {}
    for line in (model_dir / "cmudict-en-us.dict").read_text(encoding="utf-8").splitlines():
        word = line.split(" ", 1)[0].split("(", 1)[0]
        if not word or word in counts:
            continue
        score = lm.prob([word])
        if score <= -(2**28):  # not in the LM
            continue
        count = round(math.exp(score * log_base) * total)
        if count > 0:
            counts[word] = count
    return counts


def train_bpe_vocab(path: Path, vocab_size: int = RELEASED_VOCAB_SIZE) -> Path:
    """Train a ``vocab_size`` BPE (merges included) on English word counts; write it to ``path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    counts = english_word_counts()
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_specials(), initial_alphabet=list(_CHARACTERS),
        show_progress=False, min_frequency=2,
    )
    # Sorted: the same words in the same order every time. A word repeated count times on one line
    # is what the pre-tokenizer turns back into (word, count).
    lines = (" ".join([word] * count) for word, count in sorted(counts.items()))
    tokenizer.train_from_iterator(lines, trainer=trainer)
    tokenizer.add_special_tokens(_specials())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)
    return path
