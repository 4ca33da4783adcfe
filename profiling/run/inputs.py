"""What the CLI, the dashboard and the API share about user input: the default text, the text limit, knob text."""

from __future__ import annotations

import os

from engines.base import DEFAULT_MAX_TEXT_CHARS
from engines.errors import InputError

DEFAULT_TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Measuring speech synthesis tells us where the time goes."
)
MAX_CHARS_ENV = "TTSPERF_MAX_CHARS"


def default_max_chars() -> int:
    raw = os.environ.get(MAX_CHARS_ENV)
    return int(raw) if raw and raw.isdigit() else DEFAULT_MAX_TEXT_CHARS


def parse_knobs(pairs: list[str]) -> dict[str, str]:
    """``["name=value", ...]`` -> ``{"name": "value"}``; values stay text (validation types them)."""
    knobs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--knob expects NAME=VALUE, got {pair!r}")
        knobs[name.strip()] = value.strip()
    return knobs
