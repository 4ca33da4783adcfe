"""``import f5_tts.model`` imports F5's trainer, and with it ``wandb`` and ``datasets``; inference
never calls either. Where they are not installed (the lent GPU machine carries only what inference
needs, as wheels), placeholders stand in for them so the import succeeds; any use raises at once.
Where they are installed, nothing changes.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

TRAINER_ONLY: tuple[str, ...] = ("wandb", "datasets")


class _Unavailable(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*_args: object, **_kwargs: object) -> object:
            raise ImportError(f"{self.__name__} is not installed: F5 training needs it, inference does not")

        return unavailable


def stand_in_for_trainer_imports() -> list[str]:
    """Register placeholders for the trainer-only packages that are missing; returns their names."""
    missing = [name for name in TRAINER_ONLY if name not in sys.modules and importlib.util.find_spec(name) is None]
    for name in missing:
        module = _Unavailable(name)
        # A spec with no loader: importlib.util.find_spec (used by transformers/accelerate probes) works.
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    return missing
