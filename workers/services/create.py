"""create_job and cancel_job: the API's two writes, validated before anything is written.

Idempotency follows draft-ietf-httpapi-idempotency-key-header: the same key with the same body
returns the original job; the same key with a different body is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import select

from models.errors import IdempotencyConflict, JobNotFound, JobStateConflict, RequestInvalid, UnsafeURL
from models.schemas import JobCreate
from models.status import TERMINAL, JobStatus
from models.tables import Batch, Job
from providers.registry import UnknownProvider, get_adapter, resolve_operation, validate_input
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import SUBMIT, send_all
from workers.netguard import check_url
from workers.services.lifecycle import finish, paid_result_kept
from workers.services.provider_cancel import schedule_provider_cancel
from workers.services.schedule import deadline_at

log = logging.getLogger("k4u.create")


def create_job(rt: Runtime, body: JobCreate, header_key: str | None = None) -> tuple[Job, bool]:
    """Validate and insert a queued job, then enqueue its submission. Returns (job, created)."""
    try:
        operation = resolve_operation(body.provider, body.operation)
        clean = validate_input(body.provider, operation, body.input)
    except UnknownProvider as exc:
        raise RequestInvalid(exc.field, exc.message) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in ("input", *err["loc"]))
        raise RequestInvalid(loc, f"{loc}: {err['msg']}") from None
    _check_parent(rt, body.provider, operation, clean)
    if body.batch_id is not None:
        _check_batch_label(rt, body.batch_id)
    if body.callback_url:
        try:
            check_url(body.callback_url, allow_private=rt.settings.allow_private_urls)
        except UnsafeURL as exc:
            raise RequestInvalid("callback_url", f"callback_url: {exc.message}") from None
    if header_key and body.idempotency_key and header_key != body.idempotency_key:
        raise RequestInvalid("idempotency_key", "Idempotency-Key header and body idempotency_key differ")
    key = header_key or body.idempotency_key
    canonical = body.model_dump(mode="json", exclude={"idempotency_key"}) | {"operation": operation}
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    if key:
        existing = _by_key(rt, key)
        if existing is not None:
            return _replay(existing, digest), False
    now = rt.clock()
    job = Job(
        id=jobs.new_job_id(), provider=body.provider, operation=operation, status=JobStatus.QUEUED,
        input=clean, meta=body.metadata, batch_id=body.batch_id, callback_url=body.callback_url,
        callback_token=secrets.token_urlsafe(24), idempotency_key=key, request_hash=digest,
        # The submit message holds the step, like a claim by the sweep: only if it is lost (a broker
        # that restarts empty) does the sweep send another, after K4U_LEASE_S. A shorter wait would
        # send a second message for every job still queued behind a backlog longer than it.
        created_at=now, updated_at=now, next_at=now + timedelta(seconds=rt.settings.lease_s),
        deadline_at=deadline_at(body.provider, rt.settings, now),
    )
    try:
        jobs.insert_new(rt.engine, job)
    except IntegrityError:
        existing = _by_key(rt, key) if key else None
        if existing is None:
            raise
        return _replay(existing, digest), False
    if send_all(rt.dispatcher, [(SUBMIT, (job.id, job.version))]):
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


def _check_parent(rt: Runtime, provider: str, operation: str, clean: dict[str, object]) -> None:
    """An input that builds on an earlier job (a Midjourney button, a Suno continuation) must name
    one of ours, of the same provider, in a status that allows it."""
    adapter = get_adapter(provider)
    spec = adapter.parent_of(operation, clean)
    if spec is None:
        return
    field = f"input.{spec.field}"
    with session_scope(rt.engine) as session:
        parent = jobs.parent_ref(session, spec.job_id)
        parent_row = session.get(Job, spec.job_id) if parent else None
        provider_of = parent_row.provider if parent_row else None
    if parent is None or provider_of != provider:
        raise RequestInvalid(field, f"{field}: no {provider} job {spec.job_id}")
    if parent.status not in spec.statuses:
        raise RequestInvalid(field, f"{field}: job {spec.job_id} is {parent.status}; needs {' or '.join(sorted(spec.statuses))}")
    try:
        adapter.check_parent(operation, clean, parent)
    except ValueError as exc:
        raise RequestInvalid(field, f"{field}: {exc}") from None


def _check_batch_label(rt: Runtime, batch_id: str) -> None:
    """A job's own batch_id is the caller's label; a batch of POST /v1/batches is joined only there
    (its total, counts and batch.completed are about the jobs it created)."""
    with session_scope(rt.engine) as session:
        taken = session.get(Batch, batch_id) is not None
    if taken:
        raise RequestInvalid("batch_id", f"batch_id: {batch_id} is a batch of POST /v1/batches, which alone adds jobs to it; "
                                         "leave batch_id out or use a label of your own")


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
        raise JobStateConflict("the job is downloading a result already paid for (the relay has finished it): it is kept, "
                               "and the job ends as its download does, succeeded once its files are stored (see its events)")
    send_all(rt.dispatcher, fu)  # never raises: a notification the broker missed is sent by the sweep
    return job


def _by_key(rt: Runtime, key: str) -> Job | None:
    with session_scope(rt.engine) as session:
        return session.exec(select(Job).where(Job.idempotency_key == key)).first()


def _replay(existing: Job, digest: str) -> Job:
    if existing.request_hash != digest:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
    return existing
