"""Peak resident memory of this process during a block, by sampling."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil


class PeakRssSampler:
    """Samples RSS on a daemon thread while the block runs; ``peak_mb`` after exit.

    Sampling (not ``ru_maxrss``) because ru_maxrss is the whole process's
    lifetime peak and cannot tell one run from the run before it.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self._interval_s = interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        if rss > self._peak:
            self._peak = rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def __enter__(self) -> PeakRssSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return self._peak / 2**20
