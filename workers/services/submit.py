"""submit_job: send a job's paid POST to the relay; at most one paid relay task per job.

Outcomes (architecture.md §6):
- not sent (connect error) -> back to queued with backoff;
- rejected -> failed, or queued again when the relay says "later" (429, 503, Kling 1302/1303,
  Midjourney 23: never a failure by itself, the deadline bounds it);
- accepted -> running, the task id logged with the job id the moment the relay answers and
  persisted at once;
- unknown (a timeout or 5xx after sending, a body we cannot read, a worker killed mid-POST, a DB
  write that failed after the relay accepted) -> never resent blindly. A family with a lookup
  (Kling: the single-task query takes our external_task_id) looks the task up first; only a lookup
  that proves it absent allows a resend, and each resend is counted against
  K4U_SUBMIT_MAX_ATTEMPTS and recorded as a job event. A family whose callbacks echo our external
  id (Midjourney) waits K4U_SUBMIT_CALLBACK_GRACE_S for one to reveal the task
  (capabilities.lost_submit says which way a family has). A family with no way to find the task
  fails the job with `submit_outcome_unknown` (it may have been charged); a person or a workflow
  decides with POST /v1/jobs/{id}/retry.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, assert_never

from sqlmodel import Session

from models.errors import DownloadFailed, ErrorCode, JobError, ProviderProtocolError, ProviderUnavailable, StorageError, SubmitOutcomeUnknown, code_of
from models.status import JobStatus, SubmitState
from models.tables import Job
from providers.base import (
    TASK_ID_MAX,
    Adapter,
    Capabilities,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    OutputRef,
    ParentRef,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from providers.outputs import kind_of
from providers.registry import get_adapter
from workers import jobs, references
from workers.context import Runtime
from workers.db import autocommit_scope, session_scope
from workers.dispatch import Followups, send_all
from workers.flows import run_flow
from workers.outcomes import Outcome, run_each
from workers.relay import SunkResponse
from workers.services.apply import apply_status
from workers.services.download import output_source, record_body, store_body
from workers.services.file_parts import fetch_parts
from workers.services.lifecycle import finish
from workers.services.provider_cancel import record_late_accept
from workers.services.schedule import backoff, next_poll_at
from workers.settings import Settings
from workers.storage import StoredObject

log = logging.getLogger("k4u.submit")


def submit_many(rt: Runtime, items: Sequence[tuple[str, int]]) -> list[Outcome]:
    """The submit steps of one message's jobs ((job_id, version) each, as the tick claimed them),
    one after another, each on its own claim as if sent alone: a message that waited longer than
    its claims' lease finds those jobs moved on and does nothing for them (stale). An error a step
    raises (the database unreachable) is raised once every step has run; the sweep re-drives what
    that step left."""
    return run_each(functools.partial(submit_job, rt, job_id, version) for job_id, version in items)


def submit_job(rt: Runtime, job_id: str, version: int) -> Outcome:
    """Run one submit step for the job if `version` still holds; returns what happened."""
    s, now = rt.settings, rt.clock()
    if rt.gate is None:  # the common case in one statement: a queued job, no provider limit to check first
        with autocommit_scope(rt.engine) as session:
            claimed = jobs.transition_by_id(
                session,
                job_id,
                JobStatus.QUEUED,
                JobStatus.SUBMITTING,
                expect_version=version,
                now=now,
                reason="submit attempt ",
                reason_counter="submit_attempts",
                submit_state=SubmitState.SENDING,
                submit_attempts=jobs.INCREMENT,
                next_at=now + timedelta(seconds=s.lease_s),
            )
        if claimed is not None:  # committed: the step is ours before anything is sent
            return _submit(rt, claimed, claimed.version, recovering=False, prior=SubmitState.NOT_SENT)
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.version != version:
            return Outcome.STALE
        prior = job.submit_state  # what the previous holder of the step left (awaiting_callback, unknown, ...)
        if job.status == JobStatus.QUEUED:
            recovering = False
            wait_s = rt.gate.wait_s(session, job.provider) if rt.gate is not None else None
            if wait_s is not None:  # over a provider limit: wait in queued, never fail for it
                jobs.set_fields(session, job.id, JobStatus.QUEUED, next_at=now + timedelta(seconds=wait_s))
                return Outcome.THROTTLED
            won = jobs.transition(
                session,
                job,
                JobStatus.SUBMITTING,
                reason=f"submit attempt {job.submit_attempts + 1}",
                expect_version=version,
                now=now,
                submit_state=SubmitState.SENDING,
                submit_attempts=job.submit_attempts + 1,
                next_at=now + timedelta(seconds=s.lease_s),
            )
        elif job.status == JobStatus.SUBMITTING:
            # The sweep re-drives a submission whose lease ran out (unknown outcome, or a worker
            # that died mid-POST or before its DB write): the previous POST may have landed.
            recovering = True
            won = jobs.take_lease(session, job, version, lease_s=s.lease_s, now=now, submit_state=SubmitState.RECOVERING)
        else:
            return Outcome.NOT_SUBMITTABLE
        if not won:
            return Outcome.LOST
    return _submit(rt, job, job.version, recovering=recovering, prior=prior)


def _submit(rt: Runtime, job: Job, lease: int, *, recovering: bool, prior: SubmitState) -> Outcome:
    """The step after its lease is taken: recover an earlier POST's task if need be, then send."""
    s, now = rt.settings, rt.clock()
    adapter = get_adapter(job.provider)

    if recovering:
        outcome = _recover(rt, adapter, job, lease, prior)
        if outcome != Outcome.ABSENT:
            return outcome
        if job.submit_resends >= s.submit_max_attempts:
            return _fail(
                rt,
                job,
                lease,
                JobError(
                    ErrorCode.SUBMIT_FAILED,
                    f"the relay did not take the job: {job.submit_resends} resend(s) after unknown outcomes, each lookup found no task (nothing was charged)",
                    True,
                ),
            )
        resent = _begin_resend(rt, job, lease)
        if resent is None:
            return Outcome.LOST
        lease = resent

    ctx = SubmitContext(job_id=job.id, external_id=jobs.external_id(job), callback_url=_callback_url(rt, job), now=now, parent=_parent(rt, adapter, job))
    try:  # k4u:// references become links the relay can fetch; the job row keeps the references
        req = adapter.build_submit(job.operation, references.resolve(rt, job, adapter.capabilities.inline_fields), ctx)
    except StorageError as exc:  # an input file cannot be read or linked now: not sent, retried later
        return _requeue(rt, job, lease, JobError(ErrorCode.NOT_SENT, f"input file unavailable: {exc.message}", True), None)
    except ValueError as exc:  # an input the adapter cannot send (e.g. its parent job vanished, an upload deleted)
        return _fail(rt, job, lease, JobError(ErrorCode.INVALID_INPUT, str(exc)))
    try:
        req = fetch_parts(rt, req)  # files the request uploads from URLs, fetched before anything is paid
    except DownloadFailed as exc:
        if exc.retryable:
            return _requeue(rt, job, lease, JobError(ErrorCode.NOT_SENT, exc.message, True), None)
        return _fail(rt, job, lease, JobError(ErrorCode.INVALID_INPUT, exc.message))
    caps = adapter.capabilities
    if caps.oneshot and not _hold(rt, job, lease, caps):
        return Outcome.LOST
    try:
        resp = _send(rt, job, req, caps.request_timeout_s)
        result = _final(adapter.parse_submit(resp), job.id) if caps.oneshot else adapter.parse_submit(resp)
    except ProviderUnavailable as exc:
        return _requeue(rt, job, lease, JobError(ErrorCode.NOT_SENT, exc.message, True), exc.retry_after_s)
    except (SubmitOutcomeUnknown, ProviderProtocolError) as exc:
        log.warning("submit outcome unknown for %s: %s", job.id, exc.message)
        match adapter.capabilities.lost_submit:
            case LostSubmit.LOOKUP:
                with session_scope(rt.engine) as session:
                    # Keep the lease short: the recovery lookup should start soon.
                    jobs.set_fields(
                        session, job.id, JobStatus.SUBMITTING, submit_state=SubmitState.UNKNOWN, next_at=rt.clock() + timedelta(seconds=min(s.lease_s, 10.0))
                    )
                return Outcome.UNKNOWN
            case LostSubmit.CALLBACK_ECHO if ctx.callback_url and s.submit_callback_grace_s > 0:
                with session_scope(rt.engine) as session:  # a callback may still reveal the task (handle_callback adopts it)
                    jobs.set_fields(
                        session,
                        job.id,
                        JobStatus.SUBMITTING,
                        submit_state=SubmitState.AWAITING_CALLBACK,
                        next_at=rt.clock() + timedelta(seconds=s.submit_callback_grace_s),
                    )
                return Outcome.AWAITING_CALLBACK
            case LostSubmit.CALLBACK_ECHO | LostSubmit.NONE:  # no callback can come, or no way to find the task
                return _fail(rt, job, lease, _unknown_error(job.id, exc.message))
            case _:
                assert_never(adapter.capabilities.lost_submit)
    if isinstance(result, Submitted):  # before any DB write: a crash now still leaves the task id in the log
        log.info("relay accepted job %s (%s.%s) as task %s", job.id, job.provider, job.operation, result.task_id)
    body = (resp.sunk, output_source(OutputRef(req.path, "file"), rt.settings)) if isinstance(resp, SunkResponse) and resp.sunk is not None else None
    return _record(rt, job, lease, result, resp.body, body=body)


