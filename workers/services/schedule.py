"""When to look at a job next: adaptive poll intervals, retry backoff (a job's deadline is set at intake)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from models.tables import Job
from providers.registry import get_adapter
from workers.settings import Settings


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
    delay = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))  # 2.0: int ** int is typed Any (negative powers)
    return delay * (rng or random).uniform(0.8, 1.2)


# The last stretch before a running job's deadline: however long the relay asked to wait, the job
# is polled in it, every minimum interval (so a refused poll there is not the last), and a task the
# relay finished meanwhile is collected before the sweep fails the job `timeout`.
LAST_POLL_BEFORE_DEADLINE_S = 10.0


def next_poll_at(job: Job, settings: Settings, now: datetime, *, submitted_at: datetime | None = None, wait_s: float | None = None) -> datetime:
    """When to poll the job next; `submitted_at` for a job whose row is about to get it (the first
    poll); `wait_s` (the relay's Retry-After) to wait at least that long, but never past the last
    stretch before the job's deadline (LAST_POLL_BEFORE_DEADLINE_S)."""
    caps = get_adapter(job.provider).capabilities
    expected = settings.poll_expected_s or caps.expected_s
    min_s = settings.poll_min_interval_s or max(2.0, expected / 20)
    age = (now - (submitted_at or job.submitted_at or job.created_at)).total_seconds()
    at = now + timedelta(seconds=max(wait_s or 0.0, poll_interval(age, expected, min_s, settings.poll_max_interval_s)))
    if job.deadline_at is None:
        return at
    last = job.deadline_at - timedelta(seconds=LAST_POLL_BEFORE_DEADLINE_S)
    return min(at, max(last, now + timedelta(seconds=min_s)))
