"""End to end: real processes (simulator, API, Celery worker, beat or `k4u dev`), real Redis,
real database. Polling and callback paths, a failing task, a 429 storm, duplicate and
reordered callbacks, and a worker killed mid-download that still finishes the job once."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import WEBHOOK_SECRET, Stack
from tests.servers import webhook_receiver
from workers import signing

pytestmark = pytest.mark.e2e

T2V = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a fox in the snow"}}


def post(stack: Stack, body: dict) -> dict:  # type: ignore[type-arg]
    with stack.client() as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]


def transitions(stack: Stack, job_id: str) -> list[tuple[str | None, str]]:
    with stack.client() as c:
        return [(e["from"], e["to"]) for e in c.get(f"/v1/jobs/{job_id}/events").json()]


def test_dev_stack_polling_path(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    jobs = [post(stack, T2V), post(stack, {"provider": "kling", "operation": "image", "input": {"prompt": "x", "n": 2}})]
    sha = stack.sim_admin("/_sim/media-sha256")
    for j in jobs:
        done = stack.wait_job(j["id"])
        assert done["status"] == "succeeded", done["error"]
        for a in done["assets"]:
            assert a["sha256"] == sha["png" if a["kind"] == "image" else "mp4"]
            with stack.client() as c:
                r = c.get(a["url"])
            assert r.status_code == 200 and len(r.content) == a["size"]
    assert stack.sim_admin("/_sim/stats")["callbacks_sent"] == 0
    submits = 'k4u_relay_requests_total{call="submit",provider="kling",status="200"} 2.0'
    deadline = time.monotonic() + 5  # the workers write their relay counts at most every half second
    while submits not in (metrics := httpx.get(f"{stack.api}/metrics").text) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 'k4u_jobs{provider="kling",status="succeeded"} 2.0' in metrics
    assert submits in metrics
    assert httpx.get(f"{stack.api}/readyz").status_code == 200
    from tests.conftest import SIM_KEY

    assert SIM_KEY not in stack.logs(), "the relay key must never reach a log"


def test_callback_path_with_duplicates_and_reordering(stack_factory) -> None:  # type: ignore[no-untyped-def]
    # Polls are made rare so that only the provider's callbacks (and the one poll confirming the end) can finish the job quickly.
    stack = stack_factory(public=True, K4U_POLL_EXPECTED_S="600", K4U_POLL_MIN_INTERVAL_S="60")
    stack.sim_admin("/_sim/config", {"callback_duplicates": 2, "callback_reorder": True})
    with webhook_receiver() as hook:
        job = post(stack, T2V | {"callback_url": hook.url})
        done = stack.wait_job(job["id"], timeout_s=30)
        assert done["status"] == "succeeded"
        (note,) = hook.wait(1)
        time.sleep(1.5)  # late duplicates have had time to arrive
        assert len(hook.received) == 1
    stats = stack.sim_admin("/_sim/stats")
    assert stats["callbacks_sent"] >= 6
    logs = stack.logs()
    assert f"/v1/webhooks/kling/{job['id']}/***" in logs, "the API's access log shows callbacks..."
    assert not re.search(r"/v1/webhooks/kling/[^/\s]+/(?!\*\*\*)[^/\s\"]+", logs), "...with their tokens redacted"
    # Kling signs nothing: the success the callback told is confirmed by one poll (the simulator counts its route by template)
    assert stats["requests"].get("GET /kling/v1/videos/text2video/{id}", 0) == 1
    assert transitions(stack, job["id"]).count(("running", "downloading")) == 1
    ts = int(note.headers["webhook-timestamp"])
    assert signing.verify(WEBHOOK_SECRET, note.headers["webhook-id"], ts, note.body, note.headers["webhook-signature"], now=int(time.time()))
    assert json.loads(note.body)["data"]["status"] == "succeeded"


def test_failing_task_and_429_storm(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory()
    stack.sim_admin("/_sim/faults", {"rate_limit_next": 25})
    with webhook_receiver() as hook:
        bad = post(stack, {"provider": "kling", "operation": "text2video", "input": {"prompt": "[sim:fail] x"}, "callback_url": hook.url})
        good = [post(stack, T2V) for _ in range(4)]
        failed = stack.wait_job(bad["id"], timeout_s=90)
        assert failed["status"] == "failed" and failed["error"]["code"] == "provider_failed"
        assert [stack.wait_job(j["id"], timeout_s=90)["status"] for j in good] == ["succeeded"] * 4
        (note,) = hook.wait(1)
        assert json.loads(note.body)["type"] == "job.failed"
    assert stack.sim_admin("/_sim/stats")["tasks"] == 5


def test_worker_killed_mid_download_finishes_the_job_once(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(K4U_LEASE_S="3", K4U_DOWNLOAD_TIMEOUT_S="3")
    stack.sim_admin("/_sim/config", {"slow_media_s": 6.0})
    with webhook_receiver() as hook:
        job = post(stack, T2V | {"callback_url": hook.url})
        stack.wait_job(job["id"], until=lambda j: j["status"] == "downloading")
        time.sleep(1.0)  # the download is under way
        stack.kill("worker")
        assert stack.wait_job(job["id"], timeout_s=2, until=lambda j: True)["status"] == "downloading"
        stack.sim_admin("/_sim/config", {"slow_media_s": 0.0})
        stack.start("worker", "worker", "--name", "w2@%h")
        done = stack.wait_job(job["id"], timeout_s=60)
        assert done["status"] == "succeeded", done["error"]
        assert len(done["assets"]) == 1 and done["assets"][0]["sha256"] == stack.sim_admin("/_sim/media-sha256")["mp4"]
        hook.wait(1)
        time.sleep(1.0)
        assert len(hook.received) == 1
    assert transitions(stack, job["id"]).count(("downloading", "succeeded")) == 1
    assert stack.sim_admin("/_sim/stats")["creates"] == 1
    # A SIGKILLed write can leave its hidden temp file behind; it is never an object.
    files = [f.name for f in (stack.tmp / "objects" / job["id"]).iterdir() if not f.name.startswith(".")]
    assert files == ["0.mp4"]


def test_dev_bundles_redis_and_stops_cleanly_on_sigterm(tmp_path, e2e_db: str) -> None:  # type: ignore[no-untyped-def]
    """`k4u dev` with K4U_REDIS_URL unset: it starts its own Redis, serves, and on SIGTERM stops
    every child (API port closed, bundled redis-server gone)."""
    import os
    import signal
    import subprocess
    import sys

    from cli.procs import free_port
    from tests.e2e.conftest import wait_http

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")} | {
        "K4U_DATABASE_URL": e2e_db,
        "K4U_DATA_DIR": str(tmp_path / "data"),
        "K4U_STORAGE_URL": f"file://{tmp_path}/objects",
    }
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "cli", "dev", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, tmp_path)
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.2)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) >= 4  # redis, worker, beat, api
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
        alive = [pid for pid in children if os.path.exists(f"/proc/{pid}") and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
