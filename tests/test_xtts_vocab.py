"""The trained stand-in XTTS vocabulary: released size, merges, XTTS's special tokens, realistic length."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.xtts.tokenizer import RELEASED_VOCAB_SIZE, TRAINED_VOCAB_FILE, stand_in_vocab

tokenizers = pytest.importorskip("tokenizers")

SENTENCE = "the birch canoe slid on the smooth planks."


def encode(vocab: Path, text: str) -> list[str]:
    tokenizer = tokenizers.Tokenizer.from_file(str(vocab))
    return tokenizer.encode(f"[en]{text}".replace(" ", "[SPACE]")).tokens


def test_trained_vocab_has_the_released_size_merges_and_special_ids(tmp_path: Path) -> None:
    vocab = stand_in_vocab(tmp_path / "vocab.json", RELEASED_VOCAB_SIZE)
    data = json.loads(vocab.read_text(encoding="utf-8"))
    assert vocab.read_bytes() == TRAINED_VOCAB_FILE.read_bytes()
    assert len(data["model"]["vocab"]) == RELEASED_VOCAB_SIZE
    assert len(data["model"]["merges"]) > 6000
    ids = data["model"]["vocab"]
    assert (ids["[STOP]"], ids["[UNK]"], ids["[SPACE]"]) == (0, 1, 2)  # the released order
    assert all(f"[{lang}]" in ids for lang in ("en", "pt", "es", "fr", "de"))
    tokens = encode(vocab, SENTENCE)
    assert tokens[0] == "[en]" and tokens.count("[SPACE]") == SENTENCE.count(" ")
    # Merges make the prompt well under one token per character; the char-level stand-in is above one.
    assert len(tokens) / len(SENTENCE) < 0.6
    char_level = stand_in_vocab(tmp_path / "char.json", 0)
    assert len(encode(char_level, SENTENCE)) / len(SENTENCE) >= 1.0
