"""The engine's hot path on real databases: one-statement compare-and-swap with RETURNING (cached
statement shapes, counters in the same UPDATE), pings only for connections that sat idle, and
the tick's poll messages. bench/throughput.py --sustained measures what these save."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

import tasks.jobs
from models.schemas import JobCreate
from models.status import JobStatus
from models.tables import Asset, Job, JobEvent
from tests.services import PG_ADMIN
from workers import db, jobs
from workers.db import autocommit_scope, get_engine, session_scope
from workers.dispatch import DOWNLOAD, POLL, SUBMIT
from workers.outcomes import Outcome
from workers.services import download, submit
from workers.services.create import create_job
from workers.services.poll import poll_jobs
from workers.services.sweep import POLL_MESSAGE_MAX, SUBMIT_MESSAGE_MAX, poll_message_size, submit_message_size, tick


def _new_job(driver) -> str:  # type: ignore[no-untyped-def]
    job, _ = create_job(driver.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}))
    driver.recorder.sent.clear()  # the submit message: these tests take the steps themselves
    return job.id


@contextmanager
def _statements(engine) -> Iterator[list[tuple[str, bool]]]:  # type: ignore[no-untyped-def]
    """(first keyword, executemany) of every statement the engine sends inside the block."""
    seen: list[tuple[str, bool]] = []

    def listener(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement.split()[0].upper(), executemany))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def _keywords(seen: list[tuple[str, bool]]) -> list[str]:
    """The statements' keywords, without SQLite's own BEGIN (IMMEDIATE)."""
    return [k for k, _ in seen if k != "BEGIN"]


def test_transition_by_id_loads_the_row_and_counts_in_the_same_update(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    job_id = _new_job(driver)
    now = clock.now()
    with session_scope(driver.rt.engine) as s:
        assert (
            jobs.transition_by_id(s, job_id, JobStatus.QUEUED, JobStatus.SUBMITTING, expect_version=7, now=now, reason="never") is None
        )  # a stale version loses and writes nothing
        job = jobs.transition_by_id(
            s,
            job_id,
            JobStatus.QUEUED,
            JobStatus.SUBMITTING,
            expect_version=0,
            now=now,
            reason="submit attempt ",
            reason_counter="submit_attempts",
            submit_attempts=jobs.INCREMENT,
            next_at=now + timedelta(seconds=60),
        )
        assert job is not None
        # The object is the row as updated, with no SELECT: counters moved on by the UPDATE itself.
        assert (job.status, job.version, job.submit_attempts, job.provider, job.input) == (
            "submitting",
            1,
            1,
            "kling",
            {"model_name": "kling-v1", "prompt": "a fox"},
        )
        assert job.next_at == now + timedelta(seconds=60)
    with session_scope(driver.rt.engine) as s:
        row = s.get(Job, job_id)
        assert row is not None and (row.status, row.version, row.submit_attempts) == ("submitting", 1, 1)
        reasons = [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))]
    assert reasons == ["created", "submit attempt 1"]


def test_transition_and_bump_reuse_one_statement_per_shape(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    ids = [_new_job(driver) for _ in range(3)]
    now = clock.now()
    jobs._update_stmt.cache_clear()
    jobs._transition_stmt.cache_clear()
    for job_id in ids:
        with session_scope(driver.rt.engine) as s:
            job = jobs.get_job(s, job_id)
            assert job is not None
            assert jobs.transition(s, job, JobStatus.SUBMITTING, reason="r", expect_version=0, now=now, submit_attempts=jobs.INCREMENT)
            assert jobs.take_lease(s, job, job.version, lease_s=30, now=now)
            assert not jobs.bump(s, job, 0, now=now)  # the old version is fenced off
            assert (job.version, job.submit_attempts, job.next_at) == (2, 1, now + timedelta(seconds=30))
    info, moves = jobs._update_stmt.cache_info(), jobs._transition_stmt.cache_info()
    # Three shapes (transition, take_lease, bump): built once each, then reused. On PostgreSQL the
    # transition's UPDATE is built into its one-statement form with the event, cached in turn.
    assert info.misses == 3 and info.hits + moves.hits == 6
    assert moves.misses == (1 if driver.rt.engine.dialect.name == "postgresql" else 0)
    # INCREMENT and a plain value are different shapes: a counter is never overwritten by a number.
    with session_scope(driver.rt.engine) as s:
        job = jobs.get_job(s, ids[0])
        assert job is not None and jobs.bump(s, job, job.version, now=now, poll_count=5)
        assert jobs.bump(s, job, job.version, now=now, poll_count=jobs.INCREMENT)
        assert job.poll_count == 6


def test_set_fields_matches_status_and_leaves_other_jobs_alone(engine_factory) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    a, b = _new_job(driver), _new_job(driver)
    with session_scope(driver.rt.engine) as s:
        assert not jobs.set_fields(s, a, JobStatus.RUNNING, progress=50)  # not running: nothing changes
        assert jobs.set_fields(s, a, JobStatus.QUEUED, progress=5, meta={"k": "v"})
    assert (driver.job(a).progress, driver.job(a).meta, driver.job(b).progress) == (5, {"k": "v"}, 0)


def test_a_new_job_and_its_event_in_one_statement_on_postgres(engine_factory) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    engine = driver.rt.engine
    with _statements(engine) as seen:
        job, created = create_job(
            driver.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}, metadata={"row": 7}, callback_url="http://127.0.0.1:9/cb")
        )
    statements = [k for k, _ in seen]
    # PostgreSQL: one INSERT ... WITH, in autocommit (no BEGIN/COMMIT); SQLite: two INSERTs in a transaction.
    assert created and statements == (["WITH"] if engine.dialect.name == "postgresql" else ["BEGIN", "INSERT", "INSERT"])
    row = driver.job(job.id)
    for attr, _ in jobs.job_columns():  # every column as the object holds it (JSON, timestamps, defaults)
        assert getattr(row, attr) == getattr(job, attr), attr
    with session_scope(engine) as s:
        events = [(e.old_status, e.new_status, e.reason, e.at) for e in s.exec(select(JobEvent).where(JobEvent.job_id == job.id))]
    assert events == [(None, "queued", "created", job.created_at)]
    # The id taken: the statement fails whole, and no orphan event is left.
    twin = Job.model_construct(**{a: getattr(job, a) for a, _ in jobs.job_columns()} | {"provider": "veo"})
    with pytest.raises(IntegrityError):
        jobs.insert_new(engine, twin)
    assert driver.job(job.id).provider == "kling"
    with session_scope(engine) as s:
        assert len(s.exec(select(JobEvent).where(JobEvent.job_id == job.id)).all()) == 1
    driver.recorder.sent.clear()


def test_still_running_jobs_of_a_poll_are_written_in_one_statement(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    now = clock.now()
    ids = [_new_job(driver) for _ in range(4)]
    with session_scope(driver.rt.engine) as s:
        for job_id in ids[:3]:  # three running, the fourth still queued
            job = jobs.get_job(s, job_id)
            assert job is not None and jobs.transition(s, job, JobStatus.SUBMITTING, reason="r", now=now)
            assert jobs.transition(s, job, JobStatus.RUNNING, reason="r", now=now)
    later = now + timedelta(seconds=30)
    with session_scope(driver.rt.engine) as s:
        assert jobs.set_fields(s, ids[2], JobStatus.RUNNING, progress=50)  # a callback's progress, beyond what the poll saw
    with _statements(driver.rt.engine) as calls, session_scope(driver.rt.engine) as s:
        jobs.reschedule_running(s, [jobs.Reschedule(i, 10 * n, later + timedelta(seconds=n)) for n, i in enumerate(ids)], later)
    # One statement for all: an UPDATE ... FROM unnest() of arrays on PostgreSQL, one UPDATE executed per row on SQLite.
    assert [c for c in calls if c[0] == "UPDATE"] == [("UPDATE", not db.is_postgres(driver.rt.engine))]
    for n, job_id in enumerate(ids[:3]):
        job = driver.job(job_id)
        assert (job.progress, job.next_at, job.poll_count, job.updated_at) == ([0, 10, 50][n], later + timedelta(seconds=n), 1, later)
    queued = driver.job(ids[3])
    assert (queued.status, queued.progress, queued.poll_count) == ("queued", 0, 0)  # only running jobs are touched
    with _statements(driver.rt.engine) as calls, session_scope(driver.rt.engine) as s:  # one job: the plain UPDATE
        jobs.reschedule_running(s, [jobs.Reschedule(ids[0], 30, later + timedelta(seconds=9))], later)
    assert [c for c in calls if c[0] == "UPDATE"] == [("UPDATE", False)]
    assert (driver.job(ids[0]).progress, driver.job(ids[0]).poll_count, driver.job(ids[0]).next_at) == (30, 2, later + timedelta(seconds=9))


def _downloading(driver, now, **fields) -> str:  # type: ignore[no-untyped-def]
    job_id = _new_job(driver)
    with session_scope(driver.rt.engine) as s:
        job = jobs.get_job(s, job_id)
        assert job is not None
        for status in (JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING):
            assert jobs.transition(s, job, status, reason="r", now=now)
        assert jobs.set_fields(s, job_id, JobStatus.DOWNLOADING, **fields)
    return job_id


def test_the_download_lease_is_one_update_that_opens_the_window_by_provider(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory(download_window_s=6 * 3600)
    now = clock.now()
    kling = _downloading(driver, now)
    replicate = _downloading(driver, now, provider="replicate")  # its result URLs live an hour
    ends = download._window_ends(driver.rt.settings, now)
    assert "replicate" in ends and "kling" not in ends  # Kling's 30 days are longer than the window
    with _statements(driver.rt.engine) as seen, autocommit_scope(driver.rt.engine) as s:
        assert jobs.take_download_lease(s, kling, 7, now=now, lease_s=30, window_ends=ends, default_end=now + timedelta(hours=6)) is None
        job = jobs.take_download_lease(s, kling, 3, now=now, lease_s=30, window_ends=ends, default_end=now + timedelta(hours=6))
    assert _keywords(seen) == ["UPDATE", "UPDATE"]  # no SELECT first; the stale version matched nothing
    assert job is not None and (job.version, job.download_attempts, job.next_at) == (4, 1, now + timedelta(seconds=30))
    assert job.download_deadline_at == now + timedelta(hours=6) and job.provider == "kling"
    with autocommit_scope(driver.rt.engine) as s:
        rep = jobs.take_download_lease(s, replicate, 3, now=now, lease_s=30, window_ends=ends, default_end=now + timedelta(hours=6))
        assert rep is not None and rep.download_deadline_at == now + timedelta(hours=1)
        # A later attempt keeps the window the first one opened, and none is taken once it has closed.
        later = now + timedelta(minutes=30)
        again = jobs.take_download_lease(
            s, replicate, 4, now=later, lease_s=30, window_ends=download._window_ends(driver.rt.settings, later), default_end=later + timedelta(hours=6)
        )
        assert again is not None and (again.download_attempts, again.download_deadline_at) == (2, now + timedelta(hours=1))
        closed = now + timedelta(hours=1, seconds=1)
        assert jobs.take_download_lease(s, replicate, 5, now=closed, lease_s=30, window_ends={}, default_end=closed) is None
    assert (driver.job(replicate).version, driver.job(replicate).download_attempts) == (5, 2)


def test_the_download_step_reads_no_job_before_its_lease_and_fails_a_closed_window(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    now = clock.now()
    empty = _downloading(driver, now)  # a job without assets: the step stores nothing and succeeds
    with _statements(driver.rt.engine) as seen:
        assert download.store_outputs(driver.rt, empty, 2) == Outcome.STALE  # an old message: nothing written
        assert download.store_outputs(driver.rt, empty, 3) == Outcome.SUCCEEDED
    calls = _keywords(seen)
    stale_read = calls.index("SELECT")
    assert calls[0] == "UPDATE" and calls[stale_read + 1 : stale_read + 3] == ["UPDATE", "SELECT"], calls
    assert (driver.job(empty).status, driver.job(empty).download_attempts) == ("succeeded", 1)
    closed = _downloading(
        driver, now, download_attempts=1, download_deadline_at=now - timedelta(seconds=1), error_code="source_unavailable", error_message="503 from the CDN"
    )
    assert download.store_outputs(driver.rt, closed, 3) == Outcome.FAILED
    job = driver.job(closed)
    assert (job.status, job.error_code, job.download_attempts) == ("failed", "download_timeout", 1)
    assert "source_unavailable: 503 from the CDN" in (job.error_message or "")


def test_a_poll_writes_from_the_rows_it_read_and_rereads_a_job_that_moved_meanwhile(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    plain, touched = _new_job(driver), _new_job(driver)
    driver.recorder.sent += [(SUBMIT, (plain, 0)), (SUBMIT, (touched, 0))]
    driver.drain()
    clock.advance(10)  # both relay tasks have finished
    send = driver.rt.relay.send

    def relay_send(req, **kw):  # type: ignore[no-untyped-def]
        # While the poll asks the relay, a callback's write lands on one job (no version change).
        with session_scope(driver.rt.engine) as s:
            assert jobs.set_fields(s, touched, JobStatus.RUNNING, result={"seen_by": "callback"})
        return send(req, **kw)

    driver.rt.relay.send = relay_send
    try:
        with _statements(driver.rt.engine) as seen:
            assert poll_jobs(driver.rt, [plain]) == 1
        first = _keywords(seen)
        with _statements(driver.rt.engine) as seen:
            assert poll_jobs(driver.rt, [touched]) == 1
        second = _keywords(seen)
    finally:
        driver.rt.relay.send = send
    # The unchanged job: its read, the callback's write, then the CAS and the asset, no second read.
    assert first.count("SELECT") == 1 and "INSERT" in first, first
    # The job that moved: the CAS on the row as read lost, so it was read again and applied to that.
    assert second.count("SELECT") == 2, second
    for job_id in (plain, touched):
        job = driver.job(job_id)
        assert (job.status, job.progress, job.poll_count) == ("downloading", 100, 1)
        assert [t for t, _ in driver.recorder.sent].count(DOWNLOAD) == 2
    assert (driver.job(touched).result or {}).get("seen_by") == "callback"  # the callback's data kept in the result
    with session_scope(driver.rt.engine) as s:
        events = [e.new_status for e in s.exec(select(JobEvent).where(JobEvent.job_id == touched))]
    assert events.count("downloading") == 1


def test_a_poll_reads_its_jobs_by_primary_key_and_skips_those_no_longer_running(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    """With the status in the WHERE, PostgreSQL read the poll's 100 ids through ix_job_status once
    its statistics lagged (every running job's index entries, dead ones too): the read is by id only."""
    driver = engine_factory()
    running, cancelled = _new_job(driver), _new_job(driver)
    driver.recorder.sent += [(SUBMIT, (running, 0)), (SUBMIT, (cancelled, 0))]
    driver.drain()
    with session_scope(driver.rt.engine) as s:
        job = jobs.get_job(s, cancelled)
        assert job is not None and jobs.transition(s, job, JobStatus.CANCELLED, reason="cancelled by the user", now=clock.now())
    clock.advance(10)
    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(driver.rt.engine, "before_cursor_execute", listener)
    try:
        assert poll_jobs(driver.rt, [running, cancelled]) == 1  # the cancelled job is not asked about
    finally:
        event.remove(driver.rt.engine, "before_cursor_execute", listener)
    read = seen[0] if not seen[0].startswith("BEGIN") else seen[1]
    assert read.startswith("SELECT") and "job.status" not in read.split("WHERE", 1)[1], read
    assert driver.job(running).status == "downloading" and driver.job(cancelled).status == "cancelled"


def test_a_job_cancelled_while_its_poll_was_out_stays_cancelled(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    job_id = _new_job(driver)
    driver.recorder.sent.append((SUBMIT, (job_id, 0)))
    driver.drain()
    clock.advance(10)  # the relay task has finished
    send = driver.rt.relay.send

    def relay_send(req, **kw):  # type: ignore[no-untyped-def]
        with session_scope(driver.rt.engine) as s:  # the user cancels while the poll asks the relay
            job = jobs.get_job(s, job_id)
            assert job is not None and jobs.transition(s, job, JobStatus.CANCELLED, reason="cancelled by the user", now=clock.now())
        return send(req, **kw)

    driver.rt.relay.send = relay_send
    try:
        assert poll_jobs(driver.rt, [job_id]) == 1
    finally:
        driver.rt.relay.send = send
    # The relay's "succeeded" lost its CAS on the row as read, was applied to the row as it is: nothing.
    job = driver.job(job_id)
    assert (job.status, job.progress) == ("cancelled", 0) and DOWNLOAD not in [t for t, _ in driver.recorder.sent]
    with session_scope(driver.rt.engine) as s:
        assert s.exec(select(Asset).where(Asset.job_id == job_id)).all() == []
        assert [e.new_status for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id))][-1] == "cancelled"


