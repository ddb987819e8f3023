"""Unit tests for the simulator's Replicate (`/replicate/v1/...`) and fal (`/fal-ai/...`) fakes.

Time is the shared fake clock: with queue_s=1 and run_s=4 a task is queued for 1 s, runs for 4 s
and is final at +5 s. Webhooks that must really be received run the simulator under uvicorn and
a loopback receiver (`tests.servers`); the signatures are checked here from first principles
(HMAC-SHA256 per Standard Webhooks, Ed25519 against the published JWKS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from simulator import SimConfig, create_app
from simulator.config import REPLICATE_WEBHOOK_SECRET
from simulator.media import MEDIA_SHA256
from tests.conftest import FakeClock
from tests.servers import Received, serve, webhook_receiver
from tests.unit.conftest import SIM_BASE, Factory

AUTH = {"Authorization": "Bearer sk-test-rep-fal"}
FLUX = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
VERSION = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 1.0, "run_s": 4.0, "webhook_retry_delay_s": 0.01}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def predict(client: httpx.AsyncClient, prompt: str = "a cat", path: str = FLUX, **extra: Any) -> dict[str, Any]:
    input_ = {"prompt": prompt} | extra.pop("input", {})
    r = await client.post(path, json={"input": input_, **extra}, headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def get_prediction(client: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    r = await client.get(f"/replicate/v1/predictions/{pid}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def fal_submit(client: httpx.AsyncClient, model: str = "fal-ai/flux/dev", prompt: str = "a dog", **params: str) -> httpx.Response:
    return await client.post(f"/{model}", json={"prompt": prompt, "image_size": "square_hd"}, params=params, headers=AUTH)


async def rows(client: httpx.AsyncClient, family: str) -> list[dict[str, Any]]:
    return [r for r in (await client.get("/_sim/tasks")).json()["tasks"] if r["family"] == family]


def standard_webhook_ok(secret: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """Which `v1,` entries of `webhook-signature` are valid (Standard Webhooks, written out here)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    entries = headers["webhook-signature"].split(" ")
    assert all(e.startswith("v1,") for e in entries)
    return [hmac.compare_digest(e.removeprefix("v1,"), expected) for e in entries]


def fal_signature_ok(jwks: dict[str, Any], hit: Received, body: bytes | None = None) -> bool:
    h = hit.headers
    digest = sha(hit.body if body is None else body)
    message = "\n".join((h["x-fal-webhook-request-id"], h["x-fal-webhook-user-id"], h["x-fal-webhook-timestamp"], digest))
    for key in jwks["keys"]:
        raw = base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(bytes.fromhex(h["x-fal-webhook-signature"]), message.encode())
            return True
        except InvalidSignature:
            continue
    return False


# -- Replicate ----------------------------------------------------------------------


async def test_replicate_create_answers_201_prediction_with_upstream_urls_and_is_paid(make: Factory) -> None:
    client, _ = make()
    p = await predict(client, input={"num_outputs": 2})
    assert set(p) == {
        "id",
        "model",
        "version",
        "input",
        "logs",
        "output",
        "data_removed",
        "error",
        "source",
        "status",
        "created_at",
        "started_at",
        "completed_at",
        "urls",
        "metrics",
    }
    assert re.fullmatch(r"[a-z0-9]{26}", p["id"])
    assert (p["status"], p["output"], p["error"], p["logs"], p["metrics"]) == ("starting", None, None, "", {})
    assert p["model"] == "black-forest-labs/flux-schnell" and p["data_removed"] is False
    assert p["input"] == {"prompt": "a cat", "num_outputs": 2} and p["started_at"] is None
    assert p["urls"]["get"] == f"https://api.replicate.com/v1/predictions/{p['id']}"  # upstream host, not the relay
    assert p["urls"]["cancel"] == f"https://api.replicate.com/v1/predictions/{p['id']}/cancel"
    assert p["urls"]["stream"].startswith("https://api.replicate.com/v1/predictions/")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", p["created_at"])
    paid = (await client.get("/_sim/paid")).json()["paid"]
    assert [(r["family"], r["task_id"], r["kind"]) for r in paid] == [("replicate", p["id"], "replicate/black-forest-labs/flux-schnell")]


