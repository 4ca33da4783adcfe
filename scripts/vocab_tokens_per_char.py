"""Tokens per character of the XTTS stand-in vocabularies on the lab's text sets.

Encodes each text the way the lab's XTTS pipeline does (coqui's VoiceBpeTokenizer
normalisation, ``[lang]`` prefix, ``[SPACE]`` between words) with the character-level
stand-in and with the trained 6681-token BPE, and prints tokens per character per set.
The trained vocabulary's ids differ from the released one's; only the counts are comparable.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from engines.xtts.tokenizer import TRAINED_VOCAB_FILE, build_vocab
from profiling.texts.textsets import load_text_set, text_set_names


def main() -> None:
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    char_level = build_vocab(Path(tempfile.mkdtemp(prefix="ttsperf-vocab-")) / "vocab.json")
    tokenizers = {
        "char-level": VoiceBpeTokenizer(str(char_level)),
        "bpe-6681": VoiceBpeTokenizer(str(TRAINED_VOCAB_FILE)),
    }
    print(f"| text set | language | characters | {' | '.join(f'{n} tokens/char' for n in tokenizers)} |")
    print("|---|---|---:|" + "---:|" * len(tokenizers))
    for name in text_set_names():
        text_set = load_text_set(name)
        chars = sum(len(item.text) for item in text_set.items)
        ratios = []
        for tokenizer in tokenizers.values():
            tokens = 0
            for item in text_set.items:
                cleaned = tokenizer.preprocess_text(item.text.strip().lower(), text_set.language)
                tokens += len(tokenizer.tokenizer.encode(f"[{text_set.language}]{cleaned}".replace(" ", "[SPACE]")).ids)
            ratios.append(tokens / chars)
        print(f"| {name} | {text_set.language} | {chars} | {' | '.join(f'{r:.3f}' for r in ratios)} |")


if __name__ == "__main__":
    main()
