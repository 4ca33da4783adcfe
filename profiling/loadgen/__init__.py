"""The load generator: seeded arrivals, a streaming HTTP client, per-request and per-rate metrics, capacity.

``schedule`` and ``metrics`` are pure; ``client`` speaks HTTP (asyncio + httpx); ``targets`` starts and
stops what is measured (the lab server, or the null/fault target) as subprocesses on loopback; ``compare``
reopens stored load tests and compares two (it rebuilds this package's metrics, so it lives here, above
``profiling.analysis``). See docs/load_methodology.md for every metric's time boundaries.
"""
