"""How a submit's HTTP answer is classified in every family: the relay's no (retry later, or
final), or an unknown outcome that must never be resent blindly; and the Retry-After it carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, Rejected
from providers.headers import parse_retry_after


def reject_for_http(resp: HttpResponse, message: str) -> Rejected | None:
    """The HTTP-level part of submit classification shared by every family.

    429 and 503 mean the relay did not take the task (retry later); other 4xx are a final no.
    Returns None for 2xx and for 500/502/504, which the relay client treats as an unknown outcome.
    """
    retry_after = retry_after_s(resp)
    if resp.status == 429:
        return Rejected("rate_limited", message or "relay rate limit", True, retry_after)
    if resp.status == 503:
        return Rejected("unavailable", message or "relay unavailable", True, retry_after)
    if resp.status in (401, 403):
        return Rejected("unauthorized", message or "relay refused the key", False)
    if 400 <= resp.status < 500:
        return Rejected("bad_request", message or f"HTTP {resp.status}", False)
    return None


def submit_rejection(resp: HttpResponse, message: str) -> Rejected:
    """A submit answered with HTTP >= 300: the relay's no (reject_for_http), or, for 500/502/504
    and the like, ProviderProtocolError: the outcome is unknown and the job must not be resent blindly."""
    rejected = reject_for_http(resp, message)
    if rejected is None:
        raise ProviderProtocolError(f"HTTP {resp.status} on submit" + (f": {message[:200]}" if message else ""))
    return rejected


def retry_after_s(resp: HttpResponse) -> float | None:
    """The answer's Retry-After header in seconds (parse_retry_after), or None."""
    raw = resp.header("retry-after")
    return None if raw is None else parse_retry_after(raw)


def no_task_id(data: Mapping[str, Any], message: str, prefix: str = "") -> Rejected:
    """A 2xx submit answer without a task id: the relay's no when it says one (a message beside a
    code other than success), else ProviderProtocolError: an unknown outcome, never resent blindly."""
    code = data.get("code")
    if message and code not in (None, 0, "0", "success", 200):
        return Rejected(f"{prefix}{code}" if code else "bad_request", message, False)
    raise ProviderProtocolError("submit answer carries no task id")
