"""Makes a Piper stream's trace and saves Perfetto showing it: docs/images/trace-perfetto.png (the README's).

    .venv/bin/python scripts/trace_screenshot.py [--out PATH]

Offline, as `python -m profiling trace ID --open` shows it: the stream is run into a temporary store, its
trace served by profiling.trace.viewer (the trace extra's Perfetto UI) on 127.0.0.1 and captured by Debian's
Chromium through Playwright (every request off 127.0.0.1 refused). Every track group is expanded and one
chunk selected, as a click would; the PNG (the timeline only) is reduced to a 64-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import tempfile
from pathlib import Path

from profiling import api
from profiling.trace import perfetto_page
from profiling.trace.viewer import HOST, TraceViewer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "trace-perfetto.png"
CHROMIUM = os.environ.get("TTSPERF_CHROMIUM", "/usr/bin/chromium")
TEXT = ("Turn left at the next corner. Then keep going straight for two hundred metres. "
        "The station is on your right, just past the bridge.")
SELECTED = "chunk 2"  # outlined, its duration measured on the time axis
VIEWPORT = {"width": 1280, "height": 720}
#: The top of the page: the overview, the time axis and the stream's three tracks (the details panel left out).
CLIP = {"x": 0, "y": 0, "width": 1280, "height": 305}
COLOURS = 64


def stream_trace(directory: Path) -> Path:
    """A short Piper stream (its model load included) in a fresh store under ``directory``: its trace file."""
    store = api.open_store(directory / "store")
    request = api.stream_request("piper", TEXT, first_chunk_max_chars=30, max_chars_per_chunk=60, repeats=1, warmup=0,
                                 knobs={"deterministic": True, "intra_op_threads": 1})
    path = directory / "stream.json"
    api.run_request(request, store=store).trace(path)
    return path


def capture(trace: Path) -> bytes:
    from playwright.sync_api import sync_playwright

    loopback = re.compile(rf"^https?://{re.escape(HOST)}(:\d+)?/")
    with TraceViewer(trace) as viewer, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(service_workers="block", viewport=VIEWPORT)
        context.route("**/*", lambda route: route.continue_() if loopback.match(route.request.url) else route.abort())
        page = context.new_page()
        page.goto(viewer.url)
        perfetto_page.wait_for_trace(page)
        perfetto_page.expand_all_tracks(page)
        perfetto_page.select_slice(page, SELECTED)
        page.wait_for_timeout(1500)  # the timeline's canvas is drawn on the next animation frames
        image = page.screenshot(clip=CLIP)
        browser.close()
    return image


def small_png(image: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(image)).convert("RGB").quantize(COLOURS).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttsperf-trace-shot-") as tmp:
        png = small_png(capture(stream_trace(Path(tmp))))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(f"{args.out}: {len(png) // 1024} KiB")


if __name__ == "__main__":
    main()
