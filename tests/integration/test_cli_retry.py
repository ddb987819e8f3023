"""`k4u retry ID`: on the local database, and against a running API (--api)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from models.tables import Job
from tests.integration.test_cli import k4u
from workers.db import get_engine, migrate, session_scope


def _job(db: str, status: str, error_code: str | None = None) -> str:
    now = datetime.now(UTC)
    job = Job(
        id=f"job_{status}",
        provider="kling",
        operation="text2video",
        status=status,
        input={"prompt": "x"},
        callback_token="t",
        error_code=error_code,
        error_message="lost" if error_code else None,
        provider_task_id=None,
        created_at=now,
        updated_at=now,
    )
    with session_scope(get_engine(db)) as s:
        s.add(job)
    return job.id


def test_retry_on_the_local_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k4u.db"
    migrate(db)
    failed, done = _job(db, "failed", "submit_outcome_unknown"), _job(db, "succeeded")
    env = {"K4U_DATABASE_URL": db}
    r = k4u("retry", failed, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "queued (attempt 2)" in r.stdout
    with session_scope(get_engine(db)) as s:
        job = s.get(Job, failed)
        assert job is not None and job.status == "queued" and job.attempt == 2 and job.error_code is None
    r = k4u("retry", done, env=env, cwd=tmp_path)
    assert r.returncode == 1 and "only a failed job" in r.stderr
    r = k4u("retry", "job_missing", env=env, cwd=tmp_path)
    assert r.returncode == 1 and "no job job_missing" in r.stderr


def test_retry_names_an_unreachable_api(tmp_path: Path) -> None:
    r = k4u("retry", "job_x", "--api", "http://127.0.0.1:9", env={"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/k.db"}, cwd=tmp_path)
    assert r.returncode == 1 and "cannot reach http://127.0.0.1:9" in r.stderr
