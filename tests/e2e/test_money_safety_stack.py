"""At most one paid relay task per job, end to end with real processes (API, worker, beat, the
simulator) on real Redis and a real database: a create that the relay processed but answered
with a 502, for every family; then the explicit retry of a job that failed for it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CASES = [
    ("kling", "text2video", {"prompt": "a fox after an outage"}, "kling"),
    ("midjourney", "imagine", {"prompt": "a lighthouse after an outage"}, "mj"),
    ("suno", "music", {"gpt_description_prompt": "a song about an outage"}, "suno"),
]


def tasks(stack: Stack, family: str) -> int:
    return int(stack.sim_admin("/_sim/stats")["tasks_by_family"][family])


def post(stack: Stack, provider: str, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": provider, "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def test_processed_but_502_costs_one_task_per_job_and_retry_is_explicit(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory()
    stack.sim_admin("/_sim/config", {"mj_dedupe_code21": False})
    for provider, operation, inp, family in CASES:
        stack.sim_admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
        job_id = post(stack, provider, operation, inp)
        job = stack.wait_job(job_id, timeout_s=60)
        assert tasks(stack, family) == 1, f"{provider}: the relay holds more than one paid task"
        if provider == "kling":
            assert job["status"] == "succeeded", job["error"]
            continue
        assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
        assert "charged" in job["error"]["message"]
        with stack.client() as c:
            r = c.post(f"/v1/jobs/{job_id}/retry")
            assert r.status_code == 202 and r.json()["attempt"] == 2, r.text
            assert c.post(f"/v1/jobs/{job_id}/retry").status_code == 409  # queued again: not failed
        job = stack.wait_job(job_id, timeout_s=60)
        assert job["status"] == "succeeded" and job["attempt"] == 2, job["error"]
        assert tasks(stack, family) == 2  # the retry was a decision, and it paid exactly once more


def test_midjourney_notify_hook_reveals_the_task_of_a_lost_answer(stack_factory) -> None:  # type: ignore[no-untyped-def]
    """With a public URL the imagine carries notifyHook and `state` = our job id: the first
    callback names the task, so a processed-but-502 job is adopted, not failed; one the relay never
    took fails once the grace period passes, without a resend."""
    stack = stack_factory(public=True, K4U_SUBMIT_CALLBACK_GRACE_S="4")
    stack.sim_admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    taken = post(stack, "midjourney", "imagine", {"prompt": "answer lost, task made"})
    job = stack.wait_job(taken, timeout_s=60)
    assert job["status"] == "succeeded" and job["provider_task_id"], job["error"]
    with stack.client() as c:
        reasons = [e["reason"] for e in c.get(f"/v1/jobs/{taken}/events").json()]
    assert any("recovered from the provider's callback" in r for r in reasons), reasons
    assert tasks(stack, "mj") == 1

    stack.sim_admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": False})
    never = post(stack, "midjourney", "imagine", {"prompt": "answer lost, nothing made"})
    job = stack.wait_job(never, timeout_s=60)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert "no callback revealed the task within 4 s" in job["error"]["message"]
    posts = sum(n for k, n in stack.sim_admin("/_sim/stats")["requests"].items() if k.startswith("POST") and "imagine" in k)
    assert tasks(stack, "mj") == 1 and posts == 2  # each job sent once; the second never made a task
