"""Vidu through the engine: real database, the simulator over loopback. Every operation with its
assets and cost, a failure with its err_code, a relay rejection, an undocumented state word, an
expired result, refusals before anything is paid, the relay on another route prefix, and the money
path: a lost submit answer is adopted when the relay's callback names the task and echoes our
payload, and fails `submit_outcome_unknown` (one paid task) when no callback comes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from models.errors import RequestInvalid
from models.schemas import JobCreate
from models.status import JobStatus
from simulator.media import MEDIA_SHA256
from tests.conftest import Driver, Sim
from tests.integration.test_money_safety import reasons
from tests.servers import Receiver, webhook_receiver
from workers.services.callbacks import handle_callback
from workers.services.create import create_job

IMG = "https://images.example.com/cat.png"
OPERATIONS: dict[str, dict[str, Any]] = {
    "text2video": {"model": "viduq2", "prompt": "a fox in snow", "duration": 5, "aspect_ratio": "16:9", "style": "anime"},
    "img2video": {"model": "viduq1", "images": [IMG], "duration": 5, "movement_amplitude": "small"},
    "start_end2video": {"model": "viduq3-turbo", "images": [IMG, IMG], "duration": 8, "audio": True},
    "reference2video": {"model": "vidu2.0", "prompt": "the cat dances", "images": [IMG] * 3, "duration": 4, "resolution": "1080p"},
    "reference2image": {"model": "viduq2", "prompt": "the cat as a statue", "images": [IMG, IMG]},
}


def sim_row(sim: Sim, task_id: str) -> dict[str, Any]:
    (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t["family"] == "vidu" and t["task_id"] == task_id]
    return row  # type: ignore[no-any-return]


def vidu_paid(sim: Sim) -> list[dict[str, Any]]:
    return [r for r in sim.admin("/_sim/paid")["paid"] if r["family"] == "vidu"]


@pytest.fixture
def d(engine_factory, sim: Sim) -> Driver:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)  # type: ignore[no-any-return]


def test_every_operation_end_to_end_with_assets_cost_and_our_payload(d: Driver, sim: Sim) -> None:
    jobs = {op: d.create("vidu", op, inp) for op, inp in OPERATIONS.items()}
    d.run_for(30)
    for op, job_id in jobs.items():
        job = d.public(job_id)
        assert job["status"] == "succeeded", (op, job["error"])
        row = sim_row(sim, job["provider_task_id"])
        assert row["route"] == op.replace("_", "-") and row["prefix"] == "/ent/v2" and row["payload"] == job_id
        kinds = sorted((a["kind"], a["sha256"]) for a in job["assets"])
        if op == "reference2image":
            assert kinds == [("image", MEDIA_SHA256["png"])]
        else:
            assert kinds == [("image", MEDIA_SHA256["jpg"]), ("video", MEDIA_SHA256["mp4"])], op
        assert job["result"]["cost"] == {"credits": row["credits"]}
    paid = vidu_paid(sim)
    assert len(paid) == 5 and {r["external_id"] for r in paid} == set(jobs.values())


def test_a_failed_task_carries_its_err_code(d: Driver) -> None:
    job_id = d.create("vidu", "text2video", {"model": "viduq2", "prompt": "x [sim:fail=AuditSubmitIllegal]"})
    d.run_for(20)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "vidu_AuditSubmitIllegal", job["error"]
    assert "AuditSubmitIllegal" in job["error"]["message"]


def test_a_relay_rejection_fails_with_the_relays_message_and_nothing_paid(d: Driver, sim: Sim) -> None:
    job_id = d.create("vidu", "text2video", {"model": "viduq2", "prompt": "x [sim:reject]"})
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "bad_request", job["error"]
    assert "content review" in job["error"]["message"] and "AuditSubmitIllegal" in job["error"]["message"]
    assert vidu_paid(sim) == []


def test_an_undocumented_state_word_keeps_polling_and_an_envelope_is_read(d: Driver) -> None:
    job_id = d.create("vidu", "img2video", {"model": "viduq2", "images": [IMG], "prompt": "x [sim:state=rendering] [sim:envelope]"})
    d.run_for(3)
    job = d.job(job_id)
    assert job.status == JobStatus.RUNNING and (job.result or {}).get("provider_detail") == "Vidu state 'rendering'", job.result
    d.run_for(20)
    job = d.public(job_id)
    assert job["status"] == "succeeded", job["error"]


def test_an_expired_result_fails_result_expired(d: Driver) -> None:
    job_id = d.create("vidu", "text2video", {"model": "viduq2", "prompt": "x [sim:expire=0]"})
    d.run_for(30)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired", job["error"]


@pytest.mark.parametrize(
    ("op", "inp", "field"),
    [
        ("text2video", {"model": "viduq1", "prompt": "x", "duration": 8}, "input.duration"),
        ("text2video", {"model": "viduq2", "prompt": "x", "duration": 12}, "input.duration"),
        ("text2video", {"model": "viduq2", "prompt": "x", "audio": True}, "input.audio"),
        ("text2video", {"model": "viduq2", "prompt": "x", "payload": "mine"}, "input.payload"),
        ("img2video", {"model": "viduq2", "images": [IMG, IMG]}, "input.images"),
    ],
)
def test_documented_impossible_inputs_are_refused_before_any_paid_call(d: Driver, sim: Sim, op: str, inp: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestInvalid) as exc:
        create_job(d.rt, JobCreate(provider="vidu", operation=op, input=inp))
    assert exc.value.field == field, exc.value.message
    assert vidu_paid(sim) == []


def test_the_relay_on_another_prefix(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """K4U_ROUTE_PREFIXES="vidu=/vidu/ent/v2" against a relay that serves Vidu only there."""
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0, "vidu_prefixes": "/vidu/ent/v2"})
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0, route_prefixes="vidu=/vidu/ent/v2")
    job_id = d.create("vidu", "reference2image", OPERATIONS["reference2image"])
    d.run_for(20)
    job = d.public(job_id)
    assert job["status"] == "succeeded", job["error"]
    assert sim_row(sim, job["provider_task_id"])["prefix"] == "/vidu/ent/v2"
    requests = sim.stats()["requests"]
    assert requests["POST /vidu/ent/v2/reference2image"] == 1 and requests["GET /vidu/ent/v2/tasks/{id}/creations"] >= 1
    assert not any(k.split(" ")[1].startswith("/ent/v2") for k in requests)


def test_lost_submit_without_callbacks_fails_unknown_after_one_paid_task(d: Driver, sim: Sim) -> None:
    """No K4U_PUBLIC_URL: no callback can reveal the task, so the job fails at once, never resent."""
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = d.create("vidu", "text2video", {"model": "viduq2", "prompt": "lost answer"})
    d.run_for(30)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert f"/v1/jobs/{job_id}/retry" in job["error"]["message"]
    assert len(vidu_paid(sim)) == 1 and vidu_paid(sim)[0]["external_id"] == job_id


def deliver(d: Driver, rec: Receiver, job_id: str, n: int) -> list[str]:
    """Hand what the simulator POSTed to our per-job callback URL to the callback handler (as the
    API's webhook route does), in order; the handler's outcomes."""
    out = []
    for hit in rec.wait(n)[:n]:
        provider, got_job, token = hit.path.split("/")[-3:]
        assert (provider, got_job) == ("vidu", job_id) and token == d.job(job_id).callback_token
        out.append(str(handle_callback(d.rt, provider, got_job, token, hit.headers, hit.body)))
    return out


def test_lost_submit_is_adopted_when_the_relays_callback_names_it(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0, "callbacks_enabled": True})
    with webhook_receiver() as rec:
        d = engine_factory(public_url=rec.url.removesuffix("/hook"), poll_expected_s=4.0, poll_min_interval_s=1.0, submit_callback_grace_s=60.0)
        sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
        job_id = d.create("vidu", "start_end2video", OPERATIONS["start_end2video"])
        job = d.job(job_id)
        assert (job.status, job.provider_task_id) == (JobStatus.SUBMITTING, None)
        d.clock.advance(2)  # the task is processing: the relay calls back, echoing our payload
        assert deliver(d, rec, job_id, 1) == ["adopted"]
        (paid,) = vidu_paid(sim)
        job = d.job(job_id)
        assert (job.status, job.provider_task_id) == (JobStatus.RUNNING, paid["task_id"])
        d.run_for(20)
    done = d.public(job_id)
    assert done["status"] == "succeeded" and len(done["assets"]) == 2, done["error"]
    assert any("recovered from the provider's callback" in r for r in reasons(d, job_id)), reasons(d, job_id)
    assert len(vidu_paid(sim)) == 1


def test_lost_submit_without_a_callback_in_the_grace_fails_unknown(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0, "callbacks_enabled": True})
    with webhook_receiver() as rec:
        d = engine_factory(public_url=rec.url.removesuffix("/hook"), poll_expected_s=4.0, poll_min_interval_s=1.0, submit_callback_grace_s=10.0)
        sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
        job_id = d.create("vidu", "text2video", {"model": "viduq2", "prompt": "lost, and its callbacks too [sim:no_callback]"})
        assert d.job(job_id).status == JobStatus.SUBMITTING
        d.run_for(20)
        time.sleep(0.3)  # the simulator's callback loop (every 0.1 s) had its chance: it dropped them
        assert rec.received == []
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert "no callback revealed the task within 10 s" in job["error"]["message"]
    assert len(vidu_paid(sim)) == 1 and sim.stats()["callbacks_dropped"] >= 1


def test_a_callback_records_progress_and_an_end_makes_a_poll_due(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """Unsigned (token only): progress is recorded, `success` only makes the job due for a poll."""
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0, "callbacks_enabled": True})
    with webhook_receiver() as rec:
        d = engine_factory(public_url=rec.url.removesuffix("/hook"), poll_expected_s=600.0, poll_min_interval_s=300.0)
        job_id = d.create("vidu", "text2video", {"model": "viduq2", "prompt": "x"})
        assert d.job(job_id).status == JobStatus.RUNNING
        d.clock.advance(10)
        states = [json.loads(hit.body)["state"] for hit in rec.wait(2)]
        assert states == ["processing", "success"]
        assert deliver(d, rec, job_id, 2) == ["applied", "hint"]
        job = d.job(job_id)
        assert job.status == JobStatus.RUNNING and job.next_at is not None and job.next_at <= d.rt.clock()
        d.tick()
    assert d.public(job_id)["status"] == "succeeded"
