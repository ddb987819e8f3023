"""What one step of a service did: the value a Celery task returns (visible in Flower) and tests read.

StrEnum members compare equal to their strings, so a log line or a task result reads plainly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum


class Outcome(StrEnum):
    # any step
    STALE = "stale"  # the message's version no longer holds: someone else moved the job on
    LOST = "lost"  # the compare-and-swap was lost to a concurrent change (a cancel, the sweep)
    FAILED = "failed"
    # submit
    NOT_SUBMITTABLE = "not-submittable"
    THROTTLED = "throttled"  # over a provider limit: waits in queued
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REQUEUED = "requeued"  # the relay said "later", or the request never left
    UNKNOWN = "unknown"  # the answer was lost: a lookup comes next
    AWAITING_CALLBACK = "awaiting-callback"
    LOOKUP_FAILED = "lookup-failed"
    ABSENT = "absent"  # a lookup proved there is no task: a resend is allowed
    LOST_AFTER_ACCEPT = "lost-after-accept"
    # download
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    # notify
    DELIVERED = "delivered"
    # provider cancel (also RETRY, FAILED)
    CANCELLED = "cancelled"  # the relay answered the cancel; the job's events say what it did
    # callbacks
    ADOPTED = "adopted"
    APPLIED = "applied"
    HINT = "hint"
    RECORDED = "recorded"
    IGNORED = "ignored"


def run_each(steps: Iterable[Callable[[], Outcome]]) -> list[Outcome]:
    """The steps of one message's jobs, each to its end: a step that raises counts as FAILED, and the
    first error is raised once all have run (the sweep re-drives what that step left)."""
    outcomes: list[Outcome] = []
    error: Exception | None = None
    for step in steps:
        try:
            outcomes.append(step())
        except Exception as exc:
            error = error or exc
            outcomes.append(Outcome.FAILED)
    if error is not None:
        raise error
    return outcomes
