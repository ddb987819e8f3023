"""Sora, Veo and Grok end to end on the `k4u dev` stack (API, worker pools, beat, real Redis and
database) against the simulator: every operation over HTTP, a remix by our job id, and the
stored bytes checked against the simulator's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def post(stack: Stack, provider: str, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": provider, "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def test_video_families_every_operation(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    stack.sim_admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    jobs = {
        "sora.video": post(stack, "sora", "video", {"prompt": "a fox in snow", "seconds": 8}),
        "sora.video_unified": post(stack, "sora", "video_unified", {"prompt": "a fox [sim:synonyms]"}),
        "veo.video": post(stack, "veo", "video", {"prompt": "waves", "enable_upsample": True}),
        "veo.video_openai": post(stack, "veo", "video_openai", {"prompt": "waves"}),
        "grok.video": post(stack, "grok", "video", {"prompt": "a robot"}),
    }
    tasks = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"]}
    for name, job_id in jobs.items():
        job = stack.wait_job(job_id, timeout_s=90)
        assert job["status"] == "succeeded", (name, job["error"])
        tasks = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"]}
        assert job["assets"][0]["sha256"] == tasks[job["provider_task_id"]]["content_sha256"], name
    remix = post(stack, "sora", "remix", {"prompt": "at night", "job_id": jobs["sora.video"]})
    job = stack.wait_job(remix, timeout_s=90)
    assert job["status"] == "succeeded", job["error"]
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "sora", "operation": "remix", "input": {"prompt": "x", "job_id": jobs["sora.video_unified"]}})
    assert r.status_code == 422 and "input.job_id" in r.text
