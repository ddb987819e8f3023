"""The API process gathers its submits (GatheringDispatcher): what arrives within the linger goes
out together, spread over the engine's processes while the submit queue is short and up to the
cap once it is long; a refused message makes its jobs due at once; the app's shutdown sends what
is still gathered. Against a real database and the API served on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from api.main import create_app, gathering
from models.tables import Job, utcnow
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers import dispatch
from workers.context import build_runtime
from workers.db import get_engine, session_scope
from workers.dispatch import DOWNLOAD, NOTIFY, SUBMIT, SUBMIT_LINGER_S, GatheringDispatcher, RecordingDispatcher

GOOD = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a fox"}}


class Broker(RecordingDispatcher):
    """Records messages; its submit queue holds `held` messages; refuses every send when `down`."""

    def __init__(self, held: int = 0, down: bool = False) -> None:
        super().__init__()
        self.held, self.down = held, down
        self.threads: set[str] = set()

    def send(self, task: str, *args: Any, priority: int | None = None) -> None:
        self._check()
        super().send(task, *args, priority=priority)

    def send_many(self, task: str, items: Any, priority: int | None = None) -> None:
        self._check()
        super().send_many(task, items, priority)

    def backlog(self, task: str) -> int | None:
        return self.held

    def _check(self) -> None:
        self.threads.add(threading.current_thread().name)
        if self.down:
            raise ConnectionError("broker unreachable")

    def messages(self) -> list[int]:
        """Jobs per message, in the order sent."""
        sizes: dict[int, int] = {}
        for entry in self.sent:
            number = getattr(entry, "message")  # noqa: B009 - _Recorded carries it
            sizes[number] = sizes.get(number, 0) + 1
        return list(sizes.values())


def _wait(cond: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_lone_submit_goes_out_after_the_linger_from_its_own_thread() -> None:
    broker = Broker()
    g = GatheringDispatcher(broker, workers=4, on_failed=lambda items: None)
    g.send(SUBMIT, "j1", 0)
    assert broker.sent == []  # not in the request's thread
    _wait(lambda: broker.sent)
    assert broker.sent == [(SUBMIT, ("j1", 0))] and broker.groups == []  # one job: the plain form
    assert broker.threads == {"k4u-submit-gather"}
    g.close()


def test_submits_spread_over_the_engine_while_its_queue_is_short_and_fill_messages_once_it_is_long() -> None:
    idle = Broker(held=1)
    g = GatheringDispatcher(idle, workers=2, cap=4, linger_s=60, on_failed=lambda items: None)
    for i in range(5):
        g.send(SUBMIT, f"j{i}", 0)
    g.close()  # sends what is gathered
    assert idle.messages() == [3, 2]  # 5 jobs over 2 processes
    assert [a for _, a in idle.sent] == [(f"j{i}", 0) for i in range(5)]

    busy = Broker(held=2)  # a message waiting per process: fuller messages
    g = GatheringDispatcher(busy, workers=2, cap=4, linger_s=60, on_failed=lambda items: None)
    for i in range(5):
        g.send(SUBMIT, f"j{i}", 0)
    g.close()
    assert busy.messages() == [4, 1]


def test_a_full_gathering_goes_out_without_waiting_for_the_linger() -> None:
    broker = Broker()
    g = GatheringDispatcher(broker, workers=2, cap=3, linger_s=60, on_failed=lambda items: None)
    for i in range(6):  # cap x workers
        g.send(SUBMIT, f"j{i}", 0)
    _wait(lambda: len(broker.sent) == 6)
    assert broker.messages() == [3, 3]
    g.close()


def test_everything_but_a_plain_submit_is_sent_at_once_and_after_close_submits_too() -> None:
    broker = Broker()
    g = GatheringDispatcher(broker, workers=4, linger_s=60, on_failed=lambda items: None)
    g.send(NOTIFY, "d1", 0)
    g.send(SUBMIT, "urgent", 1, priority=0)
    g.send_many(DOWNLOAD, [("a", 1), ("b", 1)], 3)
    assert broker.sent == [(NOTIFY, ("d1", 0)), (SUBMIT, ("urgent", 1)), (DOWNLOAD, ("a", 1)), (DOWNLOAD, ("b", 1))]
    g.close()
    g.send(SUBMIT, "late", 0)
    assert broker.sent[-1] == (SUBMIT, ("late", 0))


def test_past_the_gathering_cap_a_request_sends_its_own(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(dispatch, "GATHER_MAX", 2)
    broker = Broker()
    g = GatheringDispatcher(broker, workers=4, cap=8, linger_s=60, on_failed=lambda items: None)
    for i in range(3):
        g.send(SUBMIT, f"j{i}", 0)
    assert broker.sent == [(SUBMIT, ("j2", 0))]  # in the caller's thread, at once
    g.close()
    assert sorted(a for _, a in broker.sent) == [(f"j{i}", 0) for i in range(3)]


def test_submits_the_broker_refuses_are_handed_back() -> None:
    refused: list[Any] = []
    g = GatheringDispatcher(Broker(down=True), workers=2, cap=2, linger_s=60, on_failed=refused.extend)
    for i in range(3):
        g.send(SUBMIT, f"j{i}", i)
    g.close()
    assert refused == [("j0", 0), ("j1", 1), ("j2", 2)]


def test_the_api_answers_at_once_and_a_refused_submit_makes_the_job_due(db_url: str, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(db_url, sim.url, tmp_path, lease_s=600.0)
    rt = build_runtime(settings, Broker(down=True))
    rt.dispatcher = gathering(rt)
    with serve(create_app(settings, runtime=rt)) as url, httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/v1/jobs", json=GOOD)
        assert r.status_code == 202
        job_id = r.json()["id"]

        def due() -> bool:
            with session_scope(get_engine(db_url)) as s:
                job = s.get(Job, job_id)
                assert job is not None and job.status == "queued"
                return job.next_at is not None and job.next_at <= utcnow()

        _wait(due)  # not after the 600 s lease its message would have held: the sweep's next tick sends it


def test_the_api_sends_what_it_gathered_when_it_shuts_down(db_url: str, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(db_url, sim.url, tmp_path)
    broker = Broker()
    rt = build_runtime(settings, broker)
    rt.dispatcher = GatheringDispatcher(broker, workers=4, linger_s=600, on_failed=lambda items: None)
    with serve(create_app(settings, runtime=rt)) as url, httpx.Client(base_url=url, timeout=10) as client:
        ids = [client.post("/v1/jobs", json=GOOD | {"input": {"prompt": f"fox {i}"}}).json()["id"] for i in range(3)]
        time.sleep(SUBMIT_LINGER_S * 5)
        assert broker.sent == []  # still gathered (a 600 s linger)
    assert sorted(a[0] for _, a in broker.sent) == sorted(ids)
    assert all(t == SUBMIT for t, _ in broker.sent)
