"""Notifications and downloads have their own queues and worker pools under `k4u dev`: 50 callback
receivers that trickle one byte a second and 10 slow CDN downloads do not slow ordinary jobs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import datetime
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


class Tarpit:
    """A loopback HTTP receiver that accepts every connection, then answers one byte a second and
    never finishes its headers."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{i}"

    @property
    def open_now(self) -> int:
        with self._lock:
            return len(self._conns)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
                self.accepted += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        data = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000
        try:
            for i in range(len(data)):
                if self._stop.wait(1.0 if i else 0.0):
                    break
                conn.sendall(data[i : i + 1])
        except OSError:
            pass
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _seconds(job: dict[str, Any]) -> float:
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])).total_seconds()


def _submit(stack: Any, prompt: str, callback_url: str | None = None) -> str:
    body: dict[str, Any] = {"provider": "kling", "operation": "text2video", "input": {"prompt": prompt}}
    if callback_url:
        body["callback_url"] = callback_url
    with stack.client() as c:
        return c.post("/v1/jobs", json=body).raise_for_status().json()["id"]  # type: ignore[no-any-return]


def _ordinary_durations(stack: Any, tag: str) -> list[float]:
    ids = [_submit(stack, f"{tag} {i}") for i in range(6)]
    jobs = [stack.wait_job(i, 120) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 6, jobs
    return [_seconds(j) for j in jobs]


def test_tarpit_callbacks_and_slow_downloads_do_not_hold_ordinary_jobs(stack_factory) -> None:  # type: ignore[no-untyped-def]
    # Default download and notification pools; the engine has K4U_WORKER_CONCURRENCY=2.
    stack = stack_factory(dev=True)
    solo = max(_ordinary_durations(stack, "solo"))

    tarpit = Tarpit()
    try:
        hooked = [_submit(stack, f"hooked {i}", tarpit.url(i)) for i in range(50)]
        slow = [_submit(stack, f"slow cdn {i} [sim:slow_media=90]") for i in range(10)]
        deadline = time.monotonic() + 120
        while True:  # the load is in place: notifications stuck in tarpits, downloads trickling
            with stack.client() as c:
                statuses = [c.get(f"/v1/jobs/{i}").json()["status"] for i in hooked + slow]
            if statuses == ["succeeded"] * 50 + ["downloading"] * 10 and tarpit.open_now >= 20:
                break
            assert time.monotonic() < deadline, (statuses, tarpit.open_now, stack.logs()[-5000:])
            time.sleep(0.5)

        loaded = _ordinary_durations(stack, "loaded")
        bound = 3 * solo + 10
        assert max(loaded) <= bound, f"solo {solo:.1f}s, under load {loaded}"
        # The load was still there when they finished.
        assert tarpit.open_now >= 20
        with stack.client() as c:
            assert all(c.get(f"/v1/jobs/{i}").json()["status"] == "downloading" for i in slow)
            sent = c.get(f"/v1/jobs/{hooked[0]}/notifications").json()
        assert sent  # the stuck notifications are real deliveries, recorded and pending
    finally:
        tarpit.close()
