"""Seedance through the engine: real database, the simulator over loopback. Every answer shape
(raw, new-api envelope, the DTO alone, the `processing` alias), the batch query with repeated
task ids (and the single GET when a relay does not route it), the route prefix of a relay that
serves /api/v3 only, failures and expiries with the relay's reason, refusals before anything is
paid, the relay-side cancel, an expired result, and a lost submit answer."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from models.errors import RequestInvalid
from models.schemas import JobCreate
from models.tables import JobEvent
from tests.conftest import Sim
from workers.db import session_scope
from workers.services.create import cancel_job, create_job

PRO = "doubao-seedance-1-0-pro-250528"
V2 = "doubao-seedance-2-0-260128"


def sim_task(sim: Sim, task_id: str) -> dict[str, Any]:
    rows = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("family") == "seedance" and t["task_id"] == task_id]
    assert rows, f"simulator has no seedance task {task_id}"
    return rows[0]


def reasons(d, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    with session_scope(d.rt.engine) as s:
        return [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))).all()]


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 6.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


@pytest.mark.parametrize(
    "inp, config",
    [
        ({"prompt": "a fox in snow", "duration": 5, "ratio": "16:9", "resolution": "1080p"}, {}),
        ({"prompt": "a fox [sim:processing]", "first_frame": "https://img.example/a.png", "return_last_frame": True}, {}),
        (
            {"model": V2, "prompt": "a fox", "duration": 12, "reference_videos": ["https://v.example/r.mp4"], "generate_audio": True},
            {"seedance_envelope": True},
        ),
        ({"prompt": "a fox [sim:envelope]", "return_last_frame": True}, {}),
        ({"prompt": "a fox [sim:shape=dto]"}, {}),
    ],
    ids=["raw", "processing-alias-last-frame", "config-envelope-2.0", "envelope", "dto-only"],
)
def test_video_end_to_end_by_the_batch_query(d, sim: Sim, inp: dict[str, Any], config: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    if config:
        sim.admin("/_sim/config", config)
    job_id = d.create("seedance", "video", inp)
    d.run_for(30)
    job = d.public(job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["provider_task_id"].startswith("cgt-") and len(job["provider_task_id"]) == len("cgt-20250629201507-n6k56")
    kinds = sorted(a["kind"] for a in job["assets"])
    assert kinds == (["image", "video"] if inp.get("return_last_frame") else ["video"])
    if "shape=dto" not in inp["prompt"]:
        assert job["result"]["cost"]["total_tokens"] > 0 and job["result"]["usage"]["total_tokens"] == job["result"]["cost"]["total_tokens"]
    task = sim_task(sim, job["provider_task_id"])
    assert task["content"][0] == {"type": "text", "text": inp["prompt"]}
    polls = sim.stats()["polls"]
    assert polls.get("seedance_batch", 0) >= 1 and polls.get("seedance_single", 0) == 0, polls


def test_one_batch_request_answers_many_jobs(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    jobs = [d.create("seedance", "video", {"prompt": f"clip {i}"}) for i in range(6)]
    d.run_for(30)
    assert all(d.public(j)["status"] == "succeeded" for j in jobs)
    batch_requests = sim.stats()["polls"]["seedance_batch"]
    rounds = sum(d.job(j).poll_count for j in jobs)
    assert batch_requests * 3 <= rounds, (batch_requests, rounds)  # six jobs per request, give or take the schedule


def test_a_relay_without_the_batch_route_is_polled_one_task_at_a_time(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"seedance_batch_enabled": False})
    jobs = [d.create("seedance", "video", {"prompt": f"clip {i}"}) for i in range(2)]
    d.run_for(30)
    assert all(d.public(j)["status"] == "succeeded" for j in jobs)
    assert sim.stats()["polls"]["seedance_single"] >= 2


def test_a_relay_serving_api_v3_works_with_the_configured_prefix_only(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0, "seedance_prefixes": "/api/v3"})
    default = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)
    lost = default.create("seedance", "video", {"prompt": "under the documented prefix"})
    assert default.public(lost)["status"] == "failed" and "Invalid URL" in default.public(lost)["error"]["message"]
    assert sim.admin("/_sim/paid")["count"] == 0, "a request to a route the relay does not serve is not paid"
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0, route_prefixes="seedance=/api/v3")
    job_id = d.create("seedance", "video", {"prompt": "under /api/v3"})
    d.run_for(30)
    job = d.public(job_id)
    assert job["status"] == "succeeded", job["error"]
    requests = sim.stats()["requests"]
    assert requests.get("POST /api/v3/contents/generations/tasks") == 1 and requests.get("GET /api/v3/contents/generations/tasks", 0) >= 1
    assert not any(k.startswith(("GET /volc", "DELETE /volc")) for k in requests)


@pytest.mark.parametrize(
    "prompt, code, reason",
    [
        ("x [sim:fail]", "provider_failed", "output video may contain sensitive information"),
        ("x [sim:fail] [sim:envelope]", "provider_failed", "output video may contain sensitive information"),
        ("x [sim:fail] [sim:shape=dto]", "provider_failed", "output video may contain sensitive information"),
        ("x [sim:expired]", "timeout", "expired"),
    ],
)
def test_failures_carry_the_relay_reason(d, prompt: str, code: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    job_id = d.create("seedance", "video", {"prompt": prompt})
    d.run_for(30)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == code, job["error"]
    assert reason in job["error"]["message"]


def test_a_relay_rejection_fails_with_its_message_and_nothing_is_paid(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = d.create("seedance", "video", {"prompt": "x [sim:reject]"})
    job = d.public(job_id)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "InputTextSensitiveContentDetected" and "input text may contain sensitive information" in job["error"]["message"]
    assert sim.admin("/_sim/paid")["count"] == 0


@pytest.mark.parametrize(
    "inp, field",
    [
        ({"model": V2, "prompt": "p", "duration": 20}, "input.duration"),
        ({"model": PRO, "prompt": "p", "reference_videos": ["https://v.example/r.mp4"]}, "input.reference_videos"),
        ({"model": "doubao-seedance-1-0-lite-t2v-250428", "prompt": "p", "first_frame": "https://i.example/a.png"}, "input.first_frame"),
        ({"prompt": "p", "ratio": "2:1"}, "input.ratio"),
        ({"prompt": "p", "resolution": "4k"}, "input.resolution"),
        (
            {"model": "doubao-seedance-1-0-lite-t2v-250428", "content": [{"type": "image_url", "image_url": {"url": "https://i.example/a.png"}}]},
            "input.content",
        ),
    ],
)
def test_documented_limits_are_refused_before_anything_is_paid(d, sim: Sim, inp: dict[str, Any], field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestInvalid) as exc:
        create_job(d.rt, JobCreate(provider="seedance", operation="video", input=inp))
    assert exc.value.field == field, (exc.value.field, exc.value.message)
    assert sim.admin("/_sim/paid")["count"] == 0


def test_unknown_models_pass_to_the_relay(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = d.create("seedance", "video", {"model": "doubao-seedance-9-9", "prompt": "p", "duration": 40})
    job = d.public(job_id)
    assert job["status"] == "failed" and "does not exist" in job["error"]["message"]


def test_cancel_stops_a_queued_task_and_a_running_one_is_cancelled_on_our_side(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    queued = d.create("seedance", "video", {"prompt": "wait [sim:queue=60]"})
    running = d.create("seedance", "video", {"prompt": "busy [sim:queue=0] [sim:run=60]"})
    d.run_for(2)
    for job_id in (queued, running):
        assert cancel_job(d.rt, job_id).status == "cancelled"
    d.drain()
    assert sim_task(sim, d.job(queued).provider_task_id or "")["status"] == "cancelled"
    assert sim_task(sim, d.job(running).provider_task_id or "")["status"] == "running"
    assert d.job(queued).provider_cancel == "done" and d.job(running).provider_cancel == "done"
    assert "cancelled" in reasons(d, queued)[-1] and "did not stop" not in reasons(d, queued)[-1]
    assert "did not stop" in reasons(d, running)[-1] and "cannot be cancelled" in reasons(d, running)[-1]
    assert sim.stats()["requests"]["DELETE /volc/v1/contents/generations/tasks/{id}"] == 2


def test_expired_result_fails_result_expired(d) -> None:  # type: ignore[no-untyped-def]
    job_id = d.create("seedance", "video", {"prompt": "x [sim:expire=0]"})
    d.run_for(30)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired", job["error"]


def test_lost_submit_answer_fails_without_a_second_charge(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = d.create("seedance", "video", {"prompt": "lost answer"})
    d.run_for(60)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
    assert sim.admin("/_sim/paid")["count"] == 1, "the paid POST must not be resent"
