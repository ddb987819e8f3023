"""The beat's table maintenance on real databases: a churned job table is vacuumed and analyzed on
PostgreSQL (this machine's server runs with autovacuum off), nothing happens on SQLite, and two
workers never vacuum at once."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import text

from models.schemas import JobCreate
from workers import jobs
from workers.db import autocommit, is_postgres, session_scope
from workers.services.create import create_job
from workers.services.maintenance import _LOCK, maintain


def _create(driver, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [create_job(driver.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": f"fox {i}"}))[0].id
           for i in range(n)]
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
            row = conn.execute(text("SELECT n_dead_tup, n_mod_since_analyze, last_vacuum FROM pg_stat_user_tables "
                                    "WHERE relname = 'job'")).one()
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
