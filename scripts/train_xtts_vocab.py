"""Train the stand-in XTTS vocabulary offline: a 6681-token BPE with merges, written to engines/xtts/data/.

The corpus is English word frequencies available without a network: every word of the
CMU pronouncing dictionary that ships with pocketsphinx, weighted by its unigram
probability in pocketsphinx's en-us language model (a general English LM). BPE learns
its merges from word counts, so this is the corpus in the form BPE uses it.
Deterministic: same packages, same file. Run: .venv/bin/python scripts/train_xtts_vocab.py
"""

from __future__ import annotations

import hashlib

from engines.xtts.tokenizer import TRAINED_VOCAB_FILE, train_bpe_vocab


def main() -> None:
    path = train_bpe_vocab(TRAINED_VOCAB_FILE)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    print(f"wrote {path} ({path.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
