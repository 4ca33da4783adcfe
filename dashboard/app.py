"""The ttsperf dashboard: one Gradio Blocks app with every tab in dashboard.tabs.TABS.

Run ``python app.py`` (or ``python -m dashboard.app``); it binds 127.0.0.1 unless
told otherwise, with Gradio's analytics off.
"""

from __future__ import annotations

import os

# Before gradio is imported anywhere: analytics off means no network calls at all.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from dashboard.context import DashboardContext  # noqa: E402
from dashboard.messages import error_status, one_line  # noqa: E402
from dashboard.tabs import TABS  # noqa: E402
from profiling.run.inputs import default_max_chars  # noqa: E402
from profiling.store.results import ResultsStore, default_data_dir  # noqa: E402

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


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.max_chars < 1:
        raise SystemExit("error: --max-chars must be at least 1")
    try:
        store = ResultsStore(args.data_dir)
    except OSError as error:
        raise SystemExit(f"error: cannot open the results store in {args.data_dir}: {error}") from None
    ctx = DashboardContext(store=store, max_chars=args.max_chars)
    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=args.host, server_port=args.port, theme=gr.themes.Soft(), css=CSS,
                footer_links=["api", "settings"])


if __name__ == "__main__":
    main()
