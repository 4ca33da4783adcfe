"""line_profiler: per-line hits and time in the engine's hot functions and any the user names."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import linecache
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FunctionType
from typing import Any

import pandas as pd

from engines.base import Engine
from engines.errors import InputError
from profiling.profilers.artifacts import short_path, write_table
from profiling.profilers.common import (
    ArtifactFile,
    ProfileContext,
    ProfileOptions,
    Profiler,
    ProfilerResult,
    ProfilerStatus,
    ProfileTable,
)

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")

CodeKey = tuple[str, int, str]
#: (file, first line) identifies a function's code; line_profiler's own keys carry a qualname, not co_name.
CodeSite = tuple[str, int]


def resolve_function(dotted: str) -> FunctionType:
    """The Python function named ``package.module.Class.method``; InputError (one line) if there is none."""
    name = dotted.strip()
    if not _DOTTED.match(name):
        raise InputError(f"line_profiler: {dotted!r} is not a dotted name like package.module.function")
    parts = name.split(".")
    module, attrs = None, parts
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        except Exception as error:  # the module exists but fails to import: say why
            raise InputError(f"line_profiler: cannot import {module_name}: {type(error).__name__}: {error}") from None
        attrs = parts[cut:]
        break
    if module is None:
        raise InputError(f"line_profiler: cannot find {name!r}: no importable module in it")
    obj: Any = module
    path = module.__name__
    for attr in attrs:
        try:
            obj = inspect.getattr_static(obj, attr)
        except AttributeError:
            raise InputError(f"line_profiler: cannot find {name!r}: {path} has no attribute {attr!r}") from None
        path = f"{path}.{attr}"
    return _unwrap(obj, name)


def _unwrap(obj: Any, name: str) -> FunctionType:
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property) and obj.fget is not None:
        obj = obj.fget
    # Decorators such as torch.no_grad share one wrapper code object across every function they
    # wrap: profiling the wrapper would mix them all, so profile the function underneath.
    obj = inspect.unwrap(obj)
    if not isinstance(obj, FunctionType):
        raise InputError(
            f"line_profiler: {name!r} is a {type(obj).__name__}, not a Python function "
            "(C functions and classes cannot be line-profiled)"
        )
    return obj


def hot_function_names(engine_cls: type[Engine], extra: tuple[str, ...]) -> tuple[str, ...]:
    """The engine's declared hot functions, then the user's, without repeats."""
    return tuple(dict.fromkeys((*engine_cls.hot_functions, *(e.strip() for e in extra if e.strip()))))


def _code_site(func: FunctionType) -> CodeSite:
    code = func.__code__
    return (code.co_filename, code.co_firstlineno)


def line_frames(
    timings: dict[CodeKey, list[tuple[int, int, float]]], unit: float, names: dict[CodeSite, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(functions table, lines table): only functions that ran, heaviest first; only lines that ran."""
    functions, lines = [], []
    for key, entries in timings.items():
        total_s = sum(t for _, _, t in entries) * unit
        hits = [e for e in entries if e[1] > 0]
        if not hits:
            continue
        filename = key[0]
        label = names.get((key[0], key[1]), key[2])
        functions.append({
            "function": label,
            "location": f"{short_path(filename)}:{key[1]}",
            "calls": sorted(hits)[0][1],  # hits on the first line that ran = calls
            "total_ms": total_s * 1000.0,
        })
        for line, count, time_units in sorted(hits):
            seconds = time_units * unit
            lines.append({
                "function": label,
                "line": line,
                "hits": count,
                "time_ms": seconds * 1000.0,
                "per_hit_us": seconds * 1e6 / count,
                "pct_of_function": 100.0 * seconds / total_s if total_s > 0 else 0.0,
                "source": linecache.getline(filename, line).rstrip(),
            })
    functions_frame = pd.DataFrame(functions, columns=["function", "location", "calls", "total_ms"])
    functions_frame = functions_frame.sort_values("total_ms", ascending=False).reset_index(drop=True)
    order = {name: i for i, name in enumerate(functions_frame["function"])}
    lines_frame = pd.DataFrame(
        lines, columns=["function", "line", "hits", "time_ms", "per_hit_us", "pct_of_function", "source"]
    )
    if not lines_frame.empty:
        lines_frame = lines_frame.sort_values(
            ["function", "line"], key=lambda col: col.map(order) if col.name == "function" else col
        ).reset_index(drop=True)
    return functions_frame, lines_frame


class LineProfilerProfiler(Profiler):
    name = "line"
    title = "line_profiler"

    def unavailable_reason(self, engine_cls: type[Engine]) -> str | None:
        if importlib.util.find_spec("line_profiler") is None:
            return "line_profiler is not installed (pip install -e .[profilers])"
        return None

    def validate(self, engine_cls: type[Engine], options: ProfileOptions) -> None:
        for name in options.line_functions:
            resolve_function(name)

    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        from line_profiler import LineProfiler

        engine_cls = type(ctx.target.engine)
        names = hot_function_names(engine_cls, ctx.options.line_functions)
        if not names:
            return ProfilerResult(
                self.name, ProfilerStatus.SKIPPED,
                f"engine '{ctx.target.settings.engine}' declares no hot functions; name some to profile",
            )
        profiler = LineProfiler()
        labels: dict[CodeSite, str] = {}
        for name in names:
            func = resolve_function(name)
            profiler.add_function(func)
            labels[_code_site(func)] = name

        records = ctx.paired_runs(self.name, ctx.options.repeats, around=_enabled(profiler))
        stats = profiler.get_stats()
        functions, lines = line_frames(stats.timings, stats.unit, labels)
        tables = [
            ProfileTable("functions", "Profiled functions, heaviest first", functions),
            ProfileTable("lines", "Per-line hits, time and share of the function (lines that ran)", lines),
        ]
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        lprof = ctx.out_dir / "line.lprof"
        profiler.dump_stats(str(lprof))
        artifacts = [ArtifactFile("line:lprof", lprof, "line_profiler stats (python -m line_profiler FILE)")]
        for table in tables:
            artifacts += write_table(table, ctx.out_dir, self.name)
        hot = [
            f"{row.function} line {row.line}: {row.source.strip()} - {row.time_ms:.0f} ms "
            f"({row.pct_of_function:.0f}% of the function)"
            for row in lines.sort_values("time_ms", ascending=False).head(3).itertuples()
        ] if not lines.empty else []
        not_run = [n for n in names if n not in set(functions["function"])]
        notes = [f"never called in these runs: {', '.join(not_run)}"] if not_run else []
        return ProfilerResult(
            self.name, ProfilerStatus.OK, f"{len(records)} runs; functions: {', '.join(names)}",
            tables=tables, artifacts=artifacts, records=records, hot_spots=hot, notes=notes,
        )


def _enabled(profiler: Any) -> Callable[[], Any]:
    @contextmanager
    def around() -> Iterator[None]:
        profiler.enable_by_count()
        try:
            yield
        finally:
            profiler.disable_by_count()

    return around
