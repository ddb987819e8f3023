"""Generic new-api video tasks (`newapi_video`) end to end on the `k4u dev` stack (API, worker pools,
beat, real Redis and database) against the simulator: both operations over HTTP, for models that are
not Sora, Veo or Grok, the stored bytes checked against the simulator's; a bad size is a 422 naming
the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def post(stack: Stack, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "newapi_video", "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def test_newapi_video_every_operation(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    stack.sim_admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    jobs = {
        "generations": post(stack, "generations", {"model": "wan2.5-t2v-preview", "prompt": "a fox in snow", "size": "1280*720", "duration": 5}),
        "generations.data": post(stack, "generations", {"model": "wan2.5-i2v-preview", "image": "https://in.example/fox.png", "prompt": "x [sim:url=data]"}),
        "videos": post(stack, "videos", {"model": "MiniMax-Hailuo-02", "prompt": "a robot", "size": "1080P", "seconds": "6"}),
        "videos.content": post(stack, "videos", {"model": "kling-v2-1", "prompt": "waves [sim:url=none]"}),
    }
    for name, job_id in jobs.items():
        job = stack.wait_job(job_id, timeout_s=90)
        assert job["status"] == "succeeded", (name, job["error"])
        tasks = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"]}
        assert job["assets"][0]["sha256"] == tasks[job["provider_task_id"]]["content_sha256"], name
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "newapi_video", "operation": "videos", "input": {"model": "wan2.5", "prompt": "x", "size": "1280 x 720"}})
        assert r.status_code == 422 and "input.size" in r.text
        providers = {p["name"]: p for p in c.get("/v1/providers").json()["providers"]}
    ops = {o["name"] for o in providers["newapi_video"]["operations"]}
    assert ops == {"generations", "videos"} and providers["newapi_video"]["lost_submit"] == "none"
    assert stack.sim_admin("/_sim/paid")["count"] == 4
