"""Load, claim and transition jobs: the only code that changes Job.status.

Every transition is a compare-and-swap (`UPDATE ... WHERE status = :old [AND version = :v]`)
that also appends a JobEvent. Only the winner performs the side effect that follows. A lost
CAS returns False. `version` doubles as a fencing token: task messages carry (id, version)
and a task first takes its lease with a CAS on that version, so duplicates drop out early.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Engine, Select, Update, bindparam, case, cast, func, insert, inspect, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from models.status import JobStatus, can_transition
from models.tables import Job, JobEvent, UTCDateTime, utcnow
from providers.base import ParentRef, PollTarget
from workers.db import autocommit, in_claim, is_postgres, rowcount, table_of


def new_job_id() -> str:
    """Time-ordered id: sorts by creation, so it serves as the list cursor."""
    return f"job_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def external_id(job: Job) -> str:
    """The id the relay knows this attempt of the job by (Kling external_task_id, Midjourney
    state): the job id, suffixed from the second attempt on so that a lookup never finds the task
    of an earlier attempt."""
    return job.id if job.attempt <= 1 else f"{job.id}-a{job.attempt}"


def digest(payload: bytes | None) -> str | None:
    return hashlib.sha256(payload).hexdigest() if payload else None


def get_job(session: Session, job_id: str) -> Job | None:
    session.expire_all()
    return session.get(Job, job_id)


class _Increment:
    """A field value meaning "this column plus one", in the same UPDATE (a counter)."""

    def __repr__(self) -> str:
        return "INCREMENT"


INCREMENT = _Increment()


def transition(
    session: Session,
    job: Job,
    new: JobStatus,
    *,
    reason: str,
    expect_version: int | None = None,
    unchanged_since: datetime | None = None,
    payload: bytes | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> bool:
    """CAS job from its current status to `new` (and on its version, and on its updated_at being
    `unchanged_since`, when given), setting fields (INCREMENT adds one); append a JobEvent; load
    the updated row into `job`. False if lost."""
    return _move(
        session,
        job,
        job.id,
        job.status,
        new,
        expect_version=expect_version,
        now=now or utcnow(),
        fields=fields,
        reason=reason,
        payload=payload,
        unchanged_since=unchanged_since,
    )


def transition_by_id(
    session: Session,
    job_id: str,
    old: JobStatus,
    new: JobStatus,
    *,
    expect_version: int,
    reason: str,
    now: datetime,
    reason_counter: str | None = None,
    **fields: Any,
) -> Job | None:
    """transition() for a job not loaded yet, as a task taking its step does: the CAS UPDATE returns
    the row, so no SELECT goes first. The job (detached, as updated), or None when the CAS was lost.
    `reason_counter` names a column whose value after the update ends the reason ("submit attempt 3")."""
    job: Job = inspect(Job).class_manager.new_instance()
    if not _move(session, job, job_id, old, new, expect_version=expect_version, now=now, fields=fields, reason=reason, reason_counter=reason_counter):
        return None
    return job


def _move(
    session: Session,
    job: Job,
    job_id: str,
    old: JobStatus,
    new: JobStatus,
    *,
    expect_version: int | None,
    now: datetime,
    fields: dict[str, Any],
    reason: str,
    payload: bytes | None = None,
    reason_counter: str | None = None,
    unchanged_since: datetime | None = None,
) -> bool:
    """A transition: the CAS (old -> new, on the version when given), loading the row into `job`,
    and its JobEvent. On PostgreSQL both in one statement (an UPDATE ... RETURNING in a CTE that the
    event's INSERT selects from); elsewhere the UPDATE, then the INSERT."""
    if not can_transition(old, new):
        raise ValueError(f"transition {old} -> {new} is not in the table")
    where = {"id": job_id, "status": old} | _guard(expect_version, unchanged_since)
    values = dict(fields, status=new, version=INCREMENT, updated_at=now)
    if not is_postgres(session.get_bind()):
        if not _update_into(session, job, values, where):
            return False
        text = f"{reason}{getattr(job, reason_counter)}" if reason_counter else reason
        append_event(session, job, old, new, text, now, payload)
        return True
    shape, params = _shape_and_params(values, where)
    event = _event_params(old, new, reason, payload, now)
    return _load(job, session.execute(_transition_stmt(shape, tuple(sorted(where)), reason_counter), params | event).first())


def _update_into(session: Session, job: Job, values: dict[str, Any], where: dict[str, Any]) -> bool:
    """Run a one-row UPDATE of the job (attribute names; INCREMENT adds one) with RETURNING and load
    the new row into `job` (in one round trip, where a refresh would take a second); False when it
    matched no row."""
    return _load(job, _run_update(session, values, where, returning=True).first())


def _load(job: Job, row: Any) -> bool:
    """Put a returned job row (every column, in _job_columns() order) into `job`; False for no row."""
    if row is None:
        return False
    for (key, _), value in zip(_job_columns(), row, strict=True):
        set_committed_value(job, key, value)
    return True


def _run_update(session: Session, values: dict[str, Any], where: dict[str, Any], *, returning: bool) -> Result[Any]:
    """Execute the cached UPDATE for this shape of `values` and `where` with their values bound."""
    shape, params = _shape_and_params(values, where)
    return session.execute(_update_stmt(shape, tuple(sorted(where)), returning=returning), params)


def _shape_and_params(values: dict[str, Any], where: dict[str, Any]) -> tuple[tuple[tuple[str, bool], ...], dict[str, Any]]:
    shape = tuple(sorted((k, v is INCREMENT) for k, v in values.items()))
    return shape, {f"s_{k}": v for k, v in values.items() if v is not INCREMENT} | {f"w_{k}": v for k, v in where.items()}


@functools.cache
def _transition_stmt(sets: tuple[tuple[str, bool], ...], where: tuple[str, ...], reason_counter: str | None) -> Select[Any]:
    """PostgreSQL: the UPDATE of _update_stmt as a CTE, the INSERT of its JobEvent selecting from it
    (so only a row that moved gets one), and the updated row as the answer; one round trip. Event
    parameters as _event_params gives them; the reason is followed by the column `reason_counter`."""
    moved = _update_stmt(sets, where, returning=True).cte("moved")
    reason = None
    if reason_counter is not None:
        column = table_of(JobEvent).c.reason
        reason = bindparam("e_reason", type_=column.type) + cast(moved.c[dict(_job_columns())[reason_counter].name], column.type)
    return select(*moved.c).add_cte(_event_insert(moved.c.id, reason).cte("logged"))


_EVENT_COLUMNS = ("old_status", "new_status", "reason", "payload_sha256", "at")


def _event_insert(job_id: ColumnElement[Any], reason: ColumnElement[Any] | None = None) -> Any:
    """INSERT INTO job_event ... SELECT: one event for each row `job_id` comes from (a CTE), its
    columns bound as e_<column> (_event_params), the reason replaced by `reason` when given."""
    et = table_of(JobEvent)
    values: dict[str, ColumnElement[Any]] = {c: bindparam(f"e_{c}", type_=et.c[c].type) for c in _EVENT_COLUMNS}
    if reason is not None:
        values["reason"] = reason
    return insert(et).from_select(["job_id", *values], select(job_id, *values.values()))


def _event_params(old: JobStatus | None, new: JobStatus, reason: str, payload: bytes | None, at: datetime) -> dict[str, Any]:
    return {"e_old_status": old, "e_new_status": new, "e_reason": reason[:2000], "e_payload_sha256": digest(payload), "e_at": at}


@functools.cache
def _update_stmt(sets: tuple[tuple[str, bool], ...], where: tuple[str, ...], *, returning: bool) -> Update:
    """The UPDATE of the job table for this shape: (attribute, is INCREMENT) to set, attributes to
    match, with bound parameters `s_<attr>` and `w_<attr>`. Built once per shape: a job step sends a
    handful of shapes over and over, and building a statement (and its cache key) costs more than
    running it. RETURNING gives every column, in _job_columns() order."""
    cols = dict(_job_columns())
    stmt = update(table_of(Job))
    for name in where:
        stmt = stmt.where(cols[name] == bindparam(f"w_{name}", type_=cols[name].type))
    stmt = stmt.values({cols[name].name: (cols[name] + 1 if inc else bindparam(f"s_{name}", type_=cols[name].type)) for name, inc in sets})
    return stmt.returning(*cols.values()) if returning else stmt


@functools.cache
def _job_columns() -> tuple[tuple[str, ColumnElement[Any]], ...]:
    """(attribute, column) of every mapped Job column (the `metadata` column is the `meta` attribute)."""
    return tuple((prop.key, prop.columns[0]) for prop in inspect(Job).column_attrs)


def job_columns() -> list[tuple[str, str]]:
    """(attribute, column name) of every Job column (the `meta` attribute is the `metadata` column)."""
    return [(key, column.name) for key, column in _job_columns()]


def insert_new(engine: Engine, job: Job) -> None:
    """Write a new job (a plain Job object, left unbound) and its `created` event, atomically. On
    PostgreSQL that is one statement in autocommit, a CTE (one round trip: no BEGIN, no COMMIT, and
    no unit of work); elsewhere two INSERTs in one transaction. IntegrityError if the id or the
    idempotency_key is taken: then nothing is written."""
    row = {column.name: getattr(job, key) for key, column in _job_columns()}
    event = _event_params(None, job.status, "created", None, job.created_at)
    if is_postgres(engine):
        with autocommit(engine).connect() as conn:
            conn.execute(_INSERT_WITH_EVENT, row | event)
        return
    with engine.begin() as conn:
        conn.execute(insert(table_of(Job)), row)
        conn.execute(insert(table_of(JobEvent)), {k.removeprefix("e_"): v for k, v in event.items()} | {"job_id": job.id})


def _insert_with_event() -> Any:
    """INSERT INTO job ... RETURNING id, and the job_event row selected from it, as one statement
    whose parameters are the job's columns and _event_params (compiled once, then cached)."""
    jt = table_of(Job)
    made = insert(jt).values({c.name: bindparam(c.name, type_=c.type) for c in jt.c}).returning(jt.c.id).cte("made")
    return _event_insert(made.c.id)


def append_event(session: Session, job: Job, old: JobStatus | None, new: JobStatus, reason: str, now: datetime, payload: bytes | None = None) -> None:
    session.flush()  # the job row first, when it is new in this session (a no-op otherwise)
    session.execute(
        insert(table_of(JobEvent)).values(job_id=job.id, old_status=old, new_status=new, reason=reason[:2000], payload_sha256=digest(payload), at=now)
    )


def transition_batch(session: Session, batch_id: str, old: JobStatus, new: JobStatus, *, reason: str, now: datetime, **fields: Any) -> list[str]:
    """CAS every job of a batch that is in `old` to `new` in one UPDATE, with a JobEvent each (one
    INSERT). Returns the ids of the jobs that moved."""
    if not can_transition(old, new):
        raise ValueError(f"transition {old} -> {new} is not in the table")
    stmt = (
        update(Job)
        .where(col(Job.batch_id) == batch_id, col(Job.status) == old)
        .values(dict(fields, status=new, version=col(Job.version) + 1, updated_at=now))
        .returning(col(Job.id))
        .execution_options(synchronize_session=False)
    )
    ids = list(session.execute(stmt).scalars())
    if ids:
        session.execute(
            insert(table_of(JobEvent)),
            [{"job_id": i, "old_status": old, "new_status": new, "reason": reason[:2000], "payload_sha256": None, "at": now} for i in ids],
        )
    return ids


def note_batch(session: Session, batch_id: str, status: JobStatus, *, reason: str, now: datetime) -> None:
    """Append an event without a status change to every job of a batch in `status` (one INSERT ... SELECT)."""
    jt = table_of(Job)
    rows = select(jt.c.id, literal(status.value), literal(status.value), literal(reason[:2000]), literal(now, UTCDateTime())).where(
        jt.c.batch_id == batch_id, jt.c.status == status
    )
    session.execute(insert(table_of(JobEvent)).from_select(["job_id", "old_status", "new_status", "reason", "at"], rows))


def bump(session: Session, job: Job, version: int, *, now: datetime, **fields: Any) -> bool:
    """CAS on version without a status change, moving the version on (the fencing token: a message
    still carrying the old one drops out); sets `fields`. False if lost."""
    return _update_into(session, job, dict(fields, version=INCREMENT, updated_at=now), {"id": job.id, "version": version, "status": job.status})


def take_lease(session: Session, job: Job, version: int, *, lease_s: float, now: datetime | None = None, **fields: Any) -> bool:
    """CAS on version without a status change: this worker now owns the job's current step."""
    now = now or utcnow()
    return bump(session, job, version, now=now, next_at=now + timedelta(seconds=lease_s), **fields)


def take_download_lease(
    session: Session, job_id: str, version: int, *, now: datetime, lease_s: float, window_ends: dict[str, datetime], default_end: datetime
) -> Job | None:
    """The download step's lease in one UPDATE ... RETURNING, no SELECT first: the CAS on (downloading,
    version) moves the version on, counts the attempt, and opens the download window on the first
    attempt (its end by provider: `window_ends`, else `default_end`). It matches nothing once the
    window has closed. The job as updated (detached), or None: stale, lost or past the deadline,
    which the caller tells apart by reading the job."""
    params = {"w_id": job_id, "w_version": version, "now": now, "lease_until": now + timedelta(seconds=lease_s), "end_default": default_end} | {
        f"end_{i}": at for i, at in enumerate(window_ends.values())
    }
    row = session.execute(_download_lease_stmt(tuple(window_ends)), params).first()
    job: Job = inspect(Job).class_manager.new_instance()
    return job if _load(job, row) else None


@functools.cache
def _download_lease_stmt(providers: tuple[str, ...]) -> Update:
    jt = table_of(Job)
    opening = or_(jt.c.download_attempts == 0, jt.c.download_deadline_at.is_(None))  # the columns' values before the update
    end_type = jt.c.download_deadline_at.type
    end: ColumnElement[Any] = bindparam("end_default", type_=end_type)
    if providers:
        end = case(*((jt.c.provider == p, bindparam(f"end_{i}", type_=end_type)) for i, p in enumerate(providers)), else_=end)
    now = bindparam("now", type_=jt.c.updated_at.type)
    return (
        update(jt)
        .where(
            jt.c.id == bindparam("w_id"),
            jt.c.version == bindparam("w_version"),
            jt.c.status == JobStatus.DOWNLOADING,
            or_(opening, jt.c.download_deadline_at > now),
        )
        .values(
            version=jt.c.version + 1,
            updated_at=now,
            next_at=bindparam("lease_until", type_=jt.c.next_at.type),
            download_attempts=jt.c.download_attempts + 1,
            download_deadline_at=case((opening, end), else_=jt.c.download_deadline_at),
        )
        .returning(*dict(_job_columns()).values())
    )


def set_fields(
    session: Session, job_id: str, status: JobStatus, *, expect_version: int | None = None, unchanged_since: datetime | None = None, **fields: Any
) -> bool:
    """Update non-status fields (progress, next_at...) while the job is still in `status` (and on
    its version, and its updated_at being `unchanged_since`, when given)."""
    where = {"id": job_id, "status": status} | _guard(expect_version, unchanged_since)
    return rowcount(_run_update(session, dict(fields, updated_at=utcnow()), where, returning=False)) == 1


def _guard(expect_version: int | None, unchanged_since: datetime | None) -> dict[str, Any]:
    """The optional parts of a CAS's WHERE: the version, and updated_at as read."""
    return ({"version": expect_version} if expect_version is not None else {}) | ({"updated_at": unchanged_since} if unchanged_since is not None else {})


class RowChanged(Exception):
    """A write guarded on the row as read earlier matched nothing: the job changed meanwhile."""


class Reschedule(NamedTuple):
    """A polled job still running: its progress and next poll."""

    job_id: str
    progress: int
    next_at: datetime


def reschedule_running(session: Session, rows: Sequence[Reschedule], now: datetime) -> None:
    """Write polled jobs that are still running: next_at, poll_count + 1 and the progress (never
    lowered), only while the job is running. A batch family's poll of 100 jobs is one statement:
    on PostgreSQL one UPDATE ... FROM unnest() of three arrays (one statement to plan and run, not
    100); on SQLite one UPDATE executed for each row."""
    if not rows:
        return
    if len(rows) > 1 and is_postgres(session.get_bind()):
        session.execute(
            _RESCHEDULE_MANY,
            {"b_ids": [r.job_id for r in rows], "b_progresses": [r.progress for r in rows], "b_next_ats": [r.next_at for r in rows], "b_now": now},
        )
        return
    session.execute(_RESCHEDULE, [{"b_id": r.job_id, "b_progress": r.progress, "b_next_at": r.next_at, "b_now": now} for r in rows])


def _reschedule_stmt() -> Update:
    jt = table_of(Job)
    return (
        update(jt)
        .where(jt.c.id == bindparam("b_id"), jt.c.status == JobStatus.RUNNING)
        .values(
            progress=case((jt.c.progress > bindparam("b_progress"), jt.c.progress), else_=bindparam("b_progress")),
            next_at=bindparam("b_next_at", type_=jt.c.next_at.type),
            updated_at=bindparam("b_now", type_=jt.c.updated_at.type),
            poll_count=jt.c.poll_count + 1,
        )
    )


def _reschedule_many_stmt() -> Update:
    """_RESCHEDULE for many rows on PostgreSQL: the values come as arrays, joined by unnest()."""
    jt = table_of(Job)
    v = (
        func.unnest(
            bindparam("b_ids", type_=ARRAY(jt.c.id.type)),
            bindparam("b_progresses", type_=ARRAY(jt.c.progress.type)),
            bindparam("b_next_ats", type_=ARRAY(jt.c.next_at.type)),
        )
        .table_valued("id", "progress", "next_at")
        .render_derived()
    )
    return (
        update(jt)
        .where(jt.c.id == v.c.id, jt.c.status == JobStatus.RUNNING)
        .values(
            progress=case((jt.c.progress > v.c.progress, jt.c.progress), else_=v.c.progress),
            next_at=v.c.next_at,
            updated_at=bindparam("b_now", type_=jt.c.updated_at.type),
            poll_count=jt.c.poll_count + 1,
        )
    )


def count_polls(session: Session, job_ids: Sequence[str]) -> None:
    """One more answered poll for each job (poll_count: how often the relay was asked about it)."""
    if job_ids:
        session.execute(update(Job).where(col(Job.id).in_(list(set(job_ids)))).values(poll_count=col(Job.poll_count) + 1))


class Claimed(NamedTuple):
    job_id: str
    provider: str
    version: int
    result_expires_at: datetime | None


def claim_due(session: Session, status: JobStatus, *, now: datetime, lease_s: float, limit: int, provider: str | None = None) -> list[Claimed]:
    """Claim up to `limit` jobs in `status` whose next_at has passed: push next_at out by the lease
    and bump the version. Returns them in claim order: downloads whose result URLs expire soonest
    first, everything else oldest due first. Safe under concurrent callers: SKIP LOCKED on
    PostgreSQL, the serialized writer plus the next_at re-check on SQLite."""
    sub = select(col(Job.id)).where(col(Job.status) == status, col(Job.next_at) <= now)
    if provider is not None:
        sub = sub.where(col(Job.provider) == provider)
    downloads = status is JobStatus.DOWNLOADING
    first = (col(Job.result_expires_at).asc().nulls_last(),) if downloads else ()
    sub = sub.order_by(*first, col(Job.next_at)).limit(limit)
    stmt = (
        update(Job)
        .where(in_claim(session, col(Job.id), sub), col(Job.status) == status, col(Job.next_at) <= now)
        .values(next_at=now + timedelta(seconds=lease_s), version=col(Job.version) + 1)
        .returning(col(Job.id), col(Job.provider), col(Job.version), col(Job.result_expires_at))
        .execution_options(synchronize_session=False)
    )
    rows = [Claimed(r[0], r[1], r[2], r[3]) for r in session.execute(stmt).all()]
    if downloads:  # RETURNING has no order of its own
        far = datetime.max.replace(tzinfo=UTC)
        rows.sort(key=lambda c: c.result_expires_at or far)
    return rows


def due_providers(session: Session, status: JobStatus, now: datetime) -> list[str]:
    """Providers with jobs in `status` whose next_at has passed (a range over ix_job_due: O(due))."""
    return list(session.scalars(select(col(Job.provider)).where(col(Job.status) == status, col(Job.next_at) <= now).distinct()))


def expired_deadlines(session: Session, now: datetime, statuses: Iterable[JobStatus], limit: int) -> Sequence[Job]:
    """In-flight jobs past their deadline, oldest deadline first. The ORDER BY lets PostgreSQL use the
    partial index ix_job_deadline (in-flight jobs only): O(due), not O(in flight) (bench/inflight.py)."""
    return session.scalars(
        select(Job).where(col(Job.status).in_(list(statuses)), col(Job.deadline_at) <= now).order_by(col(Job.deadline_at)).limit(limit)
    ).all()


def target(job: Job) -> PollTarget:
    """The job's task as its adapter sees it: for a poll, a result read or a cancel."""
    return PollTarget(job.id, job.provider_task_id or "", job.operation, job.provider_handle or {}, job.input)


def parent_ref(session: Session, job_id: str) -> ParentRef | None:
    job = session.get(Job, job_id)
    if job is None:
        return None
    return ParentRef(job_id=job.id, task_id=job.provider_task_id, operation=job.operation, status=job.status, result=dict(job.result or {}))


def count_by_provider_status(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(select(col(Job.provider), col(Job.status), func.count()).group_by(col(Job.provider), col(Job.status))).all()
    return [(r[0], r[1], int(r[2])) for r in rows]


_INSERT_WITH_EVENT = _insert_with_event()
_RESCHEDULE = _reschedule_stmt()
_RESCHEDULE_MANY = _reschedule_many_stmt()
