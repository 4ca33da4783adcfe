"""Never stale: every view of the store is read again when a page opens and after anything is stored.

Tabs register ``Refresher``s (a view's function, inputs, outputs) and the events that store something;
``wire`` runs each refresher on the page's load (so a reload shows what is stored now, not what was stored
when the server started) and after each storing event, from whichever tab it came.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr


@dataclass(frozen=True)
class Refresher:
    fn: Callable[..., Any]
    inputs: list[Any]
    outputs: list[Any]
    #: Also after each storing event (False: on page load only, e.g. a view that needs the lane).
    on_store: bool = True
    #: Gradio's concurrency id (the measurement lane for a view that computes); None: runs at once.
    concurrency_id: str | None = None
    #: Run after this one on page load (a view that reads the choices this one refreshed).
    then: Refresher | None = None


def _listen(trigger: Callable[..., Any], refresher: Refresher) -> Any:
    limit: dict[str, Any] = ({"concurrency_id": refresher.concurrency_id} if refresher.concurrency_id
                             else {"concurrency_limit": None})
    return trigger(refresher.fn, refresher.inputs, refresher.outputs, api_visibility="private",
                   show_progress="hidden", **limit)


def wire(demo: gr.Blocks, refreshers: Sequence[Refresher], storing: Sequence[Any]) -> None:
    """Inside ``with demo:``, after every tab is built."""
    for refresher in refreshers:
        loaded = _listen(demo.load, refresher)
        if refresher.then is not None:
            _listen(loaded.then, refresher.then)
        if refresher.on_store:
            for event in storing:
                _listen(event.then, refresher)
