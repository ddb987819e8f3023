"""Replicate and fal through the engine: real database, the simulator over loopback. Any model by
path, outputs of every shape stored with the simulator's sha256, upstream-host URLs rewritten to
the relay, the sub-path rule, COMPLETED-with-error, a synchronous answer, data: outputs stored
without a request, an expired output, failures with the provider's reason, a lost submit answer."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from models.errors import RequestInvalid
from models.schemas import JobCreate
from simulator.media import MEDIA_SHA256
from tests.conftest import Sim
from workers.db import session_scope
from workers.services.create import create_job

HEX = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def new(d, provider: str, operation: str, inp: dict[str, Any], **body: Any) -> str:  # type: ignore[no-untyped-def]
    return str(d.create(provider, operation, inp, **body))


def public(d, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(d.public(job_id))


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


@pytest.mark.parametrize(
    "inp, kinds",
    [
        ({"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a kite [sim:output=list]", "num_outputs": 2}}, ["image", "image"]),
        ({"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a kite [sim:output=url]"}}, ["image"]),
        ({"version": f"lucataco/flux-schnell-lora:{HEX}", "input": {"prompt": "a kite [sim:output=json]"}}, ["image"]),
        ({"model": "minimax/video-01", "input": {"prompt": "waves [sim:output=list]"}}, ["video"]),
        ({"model": "black-forest-labs/flux-schnell", "input": {"prompt": "inline [sim:output=data]"}}, ["image"]),
    ],
)
def test_replicate_outputs_of_every_shape(d, sim: Sim, inp: dict[str, Any], kinds: list[str]) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "replicate", "prediction", inp)
    d.run_for(20)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert [a["kind"] for a in job["assets"]] == kinds
    for a in job["assets"]:
        assert a["sha256"] == MEDIA_SHA256["mp4" if a["kind"] == "video" else "png"]
    assert job["result"]["output"] is not None and job["result"]["cost"]["predict_time_s"] > 0
    if "data" in inp["input"]["prompt"]:
        assert job["assets"][0]["source_url"].startswith("data:image/png;base64,…(")
    assert job["result_expires_at"] is not None


def test_replicate_failure_abort_and_expired(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    failed = new(d, "replicate", "prediction", {"model": "a/b", "input": {"prompt": "x [sim:fail]"}})
    aborted = new(d, "replicate", "prediction", {"model": "a/b", "input": {"prompt": "x [sim:abort]"}})
    expired = new(d, "replicate", "prediction", {"model": "a/b", "input": {"prompt": "x [sim:expire=0]"}})
    d.run_for(20)
    f, a, e = public(d, failed), public(d, aborted), public(d, expired)
    assert f["status"] == "failed" and f["error"]["code"] == "provider_failed" and f["error"]["message"]
    assert a["status"] == "cancelled"
    assert e["status"] == "failed" and e["error"]["code"] == "result_expired", e["error"]


def test_replicate_bad_model_is_refused_before_anything_is_sent(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    before = sim.admin("/_sim/paid")["count"]
    for inp, field in (({"model": "no-slash"}, "input.model"), ({"version": "abc"}, "input.version")):
        with pytest.raises(RequestInvalid) as exc:
            create_job(d.rt, JobCreate(provider="replicate", operation="prediction", input=inp))
        assert exc.value.field == field
    assert sim.admin("/_sim/paid")["count"] == before


@pytest.mark.parametrize("model, kind", [("fal-ai/flux/dev", "image"), ("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", "video")])
def test_fal_queue_polls_the_base_model(d, sim: Sim, model: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "fal", "queue", {"model": model, "input": {"prompt": "a kite"}})
    d.run_for(20)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["assets"][0]["kind"] == kind and job["assets"][0]["sha256"] == MEDIA_SHA256["mp4" if kind == "video" else "png"]
    # the simulator answers 404 to a status or result read on the full model path (§9.2)
    requests = sim.admin("/_sim/stats")["requests"]
    assert requests.get("GET /fal-ai/{app}/requests/{id}/status", 0) >= 1 and requests.get("GET /fal-ai/{app}/requests/{id}") == 1, requests


def test_fal_completed_with_error_sync_data_and_failure(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    bad = new(d, "fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "x [sim:result_error]"}})
    crashed = new(d, "fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "x [sim:fail]"}})
    sync = new(d, "fal", "queue", {"model": "fal-ai/nano-banana/edit", "input": {"prompt": "x [sim:sync]"}})
    inline = new(d, "fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "x [sim:output=data]"}})
    d.run_for(20)
    b, c, s, i = (public(d, j) for j in (bad, crashed, sync, inline))
    assert b["status"] == "failed" and b["error"]["code"] == "provider_failed" and "422" in b["error"]["message"]
    assert c["status"] == "failed" and "crashed" in c["error"]["message"]
    assert s["status"] == "succeeded" and s["provider_task_id"] is None and s["assets"][0]["sha256"] == MEDIA_SHA256["png"]
    assert i["status"] == "succeeded" and i["assets"][0]["sha256"] == MEDIA_SHA256["png"]
    assert i["assets"][0]["source_url"].startswith("data:image/png;base64,…(")
    assert "base64,…(" in str(i["result"]["output"])


def test_fal_bad_model_paths_are_refused(d) -> None:  # type: ignore[no-untyped-def]
    for model in ("https://queue.fal.run/fal-ai/flux", "fal-ai/../x", "fal-ai//flux"):
        with pytest.raises(RequestInvalid) as exc:
            create_job(d.rt, JobCreate(provider="fal", operation="queue", input={"model": model}))
        assert exc.value.field == "input.model"


@pytest.mark.parametrize(
    "provider, inp",
    [
        ("replicate", {"model": "a/b", "input": {"prompt": "lost"}}),
        ("fal", {"model": "fal-ai/flux/dev", "input": {"prompt": "lost"}}),
    ],
)
def test_lost_submit_answer_fails_without_a_second_charge(engine_factory, sim: Sim, provider: str, inp: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = new(d, provider, "prediction" if provider == "replicate" else "queue", inp)
    d.run_for(60)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert sim.admin("/_sim/paid")["count"] == 1


def sim_row(sim: Sim, task_id: str) -> dict[str, Any]:
    return next(t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == task_id)


def events(d, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    from models.tables import JobEvent

    with session_scope(d.rt.engine) as s:
        return [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()]  # type: ignore[arg-type]


def test_cancel_reaches_the_provider(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    from workers.services.create import cancel_job

    sim.admin("/_sim/config", {"queue_s": 3.0, "run_s": 20.0})
    rep = new(d, "replicate", "prediction", {"model": "a/b", "input": {"prompt": "long"}})
    queued_fal = new(d, "fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "x [sim:queue=30]"}})
    running_fal = new(d, "fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "x [sim:queue=0]"}})
    d.run_for(5)
    for job_id in (rep, queued_fal, running_fal):
        assert d.job(job_id).status == "running"
        cancel_job(d.rt, job_id)
    d.drain()
    d.run_for(3)
    assert sim_row(sim, d.job(rep).provider_task_id)["status"] == "canceled"
    assert sim_row(sim, d.job(rep).provider_task_id)["cancel_calls"] == 1
    assert any("CANCELLATION_REQUESTED" in r for r in events(d, queued_fal)), events(d, queued_fal)
    assert any("ALREADY_STARTED" in r for r in events(d, running_fal)), events(d, running_fal)
    assert all(d.job(j).provider_cancel == "done" for j in (rep, queued_fal, running_fal))


def test_batch_cancel_cancels_tasks_at_the_provider(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    from models.schemas import BatchCreate
    from workers.services.batches import cancel_batch, create_batch

    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 30.0})
    batch, items, _ = create_batch(
        d.rt,
        BatchCreate(jobs=[JobCreate(provider="replicate", operation="prediction", input={"model": "a/b", "input": {"prompt": f"p{i}"}}) for i in range(3)]),
    )
    d.drain()
    d.run_for(4)
    assert all(d.job(j.id).status == "running" for j in items)
    cancel_batch(d.rt, batch.id)
    d.tick()  # the tick sends the relay-side cancels: no message per job from the request
    for j in items:
        assert sim_row(sim, d.job(j.id).provider_task_id)["status"] == "canceled"
        assert d.job(j.id).provider_cancel == "done"
