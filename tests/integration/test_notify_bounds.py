"""Notifications no receiver can stall: a total deadline per attempt (a tarpit that trickles
bytes on loopback is cut), n8n's early 404/409 retried, 410 given up, and the SSRF guard on the
connection itself when private addresses are not allowed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlmodel import select

from models.schemas import JobCreate
from models.tables import Delivery, DeliveryAttempt
from tests.conftest import Sim
from tests.servers import webhook_receiver
from workers import netguard
from workers.db import session_scope
from workers.services.create import create_job

DEADLINE_S = 2.0


@contextmanager
def tarpit(head: bytes, then: bytes, every_s: float = 0.25) -> Iterator[str]:
    """A receiver that reads the request, sends `head` at once, then `then` one byte at a time,
    forever (it starts over), until the client goes away."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(head)
                i = 0
                while not stop.wait(every_s):
                    conn.sendall(then[i % len(then) : i % len(then) + 1])
                    i += 1
            except OSError:
                return

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/hook"
    finally:
        stop.set()
        srv.close()


def run_job_with_callback(d, url: str) -> str:  # type: ignore[no-untyped-def]
    job, _ = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}, callback_url=url))
    d.drain()
    for _ in range(20):
        d.run_for(1)
        if d.job(job.id).status == "succeeded":
            return job.id
    raise AssertionError(f"job did not succeed: {d.job(job.id).status}")


def attempts(d, job_id: str) -> tuple[Delivery, list[DeliveryAttempt]]:  # type: ignore[no-untyped-def]
    with session_scope(d.rt.engine) as s:
        delivery = s.exec(select(Delivery).where(Delivery.job_id == job_id)).one()
        rows = list(s.exec(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id).order_by(DeliveryAttempt.attempt)).all())
    return delivery, rows


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_receiver_trickling_its_status_line_is_cut_at_the_deadline(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    status_line = b"HTTP/1.1 200 OK\r\n"
    with tarpit(b"", status_line + b"x-wait: " + b"." * 4096) as url:
        d = engine_factory(notify_timeout_s=DEADLINE_S, notify_backoff_s=3600.0)
        started = time.monotonic()
        job_id = run_job_with_callback(d, url)
        elapsed = time.monotonic() - started
    delivery, tries = attempts(d, job_id)
    (first,) = tries
    assert first.status_code is None and "K4U_NOTIFY_TIMEOUT_S" in (first.error or "")
    assert DEADLINE_S * 1000 * 0.9 <= first.duration_ms < (DEADLINE_S + 5) * 1000
    assert elapsed < DEADLINE_S + 30
    assert delivery.status == "pending" and delivery.next_at is not None, "a cut attempt is retried later"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_2xx_whose_body_trickles_counts_and_the_attempt_still_ends(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n"
    with tarpit(head, b"z") as url:
        d = engine_factory(notify_timeout_s=DEADLINE_S)
        job_id = run_job_with_callback(d, url)
    delivery, (first,) = attempts(d, job_id)
    assert first.status_code == 200 and first.duration_ms < (DEADLINE_S + 5) * 1000
    assert delivery.status == "delivered"


def test_n8n_early_404_and_409_are_retried_and_410_gives_up(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with webhook_receiver() as hook:
        hook.script = [404, 409]
        d = engine_factory(notify_backoff_s=1.0)
        job_id = run_job_with_callback(d, hook.url)
        d.run_for(15)
        delivery, tries = attempts(d, job_id)
        assert [t.status_code for t in tries] == [404, 409, 200] and delivery.status == "delivered"

        hook.script = [410]
        job_id = run_job_with_callback(d, hook.url)
        d.run_for(15)
        delivery, tries = attempts(d, job_id)
        assert [t.status_code for t in tries] == [410] and delivery.status == "failed"


def test_without_private_urls_a_callback_host_resolving_to_loopback_is_refused_at_connect(engine_factory, sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The callback URL names a host (so no check before sending can see the address); the
    notify client's guarded transport resolves it and refuses to connect to loopback."""
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(netguard, "system_resolver", resolver)
    d = engine_factory()
    job, _ = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}, callback_url="http://hooks.rebind.example/hook"))
    d.drain()
    d.rt.settings = d.rt.settings.model_copy(update={"allow_private_urls": False})  # downloads still reach the simulator
    for _ in range(20):
        d.run_for(1)
        if d.job(job.id).status == "succeeded":
            break
    _delivery, tries = attempts(d, job.id)
    assert tries and tries[0].status_code is None and "non-public" in (tries[0].error or "")
    assert asked and set(asked) == {"hooks.rebind.example"}
