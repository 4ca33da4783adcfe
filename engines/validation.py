"""Checks on user input before anything runs: text, device, precision, knobs."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path

from engines.base import (
    DEFAULT_MAX_TEXT_CHARS,
    Capabilities,
    KnobKind,
    KnobValue,
    SynthesisSettings,
)
from engines.errors import InputError

#: Layout characters text may carry; every other control character is refused.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def check_characters(text: str, what: str = "text") -> None:
    """Refuse control characters (NUL and the like) and lone surrogates: no engine or store takes them."""
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if (category == "Cc" and char not in _ALLOWED_CONTROLS) or category == "Cs":
            raise InputError(
                f"{what} contains the control character U+{ord(char):04X} at position {index}: remove it"
            )


def validate_text(text: str, max_chars: int = DEFAULT_MAX_TEXT_CHARS) -> str:
    """Return the text stripped, or raise InputError if empty, too long or holding control characters."""
    if not isinstance(text, str):
        raise InputError("text must be a string")
    stripped = text.strip()
    if not stripped:
        raise InputError("text is empty: enter something to synthesize")
    if len(stripped) > max_chars:
        raise InputError(
            f"text is {len(stripped)} characters, over the limit of {max_chars} "
            "(raise it with --max-chars / TTSPERF_MAX_CHARS)"
        )
    check_characters(stripped)
    return stripped


def resolve_knobs(capabilities: Capabilities, knobs: Mapping[str, object]) -> dict[str, KnobValue]:
    """Defaults filled in, every value coerced and range-checked; unknown names refused."""
    resolved = capabilities.default_knobs()
    for name, value in knobs.items():
        spec = capabilities.knob(name)
        resolved[name] = spec.coerce(value)
        if isinstance(resolved[name], str):
            check_characters(str(resolved[name]), f"knob '{name}'")
    for spec in capabilities.knobs:
        if spec.kind is KnobKind.DIRECTORY and resolved[spec.name]:
            # Only existence here; the engine checks the directory's layout at load.
            if not Path(str(resolved[spec.name])).expanduser().is_dir():
                raise InputError(f"knob '{spec.name}': directory not found: {resolved[spec.name]}")
    return resolved


def validate_device(capabilities: Capabilities, device: str, machine_devices: tuple[str, ...]) -> None:
    kind, _, index = device.partition(":")
    if kind not in capabilities.devices:
        raise InputError(
            f"device '{device}' is not supported by this engine "
            f"(supported: {', '.join(capabilities.devices)})"
        )
    if index and not index.isdigit():
        raise InputError(f"device '{device}' is malformed (use e.g. cuda:0)")
    normalised = device if index or kind == "cpu" else f"{kind}:0"
    if normalised not in machine_devices and device not in machine_devices:
        raise InputError(
            f"device '{device}' is not present on this machine "
            f"(available: {', '.join(machine_devices)})"
        )


def validate_precision(
    capabilities: Capabilities, device_kind: str, precision: str, capability: tuple[int, int] | None = None
) -> None:
    if precision not in capabilities.precisions:
        note = capabilities.unsupported_precisions().get(precision)
        known = ", ".join(capabilities.precisions)
        detail = f": {note}" if note else ""
        raise InputError(f"precision '{precision}' is not supported (supported: {known}){detail}")
    reason = capabilities.refusal(device_kind, precision, capability)
    if reason:
        raise InputError(f"precision '{precision}' on {device_kind} is refused: {reason}")


def resolve_settings(
    capabilities: Capabilities,
    settings: SynthesisSettings,
    machine_devices: tuple[str, ...],
    capability: tuple[int, int] | None = None,
) -> SynthesisSettings:
    """Validate ``settings`` against the engine and machine; return them with defaults filled.

    ``capability``: the CUDA device's compute capability, for refusals that depend on it (bf16).
    """
    validate_device(capabilities, settings.device, machine_devices)
    validate_precision(capabilities, settings.device_kind, settings.precision, capability)
    knobs = resolve_knobs(capabilities, settings.knobs)
    refused = capabilities.knob_refusal(settings.device_kind, knobs)
    if refused:
        raise InputError(refused)
    return SynthesisSettings(
        engine=settings.engine,
        device=settings.device,
        precision=settings.precision,
        knobs=knobs,
        seed=settings.seed,
    )
