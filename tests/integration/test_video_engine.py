"""Sora, Veo and Grok through the engine: real database, the simulator over loopback, every
operation, both API formats, the synonym storm, remix by our job id, the relay's content route
(key on the first hop only), blocked / expired / not-yet-ready content, and a lost submit answer."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from sqlmodel import select

from models.errors import RequestInvalid
from models.schemas import JobCreate
from models.tables import JobEvent
from simulator.media import PNG_BYTES
from tests.conftest import Sim
from workers.db import session_scope
from workers.services.create import create_job


def new(d, provider: str, operation: str, inp: dict[str, Any], **body: Any) -> str:  # type: ignore[no-untyped-def]
    return str(d.create(provider, operation, inp, **body))


def public(d, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(d.public(job_id))


def sim_task(sim: Sim, task_id: str) -> dict[str, Any]:
    rows = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == task_id or t.get("id") == task_id]
    assert rows, f"simulator has no task {task_id}"
    return rows[0]


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 6.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


@pytest.mark.parametrize(
    "provider, operation, inp",
    [
        ("sora", "video", {"prompt": "a fox in snow", "seconds": 8}),
        ("sora", "video_unified", {"prompt": "a fox in snow", "orientation": "portrait", "size": "small"}),
        ("veo", "video", {"prompt": "waves [sim:shape=plain]", "enable_upsample": True}),
        ("veo", "video", {"prompt": "waves [sim:shape=data]"}),
        ("veo", "video_openai", {"prompt": "waves", "seconds": "8"}),
        ("grok", "video", {"prompt": "a robot dancing [sim:shape=url]"}),
    ],
)
def test_every_operation_end_to_end(d, sim: Sim, provider: str, operation: str, inp: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, provider, operation, inp)
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert len(job["assets"]) == 1 and job["assets"][0]["kind"] == "video"
    task = sim_task(sim, job["provider_task_id"])
    assert job["assets"][0]["sha256"] == task["content_sha256"] and job["assets"][0]["size"] == task["content_size"]
    if provider == "sora" and operation == "video_unified":
        assert ":" in job["provider_task_id"], "unified Sora ids carry the model prefix (sora-2:task_...)"


def test_key_only_on_relay_routes_never_on_media_or_redirects(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    direct = new(d, "sora", "video", {"prompt": "a [sim:content_redirect]"})
    content = new(d, "sora", "video", {"prompt": "b"})
    unified = new(d, "sora", "video_unified", {"prompt": "c"})
    d.run_for(30)
    assert all(public(d, j)["status"] == "succeeded" for j in (direct, content, unified))
    seen = sim.admin("/_sim/auth-seen")
    seen = seen.get("routes", seen)
    for route, counts in seen.items():
        if "/_sim/media" in route:
            assert counts.get("with_auth", 0) == 0, f"the relay key reached {route}: {counts}"
        elif not route.split(" ", 1)[-1].startswith("/_sim"):
            assert counts.get("without_auth", 0) == 0, f"a relay route went without the key: {route}: {counts}"
    assert any("content" in r and c.get("with_auth", 0) >= 2 for r, c in seen.items())
    assert any("/_sim/media" in r and c.get("without_auth", 0) >= 2 for r, c in seen.items())


def test_synonym_storm_and_unknown_values_keep_polling(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 6.0, "run_s": 12.0})
    jobs = [
        new(d, "sora", "video_unified", {"prompt": "storm [sim:synonyms]"}),
        new(d, "sora", "video", {"prompt": "storm [sim:synonyms]"}),
        new(d, "grok", "video", {"prompt": "storm [sim:synonyms]"}),
    ]
    d.run_for(60)
    for job_id in jobs:
        job = public(d, job_id)
        assert job["status"] == "succeeded", job["error"]
        assert job["assets"][0]["sha256"] == sim_task(sim, job["provider_task_id"])["content_sha256"]


@pytest.mark.parametrize(
    "provider, operation, prompt, reason",
    [
        ("sora", "video_unified", "x [sim:fail]", "violates"),
        ("veo", "video", "x [sim:fail=video_upsampling_failed]", "violates"),
        ("veo", "video", "x [sim:fail] [sim:shape=fail_reason]", "violates"),
        ("grok", "video", "x [sim:fail]", "violates"),
        ("sora", "video", "x [sim:fail]", "violates"),
    ],
)
def test_failures_carry_the_relay_reason(d, provider: str, operation: str, prompt: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, provider, operation, {"prompt": prompt})
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "provider_failed"
    assert reason in job["error"]["message"]


def test_remix_by_our_job_id_and_refusals_before_anything_is_sent(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    parent = new(d, "sora", "video", {"prompt": "a city"})
    unified = new(d, "sora", "video_unified", {"prompt": "a city"})
    d.run_for(30)
    remix = new(d, "sora", "remix", {"prompt": "the same city at night", "job_id": parent})
    d.run_for(30)
    job = public(d, remix)
    assert job["status"] == "succeeded", job["error"]
    assert sim_task(sim, job["provider_task_id"])["remixed_from_video_id"] == public(d, parent)["provider_task_id"]
    assert job["result"]["remixed_from_video_id"] == public(d, parent)["provider_task_id"]
    paid_before = sim.admin("/_sim/paid")["count"]
    with pytest.raises(RequestInvalid) as exc:
        create_job(d.rt, JobCreate(provider="sora", operation="remix", input={"prompt": "p", "job_id": unified}))
    assert exc.value.field == "input.job_id" and "OpenAI format" in exc.value.message
    with pytest.raises(RequestInvalid):
        create_job(d.rt, JobCreate(provider="sora", operation="remix", input={"prompt": "p", "video_id": "sora-2:task_x"}))
    assert sim.admin("/_sim/paid")["count"] == paid_before


def test_reference_image_bytes_are_uploaded_as_multipart(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    uri = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    job_id = new(d, "sora", "video", {"prompt": "animate this", "input_reference": uri})
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    ref = sim_task(sim, job["provider_task_id"])["input_reference"]
    assert ref["sha256"] == hashlib.sha256(PNG_BYTES).hexdigest() and ref["size"] == len(PNG_BYTES)


def test_content_not_ready_and_relay_trouble_are_retried(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "sora", "video", {"prompt": "x [sim:content_502=2]"})
    d.run_for(60)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]


def test_blocked_content_fails_naming_the_relay_filter(d) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "sora", "video", {"prompt": "x [sim:blocked]"})
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_blocked", job["error"]
    assert "filter" in job["error"]["message"] and "expired" not in job["error"]["message"]


def test_expired_result_fails_result_expired(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "veo", "video", {"prompt": "x [sim:expire=0]"})
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired", job["error"]


def test_a_result_that_stays_gone_fails_result_expired_after_one_re_poll(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "veo", "video", {"prompt": "x [sim:expire=0]"})
    d.run_for(30)
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "result_expired" and job.download_attempts == 1
    assert "asked again" in (job.error_message or ""), job.error_message
    with session_scope(d.rt.engine) as s:
        reasons = [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()]
    assert sum("fresh" in r for r in reasons) == 1, reasons


@pytest.mark.parametrize("provider, operation", [("sora", "video"), ("veo", "video"), ("grok", "video")])
def test_lost_submit_answer_fails_without_a_second_charge(engine_factory, sim: Sim, provider: str, operation: str) -> None:  # type: ignore[no-untyped-def]
    """No client id, no lookup, no callback through the relay (§12): the job fails clearly."""
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = new(d, provider, operation, {"prompt": "lost answer"})
    d.run_for(120)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert sim.admin("/_sim/paid")["count"] == 1, "the paid POST must not be resent"
