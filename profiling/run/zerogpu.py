"""Hugging Face ZeroGPU: GPU work must run inside functions decorated with ``spaces.GPU``.

On a ZeroGPU Space a GPU is attached only while such a function runs (for at most
``duration`` seconds per call). The decorator does nothing elsewhere, so the same
entry points run on CPU Spaces, ordinary GPUs and here; without the ``spaces``
package (everywhere but a Space) they are returned unchanged. ZeroGPU does not
support torch.compile: the torch engines refuse ``compile=true`` there
(engines.torch_devices.zerogpu_refusal).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

#: Seconds a decorated call may hold the GPU; a full-size XTTS or F5 batch needs minutes.
DURATION_ENV = "TTSPERF_ZEROGPU_DURATION"
DEFAULT_DURATION_S = 120


def gpu_entry(function: F) -> F:
    """``spaces.GPU(duration=...)(function)`` when ``spaces`` is importable, else ``function`` itself."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return function
    duration = int(os.environ.get(DURATION_ENV, DEFAULT_DURATION_S))
    return spaces.GPU(duration=duration)(function)  # type: ignore[no-any-return]
