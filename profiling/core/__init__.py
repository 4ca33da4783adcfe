"""The measurement core: stage timer, run records, environment, RSS sampling, summary statistics."""
