"""GET /v1/jobs/{id}?wait= over real HTTP on SQLite and PostgreSQL: a job that finishes during the
wait comes back within about a second, a timeout returns the job as it is, waits hold no thread,
and the sync wait_for_job the CLI uses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from models.errors import JobNotFound
from models.schemas import JobCreate
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers.context import Runtime, build_runtime
from workers.dispatch import RecordingDispatcher
from workers.services.create import cancel_job, create_job
from workers.services.longpoll import wait_for_job

T2V = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox"}}


@pytest.fixture
def rt(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(db_url, sim.url, tmp_path), RecordingDispatcher())
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, runtime=rt)) as url, httpx.Client(base_url=url, timeout=90) as c:
        yield c


def new_job(rt: Runtime) -> str:
    job, _ = create_job(rt, JobCreate(**T2V))
    return job.id


def cancel_later(rt: Runtime, job_id: str, after_s: float) -> list[float]:
    at: list[float] = []

    def run() -> None:
        time.sleep(after_s)
        at.append(time.monotonic())  # before the commit: a waiter woken by it always finds the time here
        cancel_job(rt, job_id)

    threading.Thread(target=run, daemon=True).start()
    return at


def test_a_job_finishing_during_the_wait_is_returned_within_a_second(rt: Runtime, client: httpx.Client) -> None:
    job_id = new_job(rt)
    cancelled_at = cancel_later(rt, job_id, 1.5)
    started = time.monotonic()
    r = client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
    answered = time.monotonic()
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert answered - started >= 1.4
    assert answered - cancelled_at[0] < 1.5  # polled every 0.5 s (K4U_LONGPOLL_INTERVAL_S)


def test_a_timeout_returns_the_job_as_it_is(rt: Runtime, client: httpx.Client) -> None:
    job_id = new_job(rt)
    started = time.monotonic()
    r = client.get(f"/v1/jobs/{job_id}", params={"wait": 1})
    assert r.status_code == 200 and r.json()["status"] == "queued" and r.json()["id"] == job_id
    assert 1.0 <= time.monotonic() - started < 10
    cancel_job(rt, job_id)
    started = time.monotonic()
    assert client.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()["status"] == "cancelled"  # terminal: at once
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("wait", ["61", "-1", "nan", "inf", "soon"])
def test_a_bad_wait_is_422_naming_it(rt: Runtime, client: httpx.Client, wait: str) -> None:
    r = client.get(f"/v1/jobs/{new_job(rt)}", params={"wait": wait})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "wait"]


def test_unknown_job_is_404_at_once(client: httpx.Client) -> None:
    started = time.monotonic()
    assert client.get("/v1/jobs/job_0123abcd", params={"wait": 30}).status_code == 404
    assert time.monotonic() - started < 5


def test_waiting_requests_hold_no_thread(rt: Runtime, client: httpx.Client) -> None:
    """More waiters than the threadpool has threads (40): if each held one, other requests would queue."""
    job_id = new_job(rt)
    base = str(client.base_url)

    def wait_once() -> int:
        return httpx.get(f"{base}/v1/jobs/{job_id}", params={"wait": 6}, timeout=60).status_code

    with ThreadPoolExecutor(60) as pool:
        futures = [pool.submit(wait_once) for _ in range(60)]
        time.sleep(2.0)  # every waiter is in
        assert not any(f.done() for f in futures)
        started = time.monotonic()
        assert client.get("/v1/providers").status_code == 200  # a sync route: runs in the threadpool
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        assert time.monotonic() - started < 3.0
        assert [f.result() for f in futures] == [200] * 60


def test_wait_for_job_sync_for_the_cli(rt: Runtime) -> None:
    job_id = new_job(rt)
    cancelled_at = cancel_later(rt, job_id, 1.0)
    job = wait_for_job(rt, job_id, 30)
    assert job.status == "cancelled" and time.monotonic() - cancelled_at[0] < 1.5
    other = new_job(rt)
    started = time.monotonic()
    assert wait_for_job(rt, other, 0.6).status == "queued" and time.monotonic() - started >= 0.6
    with pytest.raises(JobNotFound):
        wait_for_job(rt, "job_0123abcd", 1)
