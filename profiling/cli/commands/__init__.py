"""One module per CLI subcommand; each exposes ``register(subparsers)``.

A subcommand's handler takes the parsed args and returns an exit code. Raise
``engines.errors.InputError`` for bad input: the CLI prints it as one line and
exits 2.
"""

#: Subcommand modules in help order. Add a module here to add a subcommand.
COMMAND_MODULES: tuple[str, ...] = (
    "profiling.cli.commands.engines_cmd",
    "profiling.cli.commands.bench",
    "profiling.cli.commands.stream",
    "profiling.cli.commands.sweep",
    "profiling.cli.commands.compare",
    "profiling.cli.commands.compare_load",
    "profiling.cli.commands.ab",
    "profiling.cli.commands.calibrate",
    "profiling.cli.commands.profile",
    "profiling.cli.commands.serve",
    "profiling.cli.commands.load",
    "profiling.cli.commands.trace",
)
