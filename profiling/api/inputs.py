"""What a person types, read into typed values (one-line ``InputError`` when it is wrong), and the choices a
form or a command line offers: defaults, text sets, profilers, sweep executors, what this CPU supports.
"""

from __future__ import annotations

from profiling.core.hardware import cpu_isa, cpu_precision_notes
from profiling.loadgen.schedule import parse_rates
from profiling.profilers import PROFILER_NAMES, get_profiler, parse_profiler_names
from profiling.run.inputs import (
    DEFAULT_TEXT,
    MAX_CHARS_ENV,
    default_max_chars,
    load_yaml_mapping,
    parse_json_object,
    parse_knobs,
)
from profiling.store.results import default_data_dir
from profiling.sweeps.execute import executors
from profiling.sweeps.streaming import parse_sizes, parse_values
from profiling.texts.textsets import text_set_names

__all__ = [
    # defaults
    "DEFAULT_TEXT", "MAX_CHARS_ENV", "default_data_dir", "default_max_chars",
    # parsing what was typed
    "load_yaml_mapping", "parse_json_object", "parse_knobs", "parse_profiler_names", "parse_rates", "parse_sizes",
    "parse_values",
    # the choices offered
    "PROFILER_NAMES", "cpu_isa", "cpu_precision_notes", "executors", "get_profiler", "text_set_names",
]
