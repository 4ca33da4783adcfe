"""Seeded arrival schedules (pure): open-loop Poisson or gamma arrivals, or closed-loop users.

The gap between arrivals is Gamma(shape=burstiness, scale=1/(rate*burstiness)): mean 1/rate whatever the
shape; burstiness 1 is exponential (Poisson arrivals), below 1 burstier, above 1 more regular.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engines.errors import InputError

MAX_RATE_PER_S = 1000.0
MAX_DURATION_S = 3600.0
MAX_REQUESTS = 100_000
MAX_USERS = 1000


@dataclass(frozen=True)
class Schedule:
    """When each request should leave, in seconds from the start; ``users`` > 0 means closed loop."""

    kind: str  # "poisson", "gamma" or "closed"
    rate_per_s: float
    duration_s: float
    seed: int
    burstiness: float = 1.0
    offsets_s: tuple[float, ...] = ()
    users: int = 0
    max_requests: int = MAX_REQUESTS

    @property
    def label(self) -> str:
        return f"{self.users} users" if self.kind == "closed" else f"{self.rate_per_s:g}/s"


def check_bounds(duration_s: float, max_requests: int) -> None:
    if not (math.isfinite(duration_s) and 0 < duration_s <= MAX_DURATION_S):
        raise InputError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds, got {duration_s:g}")
    if not 1 <= max_requests <= MAX_REQUESTS:
        raise InputError(f"max requests must be between 1 and {MAX_REQUESTS}, got {max_requests}")


def arrival_schedule(rate_per_s: float, duration_s: float, seed: int, burstiness: float = 1.0,
                     max_requests: int = MAX_REQUESTS) -> Schedule:
    """Open-loop arrivals at ``rate_per_s`` over ``duration_s`` (at most ``max_requests``), from ``seed``."""
    if not (math.isfinite(rate_per_s) and 0 < rate_per_s <= MAX_RATE_PER_S):
        raise InputError(f"rate must be in (0, {MAX_RATE_PER_S:g}] requests/s, got {rate_per_s:g}")
    if not (math.isfinite(burstiness) and 0.01 <= burstiness <= 100):
        raise InputError(f"burstiness must be in [0.01, 100], got {burstiness:g}")
    check_bounds(duration_s, max_requests)
    rng = np.random.default_rng(seed)
    # Enough gaps to pass the duration with near certainty; cut to the window and the count.
    expected = rate_per_s * duration_s
    n = int(expected + 10 * math.sqrt(expected / burstiness) + 20)
    gaps = rng.gamma(shape=burstiness, scale=1.0 / (rate_per_s * burstiness), size=n)
    offsets = np.cumsum(gaps)
    offsets = offsets[offsets < duration_s][:max_requests]
    kind = "poisson" if burstiness == 1.0 else "gamma"
    return Schedule(kind, rate_per_s, duration_s, seed, burstiness, tuple(float(t) for t in offsets),
                    max_requests=max_requests)


def closed_loop(users: int, duration_s: float, seed: int, max_requests: int = MAX_REQUESTS) -> Schedule:
    """``users`` concurrent users, each sending its next request when the last one ends."""
    if not 1 <= users <= MAX_USERS:
        raise InputError(f"users must be between 1 and {MAX_USERS}, got {users}")
    check_bounds(duration_s, max_requests)
    return Schedule("closed", 0.0, duration_s, seed, users=users, max_requests=max_requests)


def parse_rates(text: str) -> tuple[float, ...]:
    """``"1,2,4"`` -> (1.0, 2.0, 4.0), sorted, each checked."""
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"rates must be numbers separated by commas, got {text!r}") from None
    if not rates:
        raise InputError("give at least one rate")
    for rate in rates:
        if not (math.isfinite(rate) and 0 < rate <= MAX_RATE_PER_S):
            raise InputError(f"each rate must be in (0, {MAX_RATE_PER_S:g}] requests/s, got {rate:g}")
    return tuple(sorted(set(rates)))
