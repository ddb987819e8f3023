"""cancel_at_provider: stop a cancelled job's task at the relay, for families that can (capabilities.cancels).

Cancelling a job is ours at once (`cancel_job`): the job is `cancelled` whatever the relay says. Its
task may still be running there, and be charged; where the family has a cancel flow, the same
transaction sets `provider_cancel = pending` and `next_at = now` and a `k4u.cancel(job_id, version)`
message follows the commit. The job is terminal, so nothing else ever sets its `next_at`: the sweep
claims cancelled jobs whose `next_at` passed and resends the message, so a lost message or a worker
killed mid-call costs one lease, not the cancel.

A step takes a lease like submit and download do (CAS on the version, `next_at = now + lease`,
`provider_cancel_attempts + 1`), runs the adapter's cancel flow and records what the relay said as a
`cancelled -> cancelled` event (the table has no such transition, so `append_event` records it
without a status change; `provider_cancel = done`). A relay 429/5xx or an unreadable answer keeps it
pending with backoff; each try counts against K4U_PROVIDER_CANCEL_MAX_ATTEMPTS, past which it is
given up (`failed`, with an event saying so). Counting at the lease bounds a step that crashes too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from models.errors import ProviderProtocolError, ProviderUnavailable
from models.status import JobStatus, ProviderCancel
from models.tables import Job
from providers.base import TASK_ID_MAX, CancelOutcome, Flow
from providers.registry import ADAPTERS, UnknownProvider, get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import rowcount, session_scope
from workers.dispatch import CANCEL, Followups
from workers.flows import run_flow
from workers.outcomes import Outcome
from workers.services.schedule import backoff

log = logging.getLogger("k4u.cancel")

# Only a task that may still be working is worth a call: a downloading job's task has finished (and
# been paid for); a queued one has none.
_WORTH_CANCELLING = frozenset({JobStatus.SUBMITTING, JobStatus.RUNNING})


def cancel_flow(job: Job) -> Flow[CancelOutcome] | None:
    """The family's cancel flow for the job's task; None when there is no task or the family cannot cancel."""
    if not job.provider_task_id:
        return None
    try:
        adapter = get_adapter(job.provider)
    except UnknownProvider:
        return None
    return adapter.cancel(jobs.target(job)) if adapter.capabilities.cancels else None


def cancellable_providers() -> list[str]:
    """Families whose capabilities say they cancel at the relay."""
    return [name for name, a in ADAPTERS.items() if a.capabilities.cancels]


def schedule_batch_cancels(session: Session, job_ids: list[str], now: datetime) -> int:
    """After a batch cancel: mark the tasks of those jobs (cancelled while submitting or running)
    for a relay-side cancel where the family can; the tick sends them (no message per job)."""
    providers = cancellable_providers()
    marked = 0
    for i in range(0, len(job_ids), 500):
        res = session.execute(
            update(Job)
            .where(
                col(Job.id).in_(job_ids[i : i + 500]),
                col(Job.status) == JobStatus.CANCELLED,
                col(Job.provider_task_id).is_not(None),
                col(Job.provider).in_(providers),
            )
            .values(provider_cancel=ProviderCancel.PENDING, provider_cancel_attempts=0, next_at=now)
        )
        marked += rowcount(res)
    return marked


def schedule_provider_cancel(session: Session, job: Job, prior: JobStatus, now: datetime) -> Followups:
    """Inside the transaction that cancelled the job (or recorded its task after the cancel): mark
    its task for a relay-side cancel when the family can, due now. The follow-up to send after commit."""
    if job.status != JobStatus.CANCELLED or prior not in _WORTH_CANCELLING or cancel_flow(job) is None:
        return []
    if not jobs.set_fields(session, job.id, JobStatus.CANCELLED, provider_cancel=ProviderCancel.PENDING, provider_cancel_attempts=0, next_at=now):
        return []
    session.refresh(job)
    return [(CANCEL, (job.id, job.version))]


def record_late_accept(session: Session, job: Job, task_id: str | None, handle: Mapping[str, Any] | None, *, now: datetime, payload: bytes | None) -> Followups:
    """The relay accepted the job's submission after it was cancelled here: keep the task on the
    cancelled job (the caller sees what was charged) and cancel it at the relay where the family can."""
    if job.status != JobStatus.CANCELLED or not task_id or job.provider_task_id:
        return []
    if len(task_id) > TASK_ID_MAX:  # cannot be stored, so cannot be cancelled by it either
        jobs.append_event(
            session,
            job,
            JobStatus.CANCELLED,
            JobStatus.CANCELLED,
            f"the relay accepted task {task_id[:80]}... ({len(task_id)} characters, too long to keep or cancel by) "
            "after the job was cancelled; it may run and be charged",
            now,
            payload,
        )
        return []
    jobs.set_fields(session, job.id, JobStatus.CANCELLED, provider_task_id=task_id, provider_handle=dict(handle or {}) or None)
    session.refresh(job)
    jobs.append_event(session, job, JobStatus.CANCELLED, JobStatus.CANCELLED, f"the relay accepted task {task_id} after the job was cancelled", now, payload)
    return schedule_provider_cancel(session, job, JobStatus.SUBMITTING, now)


def cancel_at_provider(rt: Runtime, job_id: str, version: int) -> Outcome:
    """One try of the relay-side cancel of a cancelled job's task, if `version` still holds."""
    s, now = rt.settings, rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.version != version or job.status != JobStatus.CANCELLED:
            return Outcome.STALE
        if job.provider_cancel != ProviderCancel.PENDING:
            if job.next_at is not None:  # claimed by the sweep with nothing to do: never again
                _settle(session, job, version, now, next_at=None)
            return Outcome.STALE
        flow = cancel_flow(job)
        if flow is None:  # the family lost its cancel (a deploy in between): nothing can be sent
            return _give_up(session, job, version, now, "the provider no longer offers a cancel")
        if job.provider_cancel_attempts >= s.provider_cancel_max_attempts:  # the last try's worker died
            return _give_up(session, job, version, now, f"{job.provider_cancel_attempts} attempt(s) without an answer")
        if not jobs.take_lease(session, job, version, lease_s=s.lease_s, now=now, provider_cancel_attempts=job.provider_cancel_attempts + 1):
            return Outcome.LOST
        lease, attempt = job.version, job.provider_cancel_attempts
    bodies: list[bytes] = []
    try:
        result = run_flow(rt.relay, flow, f"{job.provider}.cancel", bodies)
    except (ProviderUnavailable, ProviderProtocolError) as exc:
        return _try_later(rt, job, lease, attempt, exc)
    verdict = "accepted" if result.cancelled else "did not stop the task"
    log.info("provider cancel of job %s (task %s): %s", job.id, job.provider_task_id, result.note)
    with session_scope(rt.engine) as session:
        if not _settle(session, job, lease, rt.clock(), provider_cancel=ProviderCancel.DONE, next_at=None):
            return Outcome.LOST
        jobs.append_event(
            session, job, JobStatus.CANCELLED, JobStatus.CANCELLED, f"provider cancel {verdict}: {result.note}", rt.clock(), bodies[-1] if bodies else None
        )
    return Outcome.CANCELLED