def _hold(rt: Runtime, job: Job, lease: int, caps: Capabilities) -> bool:
    """A one-shot call waits for its answer up to the family's request timeout: the step's lease
    (next_at) is pushed past it, so the sweep does not take the step over while the call is out
    (a worker killed mid-call: the sweep finds it once this lease ends, and fails it unknown)."""
    wait_s = (caps.request_timeout_s or rt.settings.relay_timeout_s) + rt.settings.lease_s
    with session_scope(rt.engine) as session:
        return jobs.set_fields(session, job.id, JobStatus.SUBMITTING, expect_version=lease, next_at=rt.clock() + timedelta(seconds=wait_s))


def _send(rt: Runtime, job: Job, req: HttpRequest, timeout_s: float | None) -> HttpResponse:
    """The paid POST. A request whose answer body is the result file has it streamed into the store
    as the attempt's first asset (SunkResponse.sunk); a body that could not be stored is lost with
    the answer: an unknown outcome (it was paid, and a one-shot answer cannot be asked for again)."""
    label = f"{job.provider}.submit"
    if not req.stream_body_as_asset:
        return rt.relay.send(req, idempotent=False, label=label, timeout_s=timeout_s)
    try:
        return rt.relay.send(req, idempotent=False, label=label, timeout_s=timeout_s, sink=lambda dl: store_body(rt, job.id, job.attempt, dl))
    except (StorageError, DownloadFailed) as exc:
        raise SubmitOutcomeUnknown(f"the answer's body could not be stored: {exc.code}: {exc.message}") from None


