"""Waiting for a job to finish, for callers that cannot take a callback.

    wait_for_job(rt, job_id, timeout_s) -> Job            sync (the CLI's `k4u wait` in local mode)
    await wait_for_job_async(rt, job_id, timeout_s) -> Job (GET /v1/jobs/{id}?wait=)

Both return the job once it is terminal, or as it is when the timeout passes; JobNotFound for an
unknown id. They look at the row every `interval_s` (K4U_LONGPOLL_INTERVAL_S): the async one runs
each short read in the threadpool and sleeps on the event loop in between, so a thousand waiting
requests hold no thread. Nothing here changes a job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio.to_thread

from models.errors import JobNotFound
from models.status import TERMINAL
from models.tables import Job
from workers.context import Runtime
from workers.db import session_scope

MAX_WAIT_S = 60.0


def load_job(rt: Runtime, job_id: str) -> Job:
    with session_scope(rt.engine) as session:
        job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def _done(job: Job) -> bool:
    return job.status in TERMINAL


def wait_for_job(rt: Runtime, job_id: str, timeout_s: float, *, interval_s: float | None = None) -> Job:
    """The job once terminal, or as it is after timeout_s seconds (blocks the calling thread)."""
    step = interval_s or rt.settings.longpoll_interval_s
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        job = load_job(rt, job_id)
        left = deadline - time.monotonic()
        if _done(job) or left <= 0:
            return job
        time.sleep(min(step, left))


async def wait_for_job_async(
    rt: Runtime, job_id: str, timeout_s: float, *, interval_s: float | None = None, gone: Callable[[], Awaitable[bool]] | None = None
) -> Job:
    """wait_for_job on an event loop: reads in the threadpool, waits with anyio.sleep; stops early
    (returning the job as it is) when `gone()` says the client has left."""
    step = interval_s or rt.settings.longpoll_interval_s
    deadline = time.monotonic() + max(0.0, min(timeout_s, MAX_WAIT_S))
    while True:
        job = await anyio.to_thread.run_sync(load_job, rt, job_id)
        left = deadline - time.monotonic()
        if _done(job) or left <= 0 or (gone is not None and await gone()):
            return job
        await anyio.sleep(min(step, left))
