"""The Celery tasks. Each takes ids (and a version, the fencing token) and calls one service."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workers import dispatch
from workers.celery_app import app
from workers.context import Runtime
from workers.outcomes import Outcome
from workers.process import runtime
from workers.services.download import store_many, store_outputs
from workers.services.maintenance import clean_store as clean_store_leftovers, maintain as maintain_tables
from workers.services.notify import deliver_notification
from workers.services.poll import poll_jobs
from workers.services.provider_cancel import cancel_at_provider
from workers.services.submit import submit_job, submit_many
from workers.services.sweep import tick as sweep_tick


@app.task(name=dispatch.SUBMIT)
def submit(job_id: str | list[list[str | int]], version: int | None = None) -> str | list[str]:
    """One job (job_id, version), or several the tick claimed together: a list of [job_id, version] (submit_many)."""
    return _one_or_many(submit_job, submit_many, job_id, version)


@app.task(name=dispatch.CANCEL)
def cancel(job_id: str, version: int) -> str:
    return cancel_at_provider(runtime(), job_id, version)


@app.task(name=dispatch.POLL)
def poll(job_ids: list[str]) -> int:
    return poll_jobs(runtime(), job_ids)


@app.task(name=dispatch.DOWNLOAD)
def download(job_id: str | list[list[str | int]], version: int | None = None) -> str | list[str]:
    """One job (job_id, version), or several sent together: a list of [job_id, version] (store_many)."""
    return _one_or_many(store_outputs, store_many, job_id, version)


@app.task(name=dispatch.NOTIFY)
def notify(delivery_id: str, version: int) -> str:
    return deliver_notification(runtime(), delivery_id, version)


@app.task(name=dispatch.MAINTAIN)
def maintain() -> dict[str, str]:
    return maintain_tables(runtime())


@app.task(name=dispatch.CLEAN_STORE)
def clean_store() -> int:
    return clean_store_leftovers(runtime())


@app.task(name=dispatch.TICK)
def tick() -> dict[str, int]:
    return sweep_tick(runtime())


def _one_or_many(one: Callable[[Runtime, str, int], str], many: Callable[[Runtime, Sequence[tuple[str, int]]], list[Outcome]],
                 job_id: str | list[list[str | int]], version: int | None) -> str | list[str]:
    """A message of one job (job_id, version) or of several ([[job_id, version], ...]), as dispatch.MANY sends them."""
    if isinstance(job_id, list):
        return list(many(runtime(), [(str(j), int(v)) for j, v in job_id]))
    assert version is not None, "a message of one job names its version"
    return one(runtime(), job_id, version)
