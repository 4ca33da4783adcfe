"""What measures: stage timer, run records, repeats, statistics, the results store, the CLI."""
