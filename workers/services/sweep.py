"""tick: the beat's periodic pass that re-derives all pending work from the database.

Fails jobs past their deadline (downloads: past their download deadline), settles waiting jobs whose
parents are done (a parent's finish does it in its own transaction; this finds those a crash left),
finishes batches whose
jobs are all terminal (their batch.completed notification), then claims due work
and sends one message per step: queued jobs to submit, submissions whose lease ran out to
recovery, running jobs to poll (batched per provider), stuck downloads, relay-side cancels of
cancelled jobs still pending, and due notifications.
Losing every broker message loses nothing: the next tick finds the same work again once its
lease has run out.
"""

from __future__ import annotations

from models.errors import ErrorCode, JobError
from models.status import JobStatus
from providers.registry import ADAPTERS
from workers import deliveries, jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import CANCEL, DOWNLOAD, NOTIFY, POLL, QUEUES, SUBMIT, SUBMIT_MESSAGE_MAX, Followup, Followups, send_all, spread, submit_task
from workers.services import pipelines
from workers.services.apply import download_priority
from workers.services.batches import finish_done_batches
from workers.services.callbacks import prune_receipts
from workers.services.download import fail_expired_downloads
from workers.services.lifecycle import finish
from workers.services.poll import chunk_size

_DEADLINED = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING)


POLL_MESSAGE_MAX = 8  # jobs per poll message when many are due and the family polls one task per request


def poll_message_size(due: int, chunk: int, workers: int) -> int:
    """Job ids per poll message: a batch family's chunk (one relay request each); for a family polled
    one task at a time, the due jobs spread over the engine's processes, several to a message when
    many are due (fewer broker round trips), never more than POLL_MESSAGE_MAX (a message's polls run
    one after another)."""
    if chunk > 1:
        return chunk
    return spread(due, workers, POLL_MESSAGE_MAX)


def submit_message_size(due: int, workers: int) -> int:
    """Queued jobs per submit message: one each while the engine's processes can take them all at
    once, several when many are due, never more than SUBMIT_MESSAGE_MAX (a message's submits run one
    after another, each on its own claim). The submit and poll queues are served in turn, so a poll
    message of a batch family (100 jobs) no longer faces a submit message of one job while a big
    batch is being submitted."""
    return spread(due, workers, SUBMIT_MESSAGE_MAX)


class Room:
    """How many more jobs the tick may send to each queue: K4U_QUEUE_BACKLOG_MAX minus what the
    queue holds (asked of the broker once per queue and tick), never more than K4U_POLL_BATCH_LIMIT
    per claim. A held message of the submit queue counts as SUBMIT_MESSAGE_MAX jobs (it may carry
    that many), so the jobs waiting there stay within the cap. A broker that cannot say counts as empty."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._left: dict[str, int] = {}

    def left(self, task: str) -> int:
        queue = QUEUES[task]
        if queue not in self._left:
            held = (self._rt.dispatcher.backlog(task) or 0) * (SUBMIT_MESSAGE_MAX if queue == QUEUES[SUBMIT] else 1)
            self._left[queue] = max(0, self._rt.settings.queue_backlog_max - held)
        return self._left[queue]

    def take(self, task: str) -> int:
        return min(self._rt.settings.poll_batch_limit, self.left(task))

    def used(self, task: str, n: int) -> None:
        self._left[QUEUES[task]] = self.left(task) - n


def tick(rt: Runtime) -> dict[str, int]:
    s, now = rt.settings, rt.clock()
    counts: dict[str, int] = {}
    fu: Followups = []
    with session_scope(rt.engine) as session:
        expired = jobs.expired_deadlines(session, now, _DEADLINED, s.poll_batch_limit)
        for job in expired:
            fu += finish(
                session,
                job,
                JobStatus.FAILED,
                settings=s,
                now=now,
                reason="deadline passed",
                error=JobError(ErrorCode.TIMEOUT, "the job did not finish before its deadline", retryable=True),
            )
        counts["timed_out"] = len(expired)
        fu += fail_expired_downloads(session, settings=s, now=now, limit=s.poll_batch_limit)
        ready = pipelines.ready(session, s.poll_batch_limit)
        fu += pipelines.settle(session, ready, settings=s, now=now, finish=finish)
        counts["waiting_settled"] = len(ready)
    send_all(rt.dispatcher, fu)
    counts["batches_finished"] = finish_done_batches(rt)

    # One transaction claims every kind of due work (SKIP LOCKED keeps concurrent ticks apart); the
    # messages go out once it has committed. Running jobs are claimed per provider that has any due
    # (one DISTINCT over ix_job_due first), so a busy family cannot crowd out the others' polls.
    # CANCELLED: a terminal job has a next_at only while its relay-side cancel is pending (provider_cancel).
    # A queue that already holds K4U_QUEUE_BACKLOG_MAX messages gets nothing more this tick: the work
    # stays due in the database. Sent anyway, it would wait behind the backlog until its lease ran
    # out and the next tick sent it a second time.
    room = Room(rt)
    out: Followups = []
    submits: Followups = []  # queued jobs: several to a message when many are due
    polls: list[tuple[str, list[str]]] = []
    with session_scope(rt.engine) as session:
        for status, task in ((JobStatus.QUEUED, SUBMIT), (JobStatus.SUBMITTING, SUBMIT), (JobStatus.DOWNLOADING, DOWNLOAD), (JobStatus.CANCELLED, CANCEL)):
            claimed = jobs.claim_due(session, status, now=now, lease_s=s.lease_s, limit=room.take(task)) if room.left(task) else []
            room.used(task, len(claimed))
            for c in claimed:  # a one-shot family's submits go to its own queue, one job a message
                sent = submit_task(c.provider) if task == SUBMIT else task
                priority = download_priority(c.result_expires_at, now) if task == DOWNLOAD else None
                (submits if status == JobStatus.QUEUED and sent == SUBMIT else out).append(Followup(sent, (c.job_id, c.version), priority))
            counts[status.value] = len(claimed)
        for name in jobs.due_providers(session, JobStatus.RUNNING, now) if room.left(POLL) else []:
            if name in ADAPTERS and not ADAPTERS[name].capabilities.oneshot:  # a poll message carries several jobs: the room counts messages, loosely
                claimed = jobs.claim_due(session, JobStatus.RUNNING, now=now, lease_s=s.lease_s, limit=s.poll_batch_limit, provider=name)
                polls.append((name, [c.job_id for c in claimed]))
        due = deliveries.claim_due(session, now=now, lease_s=s.lease_s, limit=room.take(NOTIFY)) if room.left(NOTIFY) else []
        counts["receipts_pruned"] = prune_receipts(session, now)
    for name, ids in polls:
        size = poll_message_size(len(ids), chunk_size(rt, ADAPTERS[name]), s.worker_concurrency)
        out += [(POLL, (ids[i : i + size],)) for i in range(0, len(ids), size)]
    out += [(NOTIFY, d) for d in due]
    send_all(rt.dispatcher, submits, {SUBMIT: submit_message_size(len(submits), s.worker_concurrency)})
    send_all(rt.dispatcher, out)
    counts["running"] = sum(len(ids) for _, ids in polls)
    counts["notify"] = len(due)
    return counts
