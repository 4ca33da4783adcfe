"""Controls built from engine capabilities, as data: no branch on an engine's name.

``EngineView`` gathers what the UI shows about one registry engine (available or
not, its capabilities, the devices this machine has for it); the helpers turn it
into dropdown choices and visible notes, and ``KnobPanel`` turns each engine's
``KnobSpec`` list into Gradio components, one group per engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import gradio as gr

from engines.base import Capabilities, KnobKind, KnobPhase, KnobSpec, KnobValue
from engines.convert.registry import CONVERTERS, converter_class
from engines.registry import DEFAULT_ENGINE, engine_class, list_engines, missing_packages
from profiling.api.inputs import cpu_isa, cpu_precision_notes
from profiling.api.types import TimingMode


@dataclass(frozen=True)
class EngineView:
    """One registry engine as the dashboard sees it."""

    name: str
    title: str
    available: bool
    #: Why it cannot run here (missing packages and the install hint); "" when available.
    reason: str
    description: str
    capabilities: Capabilities | None = None
    machine_devices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.title if self.available else f"{self.title} (not installed)"


def engine_views() -> list[EngineView]:
    """Every registry engine; one whose adapter fails to import is shown as unavailable.

    Computed once per process (several tabs ask; machine_devices may import torch).
    """
    return list(_engine_views())


@cache
def _engine_views() -> tuple[EngineView, ...]:
    views = []
    for status in list_engines():
        entry = status.entry
        if entry.conflict:  # a plug-in under a taken name: `python -m profiling engines` says why
            continue
        base = dict(name=entry.name, title=entry.title, description=entry.description)
        if not status.available:
            views.append(EngineView(**base, available=False, reason=status.reason))
            continue
        try:
            cls = engine_class(entry.name)
            views.append(
                EngineView(
                    **base, available=True, reason="",
                    capabilities=cls.capabilities, machine_devices=tuple(cls.machine_devices()),
                )
            )
        except Exception as error:  # a broken adapter must not take the whole dashboard down
            views.append(EngineView(**base, available=False, reason=f"cannot load adapter: {error}"))
    return tuple(views)


@cache
def converter_views() -> tuple[EngineView, ...]:
    """Every post-synthesis stage, shaped like an engine view: its knob panel is built by the same code."""
    views = []
    for entry in CONVERTERS:
        base = dict(name=entry.name, title=entry.title, description=entry.description)
        missing = missing_packages(entry)
        if missing:
            views.append(EngineView(**base, available=False,
                                    reason=f"missing {', '.join(missing)}: {entry.install_hint}"))
            continue
        cls = converter_class(entry.name)
        views.append(EngineView(**base, available=True, reason="", capabilities=cls.capabilities,
                                machine_devices=tuple(cls.machine_devices())))
    return tuple(views)


def converter_note(name: str) -> str:
    """What the chosen stage does, and the knob values it cannot take here (an F0 package not installed)."""
    view = next((v for v in converter_views() if v.name == name), None)
    if view is None:
        return "No conversion: the engine's audio as it is."
    if not view.available:
        return f"**{view.title} is not available here** — {view.reason}"
    lines = [f"{view.description} It runs on the engine's device; its stages appear as `{name}/...` in the "
             "stage table, and the summary splits the RTF between the engine and the conversion."]
    for knob, values in converter_class(name).unavailable_options().items():
        for value, reason in values.items():
            lines.append(f"- {knob}={value}: not available — {reason}")
    return "\n".join(lines)


def default_engine(views: Sequence[EngineView]) -> str:
    names = [v.name for v in views]
    if DEFAULT_ENGINE in names:
        return DEFAULT_ENGINE
    available = [v.name for v in views if v.available]
    return available[0] if available else names[0]


def find_view(views: Sequence[EngineView], name: str) -> EngineView | None:
    return next((v for v in views if v.name == name), None)


# --- device and precision -------------------------------------------------------------


def device_choices(view: EngineView) -> list[str]:
    """Devices this machine has that the engine supports, e.g. ``cpu``, ``cuda:0``."""
    if view.capabilities is None:
        return []
    return [d for d in view.machine_devices if d.split(":", 1)[0] in view.capabilities.devices]


def precision_choices(view: EngineView, device: str | None) -> list[str]:
    """The engine's precisions minus those refused on ``device``; all of them if that leaves none."""
    caps = view.capabilities
    if caps is None:
        return []
    kind = (device or "cpu").split(":", 1)[0]
    allowed = [p for p in caps.precisions if caps.refusal(kind, p) is None]
    return allowed or list(caps.precisions)


