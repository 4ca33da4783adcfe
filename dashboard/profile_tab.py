"""The Profile tab: repeat a run under the chosen profilers; browse tables, the flame graph and the files.

Endpoint ``/profile`` runs the suite; ``/profile_table`` switches the table shown;
``/profile_artifacts`` lists the files stored with any run id. Each profiler's
overhead is printed beside its hot spots so nobody mistakes profiler slowdown
for model slowdown.
"""

from __future__ import annotations

import html
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from dashboard.context import DashboardContext
from dashboard.controls import (
    KnobPanel,
    default_engine,
    device_choices,
    engine_views,
    find_view,
    knobs_from_named,
    precision_choices,
)
from dashboard.lane import LANE_ID
from dashboard.messages import ERROR_PREFIX, OK_PREFIX, one_line
from dashboard.sessions import cancel_handler
from dashboard.trace_download import result_trace_update, trace_button
from engines.errors import InputError
from engines.registry import engine_class
from profiling import api
from profiling.api.figures import roofline_figure
from profiling.api.inputs import DEFAULT_TEXT, PROFILER_NAMES, get_profiler
from profiling.api.types import CANCELLED, ProfileReport, ProfileRequest, ProfilerResult, ProfilerStatus, ResultsStore

log = logging.getLogger(__name__)

ARTIFACT_COLUMNS = ["kind", "file", "description"]
FLAME_PLACEHOLDER = "<p>Run py-spy to see a flame graph here.</p>"


@dataclass
class ProfileView:
    """Everything the tab shows after a run, in output order (see ``as_outputs``)."""

    status: str
    summary: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    flame_html: str = FLAME_PLACEHOLDER
    files: list[str] = field(default_factory=list)
    artifacts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ARTIFACT_COLUMNS))
    archive: str | None = None
    #: The roofline plot when the roofline profiler ran (a plotly figure), else None.
    roofline: Any = None
    #: The trace file's path for the "Download trace" button (None until a profile ran).
    trace: str | None = None

    def as_outputs(self) -> tuple[Any, ...]:
        names = list(self.tables)
        first = names[0] if names else None
        return (
            self.status,
            self.summary,
            gr.update(choices=names, value=first),
            self.tables[first] if first else pd.DataFrame(),
            self.flame_html,
            self.files or None,
            self.artifacts,
            self.archive,
            gr.update(visible=bool(names)),
            self.tables,
            self.roofline,
            self.trace,
        )


def applicable_profilers(engine: str) -> list[str]:
    """The profilers that can run for ``engine`` here (torch.profiler only for torch engines)."""
    try:
        cls = engine_class(engine)
    except InputError:
        return []
    return [name for name in PROFILER_NAMES if get_profiler(name).unavailable_reason(cls) is None]


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())


def _int(value: float | int | None, label: str) -> int:
    if value is None or float(value) != int(value):
        raise InputError(f"{label} must be a whole number, got {value!r}")
    return int(value)


def build_request(
    engine: str, device: str, precision: str, knobs: Mapping[str, object], text: str, profilers: list[str],
    repeats: float, line_functions: str, pyspy_rate: float, pyspy_native: bool, torch_memory: bool,
    leak_runs: float, max_chars: int,
) -> ProfileRequest:
    if not profilers:
        raise InputError("tick at least one profiler")
    return api.profile_request(
        engine, text or "", device=device or "cpu", precision=precision or "", knobs=dict(knobs),
        # strict: the user ticked each one, so say why one cannot run rather than skip it
        profilers=[n for n in PROFILER_NAMES if n in profilers], strict=True,
        repeats=_int(repeats, "repeats"), line_functions=_names(line_functions),
        pyspy_rate=_int(pyspy_rate, "py-spy rate"), pyspy_native=bool(pyspy_native),
        torch_memory=bool(torch_memory), leak_runs=_int(leak_runs, "leak runs"), max_chars=max_chars,
    )


def _md(text: str) -> str:
    """Plain text safe in Markdown: cProfile names C functions ``<built-in method ...>``, which read as HTML."""
    return html.escape(text, quote=False).replace("_", "\\_").replace("*", "\\*")


def _result_markdown(result: ProfilerResult) -> str:
    title = get_profiler(result.profiler).title
    lines = [f"### {title}: {result.status.value}", _md(result.message)]
    if result.overhead is not None:
        lines.append(f"**{result.overhead.describe()}**")
    lines += [f"- {_md(spot)}" for spot in result.hot_spots]
    lines += [f"- note: {_md(note)}" for note in result.notes]
    if result.run_id:
        lines.append(f"run `{result.run_id}`")
    return "\n\n".join(line for line in lines if line)


