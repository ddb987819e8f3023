"""Per-provider limits shared by every worker (architecture.md §9): a submit rate held in Redis
(the `limits` library's moving window, so ten workers respect one limit) and a cap on jobs
in flight (submitting or running) counted in the database, which is the truth. A job over a
limit waits in `queued`; it never fails for it. The in-flight cap is soft: two workers that
count at the same moment may both go ahead."""

from __future__ import annotations

import time
from collections.abc import Mapping

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.errors import ConfigError
from models.status import JobStatus
from models.tables import Job

_IN_FLIGHT = (JobStatus.SUBMITTING, JobStatus.RUNNING)


def parse_per_provider(raw: str | None, variable: str) -> dict[str, str]:
    """ "kling=5/second, *=20/second" -> {"kling": "5/second", "*": "20/second"}."""
    out: dict[str, str] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{variable}: expected provider=value pairs, got {part.strip()!r}")
        out[name.strip()] = value.strip()
    return out


class SubmitGate:
    def __init__(self, rates: Mapping[str, str], caps: Mapping[str, int], *, redis_url: str | None, prefix: str = "k4u") -> None:
        try:
            self._rates: dict[str, RateLimitItem] = {p: parse(r) for p, r in rates.items()}
        except ValueError as exc:
            raise ConfigError(f"K4U_SUBMIT_RATE_LIMITS: {exc}") from None
        self._caps = dict(caps)
        storage = storage_from_string(redis_url, key_prefix=f"{prefix}:rl") if redis_url else MemoryStorage()
        if not isinstance(storage, Storage):  # an async+... URL: MovingWindowRateLimiter needs a synchronous storage
            raise ConfigError(f"K4U_REDIS_URL: {redis_url!r} names an asynchronous storage; the submit rate limit needs a synchronous one")
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, rates_raw: str | None, caps_raw: str | None, redis_url: str | None) -> SubmitGate | None:
        rates = parse_per_provider(rates_raw, "K4U_SUBMIT_RATE_LIMITS")
        caps_text = parse_per_provider(caps_raw, "K4U_MAX_IN_FLIGHT")
        try:
            caps = {p: int(v) for p, v in caps_text.items()}
        except ValueError:
            raise ConfigError("K4U_MAX_IN_FLIGHT: values must be whole numbers") from None
        if any(c < 1 for c in caps.values()):
            raise ConfigError("K4U_MAX_IN_FLIGHT: values must be at least 1")
        return cls(rates, caps, redis_url=redis_url) if rates or caps else None

    def wait_s(self, session: Session, provider: str) -> float | None:
        """None when the provider may take one more submission now; else seconds to wait."""
        cap = self._caps.get(provider, self._caps.get("*"))
        if cap is not None:
            busy = session.execute(select(func.count()).select_from(Job).where(col(Job.provider) == provider, col(Job.status).in_(_IN_FLIGHT))).scalar_one()
            if busy >= cap:
                return 2.0
        item = self._rates.get(provider, self._rates.get("*"))
        if item is not None and not self._limiter.hit(item, "submit", provider):
            reset_at, _remaining = self._limiter.get_window_stats(item, "submit", provider)
            return max(0.2, reset_at - time.time())
        return None
