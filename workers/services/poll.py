"""poll_jobs: ask the relay about running jobs (one batch query where the provider has one)
and fold each answer into its job through apply_status. Polls are idempotent; a 429 or a 5xx
only pushes next_at out (honouring Retry-After, bounded, and never past the last stretch before
the job's deadline), it never fails a job. When a relay answers the batch route with
404/405/501, this process polls that family one task at a time for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlmodel import col, select

from models.errors import BatchUnsupported, ProviderProtocolError, ProviderUnavailable
from models.status import JobStatus
from models.tables import Job
from providers.base import Adapter, ProviderStatus
from providers.registry import get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import autocommit_scope, session_scope
from workers.dispatch import Followups, send_all
from workers.flows import run_flow
from workers.services.apply import apply_status, folds_poll_count, reschedule, still_running
from workers.services.schedule import next_poll_at

log = logging.getLogger("k4u.poll")

_BATCH_OFF_S = 600.0


def chunk_size(rt: Runtime, adapter: Adapter) -> int:
    """Task ids per poll request: the batch size where batch polling is on and available, else 1."""
    if not rt.settings.batch_polling or adapter.capabilities.max_batch <= 1:
        return 1
    if rt.batch_off_until.get(adapter.name, 0.0) > time.monotonic():
        return 1
    return max(1, min(rt.settings.poll_batch_size, adapter.capabilities.max_batch))


def poll_jobs(rt: Runtime, job_ids: Sequence[str]) -> int:
    """Poll the given jobs; returns how many were still running and asked about. The follow-ups
    (downloads above all) go out once the message's polls have ended, so that the downloads of
    one message share download messages (send_all)."""
    # By primary key only, the status checked here: with `status = 'running'` in the WHERE,
    # PostgreSQL took ix_job_status whenever its statistics lagged behind a fast-growing table
    # (31 running jobs estimated, 41,647 index entries read for 100 ids at 20,000 in flight):
    # a cost that grew with the jobs in flight. The primary key reads 100 rows for 100 ids.
    with autocommit_scope(rt.engine) as session:
        rows = session.exec(select(Job).where(col(Job.id).in_(list(job_ids)))).all()
    by_provider: dict[str, list[Job]] = {}
    for job in rows:
        if job.status == JobStatus.RUNNING and job.provider_task_id and not get_adapter(job.provider).capabilities.oneshot:  # a one-shot answer is final
            by_provider.setdefault(job.provider, []).append(job)
    asked = 0
    fu: Followups = []
    try:
        for provider, group in by_provider.items():
            adapter = get_adapter(provider)
            size = chunk_size(rt, adapter)
            for i in range(0, len(group), size):
                chunk = group[i : i + size]
                fu += _poll_chunk(rt, provider, chunk, batch=size > 1)
                asked += len(chunk)
    finally:  # what committed chunks asked for goes out even if a later chunk raised
        send_all(rt.dispatcher, fu)
    return asked


def _poll_chunk(rt: Runtime, provider: str, chunk: list[Job], *, batch: bool) -> Followups:
    """Ask about one chunk and write the answers; returns the follow-ups of what it committed."""
    adapter = get_adapter(provider)
    targets = [jobs.target(j) for j in chunk]
    try:
        label = f"{provider}.poll_batch" if batch else f"{provider}.poll"
        bodies: list[bytes] = []
        statuses = run_flow(rt.relay, adapter.poll(targets, batch=batch), label, bodies)
    except BatchUnsupported as exc:
        log.warning("%s %s; polling one task at a time for %.0fs", provider, exc.message, _BATCH_OFF_S)
        rt.batch_off_until[provider] = time.monotonic() + _BATCH_OFF_S
        return [f for job in chunk for f in _poll_chunk(rt, provider, [job], batch=False)]
    except (ProviderUnavailable, ProviderProtocolError) as exc:
        delay = getattr(exc, "retry_after_s", None)
        _push_back(rt, chunk, delay)
        log.warning("%s poll of %d job(s) failed: %s", provider, len(chunk), exc.message)
        return []
    except Exception:  # an adapter bug on an odd answer must not break the whole poll round
        log.exception("%s poll of %d job(s): unexpected error reading the answer", provider, len(chunk))
        _push_back(rt, chunk, None)
        return []
    matched = _match(chunk, statuses)
    # Jobs simply still running are written from the rows read before asking, many in one
    # statement; the UPDATE matches only a job still running and never lowers its progress.
    now = rt.clock()
    quick = [reschedule(job, st, rt.settings, now) for job, st in matched if still_running(st)]
    rest = [(job, st) for job, st in matched if not still_running(st)]
    fu: Followups = []
    with session_scope(rt.engine) as session:
        jobs.reschedule_running(session, quick, now)
        # The others from the same rows, each write a CAS on the row as read; a job that moved
        # meanwhile (a callback, a claim) is read again in this transaction and the answer applied to that.
        uncounted: list[str] = []
        for job, st in rest:
            folded = folds_poll_count(st)
            try:
                fu += apply_status(session, job, st, settings=rt.settings, now=now, source="poll", payload=bodies[-1], polled=folded, as_read=True)
            except jobs.RowChanged:
                row = jobs.get_job(session, job.id)
                if row is None:
                    continue
                folded = row.status == JobStatus.RUNNING and folded
                fu += apply_status(session, row, st, settings=rt.settings, now=now, source="poll", payload=bodies[-1], polled=folded)
            if not folded:
                uncounted.append(job.id)
        jobs.count_polls(session, uncounted)
    answered = {job.id for job, _ in matched}
    missing = [j for j in chunk if j.id not in answered]
    if missing:  # a batch answer omits unknown ids: ask again at the normal interval
        _push_back(rt, missing, None)
    return fu


def _match(chunk: list[Job], statuses: list[ProviderStatus]) -> list[tuple[Job, ProviderStatus]]:
    """Pair answers with jobs by task id, then by our id echoed back. Several jobs may share one
    provider task (a Midjourney modal job and the parked task it finishes)."""
    if len(chunk) == 1 and len(statuses) == 1:
        return [(chunk[0], statuses[0])]
    by_task: dict[str, list[Job]] = {}
    for j in chunk:
        by_task.setdefault(j.provider_task_id or "", []).append(j)
    by_ext = {j.id: j for j in chunk}
    out = []
    for st in statuses:
        found = by_task.get(st.task_id or "") or ([by_ext[st.external_id]] if st.external_id in by_ext else [])
        out += [(job, st) for job in found]
    return out


def _push_back(rt: Runtime, chunk: list[Job], retry_after_s: float | None) -> None:
    now = rt.clock()
    with session_scope(rt.engine) as session:
        for job in chunk:
            jobs.set_fields(session, job.id, JobStatus.RUNNING, next_at=next_poll_at(job, rt.settings, now, wait_s=retry_after_s))
