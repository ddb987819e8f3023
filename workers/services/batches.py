"""Batches: many jobs in one request, their counts, cancel, and the one batch.completed notification.

Service functions (plain signatures; the API and the CLI's local-database mode both call them):

    create_batch(rt, body: BatchCreate) -> tuple[Batch, list[Job], bool]
        Take every item in first (workers/services/intake.py: IntakeInvalid at ("jobs", index,
        ...field); nothing written), then one INSERT per table. The jobs (in item order; an item whose idempotency_key exists
        with the same body maps to the existing job) start `queued` with next_at = now, so the
        beat's tick submits them as the provider limits allow. created is False when every item
        was an existing job of one batch (a re-sent batch): that batch is returned.
        IdempotencyConflict naming the index when a key exists with another body.
    get_batch(rt, batch_id) -> BatchPublic        JobNotFound for an unknown id
    cancel_batch(rt, batch_id) -> BatchPublic     cancels every non-terminal job; never needs the broker
    finish_done_batches(rt) -> int                the tick's part: CAS-finish batches whose jobs are all
                                                  terminal; the winner inserts the batch.completed Delivery

`wait_for_job(rt, job_id, timeout_s) -> Job` (sync, for the CLI) lives in workers/services/longpoll.py.

The new jobs create_batch returns are plain Job objects (not bound to a session). A batch's status
is read from its jobs (`running` while any is active); `finished_at` and batch.completed happen
once: a failed job retried after that makes the batch `running` again but notifies nothing more.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from models.errors import IdempotencyConflict, JobNotFound
from models.schemas import BatchCreate, BatchNotification, BatchPublic
from models.status import ACTIVE, JobStatus
from models.tables import Asset, Batch, Delivery, DeliveryAttempt, Job, JobEvent
from workers import jobs
from workers.context import Runtime
from workers.db import rowcount, session_scope, table_of
from workers.dispatch import NOTIFY, Followups, send_all
from workers.services import intake, pipelines
from workers.services.intake import Draft, IntakeInvalid
from workers.services.lifecycle import finish, paid_result_kept
from workers.services.notification import notification_delivery
from workers.services.provider_cancel import schedule_batch_cancels
from workers.settings import Settings

BATCH_ID_PATTERN = r"^batch_[0-9a-f]{1,36}$"
_ACTIVE = [s.value for s in ACTIVE]


def new_batch_id() -> str:
    return f"batch_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def _validate(rt: Runtime, body: BatchCreate) -> list[Draft]:
    """Every item taken in (workers/services/intake.py) before anything is written; the first
    problem found names its item: IntakeInvalid at ("jobs", index, ...field)."""
    if len(body.jobs) > rt.settings.max_batch_jobs:
        raise IntakeInvalid(("jobs",), f"{len(body.jobs)} items; the limit is {rt.settings.max_batch_jobs} (K4U_MAX_BATCH_JOBS)")
    urls = intake.UrlChecks(rt.settings)
    if body.callback_url and (problem := urls.problem(body.callback_url)):
        raise IntakeInvalid(("callback_url",), problem)
    items: list[Draft] = []
    keys: dict[str, int] = {}
    for i, job in enumerate(body.jobs):
        if job.batch_id is not None:
            raise IntakeInvalid(("jobs", i, "batch_id"), "is set by the batch; leave it out")
        items.append(intake.draft(job, rt.settings, at=("jobs", i), urls=urls))
        if job.idempotency_key is not None and (first := keys.setdefault(job.idempotency_key, i)) != i:
            raise IntakeInvalid(("jobs", i, "idempotency_key"), f"repeats the idempotency_key of jobs.{first}")
    pipelines.check_items(items)
    intake.check_stored(rt, items)
    return items


def create_batch(rt: Runtime, body: BatchCreate) -> tuple[Batch, list[Job], bool]:
    """Validate all items, then insert the batch, its queued jobs and their events (one INSERT
    each). Returns (batch, the job of each item in item order, created)."""
    items = _validate(rt, body)
    try:
        return _insert(rt, body, items)
    except IntegrityError:
        if not any(it.key for it in items):
            raise
        return _insert(rt, body, items)  # a concurrent request took some of our keys: map them this time


def _insert(rt: Runtime, body: BatchCreate, items: list[Draft]) -> tuple[Batch, list[Job], bool]:
    now = rt.clock()
    with session_scope(rt.engine) as session:
        existing = _by_keys(session, [it.key for it in items if it.key])
        for i, it in enumerate(items):
            old = existing.get(it.key or "")
            if old is not None and old.request_hash != it.digest:
                raise IdempotencyConflict(f"jobs.{i}.idempotency_key was used before with a different request body")
        fresh = [it for it in items if (it.key or "") not in existing]
        if not fresh:  # a re-sent batch: every item is a job we have
            batch_ids = {existing[it.key or ""].batch_id for it in items}
            only = batch_ids.pop() if len(batch_ids) == 1 else None
            batch = session.get(Batch, only) if only is not None else None
            if batch is None:
                raise IdempotencyConflict(
                    "every item's idempotency_key belongs to an existing job, and those jobs are not one batch of ours: nothing to create"
                )
            return batch, [existing[it.key or ""] for it in items], False
        batch = Batch(id=new_batch_id(), total=len(fresh), callback_url=body.callback_url, meta=body.metadata, created_at=now)
        session.add(batch)
        session.flush()
        rows = _job_rows(rt, batch.id, fresh, now)
        ids = iter(r["id"] for r in rows)
        item_job = [old.id if (old := existing.get(it.key or "")) is not None else next(ids) for it in items]
        links = pipelines.bind_items(rows, fresh, item_job)  # item references, in memory: waiting jobs and their parents
        session.execute(insert(table_of(Job)), rows)
        session.execute(
            insert(table_of(JobEvent)),
            [{"job_id": r["id"], "old_status": None, "new_status": r["status"], "reason": "created", "payload_sha256": None, "at": now} for r in rows],
        )
        pipelines.link(session, links)
        new = {r["id"] for r in rows}  # a child of a job outside the batch: queued (or failed) at once if it has finished
        fu = pipelines.settle(session, sorted({x["job_id"] for x in links if x["parent_id"] not in new}), settings=rt.settings, now=now, finish=finish)
    send_all(rt.dispatcher, fu)
    if fu:
        rows = [r | _status_of(rt, r["id"]) for r in rows]
    made = iter(_as_jobs(rows))
    return batch, [existing.get(it.key or "") or next(made) for it in items], True


def _status_of(rt: Runtime, job_id: str) -> dict[str, Any]:
    with session_scope(rt.engine) as session:
        job = session.get(Job, job_id)
        return {} if job is None else {"status": job.status.value, "inputs": job.inputs, "version": job.version, "next_at": job.next_at}


def _job_rows(rt: Runtime, batch_id: str, items: list[Draft], now: datetime) -> list[dict[str, Any]]:
    """Column values of the new jobs: queued with next_at = now, so the beat's tick submits them
    as the provider limits allow (no broker message per job from the request)."""
    deadline = {p: intake.deadline(a, rt.settings, now) for p, a in {it.body.provider: it.adapter for it in items}.items()}
    # One Job built the usual way gives every column its model default; each row then differs only
    # in its own values (building 10,000 Job objects would cost more than the inserts).
    template = Job(id="", provider="", operation="", status=JobStatus.QUEUED, batch_id=batch_id, callback_token="", created_at=now, updated_at=now, next_at=now)
    # Columns left NULL are left out of the INSERT (less to bind per row), except JSON ones, where
    # None is stored as JSON null, as the ORM stores it for create_job.
    table = table_of(Job)
    columns = jobs.job_columns()
    defaults = {c: v for a, c in columns if (v := getattr(template, a)) is not None or isinstance(table.c[c].type, JSON)}
    name = dict(columns)  # by attribute: the `meta` attribute is the `metadata` column
    return [
        defaults | {name[a]: v for a, v in it.values(job_id, batch_id=batch_id, deadline=deadline[it.body.provider]).items()}
        for job_id, it in zip(intake.batch_job_ids(len(items)), items, strict=True)
    ]


def _as_jobs(rows: list[dict[str, Any]]) -> list[Job]:
    """Plain (not session-bound) Job objects of the inserted rows; model_construct, since the values
    were validated above and building them the usual way costs more than the INSERT."""
    columns = jobs.job_columns()
    values: list[dict[str, Any]] = [{a: r.get(c) for a, c in columns} for r in rows]
    return [Job.model_construct(**v) for v in values]


def _by_keys(session: Session, keys: list[str]) -> dict[str, Job]:
    found: dict[str, Job] = {}
    for chunk in intake.chunks(keys):
        for job in session.scalars(select(Job).where(col(Job.idempotency_key).in_(chunk))):
            if job.idempotency_key is not None:  # always: it matched the IN (...)
                found[job.idempotency_key] = job
    return found


def _counts(session: Session, batch_id: str) -> dict[str, int]:
    """Jobs per status: one GROUP BY over the batch's jobs; every status is present."""
    rows = session.execute(select(col(Job.status), func.count()).where(col(Job.batch_id) == batch_id).group_by(col(Job.status))).all()
    return {s.value: 0 for s in JobStatus} | {r[0]: int(r[1]) for r in rows}


