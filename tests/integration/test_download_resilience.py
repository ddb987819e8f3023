"""Downloads keep paid results: our own storage's outages are waited out, the source's word
decides, the download window bounds it all, and bad data fails a job at once with its own
code instead of a re-drive loop. Real databases (SQLite and PostgreSQL), the simulator and
a scripted result server on loopback, a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import select

from models.errors import StorageError
from models.schemas import BatchCreate, JobCreate
from models.status import JobStatus
from models.tables import Asset, JobEvent
from providers.base import OutputRef, ProviderStatus, State
from tests.conftest import FakeClock, Sim
from tests.servers import result_server
from workers.db import session_scope
from workers.jobs import get_job, set_fields
from workers.services.apply import apply_status
from workers.services.create import create_job
from workers.storage.base import ObjectStore, StoredObject


def downloading(d, urls: list[str]) -> str:  # type: ignore[no-untyped-def]
    """A Kling job whose provider reported these result URLs; its first download attempt has run."""
    job, _ = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}))
    d.drain()
    with session_scope(d.rt.engine) as s:
        row = get_job(s, job.id)
        assert row is not None and row.status == "running"
        fu = apply_status(
            s,
            row,
            ProviderStatus(row.provider_task_id, State.SUCCEEDED, outputs=[OutputRef(u, "video") for u in urls]),
            settings=d.rt.settings,
            now=d.clock.now(),
            source="test",
        )
    d.recorder.sent.extend(fu)
    d.drain()
    return job.id


class OutageStore:
    """Our own store, down (disk full, S3 unreachable) until the fake clock reaches `until`."""

    def __init__(self, inner: ObjectStore, clock: FakeClock, until: float) -> None:
        self.inner, self.clock, self.until = inner, clock, until
        self.refused = 0

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str, max_bytes: int) -> StoredObject:
        if self.clock.t < self.until:
            self.refused += 1
            raise StorageError(f"write failed for {key}: No space left on device")
        return self.inner.put_stream(key, chunks, content_type, max_bytes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BrokenStore(OutageStore):
    """A store whose code has a bug: not one of our errors."""

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str, max_bytes: int) -> StoredObject:
        raise ValueError("unexpected None in part list")


def test_a_storage_outage_longer_than_the_old_attempt_budget_does_not_fail_the_job(engine_factory, sim: Sim, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    store = d.rt.store = OutageStore(d.rt.store, clock, until=clock.t + 120)  # the old budget gave up after ~31 s
    job_id = downloading(d, [f"{sim.url}/_sim/media/outage.mp4"])
    job = d.job(job_id)
    assert job.status == "downloading" and job.error_code == "storage_error" and job.error_retryable
    assert job.download_deadline_at is not None
    d.run_for(60, step=5)
    assert d.job(job_id).status == "downloading", "still inside the outage: waiting, not failed"
    d.run_for(400, step=5)
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert store.refused >= 6 and job.download_attempts == store.refused + 1
    with session_scope(d.rt.engine) as s:
        (asset,) = s.exec(select(Asset).where(Asset.job_id == job_id)).all()
    assert asset.sha256 == sim.sha256()["mp4"]


def test_a_storage_outage_past_the_download_window_fails_download_timeout_naming_the_last_error(engine_factory, sim: Sim, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(download_window_s=300)
    d.rt.store = OutageStore(d.rt.store, clock, until=clock.t + 10_000)
    job_id = downloading(d, [f"{sim.url}/_sim/media/outage.mp4"])
    d.run_for(280, step=10)
    assert d.job(job_id).status == "downloading"
    d.run_for(60, step=10)
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "download_timeout"
    assert "storage_error" in (job.error_message or "") and "No space left on device" in (job.error_message or "")


def test_a_source_that_keeps_failing_is_retried_until_the_window_closes(engine_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    with result_server(status=503) as cdn:
        d = engine_factory(download_window_s=600)
        job_id = downloading(d, [f"{cdn['url']}/clip.mp4"])
        d.run_for(550, step=10)
        assert d.job(job_id).status == "downloading"
        d.run_for(100, step=10)
        job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "download_timeout" and "HTTP 503" in (job.error_message or "")
    assert 5 <= cdn["gets"] <= 15, "exponential backoff, not a request per tick"


def test_a_gone_source_fails_result_expired_at_once(engine_factory) -> None:  # type: ignore[no-untyped-def]
    with result_server(status=404) as cdn:
        d = engine_factory()
        job_id = downloading(d, [f"{cdn['url']}/clip.mp4"])
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "result_expired" and job.download_attempts == 1


@pytest.mark.parametrize("relay_busy", [False, True])
def test_a_result_url_gone_on_first_sight_is_fetched_from_a_re_poll(engine_factory, sim: Sim, clock: FakeClock, relay_busy: bool) -> None:  # type: ignore[no-untyped-def]
    """Signed result URLs expire: a 403/404/410 is not the end while the relay can be asked about the
    task again. One re-poll gives fresh URLs, and the same attempt stores the result from them (a
    relay too busy to answer the re-poll: the next attempt asks again)."""
    d = engine_factory()
    job, _ = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}))
    d.drain()
    clock.advance(10)  # the simulator's task has finished: asked again, it answers with its own URL
    with session_scope(d.rt.engine) as s:
        row = get_job(s, job.id)
        assert row is not None and row.status == "running"
        task_id = row.provider_task_id
        fu = apply_status(
            s,
            row,
            ProviderStatus(task_id, State.SUCCEEDED, outputs=[OutputRef(f"{sim.url}/_sim/media/expired/{task_id}.mp4", "video")]),
            settings=d.rt.settings,
            now=d.clock.now(),
            source="test",
        )
    polls = sim.stats()["poll_requests"]
    if relay_busy:  # the re-poll answered 503: tried again within the download window
        sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 503})
    d.recorder.sent.extend(fu)
    d.drain()
    if relay_busy:
        waiting = d.job(job.id)
        assert waiting.status == "downloading" and waiting.error_code == "result_refresh_failed" and waiting.error_retryable
        d.run_for(10)
    done = d.job(job.id)
    assert done.status == "succeeded" and done.download_attempts == 1 + relay_busy, (done.error_code, done.error_message)
    assert sim.stats()["poll_requests"] == polls + 1 + relay_busy
    with session_scope(d.rt.engine) as s:
        (asset,) = s.exec(select(Asset).where(Asset.job_id == job.id)).all()
        reasons = [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job.id)).all()]
    assert asset.sha256 == sim.sha256()["mp4"] and asset.source_url == f"{sim.url}/_sim/media/{task_id}.mp4"
    assert any("HTTP 403" in r and "fresh" in r for r in reasons), reasons


def test_a_bad_port_fails_at_once_with_a_clear_code(engine_factory) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job_id = downloading(d, ["http://cdn.example:99999/x.mp4"])
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "invalid_result_url", (job.error_code, job.error_message)
    d.run_for(300, step=30)
    assert d.job(job_id).download_attempts == 1, "no re-drive loop"


def test_an_unexpected_error_fails_the_job_instead_of_a_re_drive_loop(engine_factory, sim: Sim, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    d.rt.store = BrokenStore(d.rt.store, clock, until=0)
    job_id = downloading(d, [f"{sim.url}/_sim/media/bug.mp4"])
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "download_error"
    assert "ValueError" in (job.error_message or "") and job.download_attempts == 1
    d.run_for(300, step=30)
    assert d.job(job_id).download_attempts == 1


def test_a_long_content_type_is_clamped_before_it_reaches_the_database(engine_factory) -> None:  # type: ignore[no-untyped-def]
    with result_server(content_type="video/" + "x" * 300) as cdn:
        d = engine_factory()
        job_id = downloading(d, [f"{cdn['url']}/clip"])
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    with session_scope(d.rt.engine) as s:
        (asset,) = s.exec(select(Asset).where(Asset.job_id == job_id)).all()
    assert asset.content_type == "application/octet-stream"


def test_a_download_whose_worker_died_past_the_window_is_failed_by_the_sweep(engine_factory, sim: Sim, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """Every download message is lost from now on (a worker killed each time): once the window
    has closed and no attempt holds the job, the sweep fails it."""
    d = engine_factory(download_window_s=900, download_timeout_s=120)
    d.rt.store = OutageStore(d.rt.store, clock, until=clock.t + 10_000)
    job_id = downloading(d, [f"{sim.url}/_sim/media/lost.mp4"])
    d.recorder.send = lambda *a, **k: None  # type: ignore[method-assign]  # every message from now on is lost
    d.run_for(850, step=50)
    assert d.job(job_id).status == "downloading"
    d.run_for(300, step=50)
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "download_timeout"
    with session_scope(d.rt.engine) as s:
        reasons = [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()]
    assert reasons[-1] == "download deadline passed"


def test_the_sweep_leaves_a_download_in_progress_alone_past_the_window(engine_factory, sim: Sim, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    d.rt.store = OutageStore(d.rt.store, clock, until=clock.t + 10_000)
    job_id = downloading(d, [f"{sim.url}/_sim/media/slow.mp4"])
    with session_scope(d.rt.engine) as s:  # an attempt holds the job (its lease runs 10 min more); the window closed
        set_fields(s, job_id, JobStatus.DOWNLOADING, next_at=clock.now() + timedelta(seconds=600), download_deadline_at=clock.now() - timedelta(seconds=1))
    d.tick()
    assert d.job(job_id).status == "downloading"
    d.run_for(600, step=60)
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "download_timeout"


def test_a_cancel_while_downloading_keeps_the_paid_result(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """The provider has finished and charged: a cancel (POST /v1/jobs/{id}/cancel, or the job's
    batch cancelled) is refused with a 409 saying so, recorded in the events, and the download
    goes on to store the files; the job ends succeeded."""
    import httpx

    from api.main import create_app
    from tests.servers import serve
    from workers.dispatch import RecordingDispatcher
    from workers.services.batches import cancel_batch, create_batch

    d = engine_factory(api_tokens="tok-d")
    batch, (job, *_), _ = create_batch(d.rt, BatchCreate(jobs=[JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"})]))
    d.tick()
    with session_scope(d.rt.engine) as s:
        row = get_job(s, job.id)
        assert row is not None and row.status == "running"
        fu = apply_status(
            s,
            row,
            ProviderStatus(row.provider_task_id, State.SUCCEEDED, outputs=[OutputRef(f"{sim.url}/_sim/media/paid.mp4", "video")]),
            settings=d.rt.settings,
            now=d.clock.now(),
            source="test",
        )
    with serve(create_app(d.rt.settings, dispatcher=RecordingDispatcher())) as url:
        r = httpx.post(f"{url}/v1/jobs/{job.id}/cancel", headers={"Authorization": "Bearer tok-d"})
    assert r.status_code == 409 and "paid" in r.json()["detail"], r.text
    assert cancel_batch(d.rt, batch.id).counts["downloading"] == 1
    d.recorder.sent.extend(fu)
    d.drain()
    job_now = d.job(job.id)
    assert job_now.status == "succeeded", (job_now.status, job_now.error_code)
    with session_scope(d.rt.engine) as s:
        (asset,) = s.exec(select(Asset).where(Asset.job_id == job.id)).all()
        reasons = [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job.id)).all()]
    assert asset.sha256 == sim.sha256()["mp4"]
    assert sum("cancel requested while downloading" in r for r in reasons) == 2, reasons


@contextmanager
def trickle_server(chunks: int = 100, every_s: float = 0.2) -> Iterator[str]:
    """A CDN that sends a 1 KiB chunk every `every_s` seconds (about 20 s for the whole file)."""
    import time as _time

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "video/mp4")
            self.send_header("content-length", str(chunks * 1024))
            self.end_headers()
            try:
                for _ in range(chunks):
                    self.wfile.write(b"\x00" * 1024)
                    self.wfile.flush()
                    _time.sleep(every_s)
            except OSError:
                pass

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.mp4"
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_keeps_its_short_lease_alive_and_stops_when_its_step_is_taken_over(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """The lease is K4U_LEASE_S (kept alive by a heartbeat while bytes flow), not the whole
    download timeout; when the step is taken over (the sweep re-drove it after a stall) the version
    moves on, and the heartbeat stops the stream. (A cancel no longer stops a download: it keeps
    the paid result, see test_a_cancel_while_downloading_keeps_the_paid_result.)"""
    import time

    from workers.jobs import bump
    from workers.services.download import store_outputs

    d = engine_factory(lease_s=3.0, download_timeout_s=600.0)
    with trickle_server() as url:
        job, _ = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}))
        d.drain()
        with session_scope(d.rt.engine) as s:
            row = get_job(s, job.id)
            assert row is not None
            fu = apply_status(
                s,
                row,
                ProviderStatus(row.provider_task_id, State.SUCCEEDED, outputs=[OutputRef(url, "video")]),
                settings=d.rt.settings,
                now=d.clock.now(),
                source="test",
            )
        ((_, (job_id, version)),) = fu
        result: list[str] = []
        worker = threading.Thread(target=lambda: result.append(store_outputs(d.rt, job_id, version)))
        started = time.monotonic()
        worker.start()
        time.sleep(1.0)
        with session_scope(d.rt.engine) as s:
            row = get_job(s, job_id)
            assert row is not None and row.next_at is not None
            assert row.next_at <= d.clock.now() + timedelta(seconds=3.5), "the lease is K4U_LEASE_S, not the download timeout"
        with session_scope(d.rt.engine) as s:
            row = get_job(s, job_id)
            assert row is not None and bump(s, row, row.version, now=d.clock.now())
        worker.join(15)
        assert result == ["lost"] and time.monotonic() - started < 12, "the heartbeat must stop a download whose step moved on"
        with session_scope(d.rt.engine) as s:
            assert [a.stored_at for a in s.exec(select(Asset).where(Asset.job_id == job_id)).all()] == [None]
            assert get_job(s, job_id).status == "downloading"  # type: ignore[union-attr]
