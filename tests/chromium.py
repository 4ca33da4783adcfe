"""Debian's Chromium driven through Playwright, for the browser tests: never ``playwright install``.

One browser serves a whole pytest session (``browser`` in conftest); each test opens its own pages or context.
Set TTSPERF_CHROMIUM to use another binary, TTSPERF_SCREENSHOT_DIR to keep screenshots of the pages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("TTSPERF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)
#: How long a page step may take on a busy 2-core machine.
TIMEOUT_MS = 90_000


def missing_reason() -> str | None:
    """Why no browser can run here (no Chromium, no Playwright), or None."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        return f"no chromium at {CHROMIUM} (install the chromium package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (the test extra)"
    return None


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """A headless Chromium, closed on exit (with the Playwright driver)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Any, name: str) -> None:
    """Keep a full-page screenshot under $TTSPERF_SCREENSHOT_DIR, when it is set."""
    directory = os.environ.get("TTSPERF_SCREENSHOT_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / name), full_page=True)
