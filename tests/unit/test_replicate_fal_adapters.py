"""Replicate and fal adapters against the shapes of providers.md §8 and §9."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from models.errors import ProviderProtocolError
from providers.base import CallbackInputs, HttpResponse, PollTarget, Rejected, State, SubmitContext, Submitted
from providers.fal import FalAdapter, base_model
from providers.outputs import data_uri_label, walk_outputs
from providers.registry import validate_input
from providers.replicate import ReplicateAdapter
from providers.webhooks import fal_message, jwks_ed25519_keys, sign

REP, FAL = ReplicateAdapter(), FalAdapter()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HEX = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def ctx(callback: str | None = None) -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1", callback_url=callback, now=NOW)


def run(flow: Any, *responses: HttpResponse) -> tuple[list[Any], Any]:
    """Drive a flow with canned responses; (requests made, result)."""
    reqs = [next(flow)]
    for resp in responses:
        try:
            reqs.append(flow.send(resp))
        except StopIteration as done:
            return reqs, done.value
    raise AssertionError("flow wanted more responses")


def prediction(status: str, **kw: Any) -> dict[str, Any]:
    pid = kw.pop("id", "ufawqhfynnddngldkgtslldrkq")
    return {
        "id": pid,
        "model": "black-forest-labs/flux-schnell",
        "version": "dp-1",
        "status": status,
        "input": {},
        "logs": kw.pop("logs", ""),
        "output": kw.pop("output", None),
        "error": kw.pop("error", None),
        "data_removed": kw.pop("data_removed", False),
        "metrics": kw.pop("metrics", {}),
        "urls": {"get": f"https://api.replicate.com/v1/predictions/{pid}", "cancel": f"https://api.replicate.com/v1/predictions/{pid}/cancel"},
        **kw,
    }


# -- Replicate ------------------------------------------------------------------------------------


def test_replicate_create_by_model_and_by_version() -> None:
    inp = validate_input("replicate", "prediction", {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a cat"}})
    req = REP.build_submit("prediction", inp, ctx("https://me.example/hook"))
    assert req.path == "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
    assert req.json == {"input": {"prompt": "a cat"}, "webhook": "https://me.example/hook", "webhook_events_filter": ["start", "output", "logs", "completed"]}
    for version in (HEX, f"lucataco/flux-schnell-lora:{HEX}"):
        inp = validate_input("replicate", "prediction", {"version": version, "input": {"prompt": "x"}})
        req = REP.build_submit("prediction", inp, ctx())
        assert req.path == "/replicate/v1/predictions" and req.json == {"version": HEX, "input": {"prompt": "x"}}


@pytest.mark.parametrize(
    "bad",
    [
        {"model": "flux-schnell"},
        {"model": "a/b/c"},
        {"model": "https://x/y"},
        {"version": "abc"},
        {"version": "a/b:" + "0" * 63},
        {"model": "a/b", "version": HEX},
        {},
        {"model": "a/b", "extra": 1},
    ],
)
def test_replicate_bad_model_or_version_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_input("replicate", "prediction", bad)


def test_replicate_created_201_keeps_relay_paths_of_upstream_urls() -> None:
    got = REP.parse_submit(answer(prediction("starting"), 201))
    assert isinstance(got, Submitted) and got.task_id == "ufawqhfynnddngldkgtslldrkq"
    assert got.handle == {
        "get": "/replicate/v1/predictions/ufawqhfynnddngldkgtslldrkq",
        "cancel": "/replicate/v1/predictions/ufawqhfynnddngldkgtslldrkq/cancel",
    }
    refused = REP.parse_submit(answer({"detail": "Invalid version or not permitted", "status": 422, "title": "Invalid version"}, 422))
    assert isinstance(refused, Rejected) and "Invalid version" in refused.message and not refused.retryable
    with pytest.raises(ProviderProtocolError):
        REP.parse_submit(answer({"detail": "upstream"}, 502))


@pytest.mark.parametrize(
    "output, urls",
    [
        ("https://replicate.delivery/a/out.png", ["https://replicate.delivery/a/out.png"]),
        (["https://r.d/0.webp", "https://r.d/1.webp"], ["https://r.d/0.webp", "https://r.d/1.webp"]),
        ({"images": [{"url": "https://r.d/i.png"}], "seed": 7, "text": "hi", "video": "https://r.d/v.mp4"}, ["https://r.d/i.png", "https://r.d/v.mp4"]),
    ],
)
def test_replicate_outputs_of_every_shape(output: Any, urls: list[str]) -> None:
    t = PollTarget("job_1", "p1", "prediction", {"get": "/replicate/v1/predictions/p1"})
    reqs, statuses = run(REP.poll([t]), answer(prediction("succeeded", id="p1", output=output, metrics={"predict_time": 2.5})))
    st = statuses[0]
    assert reqs[0].path == "/replicate/v1/predictions/p1"
    assert st.state is State.SUCCEEDED and [o.url for o in st.outputs] == urls
    assert st.result_data["output"] == output and st.result_data["cost"] == {"predict_time_s": 2.5}


@pytest.mark.parametrize(
    "raw, state",
    [
        ("starting", State.QUEUED),
        ("processing", State.RUNNING),
        ("failed", State.FAILED),
        ("canceled", State.CANCELLED),
        ("aborted", State.CANCELLED),
        ("warming", State.UNKNOWN),
    ],
)
def test_replicate_statuses(raw: str, state: State) -> None:
    t = PollTarget("job_1", "p1", "prediction")
    _, statuses = run(REP.poll([t]), answer(prediction(raw, id="p1", error="CUDA OOM" if raw == "failed" else None, logs="sampling 45%|####")))
    assert statuses[0].state is state
    if raw == "processing":
        assert statuses[0].progress == 45
    if raw == "failed":
        assert statuses[0].error_message == "CUDA OOM"


def test_replicate_data_removed_is_result_expired() -> None:
    _, statuses = run(REP.poll([PollTarget("j", "p1", "prediction")]), answer(prediction("succeeded", id="p1", output=None, data_removed=True)))
    assert statuses[0].state is State.FAILED and statuses[0].error_code == "result_expired"


def test_replicate_webhook_signed_stale_forged_and_hint() -> None:
    body = json.dumps(prediction("succeeded", output=["https://r.d/a.png"])).encode()
    ts = int(NOW.timestamp())
    good = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": "v1,bm90IGl0 " + sign(SECRET, "msg_1", ts, body)}
    verdict = REP.read_callback(good, body, CallbackInputs(SECRET, NOW))
    assert verdict.refused is None and verdict.trust == "signed" and verdict.delivery_id == "msg_1"
    assert verdict.status is not None and verdict.status.state is State.SUCCEEDED
    forged = good | {"webhook-signature": sign("whsec_" + base64.b64encode(b"x" * 24).decode(), "msg_1", ts, body)}
    assert REP.read_callback(forged, body, CallbackInputs(SECRET, NOW)).refused == "bad webhook signature"
    stale = good | {"webhook-timestamp": str(ts - 301), "webhook-signature": sign(SECRET, "msg_1", ts - 301, body)}
    assert "300 s" in (REP.read_callback(stale, body, CallbackInputs(SECRET, NOW)).refused or "")
    assert REP.read_callback({}, body, CallbackInputs(SECRET, NOW)).refused
    hint = REP.read_callback({}, body, CallbackInputs(None, NOW))
    assert hint.trust == "hint" and hint.refused is None


def test_replicate_cancel_flow() -> None:
    t = PollTarget("j", "p1", "prediction", {"cancel": "/replicate/v1/predictions/p1/cancel"})
    reqs, outcome = run(REP.cancel(t), answer(prediction("canceled", id="p1")))
    assert (reqs[0].method, reqs[0].path) == ("POST", "/replicate/v1/predictions/p1/cancel") and outcome.cancelled


# -- fal ------------------------------------------------------------------------------------------


def test_fal_model_paths_and_sub_path_rule() -> None:
    for ok in ("fal-ai/flux/dev", "fal-ai/kling-video/v2.5-turbo/pro/text-to-video", "fal-ai/nano-banana/edit"):
        assert validate_input("fal", "queue", {"model": ok, "input": {}})["model"] == ok
    for bad in ("https://queue.fal.run/fal-ai/flux", "fal-ai/../secret", "fal-ai//flux", "flux", "fal-ai/flux dev", "/"):
        with pytest.raises(ValidationError):
            validate_input("fal", "queue", {"model": bad})
    assert base_model("fal-ai/kling-video/v2.5-turbo/pro/text-to-video") == "fal-ai/kling-video"


def test_fal_submit_rewrites_foreign_urls_and_polls_base_model() -> None:
    inp = validate_input("fal", "queue", {"model": "fal-ai/flux/dev", "input": {"prompt": "cat"}})
    req = FAL.build_submit("queue", inp, ctx("https://me.example/h?x=1"))
    assert req.path == "/fal-ai/flux/dev" and req.query == {"fal_webhook": "https://me.example/h?x=1"} and req.json == {"prompt": "cat"}
    sub = FAL.parse_submit(
        answer(
            {
                "request_id": "r-1",
                "status": "IN_QUEUE",
                "queue_position": 3,
                "status_url": "https://queue.fal.run/fal-ai/flux/requests/r-1/status",
                "response_url": "https://queue.fal.run/fal-ai/flux/requests/r-1",
                "cancel_url": "https://queue.fal.run/fal-ai/flux/requests/r-1/cancel",
            }
        )
    )
    assert isinstance(sub, Submitted) and sub.task_id == "r-1" and sub.status is not None and sub.status.detail == "queue position 3"
    assert sub.handle == {"status": "/fal-ai/flux/requests/r-1/status", "result": "/fal-ai/flux/requests/r-1", "cancel": "/fal-ai/flux/requests/r-1/cancel"}
    # without URLs in the answer the paths come from the model by the sub-path rule
    t = PollTarget("j", "r-2", "queue", {}, {"model": "fal-ai/flux/dev"})
    reqs, st = run(FAL.poll([t]), answer({"status": "IN_QUEUE", "queue_position": 2}, 202))
    assert reqs[0].path == "/fal-ai/flux/requests/r-2/status" and st[0].state is State.QUEUED and st[0].detail == "queue position 2"


def test_fal_completed_reads_the_result_in_the_same_poll() -> None:
    t = PollTarget("j", "r-1", "queue", {}, {"model": "fal-ai/flux/dev"})
    result = {"images": [{"url": "https://v3.fal.media/files/a.png", "content_type": "image/png"}], "seed": 1, "timings": {"inference": 1.5}}
    reqs, st = run(FAL.poll([t]), answer({"status": "COMPLETED"}), answer(result))
    assert [r.path for r in reqs] == ["/fal-ai/flux/requests/r-1/status", "/fal-ai/flux/requests/r-1"]
    assert st[0].state is State.SUCCEEDED and st[0].outputs[0].kind == "image" and st[0].result_data["cost"] == {"inference_s": 1.5}
    _, st = run(FAL.poll([t]), answer({"status": "COMPLETED"}), answer({"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}, 422))
    assert st[0].state is State.FAILED and "prompt: field required" in (st[0].error_message or "")
    _, st = run(FAL.poll([t]), answer({"status": "COMPLETED"}), answer({"detail": "Request is still in progress"}, 400))
    assert st[0].state is State.RUNNING
    _, st = run(FAL.poll([t]), answer({"status": "IN_PROGRESS", "logs": []}))
    assert st[0].state is State.RUNNING


def test_fal_synchronous_answer_completes_at_once_and_data_uris() -> None:
    png = base64.b64encode(b"\x89PNG....").decode()
    got = FAL.parse_submit(answer({"images": [{"url": f"data:image/png;base64,{png}"}], "seed": 3}))
    assert isinstance(got, Submitted) and got.task_id is None and got.status is not None
    assert got.status.state is State.SUCCEEDED and got.status.outputs[0].url.startswith("data:image/png;base64,")
    assert got.status.result_data["output"]["images"][0]["url"] == "data:image/png;base64,…(8 bytes)"
    assert data_uri_label("data:text/plain,hello") == "data:text/plain,…(5 bytes)"
    assert [o.kind for o in walk_outputs({"video": {"url": "https://x/v"}, "audio_url": "https://x/a"})] == ["video", "audio"]


def test_fal_cancel_records_already_started() -> None:
    t = PollTarget("j", "r-1", "queue", {"cancel": "/fal-ai/flux/requests/r-1/cancel"})
    reqs, outcome = run(FAL.cancel(t), answer({"status": "ALREADY_STARTED"}, 400))
    assert reqs[0].method == "PUT" and not outcome.cancelled and "ALREADY_STARTED" in outcome.note


def test_fal_webhook_ed25519_against_jwks() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "kid": "k1"}]}
    keys = jwks_ed25519_keys(jwks)
    body = json.dumps(
        {"request_id": "r-1", "gateway_request_id": "g-9", "status": "OK", "payload": {"images": [{"url": "https://v3.fal.media/a.png"}]}}
    ).encode()
    ts = str(int(NOW.timestamp()))
    sig = key.sign(fal_message("r-1", "user-1", ts, body)).hex()
    headers = {"X-Fal-Webhook-Request-Id": "r-1", "X-Fal-Webhook-User-Id": "user-1", "X-Fal-Webhook-Timestamp": ts, "X-Fal-Webhook-Signature": sig}
    verdict = FAL.read_callback(headers, body, CallbackInputs(None, NOW, keys=keys))
    assert verdict.trust == "signed" and verdict.status is not None and verdict.status.task_id == "r-1"  # request_id, not gateway_request_id
    other = Ed25519PrivateKey.generate().sign(fal_message("r-1", "user-1", ts, body)).hex()
    refused = FAL.read_callback(headers | {"X-Fal-Webhook-Signature": other}, body, CallbackInputs(None, NOW, keys=keys))
    assert refused.refused and refused.unknown_key
    stale_ts = str(int(NOW.timestamp()) - 400)
    stale = headers | {"X-Fal-Webhook-Timestamp": stale_ts, "X-Fal-Webhook-Signature": key.sign(fal_message("r-1", "user-1", stale_ts, body)).hex()}
    assert "300 s" in (FAL.read_callback(stale, body, CallbackInputs(None, NOW, keys=keys)).refused or "")
    assert FAL.read_callback(headers, body, CallbackInputs(None, NOW)).trust == "hint"
    err = json.dumps({"request_id": "r-1", "status": "ERROR", "payload": {"detail": "NSFW"}, "error": "Invalid status code: 422"}).encode()
    st = FAL.read_callback({}, err, CallbackInputs(None, NOW)).status
    assert st is not None and st.state is State.FAILED and "422" in (st.error_message or "")
    assert hashlib.sha256(body).hexdigest() in fal_message("r", "u", "1", body).decode()


def test_fal_result_5xx_model_error_fails_relay_trouble_retries() -> None:
    from models.errors import ProviderUnavailable

    t = PollTarget("j", "r-1", "queue", {}, {"model": "fal-ai/flux/dev"})
    _, st = run(FAL.poll([t]), answer({"status": "COMPLETED"}), answer({"detail": "runner crashed"}, 500))
    assert st[0].state is State.FAILED and "runner crashed" in (st[0].error_message or "")
    flow = FAL.poll([t])
    next(flow)
    assert flow.send(answer({"status": "COMPLETED"})).accept_errors
    with pytest.raises(ProviderUnavailable):
        flow.send(answer({"error": {"message": "bad gateway", "type": "upstream_error"}}, 502))
