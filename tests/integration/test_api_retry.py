"""POST /v1/jobs/{id}/retry over real HTTP, on SQLite and PostgreSQL: 202 with a new attempt
for a failed job, 409 for any other status, 404 for an unknown job."""

from __future__ import annotations

from sqlalchemy import update

from models.tables import Job
from tests.integration.test_api import GOOD, api  # noqa: F401 - the fixture
from workers import dispatch
from workers.db import get_engine, session_scope


def test_retry_answers_202_with_a_new_attempt_and_409_otherwise(api, db_url: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, recorder = api
    job = client.post("/v1/jobs", json=GOOD).json()
    r = client.post(f"/v1/jobs/{job['id']}/retry")
    assert r.status_code == 409 and "only a failed job" in r.json()["detail"]
    with session_scope(get_engine(db_url)) as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(status="failed", error_code="submit_outcome_unknown",  # type: ignore[arg-type]
                                                                 error_message="lost", provider_task_id="task-1"))
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
