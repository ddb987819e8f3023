"""When to look at a job next: adaptive poll intervals and retry backoff (pure)."""

from __future__ import annotations

import random


def poll_interval(age_s: float, expected_s: float, min_s: float, max_s: float) -> float:
    """Sparse before half the expected time, dense around it, backing off after twice it."""
    ratio = age_s / expected_s if expected_s > 0 else 1.0
    if ratio < 0.5:
        iv = expected_s * 0.2
    elif ratio <= 2.0:
        iv = min_s
    else:
        iv = min_s * ratio
    return max(min_s, min(max_s, iv))


def backoff(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with +-20 % jitter; attempt counts from 1."""
    delay = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return delay * (rng or random).uniform(0.8, 1.2)
