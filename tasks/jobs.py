"""The Celery tasks. Each takes ids (and a version, the fencing token) and calls one service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ParamSpec, Protocol, TypeVar

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

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Task(Protocol[P, R_co]):
    """What the type checker may know of a task `task` registers (Celery ships no annotations):
    it runs when called, or through `run`, with the function's own arguments, and is sent by `name`."""

    name: str

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


def task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """`app.task(name=name)`, typed as what it makes of the function (see Task)."""
    register: Callable[[Callable[P, R]], Task[P, R]] = app.task(name=name)
    return register


@task(dispatch.SUBMIT)
def submit(job_id: str | list[list[str | int]], version: int | None = None) -> str | list[str]:
    """One job (job_id, version), or several the tick claimed together: a list of [job_id, version] (submit_many)."""
    return _one_or_many(submit_job, submit_many, job_id, version)


@task(dispatch.ONESHOT)
def oneshot(job_id: str, version: int) -> str:
    """The submit of a one-shot family's job: the same step, on its own queue and thread pool."""
    return submit_job(runtime(), job_id, version)


@task(dispatch.CANCEL)
def cancel(job_id: str, version: int) -> str:
    return cancel_at_provider(runtime(), job_id, version)


@task(dispatch.POLL)
def poll(job_ids: list[str]) -> int:
    return poll_jobs(runtime(), job_ids)


@task(dispatch.DOWNLOAD)
def download(job_id: str | list[list[str | int]], version: int | None = None) -> str | list[str]:
    """One job (job_id, version), or several sent together: a list of [job_id, version] (store_many)."""
    return _one_or_many(store_outputs, store_many, job_id, version)


@task(dispatch.NOTIFY)
def notify(delivery_id: str, version: int) -> str:
    return deliver_notification(runtime(), delivery_id, version)


@task(dispatch.MAINTAIN)
def maintain() -> dict[str, str]:
    return maintain_tables(runtime())


@task(dispatch.CLEAN_STORE)
def clean_store() -> int:
    return clean_store_leftovers(runtime())


@task(dispatch.TICK)
def tick() -> dict[str, int]:
    return sweep_tick(runtime())


def _one_or_many(
    one: Callable[[Runtime, str, int], str],
    many: Callable[[Runtime, Sequence[tuple[str, int]]], list[Outcome]],
    job_id: str | list[list[str | int]],
    version: int | None,
) -> str | list[str]:
    """A message of one job (job_id, version) or of several ([[job_id, version], ...]), as dispatch.MANY sends them."""
    if isinstance(job_id, list):
        return list(many(runtime(), [(str(j), int(v)) for j, v in job_id]))
    assert version is not None, "a message of one job names its version"
    return one(runtime(), job_id, version)
