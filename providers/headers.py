"""Reading the relay's headers: a header by name whatever its case, and Retry-After values,
bounded (delay-seconds or an HTTP-date, at most RETRY_AFTER_MAX_S). `providers.base` re-exports
them; `retry_after_s` there reads an answer's header with them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case in the mapping."""
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


RETRY_AFTER_MAX_S = 600.0  # the longest Retry-After honoured: a relay's "come back tomorrow" is 10 min here


def parse_retry_after(raw: str, now: datetime | None = None) -> float | None:
    """A Retry-After value in seconds: delay-seconds, or an HTTP-date counted from `now` (the wall
    clock by default; a date passed is 0), at most RETRY_AFTER_MAX_S. None for anything else (inf,
    nan, a negative number, garbage): the caller's own backoff applies. The relay sets this value,
    and it reaches a schedule: unbounded, one answer parked jobs past their deadline."""
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_MAX_S)
