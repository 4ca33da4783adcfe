"""espeak-ng through its command-line program: ``espeak-ng --stdout`` writes a WAV we read back.

A plug-in engine needs only what a built-in one has: a name, capabilities as data,
``load`` and ``synthesize`` (``stream`` if it streams), with each pipeline stage inside
``hook.stage(...)`` so the lab times it. Nothing here imports the lab's measuring code.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Iterator

import numpy as np

from engines.base import Audio, AudioChunk, Capabilities, Engine, KnobKind, KnobSpec, SynthesisSettings, Voice
from engines.errors import InputError, LoadError
from engines.hooks import NULL_HOOK, StageHook
from engines.text import normalize_text, split_sentences

PROGRAM = "espeak-ng"
SAMPLE_RATE = 22050
#: One synthesis may not hang the lab: espeak-ng speaks a page in well under a second.
TIMEOUT_S = 60.0

CAPABILITIES = Capabilities(
    devices=("cpu",),
    precisions=("fp32",),
    streaming=True,  # one espeak-ng call per sentence
    voice_cloning=False,
    knobs=(
        KnobSpec("voice", KnobKind.CHOICE, "en-us", "espeak-ng voice", choices=("en-us", "en-gb", "en-gb-scotland")),
        KnobSpec("speed", KnobKind.INT, 175, "words per minute", minimum=80, maximum=450),
        KnobSpec("pitch", KnobKind.INT, 50, "base pitch", minimum=0, maximum=99),
        KnobSpec("word_gap", KnobKind.INT, 0, "pause between words, in 10 ms units", minimum=0, maximum=100),
    ),
    precision_note="espeak-ng is a formant synthesizer with no neural weights: there is no precision to choose",
    sample_rate=SAMPLE_RATE,
)


class EspeakEngine(Engine):
    name = "espeak"
    capabilities = CAPABILITIES
    hot_functions = ("ttsperf_espeak.engine.EspeakEngine._run",)

    def __init__(self) -> None:
        super().__init__()
        self._program: str | None = None

    @classmethod
    def check_request(cls, settings: SynthesisSettings, voice: Voice) -> None:
        # Refused before anything runs or is stored: the program is a system package, not a Python one.
        if shutil.which(PROGRAM) is None:
            raise InputError(f"engine 'espeak' needs the {PROGRAM} program: apt-get install espeak-ng")

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        with hook.stage("find_program"):
            program = shutil.which(PROGRAM)
        if program is None:
            raise LoadError(f"{PROGRAM} not found on PATH: apt-get install espeak-ng")
        self._program, self.settings = program, settings

    def synthesize(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Audio:
        with hook.stage("text_normalization"):
            clean = normalize_text(text)
        return self._run(clean, settings, hook)

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        with hook.stage("text_normalization"):
            sentences = split_sentences(normalize_text(text))
        for index, sentence in enumerate(sentences):
            yield AudioChunk(self._run(sentence, settings, hook), sentence, index)

    def _run(self, text: str, settings: SynthesisSettings, hook: StageHook) -> Audio:
        if self._program is None:
            raise LoadError("espeak engine used before load()")
        knobs = {**self.capabilities.default_knobs(), **settings.knobs}
        command = [self._program, "--stdout", "-v", str(knobs["voice"]), "-s", str(knobs["speed"]),
                   "-p", str(knobs["pitch"]), "-g", str(knobs["word_gap"]), "--", text]
        with hook.stage("espeak_ng"):
            done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{PROGRAM} exited {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
        with hook.stage("decode_wav"):
            audio = _decode(done.stdout)
        hook.annotate("espeak_voice", str(knobs["voice"]))
        return audio

    def describe_model(self) -> dict[str, str]:
        return {"program": self._program or PROGRAM, "weights": "none (formant synthesis)"}


def _decode(data: bytes) -> Audio:
    """espeak-ng's WAV on stdout is 16-bit mono; its header's length field is unset (a pipe), so read frames."""
    with wave.open(io.BytesIO(data)) as reader:
        rate, width = reader.getframerate(), reader.getsampwidth()
        frames = reader.readframes(reader.getnframes() or len(data))
    if width != 2:
        raise RuntimeError(f"{PROGRAM} wrote {8 * width}-bit audio; 16-bit expected")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return Audio(samples, rate)
