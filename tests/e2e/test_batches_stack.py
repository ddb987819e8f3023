"""End to end: a batch through real processes (simulator, API, Celery worker, beat) on real Redis
and a real database. The beat's tick submits the queued jobs, and batch.completed is POSTed once,
signed, with the final counts, when every job is terminal; long-poll returns a finished job."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import WEBHOOK_SECRET
from tests.servers import webhook_receiver
from workers import signing

pytestmark = pytest.mark.e2e


def test_batch_completed_is_sent_once_with_the_counts(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory()
    with webhook_receiver() as hook, webhook_receiver() as job_hook:
        jobs = [{"provider": "kling", "operation": "text2video", "input": {"prompt": f"fox {i}"}, "idempotency_key": f"e2e-{i}"} for i in range(4)]
        jobs[1]["input"] = {"prompt": "[sim:fail] fox"}
        jobs[2]["callback_url"] = job_hook.url
        body = {"jobs": jobs, "callback_url": hook.url, "metadata": {"sheet": "e2e"}}
        with stack.client() as c:
            r = c.post("/v1/batches", json=body)
            assert r.status_code == 202, r.text
            batch = r.json()
            assert c.post("/v1/batches", json=body).json()["job_ids"] == batch["job_ids"]  # re-sent: nothing twice
            done = c.get(f"/v1/jobs/{batch['job_ids'][0]}", params={"wait": 60}, timeout=90).json()
            assert done["status"] == "succeeded", done
        (note,) = hook.wait(1, timeout_s=90)
        time.sleep(2.0)  # a few more ticks: still one notification
        assert len(hook.received) == 1
        job_hook.wait(1)
    h = note.headers
    assert h["webhook-id"] == f"msg_{batch['id']}_completed"
    assert signing.verify(WEBHOOK_SECRET, h["webhook-id"], int(h["webhook-timestamp"]), note.body, h["webhook-signature"], now=int(time.time()))
    sent = json.loads(note.body)
    assert sent["type"] == "batch.completed" and sent["data"]["id"] == batch["id"] and sent["data"]["metadata"] == {"sheet": "e2e"}
    assert {k: v for k, v in sent["data"]["counts"].items() if v} == {"succeeded": 3, "failed": 1}
    assert sent["data"]["status"] == "completed" and sent["data"]["total"] == 4
    with stack.client() as c:
        now = c.get(f"/v1/batches/{batch['id']}").json()
        assert now["status"] == "completed" and now["finished_at"] == sent["data"]["finished_at"]
        (listed,) = c.get(f"/v1/batches/{batch['id']}/notifications").json()
        assert listed["status"] == "delivered" and listed["webhook_id"] == h["webhook-id"]
    assert stack.sim_admin("/_sim/stats")["tasks"] == 4