def _final(result: Submitted | Rejected, job_id: str) -> Submitted | Rejected:
    """A one-shot answer: it carries the final status (else it cannot be read: nothing will ever be
    polled), and the job's own id stands for the task id the relay has none of."""
    if isinstance(result, Rejected):
        return result
    if result.status is None or result.status.state not in (State.SUCCEEDED, State.FAILED, State.CANCELLED):
        raise ProviderProtocolError("a one-shot answer without a final status")
    return replace(result, task_id=result.task_id or job_id)


def _unknown_error(job_id: str, detail: str) -> JobError:
    return JobError(
        ErrorCode.SUBMIT_OUTCOME_UNKNOWN,
        f"the relay may have accepted (and charged) this job, but its answer was lost ({detail[:200]}); this provider "
        f"offers no lookup to check, so it was not resent. POST /v1/jobs/{job_id}/retry (or `k4u retry {job_id}`) "
        "submits it again if you decide to.",
    )


def _recover(rt: Runtime, adapter: Adapter, job: Job, lease: int, prior: SubmitState) -> Outcome:
    """Find out whether an earlier POST of this job created a relay task: 'absent' only when a
    lookup proved it; a family without a lookup fails the job instead (no blind resend)."""
    flow = adapter.lookup(job.operation, jobs.external_id(job)) if adapter.capabilities.lost_submit is LostSubmit.LOOKUP else None
    if flow is None:
        why = (
            f"no callback revealed the task within {rt.settings.submit_callback_grace_s:.0f} s"
            if prior == SubmitState.AWAITING_CALLBACK
            else "no answer recorded for the last submission"
        )
        return _fail(rt, job, lease, _unknown_error(job.id, why))
    bodies: list[bytes] = []
    try:
        found = run_flow(rt.relay, flow, f"{job.provider}.lookup", bodies)
    except (ProviderUnavailable, ProviderProtocolError) as exc:
        log.warning("lookup for %s failed, will retry: %s", job.id, exc.message)
        return Outcome.LOOKUP_FAILED  # the lease runs out and the sweep tries again (the deadline bounds it)
    if found is None:
        return Outcome.ABSENT
    log.info("lookup found job %s as task %s", job.id, found.task_id)
    return _record(rt, job, lease, found, bodies[-1] if bodies else b"", reason="recovered by external_task_id lookup")


