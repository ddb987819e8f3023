"""Finishing a job: the one move to a terminal status (fail, cancel, succeed), with its notification
and, in the same transaction, its waiting children's step (workers/services/pipelines.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.errors import JobError
from models.status import JobStatus
from models.tables import Job
from workers import jobs
from workers.dispatch import Followups
from workers.services import pipelines
from workers.services.notification import queue_notification
from workers.settings import Settings


def paid_result_kept(by: str) -> str:
    """The event of a cancel refused while downloading: the relay has finished and charged, so the
    result is stored and kept (nothing paid is thrown away); the job ends as its download does."""
    return (
        f"cancel requested while downloading ({by}): the relay has finished and charged for the result, "
        "so it is stored and kept; the job ends as its download does"
    )


def finish(
    session: Session,
    job: Job,
    status: JobStatus,
    *,
    settings: Settings,
    now: datetime,
    reason: str,
    error: JobError | None = None,
    payload: bytes | None = None,
    expect_version: int | None = None,
    unchanged_since: datetime | None = None,
) -> Followups:
    """Move the job to a terminal status (CAS, see jobs.transition), queue its notification, and settle
    the jobs waiting for it (queued on success, failed `dependency_failed` otherwise)."""
    fields: dict[str, Any] = {"finished_at": now, "next_at": None}
    if error is not None:
        fields |= error.columns(message_max=2000)
    if not jobs.transition(
        session, job, status, reason=reason, payload=payload, now=now, expect_version=expect_version, unchanged_since=unchanged_since, **fields
    ):
        return []
    fu = queue_notification(session, job, settings=settings, now=now)
    waiting = pipelines.children(session, job.id)
    if waiting:
        fu += pipelines.settle(session, waiting, settings=settings, now=now, finish=finish)
    return fu
