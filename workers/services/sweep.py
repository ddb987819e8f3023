"""tick: the beat's periodic pass that re-derives all pending work from the database.

Fails jobs past their deadline (downloads: past their download deadline), finishes batches whose
jobs are all terminal (their batch.completed notification), then claims due work
and sends one message per step: queued jobs to submit, submissions whose lease ran out to
recovery, running jobs to poll (batched per provider), stuck downloads, relay-side cancels of
cancelled jobs still pending, and due notifications.
Losing every broker message loses nothing: the next tick finds the same work again once its
lease has run out.
"""

from __future__ import annotations

from models.status import JobStatus
from providers.registry import ADAPTERS
from workers import deliveries, jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import CANCEL, DOWNLOAD, NOTIFY, POLL, SUBMIT, Followup, Followups, send_all
from workers.services.apply import download_priority
from workers.services.batches import finish_done_batches
from workers.services.callbacks import prune_receipts
from workers.services.download import fail_expired_downloads
from workers.services.lifecycle import finish
from workers.services.poll import chunk_size

_DEADLINED = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING)


def tick(rt: Runtime) -> dict[str, int]:
    s, now = rt.settings, rt.clock()
    counts: dict[str, int] = {}
    fu: Followups = []
    with session_scope(rt.engine) as session:
        expired = jobs.expired_deadlines(session, now, _DEADLINED, s.poll_batch_limit)
        for job in expired:
            fu += finish(session, job, JobStatus.FAILED, settings=s, now=now, reason="deadline passed",
                         error=("timeout", "the job did not finish before its deadline", True))
        counts["timed_out"] = len(expired)
        fu += fail_expired_downloads(session, settings=s, now=now, limit=s.poll_batch_limit)
    send_all(rt.dispatcher, fu)
    counts["batches_finished"] = finish_done_batches(rt)
    with session_scope(rt.engine) as session:
        counts["receipts_pruned"] = prune_receipts(session, now)

    # CANCELLED: a terminal job has a next_at only while its relay-side cancel is pending (provider_cancel).
    for status, task in ((JobStatus.QUEUED, SUBMIT), (JobStatus.SUBMITTING, SUBMIT), (JobStatus.DOWNLOADING, DOWNLOAD),
                         (JobStatus.CANCELLED, CANCEL)):
        with session_scope(rt.engine) as session:
            claimed = jobs.claim_due(session, status, now=now, lease_s=s.lease_s, limit=s.poll_batch_limit)
        send_all(rt.dispatcher, [
            Followup(task, (c.job_id, c.version), download_priority(c.result_expires_at, now) if task == DOWNLOAD else None)
            for c in claimed
        ])
        counts[status.value] = len(claimed)

    polled = 0
    for name, adapter in ADAPTERS.items():
        with session_scope(rt.engine) as session:
            claimed = jobs.claim_due(session, JobStatus.RUNNING, now=now, lease_s=s.lease_s, limit=s.poll_batch_limit, provider=name)
        ids = [c[0] for c in claimed]
        size = chunk_size(rt, adapter)
        for i in range(0, len(ids), size):
            rt.dispatcher.send(POLL, ids[i : i + size])
        polled += len(ids)
    counts["running"] = polled

    with session_scope(rt.engine) as session:
        due = deliveries.claim_due(session, now=now, lease_s=s.lease_s, limit=s.poll_batch_limit)
    for delivery_id, version in due:
        rt.dispatcher.send(NOTIFY, delivery_id, version)
    counts["notify"] = len(due)
    return counts