def _begin_resend(rt: Runtime, job: Job, lease: int) -> int | None:
    """Record the resend as an event (submitting -> submitting) and count it; the new lease, or None."""
    with session_scope(rt.engine) as session:
        current = jobs.get_job(session, job.id)
        if (
            current is None
            or current.status == JobStatus.CANCELLED
            or not jobs.transition(
                session,
                current,
                JobStatus.SUBMITTING,
                expect_version=lease,
                now=rt.clock(),
                reason=f"resend {current.submit_resends + 1} of {rt.settings.submit_max_attempts}: the lookup by external_task_id found no task",
                submit_state=SubmitState.SENDING,
                submit_resends=current.submit_resends + 1,
                submit_attempts=current.submit_attempts + 1,
                next_at=rt.clock() + timedelta(seconds=rt.settings.lease_s),
            )
        ):
            return None
        job.submit_resends, job.submit_attempts = current.submit_resends, current.submit_attempts
        return current.version


def _record(
    rt: Runtime,
    job: Job,
    lease: int,
    result: Submitted | Rejected,
    payload: bytes,
    reason: str = "relay accepted",
    body: tuple[StoredObject, str] | None = None,
) -> Outcome:
    """The answer applied; `body`: the answer's body already stored (and the route it came from), the attempt's first asset."""
    if isinstance(result, Rejected) and result.retryable:
        return _requeue(rt, job, lease, JobError(code_of(result.code), result.message, True), result.retry_after_s)
    s, now = rt.settings, rt.clock()
    fu: Followups = []
    with session_scope(rt.engine) as session:
        match result:
            case Submitted(task_id=task_id, status=st, handle=handle):
                if body is not None and st is not None:  # the stored body is the first output (never fetched: recorded stored below)
                    st = replace(st, outputs=[OutputRef(body[1], kind_of(body[1], body[0].content_type)), *st.outputs])
                # `job` is submitting as our lease left it; the CAS on the lease finds it so or loses.
                # Cancelled while the POST was out (the table has no cancelled -> running): keep the
                # task on the cancelled job and cancel it at the relay where the family can.
                adopted = adopt_task(
                    session, job, task_id, st, settings=s, now=now, reason=reason, source="lookup", payload=payload, expect_version=lease, handle=handle
                )
                if adopted is not None:
                    fu, outcome = adopted, Outcome.FAILED if job.status == JobStatus.FAILED else Outcome.ACCEPTED
                    if body is not None and job.status == JobStatus.DOWNLOADING:
                        record_body(session, job.id, job.attempt, body[0], now)
                elif (job := _reload(session, job)).status == JobStatus.CANCELLED and task_id:
                    log.warning("job %s accepted as %s after it was cancelled", job.id, task_id)
                    fu, outcome = record_late_accept(session, job, task_id, handle, now=now, payload=payload), Outcome.LOST_AFTER_ACCEPT
                else:
                    log.warning("job %s accepted as %s but its lease was lost", job.id, task_id)
                    return Outcome.LOST_AFTER_ACCEPT
            case Rejected() as r if (job := _reload(session, job)).status == JobStatus.CANCELLED:  # nothing charged; the cancel stands
                log.info("job %s was cancelled before the relay rejected it (%s)", job.id, r.code)
                return Outcome.LOST
            case Rejected() as r:
                fu = finish(
                    session,
                    job,
                    JobStatus.FAILED,
                    settings=s,
                    now=now,
                    reason=f"relay rejected: {r.code}",
                    payload=payload,
                    error=JobError(code_of(r.code), r.message),
                    expect_version=lease,
                )
                outcome = Outcome.REJECTED
            case _:
                assert_never(result)
    send_all(rt.dispatcher, fu)
    return outcome


