"""Vidu end to end on the stack (API, worker, beat, real Redis and database) against the
simulator, with a public URL so the relay's callbacks reach the API: every operation over HTTP with
its assets and cost, a refusal before anything is paid, then the money path: a submit whose answer
was lost is adopted when the simulator's callback names the task (echoing our payload), and one
whose task sends no callback fails `submit_outcome_unknown` once the grace has passed; each job is
one paid task."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.media import MEDIA_SHA256
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e
IMG = "https://images.example.com/cat.png"


def post(stack: Stack, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "vidu", "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def paid(stack: Stack) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in stack.sim_admin("/_sim/paid")["paid"]:
        out[row["external_id"]] = out.get(row["external_id"], 0) + 1
    return out


def test_vidu_every_operation_and_the_lost_submit_paths(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(public=True, K4U_SUBMIT_CALLBACK_GRACE_S="4")
    stack.sim_admin("/_sim/config", {"queue_s": 0.5, "run_s": 1.5})
    jobs = {
        "text2video": post(stack, "text2video", {"model": "viduq3-pro", "prompt": "a fox in snow", "duration": 4, "audio": True}),
        "img2video": post(stack, "img2video", {"model": "viduq1", "images": [IMG], "duration": 5}),
        "start_end2video": post(stack, "start_end2video", {"model": "viduq2", "images": [IMG, IMG]}),
        "reference2video": post(stack, "reference2video", {"model": "vidu2.0", "prompt": "the cat dances", "images": [IMG] * 2, "duration": 8}),
        "reference2image": post(stack, "reference2image", {"model": "viduq2", "prompt": "the cat as a statue", "images": [IMG]}),
    }
    for op, job_id in jobs.items():
        job = stack.wait_job(job_id, timeout_s=90)
        assert job["status"] == "succeeded", (op, job["error"])
        want = [("image", MEDIA_SHA256["png"])] if op == "reference2image" else [("image", MEDIA_SHA256["jpg"]), ("video", MEDIA_SHA256["mp4"])]
        assert sorted((a["kind"], a["sha256"]) for a in job["assets"]) == want, op
        assert job["result"]["cost"]["credits"] > 0
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "vidu", "operation": "text2video", "input": {"model": "viduq1", "prompt": "x", "duration": 8}})
    assert r.status_code == 422 and "input.duration" in r.text
    assert paid(stack) == dict.fromkeys(jobs.values(), 1)

    stack.sim_admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    adopted = post(stack, "text2video", {"model": "viduq2", "prompt": "answer lost, task made"})
    job = stack.wait_job(adopted, timeout_s=60)
    assert job["status"] == "succeeded" and job["provider_task_id"], job["error"]
    with stack.client() as c:
        reasons = [e["reason"] for e in c.get(f"/v1/jobs/{adopted}/events").json()]
    assert any("recovered from the provider's callback" in r for r in reasons), reasons

    stack.sim_admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    silent = post(stack, "text2video", {"model": "viduq2", "prompt": "answer lost, no callback [sim:no_callback]"})
    job = stack.wait_job(silent, timeout_s=60)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
    assert "no callback revealed the task within 4 s" in job["error"]["message"]
    assert paid(stack)[adopted] == 1 and paid(stack)[silent] == 1