async def test_replicate_create_by_version_and_its_errors(make: Factory) -> None:
    client, _ = make()
    bare = await predict(client, path="/replicate/v1/predictions", version=VERSION)
    named = await predict(client, path="/replicate/v1/predictions", version=f"lucataco/flux-schnell-lora:{VERSION}")
    assert bare["version"] == named["version"] == VERSION and named["model"] == "lucataco/flux-schnell-lora"
    bad = await client.post("/replicate/v1/predictions", json={"version": "v1", "input": {}}, headers=AUTH)
    assert bad.status_code == 422 and set(bad.json()) == {"detail", "status", "title"} and bad.json()["status"] == 422
    no_input = await client.post(FLUX, json={"prompt": "x"}, headers=AUTH)
    assert no_input.status_code == 422 and no_input.json()["title"] == "Input validation failed"
    bad_filter = await client.post(FLUX, json={"input": {}, "webhook": "http://h.test/", "webhook_events_filter": ["done"]}, headers=AUTH)
    assert bad_filter.status_code == 422
    missing = await client.get("/replicate/v1/predictions/nosuchprediction", headers=AUTH)
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found.", "status": 404, "title": "Not found"}
    assert (await client.post("/replicate/v1/predictions/nosuch/cancel", headers=AUTH)).status_code == 404
    assert (await client.post(FLUX, json={"input": {}})).status_code == 401
    assert len((await client.get("/_sim/paid")).json()["paid"]) == 2  # refused creates are not paid


