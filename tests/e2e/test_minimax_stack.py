"""MiniMax end to end on the `k4u dev` stack (API, worker pools, beat, real Redis and database)
against the simulator: both operations over HTTP (video through the status query and
files/retrieve, TTS with its cost), a limit refused with a 422 naming the field before any paid
call, and the stored bytes checked against the simulator's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def post(stack: Stack, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "minimax", "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def test_minimax_every_operation(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    stack.sim_admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "minimax", "operation": "video", "input": {"prompt": "x", "resolution": "1080P", "duration": 10}})
    assert r.status_code == 422 and "input.resolution" in r.text
    text = "Durable jobs for a relay, read aloud."
    jobs = {
        "video": post(stack, "video", {"prompt": "a lighthouse at dusk [Push in]", "duration": 6, "resolution": "768P"}),
        "tts_async": post(stack, "tts_async", {"text": text, "voice_setting": {"voice_id": "English_Graceful_Lady"}}),
    }
    for name, job_id in jobs.items():
        job = stack.wait_job(job_id, timeout_s=90)
        assert job["status"] == "succeeded", (name, job["error"])
        tasks = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"] if t.get("family") == "minimax"}
        assert job["assets"][0]["sha256"] == tasks[job["provider_task_id"]]["content_sha256"], name
    tts = stack.wait_job(jobs["tts_async"])
    assert tts["assets"][0]["kind"] == "audio" and tts["result"]["cost"] == {"usage_characters": len(text)}
    assert [p["family"] for p in stack.sim_admin("/_sim/paid")["paid"]] == ["minimax", "minimax"]
