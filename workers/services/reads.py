"""Reads for the API (and anyone else): rows in, typed public schemas (models/schemas.py) out.

    job_assets(rt, job_id) -> list[Asset]                      the job's asset rows (the tools' flat job reads them too)
    job_public(rt, job, base) -> JobPublic                     the job with its assets
    list_jobs(rt, filters..., base) -> JobsPublic              newest first; with batch_id, its cost totals
    batch_cost(rt, batch_id) -> dict[str, int | float]         result.cost summed per key, and jobs_with_cost
    batch_jobs(rt, batch_id, ..., base) -> JobsPublic          a batch's jobs in item order (JobNotFound for none)
    job_events(rt, job) -> list[JobEventPublic]                the job's history
    job_notifications(rt, job) -> list[DeliveryPublic]         its notifications with every attempt
    batch_notifications(rt, batch_id) -> list[DeliveryPublic]  the batch's own batch.completed
    stored_asset(rt, job_id, index, attempt) -> Asset | None   an asset row (the current attempt's by default)

`base` is where links point (the API's link base). A function taking a Job is given one already
loaded (the API's one "job or 404", `api.deps.existing_job`, or `longpoll.load_job`); an unknown
batch is JobNotFound, which the API maps to 404 by type. Nothing here changes a row.
"""

from __future__ import annotations

import math

from sqlmodel import col, select

from models.schemas import DeliveryPublic, JobEventPublic, JobPublic, JobsPublic
from models.status import JobStatus
from models.tables import Asset, Delivery, DeliveryAttempt, Job, JobDependency, JobEvent
from workers.context import Runtime
from workers.db import session_scope
from workers.services.batches import batch_deliveries, list_batch_jobs

COST_CHUNK = 1000


def job_assets(rt: Runtime, job_id: str) -> list[Asset]:
    """Every asset row of the job, all attempts (the schemas order and filter them)."""
    with session_scope(rt.engine) as session:
        return list(session.exec(select(Asset).where(Asset.job_id == job_id)).all())


def job_public(rt: Runtime, job: Job, base: str) -> JobPublic:
    return JobPublic.from_rows(job, job_assets(rt, job.id), base)


def _page(rows: list[Job], assets: list[Asset], base: str) -> list[JobPublic]:
    by_job: dict[str, list[Asset]] = {}
    for a in assets:
        by_job.setdefault(a.job_id, []).append(a)
    return [JobPublic.from_rows(j, by_job.get(j.id, []), base) for j in rows]


def list_jobs(
    rt: Runtime,
    *,
    status: JobStatus | None,
    provider: str | None,
    batch_id: str | None,
    limit: int,
    cursor: str | None,
    base: str,
    depends_on: str | None = None,
) -> JobsPublic:
    """Newest first, `limit` a page; `cost` only with batch_id (the whole batch's, see batch_cost);
    `depends_on`: the children of that job (the jobs whose input references its assets)."""
    q = select(Job)
    if depends_on is not None:
        q = q.where(col(Job.id).in_(select(JobDependency.job_id).where(JobDependency.parent_id == depends_on)))
    if status is not None:
        q = q.where(Job.status == status.value)
    if provider is not None:
        q = q.where(Job.provider == provider)
    if batch_id is not None:
        q = q.where(Job.batch_id == batch_id)
    if cursor is not None:
        q = q.where(col(Job.id) < cursor)
    with session_scope(rt.engine) as session:
        rows = list(session.exec(q.order_by(col(Job.id).desc()).limit(limit + 1)).all())
        page = rows[:limit]
        ids = [j.id for j in page]
        assets = list(session.exec(select(Asset).where(col(Asset.job_id).in_(ids))).all()) if ids else []
    cost = batch_cost(rt, batch_id) if batch_id is not None else None
    return JobsPublic(items=_page(page, assets, base), next_cursor=page[-1].id if len(rows) > limit else None, cost=cost)


def batch_cost(rt: Runtime, batch_id: str) -> dict[str, int | float]:
    """Per-key totals of the numbers in the batch's `result.cost` objects, and `jobs_with_cost`.

    The keys differ per family and are not known in advance, so no fixed SQL aggregate covers
    them; the database sends only each job's `result -> 'cost'` sub-object (not the job rows),
    in chunks of COST_CHUNK (a server-side cursor on PostgreSQL), and they are summed here in
    constant memory. Booleans and non-numbers are ignored; floats are rounded to 6 places."""
    totals: dict[str, int | float] = {}
    with_cost = 0
    query = select(col(Job.result)["cost"]).where(col(Job.batch_id) == batch_id, col(Job.result).is_not(None)).execution_options(yield_per=COST_CHUNK)
    with session_scope(rt.engine) as session:
        for cost in session.exec(query):
            if not isinstance(cost, dict):
                continue
            numbers = [(k, v) for k, v in cost.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
            if numbers:
                with_cost += 1
            for k, v in numbers:
                totals[k] = totals.get(k, 0) + v
    out: dict[str, int | float] = {k: round(v, 6) if isinstance(v, float) else v for k, v in sorted(totals.items())}
    out["jobs_with_cost"] = with_cost  # reserved: the count wins over a cost key of that name
    return out


def batch_jobs(rt: Runtime, batch_id: str, *, status: JobStatus | None, limit: int, cursor: str | None, base: str) -> JobsPublic:
    page, assets, next_cursor = list_batch_jobs(rt, batch_id, status=status, limit=limit, cursor=cursor)
    return JobsPublic(items=[JobPublic.from_rows(j, assets.get(j.id, []), base) for j in page], next_cursor=next_cursor)


def job_events(rt: Runtime, job: Job) -> list[JobEventPublic]:
    with session_scope(rt.engine) as session:
        rows = session.exec(select(JobEvent).where(JobEvent.job_id == job.id).order_by(col(JobEvent.id))).all()
        return [JobEventPublic.from_row(e) for e in rows]


def job_notifications(rt: Runtime, job: Job) -> list[DeliveryPublic]:
    with session_scope(rt.engine) as session:
        deliveries = session.exec(select(Delivery).where(Delivery.job_id == job.id)).all()
        attempts = (
            list(
                session.exec(
                    select(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_([d.id for d in deliveries])).order_by(col(DeliveryAttempt.id))
                ).all()
            )
            if deliveries
            else []
        )
        return [DeliveryPublic.from_rows(d, attempts) for d in deliveries]


def batch_notifications(rt: Runtime, batch_id: str) -> list[DeliveryPublic]:
    return [DeliveryPublic.from_rows(d, attempts) for d, attempts in batch_deliveries(rt, batch_id)]


def stored_asset(rt: Runtime, job_id: str, index: int, attempt: int | None) -> Asset | None:
    current = select(col(Job.attempt)).where(col(Job.id) == job_id).scalar_subquery()
    with session_scope(rt.engine) as session:
        return session.exec(select(Asset).where(Asset.job_id == job_id, Asset.attempt == (attempt or current), Asset.index == index)).first()