def engine_note(view: EngineView) -> str:
    if not view.available:
        return f"**{view.title} is not available here** — {view.reason}"
    return view.description


def capability_note(view: EngineView, device: str | None) -> str:
    """Devices and precisions that cannot be picked, each with its reason (Markdown)."""
    caps = view.capabilities
    if caps is None:
        return ""
    lines = []
    machine_kinds = {d.split(":", 1)[0] for d in view.machine_devices}
    for kind in caps.devices:
        if kind not in machine_kinds:
            lines.append(f"device **{kind}**: not present on this machine")
    for device_name in view.machine_devices:
        if device_name.split(":", 1)[0] not in caps.devices:
            lines.append(f"device **{device_name}**: not supported by this engine")
    by_reason: dict[str, list[str]] = {}
    for precision, reason in caps.unsupported_precisions().items():
        by_reason.setdefault(reason, []).append(f"**{precision}**")
    for reason, precisions in by_reason.items():
        lines.append(f"precision {', '.join(precisions)}: {reason}")
    kind = (device or "cpu").split(":", 1)[0]
    for precision in caps.precisions:
        reason = caps.refusal(kind, precision)
        if reason:
            lines.append(f"precision **{precision}** on {kind}: refused — {reason}")
    if kind == "cpu":
        for precision, note in cpu_precision_notes(cpu_isa(), caps.precisions).items():
            lines.append(f"precision **{precision}** on this CPU: {note}")
    return "\n".join(f"- {line}" for line in lines)


def streaming_note(view: EngineView) -> str:
    caps = view.capabilities
    if caps is None or caps.streaming:
        return ""
    return "stream mode: this engine does not stream (batch only)"


def cloning_note(view: EngineView) -> str:
    caps = view.capabilities
    if caps is None:
        return ""
    if caps.voice_cloning:
        return "reference audio (WAV) and its transcript drive the voice"
    return "reference audio: this engine does not clone voices (it uses its own voice)"


# --- stage timing -----------------------------------------------------------------------

#: The modes a run may ask for; ``wall`` is what a run records when there is no device to wait for.
TIMING_CHOICES: tuple[str, ...] = (TimingMode.SYNC.value, TimingMode.EVENTS.value)
TIMING_HELP = (
    "matters only for torch engines on CUDA: sync waits for the device at every stage edge (exact "
    "attribution, no CPU/GPU overlap); events records CUDA events there and waits once at the end (no "
    "perturbation). Elsewhere (CPU, Piper's ONNX Runtime) the run records wall."
)


def timing_control(elem_id: str) -> gr.Radio:
    """The per-run stage-timing mode, as the CLI's ``bench --timing``."""
    return gr.Radio(choices=list(TIMING_CHOICES), value=TimingMode.SYNC.value, label="Stage timing",
                    info=TIMING_HELP, elem_id=elem_id)


# --- knobs ------------------------------------------------------------------------------


#: Separates engine and knob in API parameter names: ``piper__length_scale``.
KNOB_SEPARATOR = "__"

#: Beyond this many steps a slider cannot hit a value: a number box is used instead (e.g. seeds).
MAX_SLIDER_STEPS = 2000


def _round_step(spec: KnobSpec) -> float:
    """A power of ten giving about 100-1000 steps over the range (so defaults like 0.75 sit on a step)."""
    if spec.minimum is None or spec.maximum is None or spec.maximum <= spec.minimum:
        return 0.01
    return float(10 ** math.floor(math.log10((spec.maximum - spec.minimum) / 100)))


