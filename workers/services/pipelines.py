"""Pipelines: a job whose input names another job's output (`k4u://jobs/<id>/assets/<n>`) waits for it.

Pipelines are data in the database, never Celery chains. A child is inserted `waiting`, with one
`job_dependency` row per parent, in the same transaction. It leaves `waiting`:

    settle(session, child_ids, settings=, now=, finish=) -> Followups
        every parent succeeded: -> queued (its deadline starts now, `inputs` gets each asset's sha256,
        and a submit message follows the commit); an index past a parent's stored assets: -> failed
        `invalid_reference`; a parent failed or cancelled: -> failed `dependency_failed` naming it,
        without any relay request (which fails its own children in turn). Otherwise it stays waiting.

It is called from lifecycle.finish in the SAME transaction that moves a parent to a terminal status
(`children(session, parent_id)`), right after a child's insert (a parent that finished meanwhile),
and by the tick (`ready(session, limit)`: waiting jobs whose parents are all done, or one of them
failed): a crash between a parent's commit and its children's step loses no child.

A waiting job's deadline starts when it is queued; cancelling it never touches its parents;
retrying it (after `dependency_failed`) makes it wait again and re-checks its parents; retrying a
failed parent does not revive children that already failed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, insert, or_, select, text
from sqlmodel import Session, col

from models.errors import ErrorCode, JobError
from models.refs import SCHEME, Loc, job_asset_ref, parse_ref, replace_strings, strings
from models.status import JobStatus
from models.tables import Asset, Job, JobDependency, JobEvent
from providers.registry import get_adapter
from workers import jobs
from workers.db import is_postgres, table_of
from workers.dispatch import Followups, submit_task
from workers.references import stored_assets
from workers.services import intake
from workers.services.intake import Draft, IntakeInvalid
from workers.settings import Settings

Finish = Callable[..., Followups]  # lifecycle.finish (passed in: lifecycle calls this module)
_DONE_BADLY = (JobStatus.FAILED, JobStatus.CANCELLED)


def parents_of(inputs: Iterable[dict[str, Any]] | None) -> list[str]:
    """The distinct job ids a job's `inputs` name, in the order first named (its `depends_on`)."""
    seen: dict[str, None] = {}
    for entry in inputs or ():
        if entry.get("job_id"):
            seen.setdefault(entry["job_id"], None)
    return list(seen)


def link_rows(job_id: str, inputs: Iterable[dict[str, Any]] | None) -> list[dict[str, str]]:
    return [{"job_id": job_id, "parent_id": p} for p in parents_of(inputs)]


_LINK_MANY = text("INSERT INTO job_dependency (job_id, parent_id) SELECT * FROM unnest(CAST(:kids AS varchar[]), CAST(:parents AS varchar[]))")


def link(session: Session, rows: Sequence[dict[str, str]]) -> None:
    """The job_dependency rows of new waiting jobs (in their insert's transaction): on PostgreSQL one
    INSERT ... SELECT FROM unnest() of two arrays (a batch of 10,000 pipelines: 20,000 rows, one statement)."""
    if not rows:
        return
    if len(rows) > 1 and is_postgres(session.get_bind()):
        session.execute(_LINK_MANY, {"kids": [r["job_id"] for r in rows], "parents": [r["parent_id"] for r in rows]})
        return
    session.execute(insert(table_of(JobDependency)), list(rows))


def children(session: Session, parent_id: str) -> list[str]:
    """The waiting jobs that need an asset of `parent_id` (ix_job_dependency_parent_id)."""
    return list(
        session.scalars(
            select(col(JobDependency.job_id))
            .join(Job, col(Job.id) == col(JobDependency.job_id))
            .where(col(JobDependency.parent_id) == parent_id, col(Job.status) == JobStatus.WAITING)
        )
    )