def _public(batch: Batch, counts: dict[str, int]) -> BatchPublic:
    running = any(counts.get(s, 0) for s in _ACTIVE)
    return BatchPublic(
        id=batch.id,
        total=batch.total,
        counts=counts,
        status="running" if running else "completed",
        metadata=batch.meta,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
    )


def _load(session: Session, batch_id: str) -> Batch:
    session.expire_all()
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise JobNotFound(f"no batch {batch_id}")
    return batch


def get_batch(rt: Runtime, batch_id: str) -> BatchPublic:
    """The batch with its counts; finishes it (once) if every job has become terminal since the last tick."""
    with session_scope(rt.engine) as session:
        batch = _load(session, batch_id)
        counts = _counts(session, batch_id)
        fu: Followups = []
        if batch.finished_at is None and not any(counts[s] for s in _ACTIVE):
            fu = _finish(session, batch, settings=rt.settings, now=rt.clock())
            counts = _counts(session, batch_id)
        public = _public(batch, counts)
    send_all(rt.dispatcher, fu)
    return public


def cancel_batch(rt: Runtime, batch_id: str) -> BatchPublic:
    """Cancel every job of the batch that is queued, submitting or running: one UPDATE per status, one
    INSERT of events, their notifications left for the tick (no broker message per job). A downloading
    job keeps its paid result and ends as its download does (an event says so)."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        batch = _load(session, batch_id)
        cancelled: list[str] = []
        in_flight: list[str] = []  # their task may still be working at the relay
        # A downloading job's result is finished and paid for: it is stored and kept, with an event.
        jobs.note_batch(session, batch_id, JobStatus.DOWNLOADING, reason=paid_result_kept("its batch cancelled by the caller"), now=now)
        for status in (JobStatus.WAITING, JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING):
            ids = jobs.transition_batch(
                session, batch_id, status, JobStatus.CANCELLED, reason="batch cancelled by the caller", now=now, finished_at=now, next_at=None
            )
            cancelled += ids
            if status in (JobStatus.SUBMITTING, JobStatus.RUNNING):
                in_flight += ids
        schedule_batch_cancels(session, in_flight, now)
        _queue_job_notifications(session, cancelled, settings=rt.settings, now=now)
        fu = _finish(session, batch, settings=rt.settings, now=now) if batch.finished_at is None else []
        public = _public(batch, _counts(session, batch_id))
    send_all(rt.dispatcher, fu)  # never raises: the delivery is stored, the tick sends it
    return public


def _queue_job_notifications(session: Session, job_ids: list[str], *, settings: Settings, now: datetime) -> None:
    """The job.cancelled Delivery of each job that has a callback_url, due now (the tick sends them)."""
    for chunk in intake.chunks(job_ids):
        rows = list(session.scalars(select(Job).where(col(Job.id).in_(chunk), col(Job.callback_url).is_not(None))))
        if not rows:
            continue
        assets: dict[str, list[Asset]] = {}
        for a in session.scalars(select(Asset).where(col(Asset.job_id).in_([j.id for j in rows]))):
            assets.setdefault(a.job_id, []).append(a)
        session.add_all([notification_delivery(j, assets.get(j.id, []), settings=settings, now=now, next_at=now) for j in rows])
    session.flush()


def _finish(session: Session, batch: Batch, *, settings: Settings, now: datetime) -> Followups:
    """CAS the batch to finished (finished_at IS NULL and no job active); the winner alone inserts
    the batch.completed Delivery, so it is sent once whoever notices first (tick, read, cancel)."""
    any_active = exists().where(col(Job.batch_id) == batch.id, col(Job.status).in_(_ACTIVE))
    res = session.execute(
        update(Batch)
        .where(col(Batch.id) == batch.id, col(Batch.finished_at).is_(None), ~any_active)
        .values(finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(res) != 1:
        return []
    session.refresh(batch)
    if not batch.callback_url:
        return []
    note = BatchNotification(type="batch.completed", timestamp=now, data=_public(batch, _counts(session, batch.id)))
    body = json.dumps(note.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    delivery = Delivery(
        id=f"msg_{batch.id}_completed",
        batch_id=batch.id,
        event="batch.completed",
        url=batch.callback_url,
        payload=body,
        next_at=now + timedelta(seconds=settings.lease_s),
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return [(NOTIFY, (delivery.id, 0))]


def finish_done_batches(rt: Runtime) -> int:
    """The tick's part: finish open batches whose jobs are all terminal. Returns how many it finished."""
    now, limit = rt.clock(), rt.settings.poll_batch_limit
    fu: Followups = []
    finished = 0
    with session_scope(rt.engine) as session:
        any_active = exists().where(col(Job.batch_id) == col(Batch.id), col(Job.status).in_(_ACTIVE))
        done = list(session.scalars(select(Batch).where(col(Batch.finished_at).is_(None), ~any_active).limit(limit)))
        for batch in done:
            before = batch.finished_at
            fu += _finish(session, batch, settings=rt.settings, now=now)
            finished += int(before is None and batch.finished_at is not None)
    send_all(rt.dispatcher, fu)
    return finished


