"""The command line: ``python -m profiling`` (one module per subcommand in ``commands/``)."""
