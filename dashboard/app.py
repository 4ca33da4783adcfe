"""The ttsperf dashboard: one Gradio Blocks app with every tab in dashboard.tabs.TABS.

Run ``python app.py`` (or ``python -m dashboard.app``); it binds 127.0.0.1 unless
told otherwise, with Gradio's analytics off. In Jupyter, ``dashboard.show()`` renders the
same app inline (same queue, theme and CSS: both go through ``prepare_app`` and ``LAUNCH``).
"""

from __future__ import annotations

import os

# Before gradio is imported anywhere: analytics off means no network calls at all.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from dashboard import freshness  # noqa: E402
from dashboard.context import DashboardContext  # noqa: E402
from dashboard.messages import error_status, one_line  # noqa: E402
from dashboard.tabs import TABS  # noqa: E402
from engines.errors import InputError  # noqa: E402
from profiling.api.inputs import default_data_dir, default_max_chars  # noqa: E402
from profiling.api.types import ResultsStore  # noqa: E402

log = logging.getLogger(__name__)

TITLE = "ttsperf — TTS performance lab"
#: How often an open page asks what the measurement lane is doing (one tiny request).
LANE_POLL_S = 2.0

CSS = """
.ttsperf-random-weights {
    background: #b91c1c; color: #fff; font-weight: 700; font-size: 1.15rem;
    letter-spacing: 0.04em; padding: 0.6rem 1rem; border-radius: 6px; text-align: center;
}
#synth-status { min-height: 1.5rem; }
#synth-status p { font-size: 1rem; }
"""


def build_app(ctx: DashboardContext) -> gr.Blocks:
    """Every tab in TABS, in order; each module's build(ctx) runs inside its gr.Tab."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"## {TITLE}\nResults store: `{ctx.store.db_path}`")
        lane = gr.Markdown(ctx.lane.describe(), elem_id="lane-status")
        # Outside the lane (no concurrency limit): it must answer while a measurement runs.
        gr.Timer(LANE_POLL_S).tick(ctx.lane.describe, None, lane, api_name="lane_status", concurrency_limit=None,
                                   show_progress="hidden")
        with gr.Tabs():
            for title, module_name in TABS:
                with gr.Tab(title):
                    _build_tab(module_name, ctx)
        freshness.wire(demo, ctx.refreshers, ctx.storing)
    return demo


def _build_tab(module_name: str, ctx: DashboardContext) -> None:
    """One tab; a tab that fails to build shows why instead of taking the whole app down."""
    try:
        importlib.import_module(module_name).build(ctx)
    except Exception as error:
        log.exception("tab %s failed to build", module_name)
        gr.Markdown(error_status(f"this tab failed to load ({module_name}): {one_line(error)}"))


def _env_port() -> int:
    raw = os.environ.get("GRADIO_SERVER_PORT", "")
    return int(raw) if raw.isdigit() else 7860


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ttsperf-dashboard", description=TITLE)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to bind (default $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=_env_port(),
                        help="port (default $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"results store directory (default $TTSPERF_DATA_DIR or {default_data_dir()})")
    parser.add_argument("--max-chars", type=int, default=default_max_chars(),
                        help="longest text accepted (default 5000 or $TTSPERF_MAX_CHARS)")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class LaunchConfig:
    """What ``make dashboard`` and ``show()`` share: one queue (one measured run at a time), theme, CSS, footer."""

    concurrency_limit: int = 1
    css: str = CSS
    footer_links: tuple[str, ...] = ("api", "settings")

    def launch_kwargs(self) -> dict[str, Any]:
        return {"theme": gr.themes.Soft(), "css": self.css, "footer_links": list(self.footer_links)}


LAUNCH = LaunchConfig()


def prepare_app(data_dir: Path | str | None = None, max_chars: int | None = None) -> gr.Blocks:
    """The app on the store in ``data_dir``, queued as ``LAUNCH`` says; InputError for bad settings."""
    max_chars = default_max_chars() if max_chars is None else max_chars
    if max_chars < 1:
        raise InputError("--max-chars must be at least 1")
    try:
        store = ResultsStore(data_dir)
    except OSError as error:
        raise InputError(f"cannot open the results store in {data_dir}: {error}") from None
    demo = build_app(DashboardContext(store=store, max_chars=max_chars))
    demo.queue(default_concurrency_limit=LAUNCH.concurrency_limit)
    return demo


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        demo = prepare_app(args.data_dir, args.max_chars)
    except InputError as error:
        raise SystemExit(f"error: {error}") from None
    demo.launch(server_name=args.host, server_port=args.port, **LAUNCH.launch_kwargs())


def show(
    data_dir: Path | str | None = None, *, max_chars: int | None = None, port: int | None = None,
    height: int = 900,
) -> gr.Blocks:
    """The full dashboard inline in a Jupyter notebook (served on 127.0.0.1); ``.close()`` stops it.

    Same app, queue, theme and CSS as ``make dashboard``; the cell returns at once and the
    server keeps running in the kernel.
    """
    demo = prepare_app(data_dir, max_chars)
    demo.launch(server_name="127.0.0.1", server_port=port, inline=True, height=height, prevent_thread_lock=True,
                quiet=True, **LAUNCH.launch_kwargs())
    return demo


if __name__ == "__main__":
    main()