def list_batch_jobs(
    rt: Runtime, batch_id: str, *, status: JobStatus | None, limit: int, cursor: str | None
) -> tuple[list[Job], dict[str, list[Asset]], str | None]:
    """A page of the batch's jobs in item order: (jobs, their assets by job id, next cursor)."""
    with session_scope(rt.engine) as session:
        _load(session, batch_id)
        q = select(Job).where(col(Job.batch_id) == batch_id)
        if status is not None:
            q = q.where(col(Job.status) == status.value)
        if cursor is not None:
            q = q.where(col(Job.id) > cursor)
        rows = list(session.scalars(q.order_by(col(Job.id)).limit(limit + 1)))
        page = rows[:limit]
        assets: dict[str, list[Asset]] = {}
        if page:
            for a in session.scalars(select(Asset).where(col(Asset.job_id).in_([j.id for j in page]))):
                assets.setdefault(a.job_id, []).append(a)
    return page, assets, page[-1].id if len(rows) > limit else None


def batch_deliveries(rt: Runtime, batch_id: str) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
    """The batch's own notifications with their attempts, oldest first."""
    with session_scope(rt.engine) as session:
        _load(session, batch_id)
        deliveries = list(session.scalars(select(Delivery).where(col(Delivery.batch_id) == batch_id)))
        attempts = (
            list(
                session.scalars(
                    select(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_([d.id for d in deliveries])).order_by(col(DeliveryAttempt.id))
                )
            )
            if deliveries
            else []
        )
    return [(d, [a for a in attempts if a.delivery_id == d.id]) for d in deliveries]
