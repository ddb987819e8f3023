"""Values the relay controls are bounded before they reach a schedule or a column (issue 24):
a Retry-After of a day, or of infinity, on a poll, a batch poll and a submit; a task id of 300
characters; an error code of 100. Real database (SQLite and PostgreSQL), the simulator over
loopback (its 429s carry the configured Retry-After; `long_task_id_rate` lengthens task ids)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from models.tables import JobEvent
from providers.base import RETRY_AFTER_MAX_S
from tests.conftest import Driver, Sim
from workers.db import session_scope

CREATES = {"kling": ("text2video", {"prompt": "a fox"}), "suno": ("music", {"gpt_description_prompt": "lofi rain"})}


@pytest.fixture
def make(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})

    def _make(**extra: Any):  # type: ignore[no-untyped-def]
        return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0, **extra)

    return _make


def rate_limit_next(sim: Sim, retry_after: str) -> None:
    """The relay's next answer, whatever the request: 429 with this Retry-After."""
    sim.admin("/_sim/config", {"retry_after": retry_after})
    sim.admin("/_sim/faults", {"rate_limit_next": 1})


@pytest.mark.parametrize("deadline_s", [None, 400])
def test_a_poll_answered_429_for_a_day_still_collects_the_result(make, sim: Sim, deadline_s: float | None) -> None:  # type: ignore[no-untyped-def]
    d = make(job_deadline_s=deadline_s)
    job_id = d.create("kling", "text2video", {"prompt": "a fox"})
    assert d.job(job_id).status == "running"
    rate_limit_next(sim, "86400")
    d.run_for(10, step=2)
    job = d.job(job_id)
    assert sim.admin("/_sim/faults")["rate_limit_next"] == 0 and job.status == "running", "the first poll was answered 429"
    assert job.next_at is not None and job.deadline_at is not None
    assert job.next_at <= d.clock.now() + timedelta(seconds=RETRY_AFTER_MAX_S) and job.next_at < job.deadline_at
    d.run_for(700, step=10)
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)


def test_polls_near_the_deadline_go_on_whatever_the_relay_asks(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """The poll before the deadline answered 429 for a day too: the job is asked again before it."""
    d = make(job_deadline_s=400)
    job_id = d.create("kling", "text2video", {"prompt": "a fox"})
    rate_limit_next(sim, "86400")
    d.run_for(10, step=2)
    sim.admin("/_sim/faults", {"rate_limit_next": 1})
    d.run_for(380, step=2)  # to the last stretch before the deadline (390 s)
    job = d.job(job_id)
    assert sim.admin("/_sim/faults")["rate_limit_next"] == 0 and job.status == "running", "the last poll was answered 429"
    assert job.next_at is not None and job.deadline_at is not None and job.next_at < job.deadline_at
    d.run_for(20, step=1)
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)


def test_a_batch_poll_answered_429_for_a_day_collects_every_job(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = make(job_deadline_s=400)
    ids = [d.create("midjourney", "imagine", {"prompt": f"a lighthouse {i}"}) for i in range(3)]
    rate_limit_next(sim, "86400")
    d.run_for(10, step=2)
    assert sim.stats()["requests"]["POST /mj/task/list-by-condition"] == 1, "one batch poll, answered 429"
    assert [d.job(i).status for i in ids] == ["running"] * 3
    d.run_for(400, step=10)
    assert [(d.job(i).status, d.job(i).error_code) for i in ids] == [("succeeded", None)] * 3


@pytest.mark.parametrize("retry_after", ["inf", "nan"])
def test_a_submit_answered_429_with_a_bad_retry_after_waits_in_queued(make, sim: Sim, retry_after: str) -> None:  # type: ignore[no-untyped-def]
    """Suno has no lookup: a submit step that crashed after the relay's no would fail the job
    `submit_outcome_unknown` when re-driven, though nothing was sent to be charged."""
    d = make()
    rate_limit_next(sim, retry_after)
    job_id = d.create("suno", "music", {"gpt_description_prompt": "lofi rain"})
    job = d.job(job_id)
    assert job.status == "queued" and job.error_code == "rate_limited"
    d.run_for(60, step=2)
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert sim.stats()["tasks_by_family"]["suno"] == 1


def reasons(d: Driver, job_id: str) -> list[str]:
    with session_scope(d.rt.engine) as s:
        return [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()]  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", list(CREATES))
def test_a_task_id_too_long_to_store_fails_the_job_saying_it_was_charged(make, sim: Sim, provider: str) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"long_task_id_rate": 1.0})
    d = make()
    job_id = d.create(provider, *CREATES[provider])
    (paid,) = sim.admin("/_sim/paid")["paid"]
    assert len(paid["task_id"]) == 300
    job = d.job(job_id)
    assert (job.status, job.error_code, job.error_retryable) == ("failed", "invalid_relay_answer", False)
    assert "300 characters" in (job.error_message or "") and "charged" in (job.error_message or "")
    assert job.provider_task_id is None
    assert any(paid["task_id"][:60] in r and paid["task_id"] not in r for r in reasons(d, job_id)), "the id, cut, in the events"
    d.run_for(20, step=2)
    assert d.job(job_id).status == "failed" and len(sim.admin("/_sim/paid")["paid"]) == 1, "never resent"


class Answers(httpx.BaseTransport):
    """The simulator, but every create answered `body` (values the simulator does not send)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._inner, self.body = httpx.HTTPTransport(), body

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json=self.body)
        return self._inner.handle_request(request)


def test_an_over_long_error_code_and_message_are_cut(make) -> None:  # type: ignore[no-untyped-def]
    d = make(relay_transport=Answers({"code": "E" * 100, "message": "m" * 100_000, "data": None}))
    job_id = d.create("kling", *CREATES["kling"])
    job = d.job(job_id)
    assert (job.status, job.error_code) == ("failed", "E" * 64)
    assert job.error_message is not None and job.error_message == "m" * len(job.error_message) and len(job.error_message) <= 2000