def ready(session: Session, limit: int) -> list[str]:
    """The tick's part: waiting jobs that can move, every parent succeeded or one failed or was
    cancelled (a parent's finish settles its children itself; this finds those a crash left behind)."""
    jt, dt = table_of(Job), table_of(JobDependency)
    parent = jt.alias("parent")
    link = and_(dt.c.job_id == jt.c.id, dt.c.parent_id == parent.c.id)
    not_ok = exists().where(link, parent.c.status != JobStatus.SUCCEEDED)
    bad = exists().where(link, parent.c.status.in_(_DONE_BADLY))
    stmt = select(jt.c.id).where(jt.c.status == JobStatus.WAITING, or_(~not_ok, bad)).limit(limit)
    return list(session.scalars(stmt))


def settle(session: Session, child_ids: Sequence[str], *, settings: Settings, now: datetime, finish: Finish) -> Followups:
    """Move the waiting jobs among `child_ids` whose parents allow it (see the module's text)."""
    fu: Followups = []
    for chunk in intake.chunks(list(child_ids)):
        kids = list(session.scalars(select(Job).where(col(Job.id).in_(chunk), col(Job.status) == JobStatus.WAITING)))
        if not kids:
            continue
        deps = list(session.scalars(select(JobDependency).where(col(JobDependency.job_id).in_([k.id for k in kids]))))
        pids = sorted({d.parent_id for d in deps})
        parents = {p.id: p for p in session.scalars(select(Job).where(col(Job.id).in_(pids)))} if pids else {}
        ok = [p for p in pids if p in parents and parents[p].status == JobStatus.SUCCEEDED]
        assets: dict[str, list[Asset]] = {}
        if ok:
            for a in session.scalars(select(Asset).where(col(Asset.job_id).in_(ok))):
                assets.setdefault(a.job_id, []).append(a)
        listed = {p: stored_assets(assets.get(p, [])) for p in ok}
        by_child: dict[str, list[str]] = {}
        for d in deps:
            by_child.setdefault(d.job_id, []).append(d.parent_id)
        for kid in kids:
            fu += _settle_one(session, kid, sorted(by_child.get(kid.id, [])), parents, listed, settings=settings, now=now, finish=finish)
    return fu


def _settle_one(
    session: Session,
    kid: Job,
    pids: list[str],
    parents: dict[str, Job],
    listed: dict[str, list[Asset]],
    *,
    settings: Settings,
    now: datetime,
    finish: Finish,
) -> Followups:
    for pid in pids:
        p = parents.get(pid)
        if p is None or p.status in _DONE_BADLY:
            what = "no longer exists" if p is None else f"is {p.status.value}" + (f" ({p.error_code}: {(p.error_message or '')[:300]})" if p.error_code else "")
            error = JobError(ErrorCode.DEPENDENCY_FAILED, f"parent job {pid} {what}: this job was not sent to the relay")
            return finish(
                session, kid, JobStatus.FAILED, settings=settings, now=now, reason=f"dependency failed: {pid}", error=error, expect_version=kid.version
            )
    if any(parents[pid].status != JobStatus.SUCCEEDED for pid in pids):
        return []  # still waiting for a parent
    inputs = [dict(e) for e in kid.inputs or ()]
    for entry in inputs:
        if not entry.get("job_id"):
            continue
        stored = listed.get(entry["job_id"], [])
        if entry["index"] >= len(stored):
            error = JobError(
                ErrorCode.INVALID_REFERENCE,
                f"input.{entry['field']} names asset {entry['index']} of job {entry['job_id']}, which stored {len(stored)} asset(s) (indexes from 0)",
            )
            return finish(session, kid, JobStatus.FAILED, settings=settings, now=now, reason="invalid reference", error=error, expect_version=kid.version)
        entry["sha256"] = stored[entry["index"]].sha256
    won = jobs.transition(
        session,
        kid,
        JobStatus.QUEUED,
        reason=f"parents succeeded: {', '.join(pids)}",
        expect_version=kid.version,
        now=now,
        inputs=inputs,
        next_at=now + timedelta(seconds=settings.lease_s),  # the message below holds the step; lost, the sweep sends it after the lease
        deadline_at=intake.deadline(get_adapter(kid.provider), settings, now),
    )
    return [(submit_task(kid.provider), (kid.id, kid.version))] if won else []


