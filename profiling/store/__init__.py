"""The results store (SQLite): runs, stages, artifacts."""
