"""One-shot (synchronous) families through the engine: real database, the simulator over
loopback. images generate (url and b64_json answers) and edit (multipart uploads, from data: URIs
and URLs we fetch first), every Gemini image and Ideogram operation, speech
(the audio body streamed into the store, bigger than K4U_RELAY_MAX_BODY_BYTES), the relay's
4xx, a lost answer (5xx after accept, a dropped connection, a timeout) failing
`submit_outcome_unknown` after exactly one paid call, a worker killed mid-call, an expired URL,
and never a poll: the submit's answer is the job's final status."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from typing import Any

import httpx
import pytest

from models.schemas import JobCreate
from providers import oneshot
from providers.oneshot import IMAGES
from simulator.media import MP3_BYTES, PNG_BYTES, iter_big
from tests.conftest import Sim
from workers import dispatch
from workers.services.create import create_job
from workers.services.submit import submit_job

PNG_URI = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
PNG_SHA = hashlib.sha256(PNG_BYTES).hexdigest()


def new(d, provider: str, operation: str, inp: dict[str, Any], **body: Any) -> str:  # type: ignore[no-untyped-def]
    return str(d.create(provider, operation, inp, **body))


def public(d, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(d.public(job_id))


def calls(sim: Sim) -> list[dict[str, Any]]:
    return list(sim.admin("/_sim/oneshot")["calls"])


def polls_sent(sim: Sim) -> int:
    """Every request the simulator saw that was not a one-shot POST, an admin or a media route."""
    stats = sim.admin("/_sim/auth-seen")
    routes = stats.get("routes", stats)
    return sum(
        c.get("with_auth", 0) + c.get("without_auth", 0)
        for r, c in routes.items()
        if not any(part in r for part in ("/v1/images/", "/v1/audio/speech", "/v1beta/models/", "/ideogram/", "/_sim/"))
    )


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"oneshot_s": 0.0})
    return engine_factory()


@pytest.mark.parametrize(
    "inp, shape",
    [
        ({"prompt": "a lighthouse", "model": "dall-e-3", "size": "1024x1024"}, "url"),
        ({"prompt": "a lighthouse", "model": "gpt-image-1", "n": 2}, "b64_json"),
        ({"prompt": "a lighthouse", "model": "doubao-seedream-4-0-250828", "response_format": "b64_json", "watermark": False}, "b64_json"),
    ],
)
def test_generate_stores_every_image_at_once(d, sim: Sim, inp: dict[str, Any], shape: str) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "images", "generate", inp)
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]  # the submit's answer finished it: no tick ran
    assert job["provider_task_id"] == job_id, "no relay task id: our job id stands for it"
    assert len(job["assets"]) == inp.get("n", 1)
    assert all(a["kind"] == "image" and a["sha256"] == PNG_SHA and a["size"] == len(PNG_BYTES) for a in job["assets"])
    assert job["assets"][0]["content_type"] == "image/png"
    if shape == "b64_json":
        assert all(a["source_url"].startswith("data:image/png") for a in job["assets"])
    if inp["model"] == "gpt-image-1":
        assert job["result"]["cost"]["total_tokens"] > 0 and "input_tokens_details" in job["result"]["cost"]
    if inp["model"] == "dall-e-3":
        assert job["result"]["revised_prompts"][0].endswith("a lighthouse")
    call = calls(sim)[0]
    assert call["route"] == "images/generations" and call["model"] == inp["model"]
    assert sim.admin("/_sim/paid")["count"] == 1
    d.run_for(5)
    assert polls_sent(sim) == 0, "a one-shot job is never polled"
    assert d.job(job_id).poll_count == 0


@pytest.mark.parametrize(
    "operation, inp, route, files",
    [
        ("generate", {"prompt": "a poster", "num_images": 2, "aspect_ratio": "16x9"}, "ideogram/generate", []),
        ("edit", {"prompt": "a hat", "image": PNG_URI, "mask": PNG_URI}, "ideogram/edit", ["image", "mask"]),
        ("remix", {"prompt": "in winter", "image": PNG_URI, "image_weight": 40}, "ideogram/remix", ["image"]),
        ("reframe", {"image": PNG_URI, "resolution": "1536x640"}, "ideogram/reframe", ["image"]),
        ("replace_background", {"prompt": "a beach", "image": PNG_URI}, "ideogram/replace-background", ["image"]),
    ],
)
def test_every_ideogram_operation(d, sim: Sim, operation: str, inp: dict[str, Any], route: str, files: list[str]) -> None:  # type: ignore[no-untyped-def]
    job = public(d, new(d, "ideogram", operation, inp))
    assert job["status"] == "succeeded", job["error"]
    assert len(job["assets"]) == inp.get("num_images", 1) and all(a["sha256"] == PNG_SHA for a in job["assets"])
    assert job["result"]["seeds"][0] == 12345
    call = calls(sim)[0]
    assert call["route"] == route and [u["field"] for u in call["uploads"]] == files
    assert all(u["sha256"] == PNG_SHA for u in call["uploads"])


@pytest.mark.parametrize("prompt", ["a lighthouse", "a lighthouse [sim:snake]"])
def test_gemini_inline_images_are_stored(d, sim: Sim, prompt: str) -> None:  # type: ignore[no-untyped-def]
    job = public(d, new(d, "gemini_image", "generate", {"prompt": prompt, "images": [PNG_URI], "aspect_ratio": "16:9"}))
    assert job["status"] == "succeeded", job["error"]
    (asset,) = job["assets"]
    assert asset["kind"] == "image" and asset["sha256"] == PNG_SHA and asset["content_type"] == "image/png"
    assert job["result"]["text"] == "Here is the picture you asked for." and job["result"]["cost"]["totalTokenCount"] == 1302
    call = calls(sim)[0]
    assert call["route"] == "gemini/generateContent" and call["model"] == "gemini-2.5-flash-image"
    assert [u["sha256"] for u in call["uploads"]] == [PNG_SHA] and '"aspectRatio": "16:9"' in call["params"]["generationConfig"]


def test_blocked_generations_fail_with_the_reason(d) -> None:  # type: ignore[no-untyped-def]
    gemini = public(d, new(d, "gemini_image", "generate", {"prompt": "x [sim:blocked]"}))
    assert gemini["status"] == "failed" and gemini["error"]["code"] == "content_blocked" and "PROHIBITED_CONTENT" in gemini["error"]["message"]
    ideogram = public(d, new(d, "ideogram", "generate", {"prompt": "x [sim:blocked]"}))
    assert ideogram["status"] == "failed" and "flagged unsafe" in ideogram["error"]["message"]


def test_edit_uploads_the_images_and_mask_as_files(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "images", "edit", {"prompt": "add a hat", "model": "gpt-image-1", "image": [PNG_URI, PNG_URI], "mask": PNG_URI, "quality": "high"})
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["assets"][0]["sha256"] == PNG_SHA
    call = calls(sim)[0]
    assert call["route"] == "images/edits" and call["params"]["quality"] == "high" and call["params"]["model"] == "gpt-image-1"
    assert [u["field"] for u in call["uploads"]] == ["image[]", "image[]", "mask"]
    assert all(u["sha256"] == PNG_SHA and u["size"] == len(PNG_BYTES) for u in call["uploads"])
    single = new(d, "images", "edit", {"prompt": "add a hat", "image": PNG_URI})
    assert public(d, single)["status"] == "succeeded"
    assert [u["field"] for u in calls(sim)[1]["uploads"]] == ["image"]


def test_edit_images_given_by_url_are_fetched_first_and_uploaded(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    url = f"{sim.url}/_sim/media/input_0.png?token=secret-sig"
    job_id = new(d, "images", "edit", {"prompt": "add a hat", "image": [url, PNG_URI], "mask": url})
    assert public(d, job_id)["status"] == "succeeded", public(d, job_id)["error"]
    uploads = calls(sim)[0]["uploads"]
    assert [(u["field"], u["sha256"], u["content_type"]) for u in uploads] == [("image[]", PNG_SHA, "image/png")] * 2 + [("mask", PNG_SHA, "image/png")]
    seen = sim.admin("/_sim/auth-seen")
    seen = seen.get("routes", seen)
    assert all(c.get("with_auth", 0) == 0 for r, c in seen.items() if "/_sim/media" in r), "an input URL never gets the relay key"


@pytest.mark.parametrize(
    "path, allow_private, words",
    [
        ("/_sim/media/expired/input.png", True, "HTTP 403"),
        ("/_sim/media/big/5000.bin", True, "over the 1000"),
        ("/_sim/media/input_0.png", False, "not allowed"),  # the SSRF guard: loopback, and a port other than 80/443
    ],
)
def test_an_input_url_that_cannot_be_fetched_fails_before_anything_is_paid(  # type: ignore[no-untyped-def]
    engine_factory, sim: Sim, monkeypatch: pytest.MonkeyPatch, path: str, allow_private: bool, words: str
) -> None:
    monkeypatch.setattr(oneshot, "MAX_IMAGE_BYTES", 1000)
    d = engine_factory(allow_private_urls=allow_private)
    job_id = new(d, "images", "edit", {"prompt": "add a hat", "image": f"{sim.url}{path}?sig=secret-sig"})
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_input", job["error"]
    assert words in job["error"]["message"] and "secret-sig" not in job["error"]["message"]
    assert sim.admin("/_sim/paid")["count"] == 0 and calls(sim) == []


def test_speech_is_streamed_into_the_store(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "speech", "speech", {"input": "Hello there.", "voice": "coral", "instructions": "cheerful"})
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    (asset,) = job["assets"]
    assert asset["kind"] == "audio" and asset["content_type"] == "audio/mpeg"
    assert asset["sha256"] == hashlib.sha256(MP3_BYTES).hexdigest() and asset["size"] == len(MP3_BYTES)
    assert d.rt.store.exists(d.job(job_id).id + "/0.mp3")
    assert job["result"]["content_type"] == "audio/mpeg"
    assert calls(sim)[0]["params"]["voice"] == "coral"


def test_speech_bigger_than_the_relay_body_cap_is_stored_whole(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(relay_max_body_bytes=64 * 1024)
    size = 3 * 1024 * 1024 + 17  # 48 times the cap a JSON answer may have: never held in memory whole
    job_id = new(d, "speech", "speech", {"input": f"a long read [sim:bytes={size}]", "response_format": "wav"})
    job = public(d, job_id)
    assert job["status"] == "succeeded", job["error"]
    (asset,) = job["assets"]
    digest = hashlib.sha256()
    for chunk in iter_big(size):
        digest.update(chunk)
    assert asset["size"] == size and asset["sha256"] == digest.hexdigest() == calls(sim)[0]["content_sha256"]
    assert asset["content_type"] == "audio/wav"
    stored = hashlib.sha256()
    for chunk in d.rt.store.open(f"{job_id}/0.wav"):
        stored.update(chunk)
    assert stored.hexdigest() == digest.hexdigest()


@pytest.mark.parametrize(
    "provider, operation, inp",
    [
        ("images", "generate", {"prompt": "x [sim:reject]"}),
        ("images", "edit", {"prompt": "x [sim:reject]", "image": PNG_URI}),
        ("speech", "speech", {"input": "x [sim:reject]"}),
        ("gemini_image", "generate", {"prompt": "x [sim:reject]"}),
        ("ideogram", "generate", {"prompt": "x [sim:reject]"}),
    ],
)
def test_a_relay_refusal_fails_with_its_message(d, sim: Sim, provider: str, operation: str, inp: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, provider, operation, inp)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "bad_request", job["error"]
    assert "safety" in job["error"]["message"]
    assert sim.admin("/_sim/paid")["count"] == 0


def test_an_error_in_a_200_and_an_answer_without_images_fail_clearly(d) -> None:  # type: ignore[no-untyped-def]
    quota = public(d, new(d, "images", "generate", {"prompt": "x [sim:error200]"}))
    assert quota["status"] == "failed" and quota["error"]["code"] == "quota_exceeded" and "quota" in quota["error"]["message"]
    empty = public(d, new(d, "images", "generate", {"prompt": "x [sim:empty]"}))
    assert empty["status"] == "failed" and empty["error"]["code"] == "provider_failed" and "no image" in empty["error"]["message"]


@pytest.mark.parametrize(
    "provider, operation, inp, fault",
    [
        ("images", "generate", {"prompt": "lost"}, {"error_5xx_next": 1, "status": 502, "after_accept": True}),
        ("speech", "speech", {"input": "lost"}, {"error_5xx_next": 1, "status": 502, "after_accept": True}),
        ("images", "generate", {"prompt": "lost [sim:drop]"}, None),
        ("speech", "speech", {"input": "lost [sim:drop]"}, None),
        ("images", "edit", {"prompt": "lost [sim:drop]", "image": PNG_URI}, None),
        ("gemini_image", "generate", {"prompt": "lost"}, {"error_5xx_next": 1, "status": 504, "after_accept": True}),
        ("ideogram", "remix", {"prompt": "lost [sim:drop]", "image": PNG_URI}, None),
    ],
)
def test_a_lost_answer_fails_unknown_after_one_paid_call(d, sim: Sim, provider: str, operation: str, inp: dict[str, Any], fault: Any) -> None:  # type: ignore[no-untyped-def]
    if fault:
        sim.admin("/_sim/faults", fault)
    job_id = new(d, provider, operation, inp)
    d.run_for(200, step=10)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
    assert "retry" in job["error"]["message"]
    assert sim.admin("/_sim/paid")["count"] == 1, "the paid call must not be resent"
    assert len(calls(sim)) == 1 and polls_sent(sim) == 0


def test_a_timeout_is_an_unknown_outcome(engine_factory, sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The family's request timeout is the submit's read timeout (300 s for images): 0.5 s stands for it here."""
    monkeypatch.setattr(IMAGES, "capabilities", replace(IMAGES.capabilities, request_timeout_s=0.5))
    d = engine_factory()
    sim.admin("/_sim/faults", {"timeout_after_accept_next": 1, "delay_s": 3})
    job_id = new(d, "images", "generate", {"prompt": "a slow one"})
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
    assert "ReadTimeout" in job["error"]["message"]
    d.run_for(400, step=20)
    assert sim.admin("/_sim/paid")["count"] == 1 and len(calls(sim)) == 1