def children_in(session: Session, parent_ids: Sequence[str]) -> list[str]:
    """The waiting children of several parents (a batch's cancelled jobs)."""
    out: list[str] = []
    for chunk in intake.chunks(list(parent_ids)):
        out += session.scalars(
            select(col(JobDependency.job_id))
            .join(Job, and_(col(Job.id) == col(JobDependency.job_id), col(Job.status) == JobStatus.WAITING))
            .where(col(JobDependency.parent_id).in_(chunk))
            .distinct()
        )
    return out


def insert_waiting(engine: Engine, job: Job) -> None:
    """Write a new waiting job, its `created` event and its job_dependency rows in one transaction
    (jobs.insert_new's part for a job with parents). IntegrityError if the id or key is taken."""
    row = {name: getattr(job, attr) for attr, name in jobs.job_columns()}
    with engine.begin() as conn:
        conn.execute(insert(table_of(Job)), row)
        conn.execute(
            insert(table_of(JobEvent)),
            {"job_id": job.id, "old_status": None, "new_status": job.status, "reason": "created", "payload_sha256": None, "at": job.created_at},
        )
        conn.execute(insert(table_of(JobDependency)), link_rows(job.id, job.inputs))


# -- batches: `k4u://items/<i>/assets/<n>` ---------------------------------------------------


def item_refs(value: dict[str, Any]) -> Iterator[tuple[Loc, int, int]]:
    """(place in the input, item, asset index) of each batch item reference in an input."""
    for loc, s in strings(value):
        if s[: len(SCHEME)].lower() == SCHEME and (ref := parse_ref(s)) is not None and ref.kind == "items":
            item, index = ref.asset()
            yield loc, int(item), index


def check_items(drafts: Sequence[Draft]) -> None:
    """A batch item may name the output of an earlier item only (so no cycle can be built): 422 otherwise."""
    for i, d in enumerate(drafts):
        if not d.files:
            continue
        d.items.extend(item_refs(d.input))
        for loc, item, _ in d.items:
            if item >= i:
                what = "itself" if item == i else f"a later item ({item})"
                raise IntakeInvalid((*d.at, "input", *loc), f"names {what}: k4u://items/<i>/... may name only an earlier item of the batch (0 to {i - 1})")


def _rewrite(found: dict[Loc, tuple[str, int]], loc: Loc, s: str) -> str:
    return job_asset_ref(*found[loc]) if loc in found else s


def bind_items(rows: list[dict[str, Any]], drafts: Sequence[Draft], item_job: Sequence[str]) -> list[dict[str, str]]:
    """The new rows of a batch's jobs (in `drafts` order, columns by name) with their item references
    rewritten to the `k4u://jobs/...` references of those items' jobs (`item_job`: the job id of every
    item of the request), in memory; the rows of jobs with parents made waiting. Their job_dependency rows."""
    links: list[dict[str, str]] = []
    for row, d in zip(rows, drafts, strict=True):
        if not d.files:
            continue
        found = {loc: (item_job[item], index) for loc, item, index in d.items}
        entries = list(d.inputs)
        if found:
            row["input"] = replace_strings(d.input, functools.partial(_rewrite, found))
            entries += [
                {"field": ".".join(map(str, loc)), "ref": job_asset_ref(job, index), "job_id": job, "index": index, "sha256": None}
                for loc, (job, index) in found.items()
            ]
            entries.sort(key=lambda e: str(e["field"]))
            row["inputs"] = entries
        if parents_of(entries):
            row["status"], row["next_at"] = JobStatus.WAITING.value, None
            links += link_rows(row["id"], entries)
    return links