def _download_copies(results: list[ProfilerResult]) -> tuple[str | None, list[str]]:
    """One zip of every file, and copies of each: in a temp dir, as Gradio serves files only from there."""
    paths = [a.path for r in results for a in r.artifacts if a.path.is_file()]
    if not paths:
        return None, []
    folder = Path(tempfile.mkdtemp(prefix="ttsperf-profile-"))
    copies = []
    for path in paths:
        target = folder / f"{path.parent.name[:8]}-{path.name}"
        shutil.copyfile(path, target)
        copies.append(str(target))
    first_run = next(r.run_id for r in results if r.run_id)
    archive = api.zip_artifacts(paths, folder / "zip" / f"ttsperf-profile-{first_run[:8]}.zip")
    return str(archive), copies


def artifacts_frame(store: ResultsStore, run_id: str) -> pd.DataFrame:
    rows = [{"kind": a.kind, "file": str(a.path), "description": a.description} for a in store.artifacts(run_id)]
    return pd.DataFrame(rows, columns=ARTIFACT_COLUMNS)


def report_view(report: ProfileReport, store: ResultsStore) -> ProfileView:
    if report.error:
        return ProfileView(f"{ERROR_PREFIX} synthesis failed: {report.error}")
    tables: dict[str, pd.DataFrame] = {}
    flame = FLAME_PLACEHOLDER
    artifacts = []
    for result in report.results:
        for table in result.tables:
            tables[f"{result.profiler}: {table.title}"] = table.frame
        svg = next((a.path for a in result.artifacts if a.kind == "pyspy:flamegraph"), None)
        if svg is not None:
            flame = f'<div style="overflow-x:auto">{svg.read_text(encoding="utf-8")}</div>'
        if result.run_id:
            artifacts.append(artifacts_frame(store, result.run_id).assign(run_id=result.run_id))
    roofline = next((r for r in report.results if r.profiler == "roofline" and r.status is ProfilerStatus.OK),
                    None)
    ok = [r.profiler for r in report.results if r.status is ProfilerStatus.OK]
    others = [f"{r.profiler} {r.status.value}" for r in report.results
              if r.status is not ProfilerStatus.OK and r.message != CANCELLED]
    cut = [r.profiler for r in report.results if r.message == CANCELLED]
    status = f"{OK_PREFIX} {report.engine}: profiled with {', '.join(ok) or 'nothing'}"
    if others:
        status += f" ({'; '.join(others)}: see below)"
    if cut:
        status += f". **Cancelled:** not run: {', '.join(cut)} (what ran is stored)"
    archive, files = _download_copies(report.results)
    return ProfileView(
        status=status,
        summary="\n\n---\n\n".join(_result_markdown(r) for r in report.results),
        tables=tables,
        flame_html=flame,
        files=files,
        archive=archive,
        artifacts=pd.concat(artifacts, ignore_index=True) if artifacts else ProfileView("").artifacts,
        roofline=_roofline_plot(roofline, report.settings.precision) if roofline else None,
    )


def _roofline_plot(result: ProfilerResult, precision: str) -> Any:
    return roofline_figure(result.table("stages").frame, result.table("ceilings").frame, precision)


