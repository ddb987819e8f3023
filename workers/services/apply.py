"""apply_status: the one path by which a provider's word (poll or callback) changes a job.

Idempotent: a duplicate, an out-of-order update or anything after the job left `running`
changes nothing. Progress never goes backwards. A success records the result URLs as assets
(relay routes resolved against the relay, fetched with the key on the first hop only) and
queues the download with a priority from the results' expiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, assert_never

from sqlalchemy import insert
from sqlmodel import Session

from models.errors import ErrorCode, JobError, code_of
from models.status import JobStatus
from models.tables import Asset, Job
from providers.base import ProviderStatus, State
from providers.registry import get_adapter
from workers import jobs
from workers.db import table_of
from workers.dispatch import DOWNLOAD, Followup, Followups
from workers.services.download import output_source
from workers.services.lifecycle import finish
from workers.services.schedule import next_poll_at
from workers.settings import Settings

__all__ = ["apply_status", "download_priority", "folds_poll_count", "reschedule", "result_expiry", "still_running"]


def folds_poll_count(st: ProviderStatus) -> bool:
    """Whether apply_status(..., polled=True) counts the poll in the write it makes for this status."""
    return st.state in (State.QUEUED, State.RUNNING, State.UNKNOWN, State.SUCCEEDED)


def still_running(st: ProviderStatus) -> bool:
    """A status that moves only the progress and the next poll (no result data, no detail): a poll
    writes it for many jobs at once, from the rows it read before asking (reschedule)."""
    return st.state in (State.QUEUED, State.RUNNING, State.UNKNOWN) and not st.result_data and not st.detail


def reschedule(job: Job, st: ProviderStatus, settings: Settings, now: datetime) -> jobs.Reschedule:
    """The progress (never lowered, below 100 until success) and next poll of a job the provider
    says is still running: what apply_status writes, and what jobs.reschedule_running writes for many."""
    return jobs.Reschedule(job.id, min(max(job.progress, st.progress or 0), 99), next_poll_at(job, settings, now))


def apply_status(
    session: Session,
    job: Job,
    st: ProviderStatus,
    *,
    settings: Settings,
    now: datetime,
    source: str,
    payload: bytes | None = None,
    polled: bool = False,
    as_read: bool = False,
) -> Followups:
    """Fold one normalized provider status into the job; returns the follow-up tasks to send.
    `polled`: the answer of a poll, counted in job.poll_count by the same UPDATE (see folds_poll_count).
    `as_read`: `job` is the row as read earlier, outside this transaction (no second SELECT): every
    write is a CAS on its version and updated_at, and jobs.RowChanged says when the job has moved
    meanwhile (nothing was written; read it again and apply to that)."""
    if job.status != JobStatus.RUNNING:
        return []
    cas: dict[str, Any] = {"expect_version": job.version, "unchanged_since": job.updated_at} if as_read else {}
    fu = _apply(session, job, st, settings=settings, now=now, source=source, payload=payload, polled=polled, cas=cas)
    if as_read and fu is None:
        raise jobs.RowChanged(job.id)
    return fu or []


def _apply(
    session: Session, job: Job, st: ProviderStatus, *, settings: Settings, now: datetime, source: str, payload: bytes | None, polled: bool, cas: dict[str, Any]
) -> Followups | None:
    """apply_status for a running job, each write a CAS with `cas` as well: None when one matched nothing."""
    counted: dict[str, Any] = {"poll_count": jobs.INCREMENT} if polled else {}
    match st.state:
        case State.QUEUED | State.RUNNING | State.UNKNOWN:
            _, progress, next_at = reschedule(job, st, settings, now)
            extra: dict[str, Any] = dict(counted)
            if st.result_data or st.detail:  # a Midjourney task parked in MODAL; a queue position
                extra["result"] = dict(job.result or {}) | dict(st.result_data) | ({"provider_detail": st.detail} if st.detail else {})
            if not extra and progress == job.progress and next_at == job.next_at:
                return []  # nothing new: the submit answer's own "submitted", already scheduled
            moved = jobs.set_fields(session, job.id, JobStatus.RUNNING, progress=progress, next_at=next_at, **extra, **cas)
            return [] if moved or not cas else None
        case State.SUCCEEDED:
            result = {k: v for k, v in (dict(job.result or {}) | dict(st.result_data)).items() if k != "provider_detail"}
            expires = result_expiry(job.provider, st, now)
            if not jobs.transition(
                session,
                job,
                JobStatus.DOWNLOADING,
                reason=f"{source}: provider succeeded",
                payload=payload,
                now=now,
                progress=100,
                result=result or None,
                next_at=now + timedelta(seconds=settings.lease_s),
                result_expires_at=expires,
                **counted,
                **cas,
            ):
                return None
            # A relay route (/v1/videos/{id}/content) is stored as its absolute URL and fetched
            # with the key on that first request only; every other URL never sees the key.
            rows = [
                {
                    "job_id": job.id,
                    "attempt": job.attempt,
                    "index": i,
                    "kind": out.kind,
                    "needs_auth": out.relay_route,
                    "metadata": dict(out.meta),
                    "source_url": output_source(out, settings),
                }
                for i, out in enumerate(st.outputs)
            ]
            if rows:
                session.execute(insert(table_of(Asset)), rows)
            return [Followup(DOWNLOAD, (job.id, job.version), download_priority(expires, now))]
        case State.FAILED:
            fu = finish(
                session,
                job,
                JobStatus.FAILED,
                settings=settings,
                now=now,
                reason=f"{source}: provider failed",
                payload=payload,
                error=JobError(code_of(st.error_code) if st.error_code else ErrorCode.PROVIDER_FAILED, st.error_message or "the provider reported a failure"),
                **cas,
            )
            return None if job.status == JobStatus.RUNNING else fu  # still running: the CAS was lost
        case State.CANCELLED:
            fu = finish(session, job, JobStatus.CANCELLED, settings=settings, now=now, reason=f"{source}: provider cancelled", payload=payload, **cas)
            return None if job.status == JobStatus.RUNNING else fu
        case _:
            assert_never(st.state)


def result_expiry(provider: str, st: ProviderStatus, now: datetime) -> datetime | None:
    """When the result URLs stop working: the relay's word, else the family's typical lifetime."""
    if st.expires_at is not None:
        return st.expires_at
    ttl = get_adapter(provider).capabilities.result_ttl_s
    return now + timedelta(seconds=ttl) if ttl else None


def download_priority(expires: datetime | None, now: datetime) -> int:
    """Broker priority of a download (0 first): results that expire soonest are fetched first."""
    if expires is None:
        return 6
    left = (expires - now).total_seconds()
    return 0 if left < 2 * 3600 else 3 if left < 2 * 86400 else 6
