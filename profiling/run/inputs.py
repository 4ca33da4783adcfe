"""What the CLI, the dashboard and the API share about user input: the default text, the text limit, knob text."""

from __future__ import annotations

import json
import os

from engines.base import DEFAULT_MAX_TEXT_CHARS
from engines.errors import InputError
from engines.validation import check_characters

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


#: Settings documents (a JSON request, a sweep file) are small; anything larger is refused unread.
MAX_DOCUMENT_BYTES = 256 * 1024


def _refuse_constant(name: str) -> float:
    raise InputError(f"{name} is not a number the lab accepts: use a finite number")


def parse_json_object(raw: str, what: str = "settings", max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, object]:
    """A JSON object from untrusted text: size-capped, no NaN/Infinity, no stack overflow, no control characters."""
    if len(raw) > max_bytes:
        raise InputError(f"{what} are {len(raw)} characters, over the limit of {max_bytes}")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant) if raw.strip() else {}
    except json.JSONDecodeError as error:
        raise InputError(f"{what} are not valid JSON: {error.msg} (line {error.lineno})") from None
    except RecursionError:
        raise InputError(f"{what} are nested too deeply to be settings") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a JSON object")
    for path, value in _strings(data):
        check_characters(value, f"{what} field '{path}'")
    return data


def load_yaml_mapping(raw: str, what: str = "sweep", max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, object]:
    """A YAML mapping from untrusted text, with the same caps as ``parse_json_object``."""
    import yaml

    if len(raw) > max_bytes:
        raise InputError(f"the {what} is {len(raw)} characters, over the limit of {max_bytes}")
    try:
        data = yaml.safe_load(raw) if raw.strip() else {}
    except yaml.YAMLError as error:
        raise InputError(f"the {what} is not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise InputError(f"the {what} is nested too deeply") from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} must be a mapping of name: value")
    return data


def _strings(value: object, path: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Every string key and value in a parsed document, with its dotted path (depth-capped)."""
    if depth > 32:
        raise InputError(f"settings are nested too deeply at '{path}'")
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            found.extend([(child, str(key))] + _strings(item, child, depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_strings(item, f"{path}[{index}]", depth + 1))
    return found
