"""Values the relay controls are bounded before they reach a schedule or a column (issue 24):
a Retry-After of a day, or of infinity, on a poll, a batch poll and a submit. Real database
(SQLite and PostgreSQL), the simulator over loopback (its 429s carry the configured Retry-After)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from providers.base import RETRY_AFTER_MAX_S
from tests.conftest import Sim


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