def _try_later(rt: Runtime, job: Job, lease: int, attempt: int, exc: ProviderUnavailable | ProviderProtocolError) -> Outcome:
    s, now = rt.settings, rt.clock()
    with session_scope(rt.engine) as session:
        if attempt >= s.provider_cancel_max_attempts:
            return _give_up(session, job, lease, now, f"{attempt} attempt(s), the last: {exc.message}")
        delay = max(getattr(exc, "retry_after_s", None) or 0.0, backoff(attempt, 2.0, 300.0))
        if not _settle(session, job, lease, now, next_at=now + timedelta(seconds=delay)):
            return Outcome.LOST
        jobs.append_event(
            session,
            job,
            JobStatus.CANCELLED,
            JobStatus.CANCELLED,
            f"provider cancel attempt {attempt} of {s.provider_cancel_max_attempts} failed ({exc.message}); again in {delay:.0f} s",
            now,
        )
    return Outcome.RETRY


def _give_up(session: Session, job: Job, version: int, now: datetime, why: str) -> Outcome:
    if not _settle(session, job, version, now, provider_cancel=ProviderCancel.FAILED, next_at=None):
        return Outcome.LOST
    log.warning("provider cancel of job %s given up: %s", job.id, why)
    jobs.append_event(
        session, job, JobStatus.CANCELLED, JobStatus.CANCELLED, f"provider cancel given up: {why}; the task may still run (and be charged) at the relay", now
    )
    return Outcome.FAILED


def _settle(session: Session, job: Job, version: int, now: datetime, **values: Any) -> bool:
    """CAS on the version of the cancelled job (bumped: a duplicate message drops out)."""
    return job.status == JobStatus.CANCELLED and jobs.bump(session, job, version, now=now, **values)
