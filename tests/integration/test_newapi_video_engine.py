"""Generic new-api video tasks (`newapi_video`) through the engine: real database, the simulator over
loopback. Both operations with every URL placement and both status vocabularies, multipart uploads,
the relay's content route (the key on the first hop only, also for new-api's absolute proxy URL),
failures with the relay's reason, a relay rejection, a success without any URL, undocumented status
words, an expired result, a lost submit answer (one paid task, `submit_outcome_unknown`) and
new-api's "no available channel" 503 (the job waits in queued, then runs once the model is routed)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from simulator.media import PNG_BYTES
from tests.conftest import Sim

PROVIDER = "newapi_video"


def new(d, operation: str, inp: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    return str(d.create(PROVIDER, operation, inp))


def public(d, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(d.public(job_id))


def sim_task(sim: Sim, task_id: str) -> dict[str, Any]:
    rows = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == task_id]
    assert rows, f"simulator has no task {task_id}"
    return rows[0]


def paid(sim: Sim) -> int:
    return int(sim.admin("/_sim/paid")["count"])


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


@pytest.mark.parametrize(
    "operation, inp, source",
    [
        (
            "generations",
            {"model": "wan2.5-t2v-preview", "prompt": "a fox in snow", "size": "1280*720", "duration": 5, "metadata": {"watermark": False}},
            "result_url",
        ),
        ("generations", {"model": "wan2.5-i2v-preview", "image": "https://in.example/fox.png", "prompt": "x [sim:url=data]"}, "data.output.video_url"),
        ("generations", {"model": "doubao-seedance-1-0-pro", "prompt": "waves [sim:vocab=flat]"}, "url"),
        ("videos", {"model": "MiniMax-Hailuo-02", "prompt": "a robot", "size": "1080P", "seconds": 6}, "metadata.url"),
        ("videos", {"model": "kling-v2-1", "prompt": "a robot [sim:vocab=dto]"}, "result_url"),
    ],
)
def test_every_operation_and_url_place_end_to_end(d, sim: Sim, operation: str, inp: dict[str, Any], source: str) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, operation, inp)
    d.run_for(20)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert len(job["assets"]) == 1 and job["assets"][0]["kind"] == "video"
    task = sim_task(sim, job["provider_task_id"])
    assert job["assets"][0]["sha256"] == task["content_sha256"] and job["assets"][0]["size"] == task["content_size"]
    assert job["provider_task_id"].startswith("task_") and task["provider"] == "newapi"
    assert job["assets"][0]["source_url"].startswith(sim.url + "/_sim/media/"), job["assets"][0]["source_url"]
    assert job["assets"][0]["metadata"]["source"] == source  # the URL came from the place the relay put it


def test_content_route_and_proxy_url_get_the_key_media_never(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """An OpenAI object without a URL means /v1/videos/{id}/content; new-api's absolute proxy URL of
    the task is fetched as that relay route. Both with the key on the first hop; media never."""
    jobs = [
        new(d, "videos", {"model": "wan2.5", "prompt": "a [sim:url=none]"}),
        new(d, "generations", {"model": "wan2.5", "prompt": "b [sim:url=proxy]"}),
        new(d, "videos", {"model": "wan2.5", "prompt": "c [sim:url=proxy] [sim:content_redirect]"}),
    ]
    d.run_for(20)
    for job_id in jobs:
        job = public(d, job_id)
        assert job["status"] == "succeeded", job["error"]
        assert job["assets"][0]["source_url"] == f"{sim.url}/v1/videos/{job['provider_task_id']}/content"
        assert job["assets"][0]["sha256"] == sim_task(sim, job["provider_task_id"])["content_sha256"]
    seen = sim.admin("/_sim/auth-seen")
    seen = seen.get("routes", seen)
    content = seen["GET /v1/videos/{video_id}/content"]
    assert content.get("with_auth", 0) == 3 and content.get("without_auth", 0) == 0, content
    media = [c for r, c in seen.items() if "/_sim/media" in r]
    assert media and all(c.get("with_auth", 0) == 0 for c in media), seen


def test_reference_image_bytes_are_uploaded_as_multipart(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    uri = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    job_id = new(d, "videos", {"model": "MiniMax-Hailuo-02", "prompt": "animate this", "input_reference": uri, "metadata": {"prompt_optimizer": True}})
    d.run_for(20)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    ref = sim_task(sim, job["provider_task_id"])["input_reference"]
    assert ref["sha256"] == hashlib.sha256(PNG_BYTES).hexdigest() and ref["size"] == len(PNG_BYTES)


@pytest.mark.parametrize("operation, prompt", [("generations", "x [sim:fail]"), ("videos", "x [sim:fail]"), ("videos", "x [sim:fail] [sim:vocab=flat]")])
def test_failures_carry_the_relay_reason(d, operation: str, prompt: str) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, operation, {"model": "wan2.5", "prompt": prompt})
    d.run_for(20)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "provider_failed"
    assert "violates the usage policy" in job["error"]["message"]


def test_relay_rejection_and_success_without_url_fail_clearly(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    rejected = new(d, "generations", {"model": "wan2.5", "prompt": "x [sim:reject]"})
    no_url = new(d, "generations", {"model": "wan2.5", "prompt": "y [sim:url=none]"})
    d.run_for(20)
    job = public(d, rejected)
    assert job["status"] == "failed" and job["error"]["code"] == "bad_request" and "safety system" in job["error"]["message"]
    job = public(d, no_url)
    assert job["status"] == "failed" and job["error"]["code"] == "provider_failed"
    assert "no result URL" in job["error"]["message"] and job["provider_task_id"]
    assert paid(sim) == 1, "the rejected submit made no task"


def test_undocumented_status_words_keep_polling(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    jobs = [new(d, op, {"model": "vidu-q1", "prompt": "x [sim:word=warming_up] [sim:run=8]"}) for op in ("generations", "videos")]
    d.run_for(30)
    for job_id in jobs:
        job = public(d, job_id)
        assert job["status"] == "succeeded", job["error"]


def test_expired_result_fails_result_expired(d) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "generations", {"model": "wan2.5", "prompt": "x [sim:expire=0]"})
    d.run_for(20)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired", job["error"]


@pytest.mark.parametrize("operation", ["generations", "videos"])
def test_lost_submit_answer_fails_without_a_second_charge(d, sim: Sim, operation: str) -> None:  # type: ignore[no-untyped-def]
    """No client id, no lookup, no callback: the job fails `submit_outcome_unknown`, one paid task."""
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = new(d, operation, {"model": "wan2.5", "prompt": "lost answer"})
    d.run_for(60)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert paid(sim) == 1, "the paid POST must not be resent"


def test_no_available_channel_waits_in_queued_until_the_model_is_routed(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"unrouted_models": "wan2.6-t2v"})
    job_id = new(d, "generations", {"model": "wan2.6-t2v", "prompt": "a fox"})
    d.run_for(15)
    job = d.job(job_id)
    assert job.status == "queued" and job.error_code == "model_unavailable", (job.status, job.error_code)
    assert "no available channel" in (job.error_message or "") and job.submit_attempts >= 2
    assert paid(sim) == 0
    sim.admin("/_sim/config", {"unrouted_models": ""})
    d.run_for(60)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert paid(sim) == 1
