"""Replicate and fal end to end on the `k4u dev` stack with callbacks on: signed webhooks (Standard
Webhooks with K4U_REPLICATE_WEBHOOK_SECRET, Ed25519 with K4U_FAL_JWKS fetched from the simulator's
JWKS) finish the jobs before any poll would; a forged or replayed delivery over HTTP gets a 401."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from providers.webhooks import sign
from simulator.config import REPLICATE_WEBHOOK_SECRET
from simulator.media import MEDIA_SHA256
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def post(stack: Stack, provider: str, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": provider, "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def reasons(stack: Stack, job_id: str) -> list[str]:
    with stack.client() as c:
        return [e["reason"] for e in c.get(f"/v1/jobs/{job_id}/events").json()]


def test_verified_webhooks_finish_jobs_and_forgeries_get_401(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(
        dev=True, public=True, K4U_REPLICATE_WEBHOOK_SECRET=REPLICATE_WEBHOOK_SECRET, K4U_POLL_EXPECTED_S="600", K4U_POLL_MIN_INTERVAL_S="300"
    )
    stack.sim_admin("/_sim/config", {"queue_s": 0.5, "run_s": 2.0})
    rep = post(stack, "replicate", "prediction", {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a kite"}})
    job = stack.wait_job(rep, timeout_s=60)
    assert job["status"] == "succeeded", job["error"]
    assert all(a["sha256"] == MEDIA_SHA256["png"] for a in job["assets"])
    assert any(r.startswith("callback: provider succeeded") for r in reasons(stack, rep)), reasons(stack, rep)

    hooks = [h for h in stack.sim_admin("/_sim/callbacks")["callbacks"] if h.get("family") == "replicate"]
    assert hooks and all(h.get("http_status") == 200 for h in hooks), hooks
    url = hooks[-1]["url"]
    body = json.dumps({"id": job["provider_task_id"], "status": "succeeded", "output": []}).encode()
    ts = int(time.time())
    forged = {"webhook-id": "msg_forged", "webhook-timestamp": str(ts), "webhook-signature": "v1,AAAA"}
    assert httpx.post(url, content=body, headers=forged).status_code == 401
    replayed = {
        "webhook-id": hooks[-1]["webhook_id"],
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(REPLICATE_WEBHOOK_SECRET, hooks[-1]["webhook_id"], ts, body),
    }
    r = httpx.post(url, content=body, headers=replayed)
    assert r.status_code == 401 and "replay" in r.text
    with stack.client() as c:
        assert c.get(f"/v1/jobs/{rep}").json()["status"] == "succeeded"


def test_fal_webhook_verified_against_the_jwks(stack_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jwks = tmp_path / "fal-jwks.json"  # loaded on first use: written once the simulator made its key
    stack = stack_factory(dev=True, public=True, K4U_FAL_JWKS=str(jwks), K4U_POLL_EXPECTED_S="600", K4U_POLL_MIN_INTERVAL_S="300")
    jwks.write_text(json.dumps(stack.sim_admin("/_sim/fal/jwks.json")))
    stack.sim_admin("/_sim/config", {"queue_s": 0.5, "run_s": 2.0})
    fal = post(stack, "fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "a kite [sim:gateway_retry] [sim:webhook_dupe]"}})
    job = stack.wait_job(fal, timeout_s=60)
    assert job["status"] == "succeeded", job["error"]
    assert job["assets"][0]["sha256"] == MEDIA_SHA256["png"]
    assert any(r.startswith("callback: provider succeeded") for r in reasons(stack, fal)), reasons(stack, fal)
    hooks = [h for h in stack.sim_admin("/_sim/callbacks")["callbacks"] if h.get("family") == "fal"]
    assert len(hooks) >= 2 and all(h.get("http_status") == 200 for h in hooks), hooks
    forged = {
        "X-Fal-Webhook-Request-Id": job["provider_task_id"],
        "X-Fal-Webhook-User-Id": "u",
        "X-Fal-Webhook-Timestamp": str(int(time.time())),
        "X-Fal-Webhook-Signature": "00" * 64,
    }
    assert httpx.post(hooks[-1]["url"], content=b'{"request_id": "x", "status": "OK", "payload": {}}', headers=forged).status_code == 401
