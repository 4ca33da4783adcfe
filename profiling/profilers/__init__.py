"""The profiler suite: repeat any run under cProfile, line_profiler, py-spy, torch.profiler, memory or roofline.

One module per profiler; ``session.run_profile`` runs a request plain (the
baseline for overhead) and then under each chosen profiler, stores every run
and registers the files each profiler wrote as artifacts of its first run.
"""

from __future__ import annotations

import importlib

from engines.errors import InputError
from profiling.profilers.common import Profiler

#: Profiler name -> "module:class", in the order they run and are shown.
PROFILERS: dict[str, str] = {
    "cprofile": "profiling.profilers.cprofile:CProfileProfiler",
    "line": "profiling.profilers.line:LineProfilerProfiler",
    "pyspy": "profiling.profilers.pyspy:PySpyProfiler",
    "torch": "profiling.profilers.torchprof:TorchProfiler",
    "memory": "profiling.profilers.memory:MemoryProfiler",
    "roofline": "profiling.roofline.profiler:RooflineProfiler",  # with the rest of the roofline
}
PROFILER_NAMES: tuple[str, ...] = tuple(PROFILERS)


def get_profiler(name: str) -> Profiler:
    try:
        module_name, class_name = PROFILERS[name].split(":")
    except KeyError:
        raise InputError(f"unknown profiler '{name}' (known: {', '.join(PROFILER_NAMES)}, or all)") from None
    return getattr(importlib.import_module(module_name), class_name)()


def parse_profiler_names(text: str) -> tuple[str, ...]:
    """``"cprofile,line"`` or ``"all"`` -> names in suite order; InputError for unknown or none."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError(f"name at least one profiler ({', '.join(PROFILER_NAMES)}, or all)")
    if "all" in names:
        return PROFILER_NAMES
    unknown = [n for n in names if n not in PROFILERS]
    if unknown:
        raise InputError(f"unknown profiler '{unknown[0]}' (known: {', '.join(PROFILER_NAMES)}, or all)")
    return tuple(n for n in PROFILER_NAMES if n in names)
