"""Every measurement as a timeline: Chrome trace event JSON that Perfetto and chrome://tracing open.

One module per source (``runs``, ``streams``, ``profiles``, ``loads``, ``sweeps``), all drawing through
``events`` (the format and the track allocator). ``trace_for(kind, id, store)`` is the one entry the CLI
and the dashboard call; the API's result objects call the per-source functions on what they hold.
``viewer`` serves a trace in Perfetto's UI offline (the ``trace`` extra's copy, on 127.0.0.1; ``trace --open``);
``perfetto_page`` reads that page from a browser driver (the tests, the README's screenshot).
Only ``profiling.api`` and ``profiling.cli`` import this package. See docs/traces.md.
"""

from profiling.trace.events import TraceBuilder, write_trace
from profiling.trace.loads import LoadRate, load_trace
from profiling.trace.lookup import KINDS, resolve_kind, trace_for
from profiling.trace.profiles import profile_trace
from profiling.trace.runs import runs_trace
from profiling.trace.sweeps import sweep_trace

__all__ = [
    "KINDS", "LoadRate", "TraceBuilder", "load_trace", "profile_trace", "resolve_kind", "runs_trace",
    "sweep_trace", "trace_for", "write_trace",
]
