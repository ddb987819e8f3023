"""POST /v1/jobs/{id}/retry over real HTTP, on SQLite and PostgreSQL: 202 with a new attempt
for a failed job, 409 for any other status, 404 for an unknown job; the files of earlier attempts
are kept, listed and served."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import update
from sqlmodel import select

from api.main import create_app
from models.tables import Asset, Job
from tests.conftest import Sim
from tests.integration.test_api import AUTH, GOOD, TOKEN, api  # noqa: F401 - the fixture
from tests.integration.test_download_resilience import downloading
from tests.servers import result_server, serve
from workers import dispatch
from workers.db import get_engine, session_scope
from workers.dispatch import RecordingDispatcher
from workers.services.retry import retry_job


def test_retry_answers_202_with_a_new_attempt_and_409_otherwise(api, db_url: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, recorder = api
    job = client.post("/v1/jobs", json=GOOD).json()
    r = client.post(f"/v1/jobs/{job['id']}/retry")
    assert r.status_code == 409 and "only a failed job" in r.json()["detail"]
    with session_scope(get_engine(db_url)) as s:
        s.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(
                status="failed",
                error_code="submit_outcome_unknown",  # type: ignore[arg-type]
                error_message="lost",
                provider_task_id="task-1",
            )
        )
    r = client.post(f"/v1/jobs/{job['id']}/retry")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["attempt"] == 2 and body["error"] is None and body["provider_task_id"] is None
    assert recorder.of(dispatch.SUBMIT)[-1] == (job["id"], body_version(db_url, job["id"]))
    events = client.get(f"/v1/jobs/{job['id']}/events").json()
    assert events[-1]["from"] == "failed" and events[-1]["to"] == "queued" and "task-1" in events[-1]["reason"]
    assert client.post("/v1/jobs/job_0000000000000000000000000000/retry").status_code == 404


def body_version(db_url: str, job_id: str) -> int:
    with session_scope(get_engine(db_url)) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.version


def test_a_retry_keeps_the_stored_files_of_earlier_attempts(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """Attempt 1 stored its first file (paid) before its second was gone; the retry's files go
    under their own keys, and the job lists and serves both attempts' files, the current one first."""
    first = b"attempt one's paid bytes"
    with result_server(body=first) as cdn:
        d = engine_factory(api_tokens=TOKEN)
        job_id = downloading(d, [f"{cdn['url']}/clip.mp4", f"{sim.url}/_sim/media/expired/gone.mp4"])
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "result_expired"
    retry_job(d.rt, job_id)
    d.drain()
    d.run_for(10)
    assert d.job(job_id).status == "succeeded" and d.job(job_id).attempt == 2
    with session_scope(d.rt.engine) as s:
        keys = {(a.attempt, a.index): a.storage_key for a in s.exec(select(Asset).where(Asset.job_id == job_id)).all()}
    assert keys == {(1, 0): f"{job_id}/0.mp4", (1, 1): None, (2, 0): f"{job_id}/2/0.mp4"}, "attempt 1 keeps its key layout"
    with serve(create_app(d.rt.settings, dispatcher=RecordingDispatcher())) as url, httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        public = client.get(f"/v1/jobs/{job_id}").json()
        assert [(a["attempt"], a["index"]) for a in public["assets"]] == [(2, 0), (1, 0), (1, 1)], "the current attempt's first"
        current, earlier, _ = public["assets"]
        assert hashlib.sha256(client.get(current["url"]).content).hexdigest() == current["sha256"] == sim.sha256()["mp4"]
        assert client.get(earlier["url"]).content == first and earlier["sha256"] == hashlib.sha256(first).hexdigest()
        assert client.get(f"/v1/jobs/{job_id}/assets/0").content != first, "without ?attempt=: the current attempt's file"
        assert client.get(f"/v1/jobs/{job_id}/assets/0", params={"attempt": 3}).status_code == 404
