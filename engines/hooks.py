"""The only measurement surface engines see: stage hooks.

Engines call ``hook.stage(name)`` around each pipeline stage, ``hook.observe``
to append to a per-run series (per-token or per-step times) and
``hook.annotate`` for facts about the run (cache hit, dtypes seen). The real
implementation lives in ``profiling.core.timer``; engines never import it, so the
dependency points one way (profiling -> engines).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class StageHook(Protocol):
    def stage(self, name: str) -> AbstractContextManager[None]:
        """Time the enclosed block as stage ``name`` (stages nest)."""
        ...

    def observe(self, series: str, value: float) -> None:
        """Append ``value`` to the named series (e.g. per-token seconds)."""
        ...

    def annotate(self, key: str, value: str | float | int | bool) -> None:
        """Record one fact about the run (e.g. ``voice_cache=hit``)."""
        ...


class NullHook:
    """A hook that measures nothing: the near-zero-cost default."""

    _ctx = nullcontext()

    def stage(self, name: str) -> AbstractContextManager[None]:
        return self._ctx

    def observe(self, series: str, value: float) -> None:
        pass

    def annotate(self, key: str, value: str | float | int | bool) -> None:
        pass


NULL_HOOK: StageHook = NullHook()
