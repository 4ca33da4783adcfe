"""Text sets shipped with the lab."""
