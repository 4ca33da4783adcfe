"""What shows: the Gradio dashboard. ``dashboard.show()`` renders it inline in Jupyter.

``show`` is loaded on first use, so ``import dashboard`` does not import Gradio.
"""

from __future__ import annotations

from typing import Any

__all__ = ["show"]


def __getattr__(name: str) -> Any:
    if name == "show":
        from dashboard.app import show

        return show
    raise AttributeError(f"module 'dashboard' has no attribute '{name}'")
