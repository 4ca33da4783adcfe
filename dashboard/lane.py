"""The measurement lane: every dashboard endpoint that measures runs through it, one at a time.

Two measurements at once would share the engine pool (races on engine state) and the CPU, and both stored
figures would be contaminated. Gradio's queue serialises the events that share ``LANE_ID``; the lane object
also knows what is running, so the page can say what a waiting run waits for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: The Gradio concurrency id every measuring event uses (with the queue's limit of 1 per id).
LANE_ID = "measurement"


class MeasurementLane:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._current: str = ""
        self._since = 0.0

    @contextmanager
    def hold(self, what: str) -> Iterator[None]:
        """Run ``what`` alone in the lane (also guards callers outside Gradio's queue)."""
        with self._lock:
            with self._state:
                self._current, self._since = what, time.monotonic()
            try:
                yield
            finally:
                with self._state:
                    self._current = ""

    def describe(self) -> str:
        """One line for the page: idle, or what is measuring now and for how long."""
        with self._state:
            current, since = self._current, self._since
        if not current:
            return "Measurement lane: idle."
        return (f"Measurement lane: busy — {current}, running {time.monotonic() - since:.0f} s. "
                "A new run waits in the queue until it ends (runs never overlap, so neither is disturbed).")
