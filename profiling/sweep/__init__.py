"""Sweeps: settings grids from YAML/TOML (grid.py) and the streaming first-chunk x pre-buffer sweep (streaming.py).

The API's ``sweep()`` has this package's name, and Python rebinds ``profiling.sweep`` to the
package whenever it is imported, so ``from profiling import sweep`` could give either. The
package is therefore callable and forwards to ``profiling.api.sweep``: both orders work.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableSweepPackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from profiling.api import sweep

        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableSweepPackage
