"""Seedance end to end on the `k4u dev` stack (API, worker pools, beat, real Redis and database)
against a simulator that serves the family under /api/v3 only, reached through
K4U_ROUTE_PREFIXES: the operation over HTTP with its assets (video and last frame) checked against
the simulator's bytes, our callback URL forwarded and the relay's callbacks taken as hints, a cancel at the relay, a refusal before
anything is paid, and the family as GET /v1/providers publishes it."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from simulator.media import MP4_BYTES, PNG_BYTES
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def post(stack: Stack, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "seedance", "operation": "video", "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def test_seedance_video_on_an_api_v3_relay(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True, public=True, K4U_ROUTE_PREFIXES="seedance=/api/v3")
    stack.sim_admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0, "seedance_prefixes": "/api/v3"})
    with stack.client() as c:
        family = next(p for p in c.get("/v1/providers").raise_for_status().json()["providers"] if p["name"] == "seedance")
    assert (family["max_batch"], family["cancels"], family["route_prefix"], family["lost_submit"]) == (500, True, "/volc/v1", "none"), family
    assert "doubao-seedance-2-0-260128" in family["operations"][0]["input_schema"]["x-models"]
    with stack.client() as c:
        r = c.post(
            "/v1/jobs", json={"provider": "seedance", "operation": "video", "input": {"model": "doubao-seedance-2-0-260128", "prompt": "p", "duration": 16}}
        )
    assert r.status_code == 422 and "input.duration" in r.text, r.text
    plain = post(stack, {"prompt": "a paper boat", "duration": 5})
    frames = post(stack, {"prompt": "a paper boat [sim:processing] [sim:envelope]", "first_frame": "https://img.example/boat.png", "return_last_frame": True})
    queued = post(stack, {"prompt": "waits [sim:queue=120]"})
    stack.wait_job(queued, timeout_s=60, until=lambda j: j["status"] == "running")
    with stack.client() as c:
        assert c.post(f"/v1/jobs/{queued}/cancel").status_code == 200
    for job_id, kinds in ((plain, ["video"]), (frames, ["image", "video"])):
        job = stack.wait_job(job_id, timeout_s=90)
        assert job["status"] == "succeeded", job["error"]
        assert sorted(a["kind"] for a in job["assets"]) == kinds
        want = {"video": hashlib.sha256(MP4_BYTES).hexdigest(), "image": hashlib.sha256(PNG_BYTES).hexdigest()}
        assert all(a["sha256"] == want[a["kind"]] for a in job["assets"])
        assert job["result"]["cost"]["total_tokens"] > 0
    cancelled = stack.wait_job(queued, timeout_s=60, until=lambda j: j.get("provider_cancel") in ("done", "failed"))
    tasks = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"] if t.get("family") == "seedance"}
    assert cancelled["status"] == "cancelled" and tasks[cancelled["provider_task_id"]]["status"] == "cancelled"
    assert all((t["callback_url"] or "").startswith(stack.api) for t in tasks.values()), "our callback URL reaches the relay"
    hooks = [h for h in stack.sim_admin("/_sim/callbacks")["callbacks"] if h["task_id"] in tasks]
    assert {h["status"] for h in hooks} >= {"succeeded", "cancelled"} and all(h["ok"] for h in hooks), hooks  # hints our API took
    requests = stack.sim_admin("/_sim/stats")["requests"]
    assert requests.get("GET /api/v3/contents/generations/tasks", 0) >= 1 and not any("/volc/" in k for k in requests)
    assert stack.sim_admin("/_sim/paid")["count"] == 3
