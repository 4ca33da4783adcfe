"""Settings validation against declared capabilities: every bad input is one clear InputError."""

from __future__ import annotations

import pytest

from engines.base import Capabilities, KnobKind, KnobPhase, KnobSpec, Refusal, SynthesisSettings
from engines.errors import InputError
from engines.validation import resolve_settings, validate_text

CAPS = Capabilities(
    devices=("cpu", "cuda"),
    precisions=("fp32", "bf16"),
    precision_note="demo engine",
    streaming=True,
    voice_cloning=False,
    refusals=(Refusal("bf16 on CPU is broken here", precision="bf16", device="cpu"),),
    knobs=(
        KnobSpec("threads", KnobKind.INT, 0, "threads", phase=KnobPhase.LOAD, minimum=0, maximum=8),
        KnobSpec("scale", KnobKind.FLOAT, 1.0, "scale", minimum=0.1, maximum=5.0),
        KnobSpec("exact", KnobKind.BOOL, False, "bool"),
        KnobSpec("level", KnobKind.CHOICE, "all", "choice", choices=("basic", "all")),
    ),
)


def resolve(**kwargs: object) -> SynthesisSettings:
    settings = SynthesisSettings(engine="demo", **kwargs)  # type: ignore[arg-type]
    return resolve_settings(CAPS, settings, machine_devices=("cpu",))


def test_defaults_are_filled_and_strings_coerced() -> None:
    settings = resolve(knobs={"threads": "2", "exact": "true", "scale": "0.5"})
    assert settings.knobs == {"threads": 2, "scale": 0.5, "exact": True, "level": "all"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"knobs": {"threads": 9}}, "above its maximum"),
        ({"knobs": {"threads": -1}}, "below its minimum"),
        ({"knobs": {"threads": 1.5}}, "expects int"),
        ({"knobs": {"scale": "fast"}}, "expects float"),
        ({"knobs": {"scale": float("nan")}}, "finite"),
        ({"knobs": {"exact": "maybe"}}, "expects bool"),
        ({"knobs": {"level": "extreme"}}, "not one of basic, all"),
        ({"knobs": {"nope": 1}}, "unknown knob 'nope'"),
        ({"precision": "fp16"}, "not supported (supported: fp32, bf16): demo engine"),
        ({"precision": "bf16"}, "refused: bf16 on CPU is broken here"),
        ({"device": "tpu"}, "not supported by this engine"),
        ({"device": "cuda"}, "not present on this machine"),
        ({"device": "cuda:x"}, "malformed"),
    ],
)
def test_bad_settings_raise_one_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(**kwargs)


def test_refusal_matches_only_its_device() -> None:
    assert CAPS.refusal("cuda", "bf16") is None
    assert CAPS.refusal("cpu", "bf16") == "bf16 on CPU is broken here"


def test_load_key_changes_with_load_knobs_only() -> None:
    base = resolve()
    assert base.load_key(CAPS) == base.with_knobs(scale=2.0).load_key(CAPS)
    assert base.load_key(CAPS) != base.with_knobs(threads=2).load_key(CAPS)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="empty"):
        validate_text(text)


def test_text_over_the_limit_is_refused() -> None:
    assert validate_text("a" * 10, max_chars=10) == "a" * 10
    with pytest.raises(InputError, match="11 characters, over the limit of 10"):
        validate_text("a" * 11, max_chars=10)
