"""Reference voices at several lengths from what ships offline, for the voice axis of a sweep.

Reference length drives the cost of cloning engines: F5's prompt is part of every DiT
step, XTTS's conditioning runs over the reference. Two offline sources, each with an
exact transcript (F5 needs one; transcribing would download Whisper):

- Piper's bundled en_US joe voice reading Harvard sentences, sentence by sentence until
  each target length is reached (so the transcript is exact and no word is cut);
- F5's shipped example ``basic_ref_en.wav`` (5.3 s) as it is, and played twice in a row
  (10.7 s, its transcript twice).

Run ``python -m profiling.audio.reference_voices OUT_DIR`` to write the WAVs and print the
``voices:`` block to paste into a sweep file's engine entry.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Target reference lengths in seconds for the Piper voice.
PIPER_TARGETS_S: tuple[float, ...] = (3.0, 6.0, 10.0)


@dataclass(frozen=True)
class ReferenceVoice:
    name: str
    path: Path
    text: str
    seconds: float
    source: str


def piper_references(out_dir: Path, targets: tuple[float, ...] = PIPER_TARGETS_S) -> list[ReferenceVoice]:
    import soundfile

    from engines.base import SynthesisSettings, Voice
    from engines.piper_engine import PiperEngine
    from profiling.texts.textsets import load_text_set

    engine = PiperEngine()
    settings = SynthesisSettings("piper", knobs={"deterministic": True})
    engine.load(settings)
    sentences = [item.text for item in load_text_set("harvard").items]
    voices = []
    for target in targets:
        pieces: list[np.ndarray] = []
        said: list[str] = []
        rate = 22050
        for sentence in sentences:
            audio = engine.synthesize(sentence, Voice(), settings)
            rate = audio.sample_rate
            pieces.append(audio.samples)
            said.append(sentence)
            if sum(len(p) for p in pieces) / rate >= target:
                break
        samples = np.concatenate(pieces).astype(np.float32)
        name = f"piper-joe-{target:g}s"
        path = out_dir / f"{name}.wav"
        soundfile.write(path, samples, rate)
        voices.append(ReferenceVoice(name, path, " ".join(said), len(samples) / rate, "Piper en_US joe (CC0)"))
    return voices


def f5_example_references(out_dir: Path) -> list[ReferenceVoice]:
    import soundfile

    from engines.f5.reference import DEFAULT_REFERENCE_TEXT, default_reference_audio

    samples, rate = soundfile.read(default_reference_audio(), dtype="float32")
    voices = []
    for repeats in (1, 2):
        name = f"f5-basic-en-x{repeats}"
        path = out_dir / f"{name}.wav"
        joined = np.concatenate([samples] * repeats)
        soundfile.write(path, joined, rate)
        text = " ".join([DEFAULT_REFERENCE_TEXT] * repeats)
        voices.append(ReferenceVoice(name, path, text, len(joined) / rate, "f5-tts example basic_ref_en.wav"))
    return voices


def write_reference_voices(out_dir: Path) -> list[ReferenceVoice]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [*piper_references(out_dir), *f5_example_references(out_dir)]


def sweep_voices_block(voices: list[ReferenceVoice]) -> str:
    """The ``voices:`` list of a sweep engine entry (YAML) for these references."""
    lines = ["    voices:"]
    for voice in voices:
        text = voice.text.replace('"', '\\"')
        lines.append(f'      - {{name: {voice.name}, reference_audio: "{voice.path}", reference_text: "{text}"}}'
                     f"  # {voice.seconds:.1f} s, {voice.source}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m profiling.audio.reference_voices OUT_DIR", file=sys.stderr)
        return 2
    voices = write_reference_voices(Path(argv[0]).expanduser())
    for voice in voices:
        print(f"# {voice.name}: {voice.seconds:.2f} s ({voice.source}) -> {voice.path}")
    print(sweep_voices_block(voices))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
