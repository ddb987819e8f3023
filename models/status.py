"""Job states and the literal transition table.

Rule: every allowed transition is in TRANSITIONS; nothing else may change a job's status.
The compare-and-swap that applies a transition lives in workers/jobs.py.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    WAITING = "waiting"  # its input names another job's output: queued once every parent has succeeded
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SubmitState(StrEnum):
    """Where a job's paid POST stands (job.submit_state): the money-safety rule reads it."""

    NOT_SENT = "not_sent"
    SENDING = "sending"
    UNKNOWN = "unknown"  # sent, answer lost: look it up before anything else
    RECOVERING = "recovering"
    AWAITING_CALLBACK = "awaiting_callback"  # answer lost; a callback may still name the task
    ACCEPTED = "accepted"


class ProviderCancel(StrEnum):
    """Where the cancel of a cancelled job's relay task stands (job.provider_cancel; None: nothing
    to cancel there, the family has no cancel or the job never reached the relay)."""

    PENDING = "pending"  # to be sent (or sent again after a 5xx), at next_at
    DONE = "done"  # the relay answered; the event says whether the task was actually stopped
    FAILED = "failed"  # given up after K4U_PROVIDER_CANCEL_MAX_ATTEMPTS


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


Q, S, R, D = JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING
OK, KO, CX = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED
W = JobStatus.WAITING

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # waiting -> queued: every parent succeeded (workers/services/pipelines.py); -> failed: a parent
    # failed or was cancelled (dependency_failed), or an asset it names was not produced (invalid_reference).
    W: frozenset({Q, KO, CX}),
    Q: frozenset({S, KO, CX}),
    # submitting -> queued: the relay said "not now" (429, queue full) or the request never left.
    # submitting -> submitting: a recovered submission takes a new lease (version bump).
    S: frozenset({S, Q, R, KO, CX}),
    R: frozenset({D, KO, CX}),
    D: frozenset({OK, KO, CX}),
    OK: frozenset(),
    # failed -> queued: only by an explicit decision (POST /v1/jobs/{id}/retry), never by the
    # engine; it starts a new attempt of the same input (the answer to submit_outcome_unknown).
    # failed -> waiting: the retry of a job whose input names other jobs' outputs re-checks its parents.
    KO: frozenset({Q, W}),
    CX: frozenset(),
}

# Terminal: the engine does no more work on the job (a failed job may still be retried by a caller).
TERMINAL: frozenset[JobStatus] = frozenset({OK, KO, CX})
ACTIVE: frozenset[JobStatus] = frozenset({W, Q, S, R, D})


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    """True when the table allows old -> new."""
    return new in TRANSITIONS[old]


def mermaid() -> str:
    """The state diagram, generated from the table (docs/state-machine.md)."""
    lines = ["stateDiagram-v2", "    [*] --> queued", "    [*] --> waiting"]
    for old, news in TRANSITIONS.items():
        for new in sorted(news):
            lines.append(f"    {old.value} --> {new.value}")
    lines += [f"    {t.value} --> [*]" for t in sorted(TERMINAL)]
    return "\n".join(lines)