def _slider_fits(spec: KnobSpec, step: float) -> bool:
    if spec.minimum is None or spec.maximum is None:
        return False
    return (spec.maximum - spec.minimum) / step <= MAX_SLIDER_STEPS


def knob_component(spec: KnobSpec) -> gr.Component:
    """One control for one knob, chosen by the knob's kind and range."""
    info = spec.help + (" (load-time: a change reloads the model)" if spec.phase is KnobPhase.LOAD else "")
    if spec.kind in (KnobKind.INT, KnobKind.FLOAT):
        is_int = spec.kind is KnobKind.INT
        step = spec.step if spec.step is not None else (1 if is_int else _round_step(spec))
        if _slider_fits(spec, step):
            return gr.Slider(minimum=spec.minimum, maximum=spec.maximum, value=spec.default, step=step,
                             label=spec.name, info=info)
        return gr.Number(
            value=spec.default, minimum=spec.minimum, maximum=spec.maximum, step=step,
            precision=0 if is_int else None, label=spec.name, info=info,
        )
    if spec.kind is KnobKind.BOOL:
        return gr.Checkbox(value=bool(spec.default), label=spec.name, info=info)
    if spec.kind is KnobKind.CHOICE:
        return gr.Dropdown(choices=list(spec.choices), value=spec.default, label=spec.name, info=info)
    placeholder = "path to a directory (empty = default)" if spec.kind is KnobKind.DIRECTORY else ""
    return gr.Textbox(value=str(spec.default), label=spec.name, info=info, placeholder=placeholder)


@dataclass
class EngineKnobs:
    engine: str
    group: gr.Group
    specs: tuple[KnobSpec, ...]
    components: list[gr.Component]


class KnobPanel:
    """One group of knob controls per available engine; only the selected engine's is visible."""

    def __init__(self, views: Sequence[EngineView], selected: str, prefix: str = "") -> None:
        #: Prepended to API parameter names, so two panels (engines, conversion stages) never share one.
        self.prefix = prefix
        self.engines: dict[str, EngineKnobs] = {}
        for view in views:
            if view.capabilities is None or not view.capabilities.knobs:
                continue
            with gr.Group(visible=view.name == selected) as group:
                components = [knob_component(spec) for spec in view.capabilities.knobs]
            self.engines[view.name] = EngineKnobs(view.name, group, view.capabilities.knobs, components)

    @property
    def components(self) -> list[gr.Component]:
        return [c for knobs in self.engines.values() for c in knobs.components]

    @property
    def groups(self) -> list[gr.Group]:
        return [knobs.group for knobs in self.engines.values()]

    def visibility(self, selected: str) -> list[dict]:
        return [gr.update(visible=name == selected) for name in self.engines]

    def values_for(self, engine: str, values: Mapping[gr.Component, object]) -> dict[str, KnobValue]:
        """The selected engine's knob values from an event's component->value mapping.

        None (a cleared number box) is left out so the knob's default applies.
        """
        knobs = self.engines.get(engine)
        if knobs is None:
            return {}
        return {
            spec.name: values[component]  # type: ignore[misc]
            for spec, component in zip(knobs.specs, knobs.components, strict=True)
            if values.get(component) is not None
        }

    def named_inputs(self) -> dict[str, gr.Component]:
        """Every knob control by ``<engine>__<knob>``: an endpoint's keyword parameters (``inputs_kwargs``)."""
        return {
            f"{self.prefix}{name}{KNOB_SEPARATOR}{spec.name}": component
            for name, knobs in self.engines.items()
            for spec, component in zip(knobs.specs, knobs.components, strict=True)
        }


def knobs_from_named(engine: str | None, named: Mapping[str, object]) -> dict[str, object]:
    """The chosen engine's knobs from ``<engine>__<knob>`` keywords; None (a cleared box) leaves the default."""
    prefix = f"{engine}{KNOB_SEPARATOR}"
    return {key[len(prefix):]: value for key, value in named.items() if key.startswith(prefix) and value is not None}
