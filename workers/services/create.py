"""create_job and cancel_job: the API's two writes, validated before anything is written.

Idempotency follows draft-ietf-httpapi-idempotency-key-header: the same key with the same body
returns the original job; the same key with a different body is a conflict.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import select

from models.errors import IdempotencyConflict, JobNotFound, JobStateConflict, RequestInvalid
from models.schemas import JobCreate
from models.status import TERMINAL, JobStatus
from models.tables import Job
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import send_all, submit_task
from workers.services import intake, pipelines
from workers.services.lifecycle import finish, paid_result_kept
from workers.services.provider_cancel import schedule_provider_cancel

log = logging.getLogger("k4u.create")


def create_job(rt: Runtime, body: JobCreate, header_key: str | None = None) -> tuple[Job, bool]:
    """Validate and insert a queued job, then enqueue its submission. Returns (job, created)."""
    d = intake.draft(body, rt.settings, key=header_key)
    if header_key and body.idempotency_key and header_key != body.idempotency_key:
        raise RequestInvalid("idempotency_key", "Idempotency-Key header and body idempotency_key differ")
    for loc, _, _ in pipelines.item_refs(d.input) if d.files else ():
        raise intake.IntakeInvalid(
            ("input", *loc), "names a batch item: k4u://items/... works only inside POST /v1/batches; use k4u://jobs/<job id>/assets/<n>"
        )
    intake.check_stored(rt, [d])
    if d.key:
        existing = _by_key(rt, d.key)
        if existing is not None:
            return _replay(existing, d.digest), False
    now = rt.clock()
    # The submit message holds the step, like a claim by the sweep: only if it is lost (a broker
    # that restarts empty) does the sweep send another, after K4U_LEASE_S. A shorter wait would
    # send a second message for every job still queued behind a backlog longer than it.
    # A job whose input names other jobs' assets starts waiting (workers/services/pipelines.py).
    waits = bool(pipelines.parents_of(d.inputs))
    job = Job(
        **d.values(jobs.new_job_id(), batch_id=body.batch_id, deadline=intake.deadline(d.adapter, rt.settings, now)),
        status=JobStatus.WAITING if waits else JobStatus.QUEUED,
        created_at=now,
        updated_at=now,
        next_at=None if waits else now + timedelta(seconds=rt.settings.lease_s),
    )
    try:
        (pipelines.insert_waiting if waits else jobs.insert_new)(rt.engine, job)
    except IntegrityError:
        existing = _by_key(rt, d.key) if d.key else None
        if existing is None:
            raise
        return _replay(existing, d.digest), False
    if waits:  # its parents may have finished already (or meanwhile): queued (or failed) at once
        with session_scope(rt.engine) as session:
            fu = pipelines.settle(session, [job.id], settings=rt.settings, now=rt.clock(), finish=finish)
            job = jobs.get_job(session, job.id) or job
        send_all(rt.dispatcher, fu)
        return job, True
    if send_all(rt.dispatcher, [(submit_task(job.provider), (job.id, job.version))]):
        mark_due(rt, [job.id])
    return job, True


def mark_due(rt: Runtime, job_ids: Sequence[str]) -> None:
    """Queued jobs whose submit message the broker refused: due now, for the sweep's next tick
    (rather than after the lease their message held)."""
    try:
        with session_scope(rt.engine) as session:
            now = rt.clock()
            for job_id in job_ids:
                jobs.set_fields(session, job_id, JobStatus.QUEUED, next_at=now)
    except SQLAlchemyError as exc:  # the jobs stand; the sweep submits them after K4U_LEASE_S instead
        log.warning("could not mark %d job(s) due after a failed enqueue (%s)", len(job_ids), type(exc).__name__)


def cancel_job(rt: Runtime, job_id: str) -> Job:
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        prior = job.status
        if prior in TERMINAL:
            raise JobStateConflict(f"job is already {job.status}")
        now = rt.clock()
        if prior == JobStatus.DOWNLOADING:  # recorded, then refused below (after the commit)
            jobs.append_event(session, job, prior, prior, paid_result_kept("by the caller"), now)
            fu = None
        else:
            fu = finish(session, job, JobStatus.CANCELLED, settings=rt.settings, now=now, reason="cancelled by the caller")
            if not fu and job.status != JobStatus.CANCELLED:
                raise JobStateConflict("the job changed state meanwhile; try again")
            fu += schedule_provider_cancel(session, job, prior, now)  # where the family can stop the task at the relay
    if fu is None:
        raise JobStateConflict(
            "the job is downloading a result already paid for (the relay has finished it): it is kept, "
            "and the job ends as its download does, succeeded once its files are stored (see its events)"
        )
    send_all(rt.dispatcher, fu)  # never raises: a notification the broker missed is sent by the sweep
    return job


def _by_key(rt: Runtime, key: str) -> Job | None:
    with session_scope(rt.engine) as session:
        return session.exec(select(Job).where(Job.idempotency_key == key)).first()


def _replay(existing: Job, digest: str) -> Job:
    if existing.request_hash != digest:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
    return existing
