"""Measured synthesis: requests, the engine pool, warm-up and repeats."""
