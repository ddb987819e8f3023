"""Downloads sent together share a message, and the download worker runs that message's jobs side
by side: the grouping in send_all, one Celery message per group, a poll whose successes go out
together, and store_many on real databases with the simulator and a scripted CDN on loopback
(one source that hangs holds up only its own job)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

import tasks.jobs
from models.schemas import JobCreate
from models.status import JobStatus
from providers.base import OutputRef, ProviderStatus, State
from tests.servers import result_server
from workers import jobs
from workers.db import session_scope
from workers.dispatch import DOWNLOAD, DOWNLOAD_MESSAGE_MAX, NOTIFY, SUBMIT, CeleryDispatcher, Followup, RecordingDispatcher, send_all
from workers.outcomes import Outcome
from workers.services import download
from workers.services.apply import apply_status
from workers.services.create import create_job
from workers.services.poll import poll_jobs

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def test_send_all_groups_downloads_by_priority_and_sends_the_rest_one_by_one() -> None:
    rec = RecordingDispatcher()
    fu = [Followup(DOWNLOAD, (f"late-{i}", 1), 6) for i in range(3)] + [(NOTIFY, ("d1", 0))]
    fu += [Followup(DOWNLOAD, (f"soon-{i}", 2), 0) for i in range(DOWNLOAD_MESSAGE_MAX + 2)] + [(SUBMIT, ("j1", 0))]
    assert send_all(rec, fu) == 0
    # Sooner-expiring results first, at most DOWNLOAD_MESSAGE_MAX to a message; the others in order.
    assert rec.groups == [(DOWNLOAD, DOWNLOAD_MESSAGE_MAX), (DOWNLOAD, 2), (DOWNLOAD, 3)]
    assert [t for t, _ in rec.sent].count(DOWNLOAD) == DOWNLOAD_MESSAGE_MAX + 5
    assert [a for t, a in rec.sent if t != DOWNLOAD] == [("d1", 0), ("j1", 0)]
    assert rec.priorities[-3:] == [6, 6, 6] and set(rec.priorities[2 : 2 + DOWNLOAD_MESSAGE_MAX + 2]) == {0}


class _App:
    """Celery's send_task as CeleryDispatcher calls it; fails when `down`."""

    def __init__(self, down: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.down = down

    def send_task(self, name: str, **kw: Any) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.calls.append({"name": name} | kw)


def test_a_group_of_downloads_is_one_celery_message_carrying_id_version_pairs() -> None:
    app = _App()
    assert send_all(CeleryDispatcher(app), [Followup(DOWNLOAD, (f"j{i}", i), 3) for i in range(3)] + [(SUBMIT, ("s", 0))]) == 0
    assert app.calls[0] == {"name": SUBMIT, "args": ["s", 0], "queue": "submit", "priority": None}
    assert app.calls[1] == {"name": DOWNLOAD, "args": [[["j0", 0], ["j1", 1], ["j2", 2]]], "queue": "download", "priority": 3}
    assert len(app.calls) == 2
    lone = _App()
    send_all(CeleryDispatcher(lone), [Followup(DOWNLOAD, ("only", 4), 0)])  # one job: the plain form
    assert lone.calls == [{"name": DOWNLOAD, "args": ["only", 4], "queue": "download", "priority": 0}]
    # A broker that is down: every job of the group counts as not sent (the sweep sends them later).
    assert send_all(CeleryDispatcher(_App(down=True)), [Followup(DOWNLOAD, (f"j{i}", 0), 0) for i in range(5)]) == 5


def _running(driver, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for i in range(n):
        job, _ = create_job(driver.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": f"a fox {i}"}))
        ids.append(job.id)
    driver.drain()  # the submits
    for job_id in ids:
        assert driver.job(job_id).status == "running"
    return ids


def test_the_successes_of_one_poll_message_go_out_as_one_download_message(engine_factory, clock) -> None:  # type: ignore[no-untyped-def]
    driver = engine_factory()
    ids = _running(driver, 3)
    clock.advance(10)  # every relay task has finished
    driver.recorder.groups.clear()
    assert poll_jobs(driver.rt, ids) == 3  # Kling: one relay request per job, one message for all three
    assert driver.recorder.groups == [(DOWNLOAD, 3)]
    driver.drain()
    assert {driver.job(j).status for j in ids} == {"succeeded"}


@contextmanager
def _cdn() -> Iterator[dict[str, Any]]:
    """A CDN on loopback: /hang/... waits until `release` is set, every other path answers at once."""
    release, hanging = threading.Event(), threading.Event()

    def hold(path: str) -> None:
        if path.startswith("/hang/"):
            hanging.set()
            release.wait(30)

    with result_server(body=BODY, before_reply=hold) as cdn:
        try:
            yield cdn | {"release": release, "hanging": hanging}
        finally:
            release.set()


def _succeeded_at(driver, urls: list[str]) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Running jobs the provider reports done with these result URLs (one each): their download
    messages' (job_id, version), not yet run."""
    items = []
    for job_id, url in zip(_running(driver, len(urls)), urls, strict=True):
        with session_scope(driver.rt.engine) as s:
            row = jobs.get_job(s, job_id)
            assert row is not None
            fu = apply_status(
                s,
                row,
                ProviderStatus(row.provider_task_id, State.SUCCEEDED, outputs=[OutputRef(url, "video")]),
                settings=driver.rt.settings,
                now=driver.clock.now(),
                source="test",
            )
        ((task, args),) = fu
        assert task == DOWNLOAD
        items.append((str(args[0]), int(args[1])))
    return items


def test_one_hanging_source_holds_up_only_its_own_job_in_a_message(engine_factory) -> None:  # type: ignore[no-untyped-def]
    with _cdn() as cdn:
        driver = engine_factory()
        items = _succeeded_at(driver, [f"{cdn['url']}/hang/a.mp4", f"{cdn['url']}/b.mp4", f"{cdn['url']}/c.mp4"])
        out: list[list[Outcome]] = []
        worker = threading.Thread(target=lambda: out.append(download.store_many(driver.rt, items)))
        worker.start()
        try:
            assert cdn["hanging"].wait(10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and {driver.job(j).status for j, _ in items[1:]} != {"succeeded"}:
                time.sleep(0.05)
            # The two quick sources are stored while the first one still hangs.
            assert [driver.job(j).status for j, _ in items] == ["downloading", "succeeded", "succeeded"]
            assert worker.is_alive(), "the message ends only when all its jobs have"
        finally:
            cdn["release"].set()
            worker.join(30)
    assert out == [[Outcome.SUCCEEDED] * 3]
    for job_id, _ in items:
        assert driver.job(job_id).status == "succeeded"
        assert driver.public(job_id)["assets"][0]["size"] == len(BODY)


def test_a_step_that_raises_lets_the_others_finish_and_is_raised_after_them(engine_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with _cdn() as cdn:
        driver = engine_factory()
        items = _succeeded_at(driver, [f"{cdn['url']}/{n}.mp4" for n in "abc"])
        real = download.store_outputs

        def store_outputs(rt, job_id, version):  # type: ignore[no-untyped-def]
            if job_id == items[0][0]:
                raise OperationalError("SELECT 1", {}, ConnectionError("the database went away"))
            return real(rt, job_id, version)

        monkeypatch.setattr(download, "store_outputs", store_outputs)
        with pytest.raises(OperationalError):
            download.store_many(driver.rt, items)
    # The failing step left its job for the sweep to re-drive; the other two were stored.
    assert [driver.job(j).status for j, _ in items] == ["downloading", "succeeded", "succeeded"]


def test_the_download_task_takes_one_job_or_a_list_of_them(engine_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with _cdn() as cdn:
        driver = engine_factory()
        monkeypatch.setattr(tasks.jobs, "runtime", lambda: driver.rt)
        (one, *more) = _succeeded_at(driver, [f"{cdn['url']}/{n}.mp4" for n in "abc"])
        assert tasks.jobs.download.run(*one) == Outcome.SUCCEEDED
        assert tasks.jobs.download.run([list(i) for i in more]) == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
        assert tasks.jobs.download.run([list(more[0])]) == [Outcome.STALE]  # a redelivered message: nothing twice
    assert {driver.job(j).status for j, _ in [one, *more]} == {JobStatus.SUCCEEDED}
