"""Sweeps: spec (files), plan (configurations, keys), scheduler (units and blocks), execute (local executor,
results written by the driver), ray_executor (optional, Ray); streaming sweeps."""