@pytest.mark.postgres
def test_a_connection_that_sat_idle_is_pinged_and_replaced_when_dead(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = get_engine(pg_url)
    engine.dispose()
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    sent = db.pings_sent
    with engine.connect() as conn:  # back within IDLE_PING_S: used as is, no ping
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
    assert db.pings_sent == sent
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # what a PostgreSQL restart or a proxy's idle cut does to a pooled connection
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    admin.dispose()
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # as if it had sat idle
    with session_scope(engine) as s:  # the ping finds it dead; the pool connects afresh and the statement runs
        new_pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert new_pid != pid and db.pings_sent == sent + 1


@pytest.mark.postgres
def test_autocommit_scope_runs_in_autocommit_on_postgres(pg_url: str) -> None:
    with autocommit_scope(get_engine(pg_url)) as s:
        # No transaction block: each statement commits on its own (no BEGIN/COMMIT round trips).
        s.exec(select(Job).limit(1)).all()
        assert s.connection().connection.driver_connection.autocommit is True  # type: ignore[union-attr]
    with session_scope(get_engine(pg_url)) as s:  # the pool's next user gets its transactions back
        s.exec(select(Job).limit(1)).all()
        assert s.connection().connection.driver_connection.autocommit is False  # type: ignore[union-attr]


def test_poll_message_size() -> None:
    assert poll_message_size(3, 1, 4) == 1  # few due: one per message, all processes busy at once
    assert poll_message_size(20, 1, 4) == 5
    assert poll_message_size(1000, 1, 4) == POLL_MESSAGE_MAX
    assert poll_message_size(1000, 20, 4) == 20  # a batch family: one relay request per message
    assert poll_message_size(0, 1, 4) == 1


def test_tick_spreads_due_polls_over_messages_and_polls_each_once(engine_factory, sim, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory(worker_concurrency=4)
    ids = [_new_job(driver) for _ in range(20)]
    for job_id in ids:
        driver.recorder.send("k4u.submit", job_id, 0)
    driver.drain()
    assert all(driver.job(i).status == JobStatus.RUNNING for i in ids)
    clock.advance(10)
    counts = tick(driver.rt)
    polls = driver.recorder.of(POLL)
    assert counts["running"] == 20 and sorted(len(p[0]) for p in polls) == [5, 5, 5, 5]
    assert sorted(i for p in polls for i in p[0]) == sorted(ids)
    before = sim.stats()["requests"].get("GET /kling/v1/videos/text2video/{id}", 0)
    driver.drain()
    after = sim.stats()["requests"].get("GET /kling/v1/videos/text2video/{id}", 0)
    assert after - before == 20  # one relay poll per job, whatever the message size
    assert all(driver.job(i).poll_count == 1 for i in ids)


def test_the_tick_sends_no_more_to_a_queue_holding_its_backlog_cap(engine_factory, sim, clock) -> None:  # type: ignore[no-untyped-def]
    """Due work beyond K4U_QUEUE_BACKLOG_MAX waits in the database (no lease runs out on it), and
    goes out as the queue drains: each job gets one submit message, and one paid task. A held
    message of the submit queue counts as SUBMIT_MESSAGE_MAX jobs, the most it may carry."""
    driver = engine_factory(queue_backlog_max=20, worker_concurrency=4)
    ids = [_new_job(driver) for _ in range(30)]
    with session_scope(driver.rt.engine) as s:  # due now, as a batch's items are
        for job_id in ids:
            jobs.set_fields(s, job_id, JobStatus.QUEUED, next_at=clock.now())
    # 20 claimed, five to a message (spread over the 4 engine processes): 4 messages held.
    assert tick(driver.rt)["queued"] == 20 and driver.recorder.groups == [(SUBMIT, 5)] * 4
    assert driver.recorder.backlog(SUBMIT) == 4
    clock.advance(1)
    assert tick(driver.rt)["queued"] == 0, "4 held messages may carry 32 jobs: over the cap, nothing more is claimed"
    for _ in range(10):  # a worker takes two messages
        task, args = driver.recorder.sent.pop(0)
        driver.HANDLERS[task](driver.rt, *args)
    assert driver.recorder.backlog(SUBMIT) == 2
    assert tick(driver.rt)["queued"] == 4  # 20 - 2 x 8
    driver.drain()
    for _ in range(4):
        clock.advance(1)
        driver.tick()
    assert all(driver.job(i).status != JobStatus.QUEUED for i in ids)
    assert sim.stats()["creates"] == 30  # every job submitted exactly once


def test_submit_message_size() -> None:
    assert submit_message_size(3, 4) == 1  # few due: one per message, all processes busy at once
    assert submit_message_size(20, 4) == 5
    assert submit_message_size(1000, 4) == SUBMIT_MESSAGE_MAX
    assert submit_message_size(0, 4) == 1


def test_a_submit_message_of_several_jobs_runs_each_on_its_own_claim(engine_factory, sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    ids = [_new_job(driver) for _ in range(3)]
    monkeypatch.setattr(tasks.jobs, "runtime", lambda: driver.rt)
    # The second job's claim has moved on (the tick sent it again): its item here is stale.
    assert tasks.jobs.submit.run([[ids[0], 0], [ids[1], 5], [ids[2], 0]]) == [Outcome.ACCEPTED, Outcome.STALE, Outcome.ACCEPTED]
    assert [driver.job(i).status for i in ids] == ["running", "queued", "running"]
    assert tasks.jobs.submit.run([[ids[0], 0]]) == [Outcome.STALE]  # a redelivered message: nothing twice
    assert tasks.jobs.submit.run(ids[1], 0) == Outcome.ACCEPTED  # the single form
    assert sim.stats()["creates"] == 3
    real = submit.submit_job

    def submit_job(rt, job_id, version):  # type: ignore[no-untyped-def]
        if job_id == later[0]:
            raise OperationalError("UPDATE job", {}, ConnectionError("the database went away"))
        return real(rt, job_id, version)

    later = [_new_job(driver) for _ in range(2)]
    monkeypatch.setattr(submit, "submit_job", submit_job)
    with pytest.raises(OperationalError):  # raised once the others have run
        submit.submit_many(driver.rt, [(later[0], 0), (later[1], 0)])
    assert [driver.job(i).status for i in later] == ["queued", "running"]


def test_an_unknown_backlog_counts_as_an_empty_queue(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory(queue_backlog_max=5)
    driver.recorder.backlog = lambda task: None  # type: ignore[method-assign]  # a broker that cannot say
    ids = [_new_job(driver) for _ in range(8)]
    with session_scope(driver.rt.engine) as s:
        for job_id in ids:
            jobs.set_fields(s, job_id, JobStatus.QUEUED, next_at=clock.now())
    assert tick(driver.rt)["queued"] == 5  # the cap still bounds one tick's sends


def test_a_claim_takes_no_more_than_its_limit_when_due_times_tie(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    """A batch's items share one next_at. PostgreSQL used to re-run the claim's IN subquery for each
    row it updated, each run picking the next due rows: a limit of 5 claimed all 12."""
    driver = engine_factory()
    ids = [_new_job(driver) for _ in range(12)]
    now = clock.now()
    with session_scope(driver.rt.engine) as s:
        for job_id in ids:
            jobs.set_fields(s, job_id, JobStatus.QUEUED, next_at=now)
    with session_scope(driver.rt.engine) as s:
        first = jobs.claim_due(s, JobStatus.QUEUED, now=now, lease_s=60, limit=5)
    with session_scope(driver.rt.engine) as s:
        second = jobs.claim_due(s, JobStatus.QUEUED, now=now, lease_s=60, limit=5)
    assert len(first) == len(second) == 5 and not {c.job_id for c in first} & {c.job_id for c in second}
