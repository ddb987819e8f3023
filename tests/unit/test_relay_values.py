"""Values a relay's answer carries, read into bounded typed values (issue 24): Retry-After, and
the texts of a status or a rejection, cut to what a job row holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.base import ERROR_CODE_MAX, ERROR_MESSAGE_MAX, RETRY_AFTER_MAX_S, HttpResponse, ProviderStatus, Rejected, State, parse_retry_after
from providers.rejections import retry_after_s

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("86400", RETRY_AFTER_MAX_S),
        ("1e300", RETRY_AFTER_MAX_S),
        ("Tue, 24 Nov 2026 12:02:00 GMT", 120.0),  # an HTTP-date, counted from now
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),  # a date passed: at once
        ("Wed, 25 Nov 2026 12:00:00 GMT", RETRY_AFTER_MAX_S),
        ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_MAX_S),
        ("inf", None),
        ("Infinity", None),
        ("-inf", None),
        ("1e999", None),
        ("nan", None),
        ("-5", None),
        ("", None),
        ("soon", None),
        ("0x10", None),
        ("Tue, 99 Nov 2026 12:02:00 GMT", None),
        ("Mon, 1 Jan 10000 00:00:00 GMT", None),
    ],
)
def test_retry_after_is_finite_and_at_most_ten_minutes(raw: str, want: float | None) -> None:
    assert parse_retry_after(raw, NOW) == want


def test_retry_after_of_an_answer() -> None:
    assert retry_after_s(HttpResponse(429, {"Retry-After": "86400"}, b"")) == RETRY_AFTER_MAX_S
    assert retry_after_s(HttpResponse(429, {"retry-after": "inf"}, b"")) is None
    assert retry_after_s(HttpResponse(429, {}, b"")) is None


def test_a_status_and_a_rejection_hold_at_most_what_a_job_row_stores() -> None:
    st = ProviderStatus("t1", State.FAILED, progress=10**12, error_code="c" * 100, error_message="m" * 10**6, detail="d" * 10**5)
    assert (st.error_code, st.progress) == ("c" * ERROR_CODE_MAX, 100)
    assert st.error_message == "m" * ERROR_MESSAGE_MAX and st.detail is not None and len(st.detail) <= 500
    assert ProviderStatus("t1", State.RUNNING, progress=-5).progress == 0
    assert ProviderStatus("t" * 300, State.RUNNING).task_id == "t" * 300, "a task id is never cut: it would name another task"
    r = Rejected("kling_" + "9" * 100, "x" * 10**6, False)
    assert (r.code, r.message) == (("kling_" + "9" * 100)[:ERROR_CODE_MAX], "x" * ERROR_MESSAGE_MAX)
