"""submit_job: send a job's paid POST to the relay at most once per known-absent attempt.

Outcomes (architecture.md §6): not sent -> back to queued with backoff; rejected -> failed, or
queued again when the relay says "later" (429, 503, Kling 1302/1303: never a failure by itself,
the deadline bounds it); accepted -> running with the task id persisted at
once; unknown -> stays `submitting`, and the recovery path looks the task up by its
external_task_id (our job id) before anything is sent again. A provider without such a lookup
fails the job with `submit_outcome_unknown` rather than risk a double charge.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from models.errors import ProviderProtocolError, ProviderUnavailable, SubmitOutcomeUnknown
from models.status import JobStatus
from models.tables import Job
from providers.base import Adapter, ParentRef, Rejected, SubmitContext, Submitted
from providers.registry import get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import send_all
from workers.services.apply import Followups, apply_status, finish, next_poll_at
from workers.services.schedule import backoff

log = logging.getLogger("k4u.submit")


def submit_job(rt: Runtime, job_id: str, version: int) -> str:
    """Run one submit step for the job if `version` still holds; returns what happened."""
    s, now = rt.settings, rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.version != version:
            return "stale"
        if job.status == JobStatus.QUEUED:
            recovering = False
            wait_s = rt.gate.wait_s(session, job.provider) if rt.gate is not None else None
            if wait_s is not None:  # over a provider limit: wait in queued, never fail for it
                jobs.set_fields(session, job.id, JobStatus.QUEUED, next_at=now + timedelta(seconds=wait_s))
                return "throttled"
            won = jobs.transition(session, job, JobStatus.SUBMITTING, reason=f"submit attempt {job.submit_attempts + 1}",
                                  expect_version=version, now=now, submit_state="sending",
                                  submit_attempts=job.submit_attempts + 1, next_at=now + timedelta(seconds=s.lease_s))
        elif job.status == JobStatus.SUBMITTING:
            # The sweep re-drives a submission whose lease ran out: the previous POST may have landed.
            recovering = True
            won = jobs.take_lease(session, job, version, lease_s=s.lease_s, now=now, submit_state="recovering")
        else:
            return "not-submittable"
        if not won:
            return "lost"
        lease = job.version
    adapter = get_adapter(job.provider)

    if recovering:
        outcome = _recover(rt, adapter, job, lease)
        if outcome != "absent":
            return outcome
        if job.submit_attempts >= s.submit_max_attempts:
            return _fail(rt, job, lease, ("submit_failed", f"no answer from the relay after {job.submit_attempts} attempts", True))

    ctx = SubmitContext(job_id=job.id, external_id=job.id, callback_url=_callback_url(rt, job), now=now, parent=_parent(rt, adapter, job))
    try:
        req = adapter.build_submit(job.operation, job.input, ctx)
    except ValueError as exc:  # an input the adapter cannot send (e.g. its parent job vanished)
        return _fail(rt, job, lease, ("invalid_input", str(exc), False))
    try:
        resp = rt.relay.send(req, idempotent=False, label=f"{job.provider}.submit")
        result = adapter.parse_submit(resp)
    except ProviderUnavailable as exc:
        return _requeue(rt, job, lease, "not_sent", exc.message, exc.retry_after_s)
    except (SubmitOutcomeUnknown, ProviderProtocolError) as exc:
        with session_scope(rt.engine) as session:
            # Keep the lease short: the recovery lookup should start soon.
            jobs.set_fields(session, job.id, JobStatus.SUBMITTING, submit_state="unknown",
                            next_at=rt.clock() + timedelta(seconds=min(s.lease_s, 10.0)))
        log.warning("submit outcome unknown for %s: %s", job.id, exc.message)
        return "unknown"
    return _record(rt, job, lease, result, resp.body)


def _recover(rt: Runtime, adapter: Adapter, job: Job, lease: int) -> str:
    req = adapter.build_lookup(job.operation, job.id) if adapter.capabilities.can_lookup_by_external_id else None
    if req is None:
        if job.submit_state in ("sending", "unknown"):
            return _fail(rt, job, lease, ("submit_outcome_unknown", "the relay may have accepted the job, and it "
                                          "offers no lookup to check; not resubmitting to avoid a double charge", False))
        return "absent"
    try:
        resp = rt.relay.send(req, idempotent=True, label=f"{job.provider}.lookup")
        found = adapter.parse_lookup(resp)
    except (ProviderUnavailable, ProviderProtocolError) as exc:
        log.warning("lookup for %s failed, will retry: %s", job.id, exc.message)
        return "lookup-failed"  # the lease runs out and the sweep tries again
    if found is None:
        return "absent"
    return _record(rt, job, lease, found, resp.body, reason="recovered by external_task_id lookup")


def _record(rt: Runtime, job: Job, lease: int, result: Submitted | Rejected, body: bytes, reason: str = "relay accepted") -> str:
    if isinstance(result, Rejected) and result.retryable:
        return _requeue(rt, job, lease, result.code, result.message, result.retry_after_s)
    s, now = rt.settings, rt.clock()
    fu: Followups = []
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job.id)  # type: ignore[assignment]
        match result:
            case Submitted(task_id=task_id, status=st):
                if not jobs.transition(session, job, JobStatus.RUNNING, reason=f"{reason}: task {task_id}", expect_version=lease,
                                       payload=body, now=now, provider_task_id=task_id, submitted_at=now,
                                       submit_state="accepted", error_code=None, error_message=None, error_retryable=None):
                    log.warning("job %s accepted as %s but its lease was lost", job.id, task_id)
                    return "lost-after-accept"
                jobs.set_fields(session, job.id, JobStatus.RUNNING, next_at=next_poll_at(job, s, now))
                if st is not None:
                    fu = apply_status(session, job, st, settings=s, now=now, source="lookup", payload=body)
                outcome = "accepted"
            case Rejected() as r:
                fu = finish(session, job, JobStatus.FAILED, settings=s, now=now, reason=f"relay rejected: {r.code}",
                            payload=body, error=(r.code, r.message, False), expect_version=lease)
                outcome = "rejected"
    send_all(rt.dispatcher, fu)
    return outcome


def _requeue(rt: Runtime, job: Job, lease: int, code: str, message: str, retry_after_s: float | None) -> str:
    """The relay did not take the job ("later", or never reached): wait in queued. This never
    fails a job by itself; the job's deadline bounds the waiting."""
    now = rt.clock()
    delay = max(retry_after_s or 0.0, backoff(job.submit_attempts, 2.0, 300.0))
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job.id)  # type: ignore[assignment]
        jobs.transition(session, job, JobStatus.QUEUED, reason=f"retry later: {code}: {message}"[:500], expect_version=lease,
                        now=now, submit_state="not_sent", next_at=now + timedelta(seconds=delay),
                        error_code=code, error_message=message, error_retryable=True)
    return "requeued"


def _fail(rt: Runtime, job: Job, lease: int, error: tuple[str, str, bool]) -> str:
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job.id)  # type: ignore[assignment]
        fu = finish(session, job, JobStatus.FAILED, settings=rt.settings, now=rt.clock(), reason=error[0], error=error, expect_version=lease)
    send_all(rt.dispatcher, fu)
    return "failed"


def _parent(rt: Runtime, adapter: Adapter, job: Job) -> ParentRef | None:
    spec = adapter.parent_of(job.operation, job.input)
    if spec is None:
        return None
    with session_scope(rt.engine) as session:
        return jobs.parent_ref(session, spec.job_id)


def _callback_url(rt: Runtime, job: Job) -> str | None:
    if not rt.settings.public_url:
        return None
    return f"{rt.settings.public_url}/v1/webhooks/{job.provider}/{job.id}/{job.callback_token}"
