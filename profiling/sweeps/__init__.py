"""Sweeps: spec (files), plan (configurations, keys), scheduler (units and blocks), work (the task a worker
runs), execute (local executor, results written by the driver), ray_executor (optional, Ray); streaming
sweeps.

Named ``sweeps`` so that ``profiling.sweep`` stays the API's function (``from profiling import sweep``).
"""