class Killed(BaseException):
    """The worker process dies while its one-shot call is out."""


def test_a_worker_killed_mid_call_fails_unknown_and_is_never_resent(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sent: list[str] = []

    def die(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        raise Killed()

    dying = engine_factory(relay_transport=httpx.MockTransport(die))
    created, _ = create_job(dying.rt, JobCreate(provider="images", operation="generate", input={"prompt": "a cat"}))
    ((task, args),) = dying.recorder.sent
    assert task == dispatch.ONESHOT, "a one-shot family's submit goes to its own queue"
    with pytest.raises(Killed):
        submit_job(dying.rt, *args)
    assert sent == ["/v1/images/generations"]
    d = engine_factory()  # the worker restarted: a healthy relay client, the same database
    d.run_for(300, step=20)  # the call could still be out (up to the family's 300 s): the sweep leaves it
    assert d.job(created.id).status == "submitting"
    d.run_for(120, step=20)
    job = public(d, created.id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
    assert sim.admin("/_sim/paid")["count"] == 0 and calls(sim) == [], "never resent"


def test_an_expired_result_url_fails_result_expired_without_asking_again(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "images", "generate", {"prompt": "x [sim:expire]", "model": "dall-e-3"})
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired", job["error"]
    assert polls_sent(sim) == 0 and sim.admin("/_sim/paid")["count"] == 1


def test_the_submit_rate_limit_holds_one_shot_jobs_in_queued(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(submit_rate_limits="images=1/minute")
    first = new(d, "images", "generate", {"prompt": "one"})
    second = new(d, "images", "generate", {"prompt": "two"})
    assert public(d, first)["status"] == "succeeded"
    assert d.job(second).status == "queued" and ("k4u.oneshot", "throttled") in [(t, str(r)) for t, r in d.results]
    assert sim.admin("/_sim/paid")["count"] == 1
