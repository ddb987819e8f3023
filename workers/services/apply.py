"""apply_status: the one path by which a provider's word (poll or callback) changes a job.

Idempotent: a duplicate, an out-of-order update or anything after the job left `running`
changes nothing. Progress never goes backwards. Also: finishing a job (fail / cancel / succeed)
and queuing its notification, shared by every service.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from models.schemas import JobPublic, Notification
from models.status import JobStatus
from models.tables import Asset, Delivery, Job
from providers.base import ProviderStatus, State
from providers.registry import get_adapter
from workers import jobs
from workers.dispatch import DOWNLOAD, NOTIFY
from workers.services.schedule import poll_interval
from workers.settings import Settings

Followups = list[tuple[str, tuple[Any, ...]]]

EVENT_OF = {JobStatus.SUCCEEDED: "job.succeeded", JobStatus.FAILED: "job.failed", JobStatus.CANCELLED: "job.cancelled"}


def next_poll_at(job: Job, settings: Settings, now: datetime) -> datetime:
    caps = get_adapter(job.provider).capabilities
    expected = settings.poll_expected_s or caps.expected_s
    min_s = settings.poll_min_interval_s or max(2.0, expected / 20)
    age = (now - (job.submitted_at or job.created_at)).total_seconds()
    return now + timedelta(seconds=poll_interval(age, expected, min_s, settings.poll_max_interval_s))


def deadline_at(provider: str, settings: Settings, now: datetime) -> datetime:
    """When a job (or a new attempt of one) started now must be finished: K4U_JOB_DEADLINE_S or the provider's."""
    return now + timedelta(seconds=settings.job_deadline_s or get_adapter(provider).capabilities.deadline_s)


def apply_status(session: Session, job: Job, st: ProviderStatus, *, settings: Settings, now: datetime,
                 source: str, payload: bytes | None = None) -> Followups:
    """Fold one normalized provider status into the job; returns the follow-up tasks to send."""
    if job.status != JobStatus.RUNNING:
        return []
    match st.state:
        case State.QUEUED | State.RUNNING | State.UNKNOWN:
            progress = max(job.progress, st.progress or 0)
            extra: dict[str, Any] = {}
            if st.result_data:  # e.g. a Midjourney task parked in MODAL, awaiting input
                extra["result"] = dict(job.result or {}) | dict(st.result_data)
            jobs.set_fields(session, job.id, JobStatus.RUNNING, progress=min(progress, 99),
                            next_at=next_poll_at(job, settings, now), **extra)
            return []
        case State.SUCCEEDED:
            result = dict(job.result or {}) | dict(st.result_data)
            if not jobs.transition(session, job, JobStatus.DOWNLOADING, reason=f"{source}: provider succeeded",
                                   payload=payload, now=now, progress=100, result=result or None,
                                   next_at=now + timedelta(seconds=settings.lease_s)):
                return []
            for i, out in enumerate(st.outputs):
                session.add(Asset(job_id=job.id, index=i, kind=out.kind, source_url=out.url,
                                  needs_auth=out.needs_auth, meta=dict(out.meta)))
            session.flush()
            return [(DOWNLOAD, (job.id, job.version))]
        case State.FAILED:
            return finish(session, job, JobStatus.FAILED, settings=settings, now=now, reason=f"{source}: provider failed",
                          payload=payload, error=(st.error_code or "provider_failed", st.error_message or "the provider reported a failure", False))
        case State.CANCELLED:
            return finish(session, job, JobStatus.CANCELLED, settings=settings, now=now,
                          reason=f"{source}: provider cancelled", payload=payload)


def finish(session: Session, job: Job, status: JobStatus, *, settings: Settings, now: datetime, reason: str,
           error: tuple[str, str, bool] | None = None, payload: bytes | None = None,
           expect_version: int | None = None) -> Followups:
    """Move the job to a terminal status (CAS) and queue its notification."""
    fields: dict[str, Any] = {"finished_at": now, "next_at": None}
    if error is not None:
        fields |= {"error_code": error[0], "error_message": error[1][:2000], "error_retryable": error[2]}
    if not jobs.transition(session, job, status, reason=reason, payload=payload, now=now, expect_version=expect_version, **fields):
        return []
    return queue_notification(session, job, settings=settings, now=now)


def queue_notification(session: Session, job: Job, *, settings: Settings, now: datetime) -> Followups:
    """Insert the Delivery for the job's terminal event; the exact body is fixed here."""
    if not job.callback_url:
        return []
    assets = list(session.exec(select(Asset).where(Asset.job_id == job.id)).all())
    delivery = notification_delivery(job, assets, settings=settings, now=now, next_at=now + timedelta(seconds=settings.lease_s))
    session.add(delivery)
    session.flush()
    return [(NOTIFY, (delivery.id, 0))]


def notification_delivery(job: Job, assets: list[Asset], *, settings: Settings, now: datetime, next_at: datetime) -> Delivery:
    """The Delivery (webhook-id and exact body) of a finished job that has a callback_url."""
    assert job.callback_url
    event = EVENT_OF[JobStatus(job.status)]
    note = Notification(type=event, timestamp=now, data=JobPublic.from_rows(job, assets, settings.public_url or ""))  # type: ignore[arg-type]
    body = json.dumps(note.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    suffix = "" if job.attempt <= 1 else f"_a{job.attempt}"  # a retried job notifies its new attempt's outcome too
    return Delivery(id=f"msg_{job.id}_{event.split('.')[1]}{suffix}", job_id=job.id, event=event, job_attempt=job.attempt, url=job.callback_url,
                    payload=body, next_at=next_at, created_at=now)
