"""The beat's maintenance on real databases: a churned job table is vacuumed and analyzed on
PostgreSQL (this machine's server runs with autovacuum off), nothing happens on SQLite, and two
workers never vacuum at once; the leftovers of interrupted writes leave the store after a grace."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from pydantic import ValidationError
from sqlalchemy import text

from models.schemas import JobCreate
from workers import jobs
from workers.celery_app import configure
from workers.db import autocommit, is_postgres, session_scope
from workers.dispatch import CLEAN_STORE, QUEUES
from workers.services.create import create_job
from workers.services.maintenance import _LOCK, clean_store, maintain
from workers.settings import Settings, describe_errors


def _create(driver, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [create_job(driver.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": f"fox {i}"}))[0].id for i in range(n)]
    driver.recorder.sent.clear()
    return ids


def _churn(driver, clock, ids: list[str], rounds: int) -> None:  # type: ignore[no-untyped-def]
    for n in range(rounds):  # what poll rounds do: rewrite next_at, row after row
        with session_scope(driver.rt.engine) as s:
            for job_id in ids:
                jobs.set_fields(s, job_id, jobs.JobStatus.QUEUED, next_at=clock.now() + timedelta(seconds=n + 1))


def _stats(engine, until=lambda dead, changed: True) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    """The job table's dead rows and last manual VACUUM, once `until(dead, changed)` holds (10 s at
    most). A backend reports its counts when it ends or every so often, not at commit: the pool's
    connections are closed first so that theirs are in."""
    engine.dispose()
    deadline = time.monotonic() + 10
    while True:
        with autocommit(engine).connect() as conn:
            row = conn.execute(text("SELECT n_dead_tup, n_mod_since_analyze, last_vacuum FROM pg_stat_user_tables WHERE relname = 'job'")).one()
        if until(int(row[0]), int(row[1])) or time.monotonic() > deadline:
            return int(row[0]), row[2]
        time.sleep(0.1)


def test_a_churned_job_table_is_vacuumed_and_analyzed_on_postgres(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory(vacuum_dead_rows=500)
    if not is_postgres(driver.rt.engine):
        _churn(driver, clock, _create(driver, 20), 3)
        assert maintain(driver.rt) == {}  # SQLite: nothing to do
        return
    maintain(driver.rt)  # whatever earlier tests left in this run's database (TRUNCATE keeps the counts since the last ANALYZE)
    _stats(driver.rt.engine)
    assert maintain(driver.rt).get("job") is None  # statistics current: nothing to do
    ids = _create(driver, 600)  # 600 new jobs and their events: the statistics are out of date
    _stats(driver.rt.engine, until=lambda dead, changed: changed >= 600)
    assert {k: v for k, v in maintain(driver.rt).items() if k in ("job", "job_event")} == {"job": "analyze", "job_event": "analyze"}
    _churn(driver, clock, ids[:50], 20)  # 1,000 dead rows
    dead, _ = _stats(driver.rt.engine, until=lambda dead, changed: dead >= 1000)
    assert dead >= 1000
    with autocommit(driver.rt.engine).connect() as other:  # another worker holds the step: nothing is done
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK}).scalar()
        try:
            assert maintain(driver.rt) == {}
        finally:
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
    assert maintain(driver.rt)["job"] == "vacuum"
    dead_after, last_vacuum = _stats(driver.rt.engine)
    assert last_vacuum is not None and dead_after < dead
    assert maintain(driver.rt).get("job") is None  # done: not again until the dead rows pile up anew


def test_the_beat_removes_store_leftovers_older_than_the_grace(engine_factory, clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory(storage_leftover_grace_s=3 * 3600.0)
    job_dir = tmp_path / "objects" / "job_a"  # the driver's local store
    job_dir.mkdir(parents=True)
    now = clock.now().timestamp()
    for name, age_s in ((".k4u-tmp-0a0a0a0a", 3 * 3600 + 60), (".k4u-tmp-1b1b1b1b", 3 * 3600 - 60)):
        (job_dir / name).write_bytes(b"partial")
        os.utime(job_dir / name, (now - age_s, now - age_s))
    assert clean_store(driver.rt) == 1  # past the grace: a worker died writing it
    assert [p.name for p in job_dir.iterdir()] == [".k4u-tmp-1b1b1b1b"]  # within it: maybe a download still going on
    clock.t += 120
    assert clean_store(driver.rt) == 1 and not any(job_dir.iterdir())


def test_the_leftover_grace_outlasts_a_download_and_the_beat_runs_the_cleanup() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Settings(download_timeout_s=7200, storage_leftover_grace_s=3600)
    assert "K4U_STORAGE_LEFTOVER_GRACE_S" in describe_errors(excinfo.value) and "K4U_DOWNLOAD_TIMEOUT_S" in describe_errors(excinfo.value)
    settings = Settings(redis_url="redis://127.0.0.1:1/0", storage_leftover_grace_s=4 * 3600.0)
    (entry,) = [e for e in configure(Celery("t"), settings).conf.beat_schedule.values() if e["task"] == CLEAN_STORE]
    assert QUEUES[CLEAN_STORE] == entry["options"]["queue"] == "sweep" and entry["schedule"] <= settings.storage_leftover_grace_s