async def test_replicate_lifecycle_logs_partial_output_and_media(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    pid = (await predict(client, input={"num_outputs": 2}))["id"]
    clock.advance(1.5)
    running = await get_prediction(client, pid)
    assert running["status"] == "processing" and running["started_at"] and running["output"] is None
    assert running["logs"].startswith("Using seed: 42\n") and "  0%|" in running["logs"]
    clock.advance(1.5)  # past half-way: the first image is out, as a partial output
    half = await get_prediction(client, pid)
    assert half["status"] == "processing" and half["output"] == [f"{SIM_BASE}/_sim/media/rep/{pid}_0.png"]
    assert len(half["logs"]) > len(running["logs"]) and " 50%|#####" in half["logs"]
    assert (await client.get(f"/_sim/media/rep/{pid}_1.png")).status_code == 404  # not produced yet
    clock.advance(2)
    done = await get_prediction(client, pid)
    assert done["status"] == "succeeded" and done["completed_at"] and done["error"] is None
    assert done["output"] == [f"{SIM_BASE}/_sim/media/rep/{pid}_{i}.png" for i in range(2)]
    assert "100%|##########| 28/28" in done["logs"]
    assert isinstance(done["metrics"]["predict_time"], float) and done["metrics"]["predict_time"] == 4.0
    for url in done["output"]:
        media = await client.get(url)  # no key
        assert media.status_code == 200 and sha(media.content) == MEDIA_SHA256["png"]
    row = (await rows(client, "replicate"))[0]
    assert (row["task_id"], row["status"], row["output"], row["polls"]) == (pid, "succeeded", done["output"], 3)


@pytest.mark.parametrize("kind", ["url", "list", "json", "data"])
async def test_replicate_output_shapes(make: Factory, clock: FakeClock, kind: str) -> None:
    client, _ = make()
    pid = (await predict(client, f"a fox [sim:output={kind}]"))["id"]
    clock.advance(6)
    out = (await get_prediction(client, pid))["output"]
    url = f"{SIM_BASE}/_sim/media/rep/{pid}_0.png"
    if kind == "url":
        assert out == url
    elif kind == "list":
        assert out == [url]
    elif kind == "json":
        assert out == {"images": [{"url": url}], "seed": 42, "text": "a fox"}
    else:
        assert len(out) == 1 and out[0].startswith("data:image/png;base64,")
        assert sha(base64.b64decode(out[0].split(",", 1)[1])) == MEDIA_SHA256["png"]


async def test_replicate_video_model_gives_mp4(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    pid = (await predict(client, path="/replicate/v1/models/minimax/video-01/predictions"))["id"]
    clock.advance(6)
    (url,) = (await get_prediction(client, pid))["output"]
    assert url.endswith(f"/_sim/media/rep/{pid}_0.mp4")
    assert sha((await client.get(url)).content) == MEDIA_SHA256["mp4"]


async def test_replicate_failure_and_abort(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    failing = (await predict(client, "x [sim:fail]"))["id"]
    aborting = (await predict(client, "y [sim:abort] [sim:queue=2]"))["id"]
    clock.advance(1.5)
    assert (await get_prediction(client, aborting))["status"] == "starting"
    clock.advance(5)
    failed = await get_prediction(client, failing)
    assert failed["status"] == "failed" and isinstance(failed["error"], str) and failed["error"]
    assert failed["output"] is None and "Traceback" in failed["logs"] and failed["metrics"]["predict_time"] == 4.0
    aborted = await get_prediction(client, aborting)
    assert aborted["status"] == "aborted" and aborted["started_at"] is None and aborted["completed_at"]
    assert aborted["output"] is None and aborted["logs"] == "" and aborted["metrics"] == {}


async def test_replicate_expiry_removes_output_and_media(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    pid = (await predict(client, "z [sim:expire=10]"))["id"]
    default = (await predict(client, "default expiry"))["id"]
    clock.advance(5 + 9)
    live = await get_prediction(client, pid)
    assert live["data_removed"] is False and (await client.get(live["output"][0])).status_code == 200
    clock.advance(2)
    gone = await get_prediction(client, pid)
    assert gone["status"] == "succeeded" and gone["data_removed"] is True and gone["output"] is None
    assert (await client.get(live["output"][0])).status_code == 404
    assert (await get_prediction(client, default))["data_removed"] is False  # 3600 s by default
    clock.advance(3600)
    assert (await get_prediction(client, default))["data_removed"] is True


async def test_replicate_cancel_before_completion_and_after(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    running = (await predict(client, "a"))["id"]
    queued = (await predict(client, "b [sim:queue=3]"))["id"]
    clock.advance(2)
    r = await client.post(f"/replicate/v1/predictions/{running}/cancel", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "canceled" and r.json()["completed_at"]
    assert r.json()["metrics"]["predict_time"] == 1.0
    c = (await client.post(f"/replicate/v1/predictions/{queued}/cancel", headers=AUTH)).json()
    assert c["status"] == "canceled" and c["started_at"] is None
    clock.advance(10)
    assert (await get_prediction(client, running))["status"] == "canceled"  # it stays canceled
    done = (await predict(client, "c"))["id"]
    clock.advance(6)
    after = await client.post(f"/replicate/v1/predictions/{done}/cancel", headers=AUTH)
    assert after.status_code == 200 and after.json()["status"] == "succeeded" and after.json()["output"]
    await client.post(f"/replicate/v1/predictions/{done}/cancel", headers=AUTH)
    by_id = {row["task_id"]: row for row in await rows(client, "replicate")}
    assert (by_id[done]["cancel_calls"], by_id[done]["status"]) == (2, "succeeded")
    assert (by_id[running]["cancel_calls"], by_id[running]["status"]) == (1, "canceled")


def test_replicate_webhooks_events_signed_and_retried_on_5xx(clock: FakeClock) -> None:
    app = create_app(SimConfig(clock=clock.monotonic, queue_s=1, run_s=4, callback_interval_s=0.02, webhook_retry_delay_s=0.01))
    with serve(app) as url, webhook_receiver() as hook, httpx.Client(base_url=url, timeout=10) as client:
        hook.script = [503, 500]  # the first delivery (start) fails twice, then gets through
        r = client.post(FLUX, json={"input": {"prompt": "a cat"}, "webhook": hook.url}, headers=AUTH)
        pid = r.json()["id"]
        clock.advance(1)  # start + the first logs line
        hook.wait(4)
        clock.advance(5)
        got = hook.wait(9)
        log = [row for row in client.get("/_sim/callbacks").json()["callbacks"] if row["task_id"] == pid]
    assert [row["event"] for row in log if row["attempt"] == 1] == ["start", "logs", "logs", "logs", "output", "logs", "completed"]
    assert [(row["attempt"], row.get("http_status")) for row in log[:3]] == [(1, 503), (2, 500), (3, 200)]
    ids = [hit.headers["webhook-id"] for hit in got]
    assert ids[0] == ids[1] == ids[2] and len(set(ids)) == 7  # same id on every retry of one delivery
    assert ids == [row["webhook_id"] for row in log]
    for hit in got:
        assert standard_webhook_ok(REPLICATE_WEBHOOK_SECRET, hit.headers, hit.body) == [False, True]
        assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 60
    tampered = got[-1].body.replace(b"succeeded", b"failed!!!")
    assert standard_webhook_ok(REPLICATE_WEBHOOK_SECRET, got[-1].headers, tampered) == [False, False]
    bodies = [json.loads(hit.body) for hit in got]
    assert bodies[0]["status"] == "processing" and bodies[0]["id"] == pid
    output_body = bodies[log.index(next(row for row in log if row["event"] == "output"))]
    assert output_body["status"] == "processing" and len(output_body["output"]) == 1
    assert bodies[-1]["status"] == "succeeded" and bodies[-1]["output"] and "100%" in bodies[-1]["logs"]


async def test_replicate_webhook_filter_secret_and_no_retry_on_4xx(make: Factory, clock: FakeClock) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(410 if len(seen) == 1 else 200)

    client, sim = make(callback_transport=httpx.MockTransport(answer))
    new_secret = "whsec_" + base64.b64encode(b"another-test-secret-32-bytes-ok!").decode()
    assert (await client.post("/_sim/config", json={"replicate_webhook_secret": new_secret})).status_code == 200
    assert (await client.post("/_sim/config", json={"replicate_webhook_secret": "nope"})).status_code == 400
    assert (await client.get("/replicate/v1/webhooks/default/secret", headers=AUTH)).json() == {"key": new_secret}
    pid = (await predict(client, webhook="http://hook.test/r", webhook_events_filter=["completed"]))["id"]
    clock.advance(6)
    await sim.callbacks.dispatch_once()
    assert len(seen) == 1 and json.loads(seen[0].content)["status"] == "succeeded"  # 410: not retried
    headers = {k.lower(): v for k, v in seen[0].headers.items()}
    assert standard_webhook_ok(new_secret, headers, seen[0].content) == [False, True]
    row = (await rows(client, "replicate"))[0]
    assert (row["task_id"], row["callbacks_notified"]) == (pid, ["completed"])


# -- fal ------------------------------------------------------------------------------


async def test_fal_submit_urls_follow_the_sub_path_rule_on_the_queue_host(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await fal_submit(client)
    assert r.status_code == 200
    sub = r.json()
    rid = sub["request_id"]
    assert re.fullmatch(UUID, rid) and sub["status"] == "IN_QUEUE" and sub["queue_position"] == 3
    assert "gateway_request_id" not in sub  # only with a webhook
    base = f"https://queue.fal.run/fal-ai/flux/requests/{rid}"  # base model id, not fal-ai/flux/dev
    assert (sub["response_url"], sub["status_url"], sub["cancel_url"]) == (base, f"{base}/status", f"{base}/cancel")
    positions = []
    for _ in range(3):
        s = await client.get(f"/fal-ai/flux/requests/{rid}/status", headers=AUTH)
        assert s.status_code == 202 and s.json()["status"] == "IN_QUEUE" and s.json()["logs"] is None
        positions.append(s.json()["queue_position"])
        clock.advance(0.3)
    assert positions == sorted(positions, reverse=True) and positions[0] > positions[-1]
    early = await client.get(f"/fal-ai/flux/requests/{rid}", headers=AUTH)
    assert early.status_code == 400 and early.json() == {"detail": "Request is still in progress"}
    for wrong in (f"/fal-ai/flux/dev/requests/{rid}/status", f"/fal-ai/flux/dev/requests/{rid}", f"/fal-ai/flux-pro/requests/{rid}/status"):
        assert (await client.get(wrong, headers=AUTH)).status_code == 404, wrong
    assert (await client.put(f"/fal-ai/flux/dev/requests/{rid}/cancel", headers=AUTH)).status_code == 404
    assert (await client.post(f"/fal-ai/flux/requests/{rid}/cancel", headers=AUTH)).status_code == 405  # not a submit
    clock.advance(1.5)
    running = await client.get(f"/fal-ai/flux/requests/{rid}/status", params={"logs": "1"}, headers=AUTH)
    assert running.status_code == 200 and running.json()["status"] == "IN_PROGRESS"
    assert [entry["message"] for entry in running.json()["logs"]] == ["Loading the model", "Generating: 25%"]
    clock.advance(4)
    done = (await client.get(f"/fal-ai/flux/requests/{rid}/status", params={"logs": "1"}, headers=AUTH)).json()
    assert done["status"] == "COMPLETED" and done["metrics"]["inference_time"] == 4.0 and len(done["logs"]) == 4
    result = await client.get(f"/fal-ai/flux/requests/{rid}", headers=AUTH)
    body = result.json()
    assert result.status_code == 200 and set(body) == {"images", "timings", "seed", "has_nsfw_concepts", "prompt"}
    (image,) = body["images"]
    assert image["url"] == f"{SIM_BASE}/_sim/media/fal/{rid}_0.png" and image["content_type"] == "image/png"
    assert (image["width"], image["height"]) == (64, 64) and body["prompt"] == "a dog"
    assert sha((await client.get(image["url"])).content) == MEDIA_SHA256["png"]
    assert (await client.post("/fal-ai/flux/dev", json={"prompt": "x"})).status_code == 401
    assert [(row["family"], row["kind"]) for row in (await client.get("/_sim/paid")).json()["paid"]] == [("fal", "fal-ai/flux/dev")]


async def test_fal_video_model_result(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = (await fal_submit(client, "fal-ai/kling-video/v2.5-turbo/pro/text-to-video")).json()
    assert sub["status_url"].startswith("https://queue.fal.run/fal-ai/kling-video/requests/")
    clock.advance(6)
    result = (await client.get(f"/fal-ai/kling-video/requests/{sub['request_id']}", headers=AUTH)).json()
    assert set(result) == {"video"} and result["video"]["content_type"] == "video/mp4"
    media = await client.get(result["video"]["url"])
    assert len(media.content) == result["video"]["file_size"] and sha(media.content) == MEDIA_SHA256["mp4"]


async def test_fal_completed_with_error_failure_and_data_output(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    ids = {d: (await fal_submit(client, prompt=f"p [sim:{d}]")).json()["request_id"] for d in ("result_error", "fail", "output=data")}
    clock.advance(6)
    for rid in ids.values():
        assert (await client.get(f"/fal-ai/flux/requests/{rid}/status", headers=AUTH)).json()["status"] == "COMPLETED"
    invalid = await client.get(f"/fal-ai/flux/requests/{ids['result_error']}", headers=AUTH)
    assert invalid.status_code == 422
    (item,) = invalid.json()["detail"]
    assert item["loc"] == ["body", "prompt"] and item["msg"] and item["type"]
    failed = await client.get(f"/fal-ai/flux/requests/{ids['fail']}", headers=AUTH)
    assert failed.status_code == 500 and isinstance(failed.json()["detail"], str)
    data = (await client.get(f"/fal-ai/flux/requests/{ids['output=data']}", headers=AUTH)).json()
    assert data["images"][0]["url"].startswith("data:image/png;base64,")


async def test_fal_sync_route_answers_the_result(make: Factory) -> None:
    client, _ = make()
    r = await fal_submit(client, "fal-ai/nano-banana/edit", "edit it [sim:sync]")
    assert r.status_code == 200 and "request_id" not in r.json() and r.json()["images"][0]["url"]
    refused = await fal_submit(client, "fal-ai/nano-banana/edit", "edit it [sim:sync] [sim:result_error]")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "prompt"]
    assert [row["sync"] for row in await rows(client, "fal")] == [True, True]
    assert len((await client.get("/_sim/paid")).json()["paid"]) == 2


async def test_fal_cancel_queued_running_and_done(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    queued = (await fal_submit(client, prompt="q [sim:queue=3]")).json()["request_id"]
    running = (await fal_submit(client, prompt="r [sim:queue=0]")).json()["request_id"]
    clock.advance(1)
    ok = await client.put(f"/fal-ai/flux/requests/{queued}/cancel", headers=AUTH)
    assert ok.status_code == 202 and ok.json() == {"status": "CANCELLATION_REQUESTED"}
    status = await client.get(f"/fal-ai/flux/requests/{queued}/status", headers=AUTH)
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    result = await client.get(f"/fal-ai/flux/requests/{queued}", headers=AUTH)
    assert result.status_code == 400 and "cancel" in result.json()["detail"].lower()
    late = await client.put(f"/fal-ai/flux/requests/{running}/cancel", headers=AUTH)
    assert late.status_code == 400 and late.json() == {"status": "ALREADY_STARTED"}
    clock.advance(5)
    assert (await client.get(f"/fal-ai/flux/requests/{running}", headers=AUTH)).status_code == 200  # it ran on
    again = await client.put(f"/fal-ai/flux/requests/{queued}/cancel", headers=AUTH)
    assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}
    by_id = {row["task_id"]: row for row in await rows(client, "fal")}
    assert (by_id[queued]["cancel_calls"], by_id[queued]["outcome"]) == (2, "cancelled")
    assert (by_id[running]["cancel_calls"], by_id[running]["outcome"]) == (1, "ok")


def test_fal_webhook_signed_with_the_jwks_key_retried_and_duplicated(clock: FakeClock) -> None:
    app = create_app(SimConfig(clock=clock.monotonic, queue_s=1, run_s=4, callback_interval_s=0.02, webhook_retry_delay_s=0.01))
    with serve(app) as url, webhook_receiver() as hook, httpx.Client(base_url=url, timeout=10) as client:
        jwks = client.get("/_sim/fal/jwks.json").json()
        hook.script = [404]  # any non-2xx is retried
        ok = client.post("/fal-ai/flux/dev", params={"fal_webhook": hook.url}, headers=AUTH, json={"prompt": "a [sim:gateway_retry] [sim:webhook_dupe]"}).json()
        clock.advance(6)
        first = hook.wait(3)[:3]
        bad = client.post("/fal-ai/flux/dev", params={"fal_webhook": hook.url}, headers=AUTH, json={"prompt": "b [sim:result_error]"}).json()
        clock.advance(6)
        error_hit = hook.wait(4)[3]
        log = client.get("/_sim/callbacks").json()["callbacks"]
    (key,) = jwks["keys"]
    assert (key["kty"], key["crv"]) == ("OKP", "Ed25519") and key["kid"]
    assert re.fullmatch(UUID, ok["gateway_request_id"]) and ok["gateway_request_id"] != ok["request_id"]
    for hit in [*first, error_hit]:
        assert fal_signature_ok(jwks, hit) and hit.headers["x-fal-webhook-user-id"]
        assert abs(int(hit.headers["x-fal-webhook-timestamp"]) - time.time()) < 60
    assert not fal_signature_ok(jwks, first[0], first[0].body + b" ")
    assert [hit.headers["x-fal-webhook-request-id"] for hit in first] == [ok["request_id"]] * 3
    bodies = [json.loads(hit.body) for hit in first]
    assert bodies[0] == bodies[1] == bodies[2]  # one retried delivery + its duplicate
    assert bodies[0]["request_id"] == ok["request_id"] and bodies[0]["gateway_request_id"] == ok["gateway_request_id"]
    assert bodies[0]["status"] == "OK" and bodies[0]["error"] is None and bodies[0]["payload"]["images"][0]["url"]
    ok_rows = [(row["delivery_id"].rsplit("/", 1)[1], row["attempt"], row["http_status"]) for row in log if row["task_id"] == ok["request_id"]]
    assert sorted(ok_rows) == [("1", 1, 404), ("1", 2, 200), ("2", 1, 200)]
    error_body = json.loads(error_hit.body)
    assert error_body["request_id"] == error_body["gateway_request_id"] == bad["request_id"]
    assert error_body["status"] == "ERROR" and "422" in error_body["error"]
    assert error_body["payload"]["detail"][0]["loc"] == ["body", "prompt"]


async def test_reset_clears_both_families_but_keeps_the_signing_key(make: Factory) -> None:
    client, _ = make()
    await predict(client)
    await fal_submit(client)
    jwks = (await client.get("/_sim/fal/jwks.json")).json()
    stats = (await client.get("/_sim/stats")).json()
    assert stats["tasks_by_family"]["replicate"] == 1 and stats["tasks_by_family"]["fal"] == 1
    await client.post("/_sim/reset")
    assert await rows(client, "replicate") == [] and await rows(client, "fal") == []
    assert (await client.get("/_sim/fal/jwks.json")).json() == jwks
