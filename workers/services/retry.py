"""retry_job: a caller's explicit decision to submit a failed job again.

This is the answer to `submit_outcome_unknown` (the relay may have charged the first attempt; only
a person or a workflow may accept the risk of a second charge) and to any other failure worth
another try. The job keeps its id; it starts attempt N+1 with the same input from `queued`; the
earlier attempt's relay task id and error stay in its events, and its assets stay listed with
their attempt, their stored files untouched (the new attempt stores under its own keys: see
download.storage_key). The relay sees a new external id (`<job id>-a<N>`), so a lookup never
mistakes the old task for the new one.

A job whose input names other jobs' assets (a pipeline's) goes back to `waiting`, and its parents are
checked again at once (workers/services/pipelines.py): queued if they have all succeeded now (a failed
parent retried and succeeded), failed `dependency_failed` again otherwise. Retrying a parent never
revives children that already failed: retry each of them.
"""

from __future__ import annotations

from models.errors import JobNotFound, JobStateConflict
from models.status import JobStatus, SubmitState
from models.tables import Job
from providers.registry import get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import Followups, send_all, submit_task
from workers.services import intake, pipelines
from workers.services.lifecycle import finish


def retry_job(rt: Runtime, job_id: str) -> Job:
    """Move a failed job back to queued as a new attempt; JobStateConflict unless it failed."""
    now = rt.clock()
    fu: Followups = []
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        if job.status != JobStatus.FAILED:
            raise JobStateConflict(f"only a failed job can be retried; this one is {job.status}")
        task = f"relay task {job.provider_task_id}" if job.provider_task_id else "no relay task known"
        waits = bool(pipelines.parents_of(job.inputs))
        reason = f"retry requested: attempt {job.attempt + 1}; attempt {job.attempt} failed with {job.error_code or 'an error'} ({task})"
        won = jobs.transition(
            session,
            job,
            JobStatus.WAITING if waits else JobStatus.QUEUED,
            reason=reason,
            expect_version=job.version,
            now=now,
            attempt=job.attempt + 1,
            provider_task_id=None,
            submit_state=SubmitState.NOT_SENT,
            submit_attempts=0,
            submit_resends=0,
            download_attempts=0,
            progress=0,
            result=None,
            error_code=None,
            error_message=None,
            error_retryable=None,
            submitted_at=None,
            finished_at=None,
            next_at=None if waits else now,
            deadline_at=intake.deadline(get_adapter(job.provider), rt.settings, now),  # the intake of the new attempt
        )
        if not won:
            raise JobStateConflict("the job changed state meanwhile; try again")
        if waits:
            fu = pipelines.settle(session, [job.id], settings=rt.settings, now=now, finish=finish)
            job = jobs.get_job(session, job_id) or job
    # After the commit; if the broker is down the beat's tick submits the job (next_at is now).
    send_all(rt.dispatcher, fu if waits else [(submit_task(job.provider), (job.id, job.version))])
    return job
