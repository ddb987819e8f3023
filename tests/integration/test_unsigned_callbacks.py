"""Callbacks that nothing signs (Kling, Midjourney: the per-job URL token is their only proof)
through handle_callback on a real database, with the simulator as the relay over loopback.

Whoever holds a callback URL can say anything in it, so such a notice never writes the relay's
facts itself: a terminal one (or one carrying result URLs) only makes the job due for a poll now,
and the relay's answer to that poll is what is applied; its progress alone may be recorded. A
notice naming the task of a job that has none (a lost submit answer) is checked with the relay
before that task is adopted or recorded. An attacker's host stands by to count what it is asked."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from models.status import JobStatus
from tests.conftest import Driver, Sim
from tests.integration.test_money_safety import paid_tasks, reasons
from tests.servers import result_server
from workers.services.callbacks import handle_callback


@pytest.fixture
def d(engine_factory, sim: Sim) -> Driver:  # type: ignore[no-untyped-def]
    # Polls are made rare (the next one minutes away), so only a callback makes a job due soon.
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    return engine_factory(poll_expected_s=600.0, poll_min_interval_s=300.0)  # type: ignore[no-any-return]


def callback(d: Driver, provider: str, job_id: str, body: dict[str, Any]) -> str:
    return handle_callback(d.rt, provider, job_id, d.job(job_id).callback_token, {}, json.dumps(body).encode())


def kling_success(task_id: str, job_id: str, url: str) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "task_status": "succeed",
        "task_info": {"external_task_id": job_id},
        "task_result": {"videos": [{"id": "v1", "url": url, "duration": "5"}]},
    }


def mj_task(task_id: str, job_id: str | None, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "action": "IMAGINE", "status": status, "state": job_id, **extra}


def mj_fetch(sim: Sim, task_id: str) -> dict[str, Any]:
    return httpx.get(f"{sim.url}/mj/task/{task_id}/fetch", headers={"authorization": "Bearer k"}).json()  # type: ignore[no-any-return]


def test_a_kling_callback_claiming_success_is_confirmed_by_one_poll(d: Driver, sim: Sim) -> None:
    sha = sim.sha256()
    with result_server() as attacker:
        job_id = d.create("kling", "text2video", {"prompt": "a red fox in snow"})
        task = d.job(job_id).provider_task_id
        assert task
        d.clock.advance(10)  # the relay's task has finished; our next poll is minutes away
        forged = kling_success(task, job_id, f"{attacker['url']}/evil.mp4")
        assert callback(d, "kling", job_id, forged) == "hint"
        job = d.job(job_id)
        assert job.status == JobStatus.RUNNING and job.next_at is not None and job.next_at <= d.rt.clock()
        d.tick()  # the confirming poll, then the download of what the relay says
        done = d.public(job_id)
        assert attacker["gets"] == 0, "the URLs a callback names are never fetched"
    assert done["status"] == "succeeded", done["error"]
    assert [a["sha256"] for a in done["assets"]] == [sha["mp4"]]
    assert not any(attacker["url"] in a["source_url"] for a in done["assets"])
    assert sim.stats()["requests"]["GET /kling/v1/videos/text2video/{id}"] == 1, "one poll: the confirming one"
    assert any(r.startswith("poll: provider succeeded") for r in reasons(d, job_id)), reasons(d, job_id)


def test_a_midjourney_callback_claiming_success_is_confirmed_by_one_poll(d: Driver, sim: Sim) -> None:
    sha = sim.sha256()
    with result_server(content_type="image/png") as attacker:
        job_id = d.create("midjourney", "imagine", {"prompt": "a lighthouse at dawn"})
        task = d.job(job_id).provider_task_id
        assert task
        d.clock.advance(10)
        forged = mj_task(
            task,
            job_id,
            "SUCCESS",
            progress="100%",
            imageUrl=f"{attacker['url']}/evil.png",
            imageUrls=[{"url": f"{attacker['url']}/evil-{i}.png"} for i in range(4)],
        )
        assert callback(d, "midjourney", job_id, forged) == "hint"
        assert d.job(job_id).status == JobStatus.RUNNING
        d.tick()
        done = d.public(job_id)
        assert attacker["gets"] == 0
    assert done["status"] == "succeeded", done["error"]
    assert done["assets"] and all(a["sha256"] == sha["png"] for a in done["assets"])
    assert not any(attacker["url"] in a["source_url"] for a in done["assets"])


def test_unsigned_progress_is_recorded_and_moves_no_poll(d: Driver, sim: Sim) -> None:
    job_id = d.create("midjourney", "imagine", {"prompt": "slow one [sim:run=60]"})
    before = d.job(job_id)
    assert before.provider_task_id
    d.clock.advance(5)
    progress = mj_task(before.provider_task_id, job_id, "IN_PROGRESS", progress="40%", buttons=[{"customId": "x", "label": "U9"}])
    assert callback(d, "midjourney", job_id, progress) == "applied"
    after = d.job(job_id)
    assert (after.status, after.progress) == (JobStatus.RUNNING, 40)
    assert after.next_at == before.next_at, "a callback's progress never puts the next poll off"
    assert after.result == before.result, "only the progress of an unsigned callback is recorded"


def test_a_midjourney_callback_revealing_a_lost_task_is_checked_with_the_relay(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """A submit awaiting its notifyHook: a callback naming a task the relay does not know adopts
    nothing; one naming the real task adopts it with the relay's status, not the callback's."""
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    d = engine_factory(public_url="http://127.0.0.1:9", poll_expected_s=4.0)
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = d.create("midjourney", "imagine", {"prompt": "answer lost"})
    assert d.job(job_id).status == JobStatus.SUBMITTING
    (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t["family"] == "mj"]
    with result_server(content_type="image/png") as attacker:
        evil = {"progress": "100%", "imageUrl": f"{attacker['url']}/evil.png"}
        assert callback(d, "midjourney", job_id, mj_task("1999999999999999", job_id, "SUCCESS", **evil)) == "ignored"
        job = d.job(job_id)
        assert (job.status, job.provider_task_id) == (JobStatus.SUBMITTING, None)
        assert any("unverified" in r and "1999999999999999" in r for r in reasons(d, job_id)), reasons(d, job_id)
        assert callback(d, "midjourney", job_id, mj_task(row["task_id"], job_id, "SUCCESS", **evil)) == "adopted"
        job = d.job(job_id)
        assert (job.status, job.provider_task_id) == (JobStatus.RUNNING, row["task_id"]), "the relay says it is still running"
        d.run_for(10)
        assert attacker["gets"] == 0
    done = d.public(job_id)
    assert done["status"] == "succeeded" and all(attacker["url"] not in a["source_url"] for a in done["assets"])
    assert paid_tasks(sim, "midjourney") == 1


def test_a_hint_on_a_failed_job_records_only_a_task_the_relay_confirms(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """submit_outcome_unknown: a hint naming a task the relay does not know, or another job's task,
    writes nothing but an event saying it was ignored; the real task is recorded (it was charged)."""
    d = engine_factory(poll_expected_s=4.0)
    other = d.create("midjourney", "imagine", {"prompt": "someone else's"})
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = d.create("midjourney", "imagine", {"prompt": "lost answer"})
    job = d.job(job_id)
    assert (job.status, job.error_code) == (JobStatus.FAILED, "submit_outcome_unknown")
    mine = next(t["task_id"] for t in sim.admin("/_sim/tasks")["tasks"] if t["task_id"] != d.job(other).provider_task_id)
    for hint in (
        mj_task("1999999999999999", job_id, "SUCCESS"),
        mj_task("1999999999999999", None, "IN_PROGRESS"),
        mj_fetch(sim, str(d.job(other).provider_task_id)) | {"state": job_id},
        mj_task("../../v1/x?y=" + "9" * 300, job_id, "SUCCESS"),
    ):
        assert callback(d, "midjourney", job_id, hint) == "ignored"
        job = d.job(job_id)
        assert (job.status, job.provider_task_id) == (JobStatus.FAILED, None)
    events = reasons(d, job_id)
    assert sum("unverified" in r for r in events) == 4 and any("malformed" in r for r in events), events
    assert not any("charged" in r for r in events)
    assert callback(d, "midjourney", job_id, mj_fetch(sim, mine)) == "recorded"
    job = d.job(job_id)
    assert (job.status, job.provider_task_id) == (JobStatus.FAILED, mine)
    assert any(f"did create task {mine}" in r for r in reasons(d, job_id))