def adopt_task(
    session: Session,
    job: Job,
    task_id: str | None,
    st: ProviderStatus | None,
    *,
    settings: Settings,
    now: datetime,
    reason: str,
    source: str,
    payload: bytes | None,
    expect_version: int | None,
    handle: Mapping[str, Any] | None = None,
) -> Followups | None:
    """submitting -> running with the relay's task (from the submit answer, a lookup or a callback),
    then fold in the status that came with it. None when the CAS was lost. A task id of None is an
    answer that already carried the final status (a synchronous route): there is nothing to poll.
    A task id too long to store (TASK_ID_MAX) fails the job `invalid_relay_answer` instead."""
    if task_id is not None and len(task_id) > TASK_ID_MAX:  # cut, it would name another task
        log.warning("job %s: the relay's task id is %d characters, over %d: %s", job.id, len(task_id), TASK_ID_MAX, task_id)
        fu = finish(
            session,
            job,
            JobStatus.FAILED,
            settings=settings,
            now=now,
            payload=payload,
            expect_version=expect_version,
            reason=f"{reason}: task {task_id[:80]}... ({len(task_id)} characters)",
            error=_too_long(task_id),
        )
        return fu if job.status == JobStatus.FAILED else None
    what = f"task {task_id}" if task_id else "answered at once"
    if not jobs.transition(
        session,
        job,
        JobStatus.RUNNING,
        reason=f"{reason}: {what}",
        expect_version=expect_version,
        payload=payload,
        now=now,
        provider_task_id=task_id,
        submitted_at=now,
        provider_handle=dict(handle or {}) or None,
        submit_state=SubmitState.ACCEPTED,
        error_code=None,
        error_message=None,
        error_retryable=None,
        next_at=next_poll_at(job, settings, now, submitted_at=now),
    ):
        return None
    return apply_status(session, job, st, settings=settings, now=now, source=source, payload=payload) if st is not None else []


def _too_long(task_id: str) -> JobError:
    return JobError(
        ErrorCode.INVALID_RELAY_ANSWER,
        f"the relay accepted this job (it was charged) but named its task with an id of {len(task_id)} characters, longer "
        f"than the {TASK_ID_MAX} this service stores, so the task cannot be followed; it begins {task_id[:80]!r} "
        "(the whole id is in the worker log). Ask the relay's operator about it before any retry.",
    )


def _requeue(rt: Runtime, job: Job, lease: int, error: JobError, retry_after_s: float | None) -> Outcome:
    """The relay did not take the job ("later", or never reached): wait in queued, the job's error
    saying why. This never fails a job by itself; the job's deadline bounds the waiting."""
    now = rt.clock()
    delay = max(retry_after_s or 0.0, backoff(job.submit_attempts, 2.0, 300.0))
    with session_scope(rt.engine) as session:
        job = _reload(session, job)
        if job.status == JobStatus.CANCELLED:  # cancelled while the POST was out: the cancel stands
            return Outcome.LOST
        jobs.transition(
            session,
            job,
            JobStatus.QUEUED,
            reason=f"retry later: {error.code}: {error.message}"[:500],
            expect_version=lease,
            now=now,
            submit_state=SubmitState.NOT_SENT,
            next_at=now + timedelta(seconds=delay),
            **error.columns(),
        )
    return Outcome.REQUEUED


def _fail(rt: Runtime, job: Job, lease: int, error: JobError) -> Outcome:
    with session_scope(rt.engine) as session:
        job = _reload(session, job)
        if job.status == JobStatus.CANCELLED:  # cancelled meanwhile: the cancel stands
            return Outcome.LOST
        fu = finish(session, job, JobStatus.FAILED, settings=rt.settings, now=rt.clock(), reason=error.code, error=error, expect_version=lease)
    send_all(rt.dispatcher, fu)
    return Outcome.FAILED


def _reload(session: Session, job: Job) -> Job:
    """The job's current row in this session. It exists: the caller has just read it, and jobs are never deleted."""
    fresh = jobs.get_job(session, job.id)
    assert fresh is not None, f"job {job.id} vanished"
    return fresh


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
