"""Values a relay's answer carries, read into bounded typed values (issue 24): Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.base import RETRY_AFTER_MAX_S, HttpResponse, parse_retry_after, retry_after_s

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "want"), [
    ("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("1.5", 1.5),
    ("86400", RETRY_AFTER_MAX_S), ("1e300", RETRY_AFTER_MAX_S),
    ("Tue, 24 Nov 2026 12:02:00 GMT", 120.0),  # an HTTP-date, counted from now
    ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),  # a date passed: at once
    ("Wed, 25 Nov 2026 12:00:00 GMT", RETRY_AFTER_MAX_S),
    ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_MAX_S),
    ("inf", None), ("Infinity", None), ("-inf", None), ("1e999", None), ("nan", None), ("-5", None),
    ("", None), ("soon", None), ("0x10", None), ("Tue, 99 Nov 2026 12:02:00 GMT", None), ("Mon, 1 Jan 10000 00:00:00 GMT", None),
])
def test_retry_after_is_finite_and_at_most_ten_minutes(raw: str, want: float | None) -> None:
    assert parse_retry_after(raw, NOW) == want


def test_retry_after_of_an_answer() -> None:
    assert retry_after_s(HttpResponse(429, {"Retry-After": "86400"}, b"")) == RETRY_AFTER_MAX_S
    assert retry_after_s(HttpResponse(429, {"retry-after": "inf"}, b"")) is None
    assert retry_after_s(HttpResponse(429, {}, b"")) is None