def build(ctx: DashboardContext) -> None:
    views = [v for v in engine_views() if v.available]
    selected = default_engine(views) if views else None
    view = find_view(views, selected) if selected else None
    devices = device_choices(view) if view else []
    precisions = precision_choices(view, devices[0] if devices else None) if view else []
    usable = applicable_profilers(selected) if selected else []

    gr.Markdown("Repeat a run under profilers. Each profiled run is paired with a plain run just before it; "
                "the overhead beside each profiler is the difference.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            engine = gr.Dropdown(choices=[(v.label, v.name) for v in views], value=selected, label="Engine",
                                 elem_id="profile-engine")
            with gr.Row():
                device = gr.Dropdown(choices=devices, value=devices[0] if devices else None, label="Device")
                precision = gr.Dropdown(choices=precisions, value=precisions[0] if precisions else None,
                                        label="Precision")
            with gr.Accordion("Engine knobs", open=True):
                panel = KnobPanel(views, selected or "")
            profilers = gr.CheckboxGroup(choices=list(PROFILER_NAMES), value=usable, label="Profilers",
                                         info="torch and roofline apply to torch engines only",
                                         elem_id="profile-profilers")
            repeats = gr.Number(2, precision=0, label="Profiled runs per profiler")
            with gr.Accordion("Profiler options", open=False):
                line_functions = gr.Textbox("", label="line_profiler: extra functions",
                                            placeholder="package.module.Class.method, comma-separated")
                with gr.Row():
                    pyspy_rate = gr.Number(200, precision=0, label="py-spy rate (Hz)")
                    pyspy_native = gr.Checkbox(False, label="py-spy native frames")
                with gr.Row():
                    torch_memory = gr.Checkbox(False, label="torch.profiler memory")
                    leak_runs = gr.Number(6, precision=0, label="memory: runs for the growth check")
        with gr.Column(scale=2):
            text = gr.Textbox(DEFAULT_TEXT, lines=3, label=f"Text (up to {ctx.max_chars} characters)")
            with gr.Row():
                run_button = gr.Button("Profile", variant="primary", elem_id="profile-run", interactive=bool(views))
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="profile-cancel")
            status = gr.Markdown("Ready: pick profilers and press **Profile**.", elem_id="profile-status")
            summary = gr.Markdown(elem_id="profile-summary")
            # Hidden until a run fills them: an empty table would show placeholder headers.
            with gr.Column(visible=False, elem_id="profile-tables") as tables_box:
                table_choice = gr.Dropdown(choices=[], label="Table", elem_id="profile-table-choice")
                table = gr.Dataframe(label="Profiler table", interactive=False, wrap=True, elem_id="profile-table")
            flame = gr.HTML(FLAME_PLACEHOLDER, label="py-spy flame graph", elem_id="profile-flame")
            roofline_plot = gr.Plot(label="Roofline: one point per stage (run the roofline profiler)",
                                    elem_id="profile-roofline")
            archive = gr.File(label="Download all files (zip)", interactive=False, elem_id="profile-zip")
            trace = trace_button("profile-trace")
            with gr.Accordion("Individual files (.prof, speedscope, SVG, Chrome trace, tables)", open=False):
                files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="profile-files")
            artifacts = gr.Dataframe(pd.DataFrame(columns=ARTIFACT_COLUMNS), label="Artifacts stored with the runs",
                                     interactive=False, elem_id="profile-artifacts")
            with gr.Row():
                lookup_id = gr.Textbox("", label="Artifacts of a stored run", placeholder="run id")
                lookup_button = gr.Button("List")
    tables_state = gr.State({})

    def on_engine(name: str) -> list[Any]:
        chosen = find_view(views, name)
        devs = device_choices(chosen) if chosen else []
        precs = precision_choices(chosen, devs[0] if devs else None) if chosen else []
        return [
            gr.update(choices=devs, value=devs[0] if devs else None),
            gr.update(choices=precs, value=precs[0] if precs else None),
            gr.update(value=applicable_profilers(name)),
            *panel.visibility(name),
        ]

    def profile(
        engine_name: str, device_name: str, precision_name: str, text_value: str,
        chosen: list[str], repeat_count: float, line_names: str, rate: float, native: bool, memory: bool,
        leak: float, request: gr.Request = None,  # type: ignore[assignment]
        progress: gr.Progress = gr.Progress(),  # noqa: B008
        **knob_values: Any,
    ) -> tuple[Any, ...]:
        """The form by name; knobs arrive as ``<engine>__<knob>`` for every engine (as on /synthesize)."""
        try:
            profile_request = build_request(engine_name, device_name, precision_name,
                                            knobs_from_named(engine_name, knob_values), text_value, chosen,
                                            repeat_count, line_names, rate, native, memory, leak, ctx.max_chars)
            # In the lane: a profiler sampling this process must not see another tab's synthesis.
            with ctx.cancels.running(request, "the profile") as cancel, \
                    ctx.lane.hold(f"profile of {profile_request.settings.engine}"):
                run = api.run_profile_request(profile_request, store=ctx.store, pool=ctx.pool,
                                              progress=lambda msg: progress(None, desc=msg), cancel=cancel)
            view = report_view(run.report, ctx.store)
            first = next((r.run_id for r in run.report.results if r.run_id), None)
            view.trace = result_trace_update(run.trace, f"profile-{first or run.report.engine}")
            return view.as_outputs()
        except Exception as error:  # a visible line, never a stack trace in the page
            if not isinstance(error, InputError):
                log.exception("profiling failed")
            return ProfileView(f"{ERROR_PREFIX} {one_line(error)}").as_outputs()

    def show_table(name: str | None, stored: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return stored.get(name or "", pd.DataFrame())

    def lookup(run_id: str) -> pd.DataFrame:
        return artifacts_frame(ctx.store, run_id.strip())

    engine.change(on_engine, engine, [device, precision, profilers, *panel.groups])
    form = {"engine_name": engine, "device_name": device, "precision_name": precision, "text_value": text,
            "chosen": profilers, "repeat_count": repeats, "line_names": line_functions, "rate": pyspy_rate,
            "native": pyspy_native, "memory": torch_memory, "leak": leak_runs}
    ctx.storing.append(run_button.click(
        profile, inputs_kwargs={**form, **panel.named_inputs()},
        outputs=[status, summary, table_choice, table, flame, files, artifacts, archive, tables_box, tables_state,
                 roofline_plot, trace],
        api_name="profile", concurrency_id=LANE_ID,
    ))
    cancel_button.click(cancel_handler(ctx.cancels), None, status, api_name="cancel_profile", concurrency_limit=None)
    table_choice.change(show_table, [table_choice, tables_state], table, api_name="profile_table")
    lookup_button.click(lookup, lookup_id, artifacts, api_name="profile_artifacts")
