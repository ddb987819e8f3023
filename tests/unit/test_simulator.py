"""Unit tests for the Key4U Kling relay simulator (`simulator/`).

Time is driven through an injected fake clock; only the fault-injection and
background-loop tests sleep, for a few tenths of a second at most.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.procs import free_port
from simulator import SimConfig, create_app
from simulator.media import MEDIA_SHA256, big_sha256
from tests.conftest import FakeClock
from tests.unit.conftest import Factory, callback_recorder

KEY = "sk-test-secret-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
BASE = "http://sim.test"
T2V = "/kling/v1/videos/text2video"
I2V = "/kling/v1/videos/image2video"
IMG = "/kling/v1/images/generations"

pytestmark = pytest.mark.anyio


# -- native envelope ---------------------------------------------------------


async def test_native_text2video_lifecycle(make: Factory, clock: FakeClock) -> None:
    client, _ = make(queue_s=1.0, run_s=4.0)
    r = await client.post(T2V, json={"prompt": "a cat", "external_task_id": "ext-1"}, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 0 and body["message"] == "SUCCEED" and body["request_id"]
    data = body["data"]
    task_id = data["task_id"]
    assert task_id.isdigit()
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "ext-1"}
    assert data["created_at"] > 1_600_000_000_000  # milliseconds

    async def query() -> dict[str, Any]:
        resp = await client.get(f"{T2V}/{task_id}", headers=AUTH)
        assert resp.status_code == 200
        assert resp.json()["code"] == 0
        data: dict[str, Any] = resp.json()["data"]
        return data

    assert (await query())["task_status"] == "submitted"
    clock.advance(1.5)
    q = await query()
    assert q["task_status"] == "processing" and "task_result" not in q
    clock.advance(4.0)
    q = await query()
    assert q["task_status"] == "succeed"
    assert q["task_status_msg"] == ""
    videos = q["task_result"]["videos"]
    assert len(videos) == 1
    assert videos[0]["url"] == f"{BASE}/_sim/media/{task_id}.mp4"
    assert videos[0]["duration"] == "5" and videos[0]["id"]
    assert q["updated_at"] - q["created_at"] == 5000


async def test_native_failure_directive(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await client.post(T2V, json={"prompt": "bad [sim:fail]"}, headers=AUTH)
    task_id = r.json()["data"]["task_id"]
    clock.advance(10)
    q = (await client.get(f"{T2V}/{task_id}", headers=AUTH)).json()["data"]
    assert q["task_status"] == "failed"
    assert q["task_status_msg"] == "risk control: content rejected"
    assert "task_result" not in q


async def test_run_directive_sets_duration(make: Factory, clock: FakeClock) -> None:
    client, _ = make(queue_s=0.5, run_s=2.0)
    r = await client.post(T2V, json={"prompt": "long [sim:run=7.5]"}, headers=AUTH)
    task_id = r.json()["data"]["task_id"]
    clock.advance(5)
    assert (await client.get(f"{T2V}/{task_id}", headers=AUTH)).json()["data"]["task_status"] == "processing"
    clock.advance(3.1)
    assert (await client.get(f"{T2V}/{task_id}", headers=AUTH)).json()["data"]["task_status"] == "succeed"


async def test_reject_is_http_200_with_nonzero_code(make: Factory) -> None:
    client, sim = make()
    r = await client.post(T2V, json={"prompt": "nope [sim:reject]"}, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 1301 and body["code"] != 0
    assert body["message"] == "content safety check failed"
    assert "data" not in body
    assert sim.state.creates == 0


async def test_lookup_by_external_task_id(make: Factory) -> None:
    client, _ = make()
    r = await client.post(I2V, json={"image": "https://x/y.png", "external_task_id": "job-42"}, headers=AUTH)
    task_id = r.json()["data"]["task_id"]
    q = await client.get(f"{I2V}/job-42", headers=AUTH)
    assert q.status_code == 200
    assert q.json()["data"]["task_id"] == task_id
    # a task is only visible under its own action path
    assert (await client.get(f"{T2V}/job-42", headers=AUTH)).status_code == 404


async def test_unknown_task_native_404(make: Factory) -> None:
    client, _ = make()
    r = await client.get(f"{T2V}/123456", headers=AUTH)
    assert r.status_code == 404
    assert r.json()["code"] == 1201 and r.json()["message"] == "task not found"


async def test_images_generation_n(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await client.post(IMG, json={"prompt": "a dog", "n": 3}, headers=AUTH)
    task_id = r.json()["data"]["task_id"]
    clock.advance(10)
    q = (await client.get(f"{IMG}/{task_id}", headers=AUTH)).json()["data"]
    images = q["task_result"]["images"]
    assert [i["index"] for i in images] == [0, 1, 2]
    assert images[2]["url"] == f"{BASE}/_sim/media/{task_id}_2.png"
    bad = await client.post(IMG, json={"prompt": "a dog", "n": 10}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["code"] == 1201


async def test_native_list(make: Factory) -> None:
    client, _ = make()
    for i in range(3):
        await client.post(T2V, json={"prompt": f"p{i}"}, headers=AUTH)
    r = await client.get(T2V, params={"pageNum": 1, "pageSize": 2}, headers=AUTH)
    assert r.status_code == 200 and len(r.json()["data"]) == 2


# -- validation and auth -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (T2V, {}, "prompt is required"),
        (T2V, {"prompt": "   "}, "prompt is required"),
        (T2V, {"prompt": "x" * 2501}, "prompt must be at most 2500 characters"),
        (I2V, {"prompt": "move"}, "image is required"),
        (IMG, {"n": 1}, "prompt is required"),
    ],
)
async def test_validation_native(make: Factory, path: str, body: dict[str, Any], message: str) -> None:
    client, sim = make()
    r = await client.post(path, json=body, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["code"] == 1201 and r.json()["message"] == message and r.json()["request_id"]
    assert sim.state.creates == 0


async def test_validation_newapi_and_bad_json(make: Factory) -> None:
    client, _ = make(envelope="newapi")
    r = await client.post(T2V, json={}, headers=AUTH)
    assert r.status_code == 400
    assert r.json() == {"code": "invalid_request", "message": "prompt is required", "data": None}
    r = await client.post(T2V, content=b"{not json", headers=AUTH)
    assert r.status_code == 400


async def test_image2video_accepts_image_tail(make: Factory) -> None:
    client, _ = make()
    r = await client.post(I2V, json={"image_tail": "https://x/t.png"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["code"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}, {"Authorization": "Bearer "}, {"Authorization": "Basic x"}])
async def test_auth_required_native(make: Factory, headers: dict[str, str]) -> None:
    client, sim = make()
    r = await client.post(T2V, json={"prompt": "a"}, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"code": 1000, "message": "Authorization missing", "request_id": r.json()["request_id"]}
    assert (await client.get(f"{T2V}/1", headers=headers)).status_code == 401
    assert sim.state.creates == 0


async def test_auth_required_newapi_and_fixed_key(make: Factory) -> None:
    client, _ = make(envelope="newapi")
    r = await client.get(f"{T2V}/1")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"
    client2, _ = make(api_key=KEY)
    assert (await client2.get(f"{T2V}/1", headers={"Authorization": "Bearer other"})).status_code == 401
    assert (await client2.get(f"{T2V}/1", headers=AUTH)).status_code == 404


# -- new-api envelope ---------------------------------------------------------


async def test_newapi_lifecycle(make: Factory, clock: FakeClock) -> None:
    client, _ = make(envelope="newapi", queue_s=1.0, run_s=4.0)
    r = await client.post(T2V, json={"prompt": "a cat", "model_name": "kling-v2-master", "external_task_id": "e-9"}, headers=AUTH)
    assert r.status_code == 200
    created = r.json()
    assert re.fullmatch(r"task_[A-Za-z0-9]{32}", created["id"])
    assert created["task_id"] == created["id"]
    assert created["object"] == "video" and created["status"] == "queued" and created["progress"] == 0
    assert created["model"] == "kling-v2-master"
    assert created["created_at"] < 10_000_000_000  # seconds
    relay_id = created["id"]

    async def query(key: str = relay_id) -> dict[str, Any]:
        resp = await client.get(f"{T2V}/{key}", headers=AUTH)
        assert resp.status_code == 200
        assert resp.json()["code"] == "success"
        data: dict[str, Any] = resp.json()["data"]
        return data

    d = await query()
    assert d["status"] == "SUBMITTED" and d["progress"] == "0%" and "result_url" not in d
    assert d["task_id"] == relay_id and d["platform"] == "kling" and isinstance(d["id"], int)
    assert d["start_time"] == 0 and d["finish_time"] == 0
    upstream_id = d["data"]["task_id"]
    assert upstream_id.isdigit()
    clock.advance(3.0)  # halfway through processing
    d = await query()
    assert d["status"] == "IN_PROGRESS" and d["progress"] == "49%"
    assert d["data"]["task_status"] == "processing"
    clock.advance(2.5)
    d = await query()
    assert d["status"] == "SUCCESS" and d["progress"] == "100%"
    assert d["fail_reason"] == ""
    assert d["result_url"] == f"{BASE}/_sim/media/{upstream_id}.mp4"
    assert d["data"]["task_result"]["videos"][0]["url"] == d["result_url"]
    assert d["finish_time"] >= d["start_time"] >= d["submit_time"]
    # also reachable by the upstream id and by external_task_id
    assert (await query(upstream_id))["task_id"] == relay_id
    assert (await query("e-9"))["task_id"] == relay_id


async def test_newapi_legacy_result_in_fail_reason(make: Factory, clock: FakeClock) -> None:
    client, _ = make(envelope="newapi", legacy_result_in_fail_reason=True)
    relay_id = (await client.post(T2V, json={"prompt": "a"}, headers=AUTH)).json()["id"]
    clock.advance(10)
    d = (await client.get(f"{T2V}/{relay_id}", headers=AUTH)).json()["data"]
    assert d["status"] == "SUCCESS"
    assert "result_url" not in d
    assert d["fail_reason"].endswith(".mp4")


async def test_newapi_failure_and_not_found(make: Factory, clock: FakeClock) -> None:
    client, _ = make(envelope="newapi")
    relay_id = (await client.post(T2V, json={"prompt": "x [sim:fail]"}, headers=AUTH)).json()["id"]
    clock.advance(10)
    d = (await client.get(f"{T2V}/{relay_id}", headers=AUTH)).json()["data"]
    assert d["status"] == "FAILURE" and d["fail_reason"] == "risk control: content rejected"
    assert "result_url" not in d
    r = await client.get(f"{T2V}/task_doesnotexist", headers=AUTH)
    assert r.status_code == 400
    assert r.json() == {"code": "task_not_exist", "message": "task_not_exist", "data": None}


# -- fault injection ------------------------------------------------------------


async def test_rate_limit_injection(make: Factory) -> None:
    client, sim = make()
    r = await client.post("/_sim/faults", json={"rate_limit_next": 2})
    assert r.status_code == 200 and r.json()["rate_limit_next"] == 2
    for _ in range(2):
        r = await client.post(T2V, json={"prompt": "a"}, headers=AUTH)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.json()["code"] == 1302 and r.json()["message"] == "rate limit"
    r = await client.post(T2V, json={"prompt": "a"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["code"] == 0
    assert sim.state.creates == 1


async def test_5xx_injection(make: Factory) -> None:
    client, sim = make()
    await client.post("/_sim/faults", json={"error_5xx_next": 1, "status": 503})
    r = await client.get(f"{T2V}/1", headers=AUTH)
    assert r.status_code == 503
    await client.post("/_sim/faults", json={"error_5xx_next": 1, "status": 502, "after_accept": True})
    r = await client.post(T2V, json={"prompt": "a", "external_task_id": "acc-1"}, headers=AUTH)
    assert r.status_code == 502
    assert sim.state.creates == 1  # accepted before the error
    assert (await client.get(f"{T2V}/acc-1", headers=AUTH)).status_code == 200


async def test_slow_injection(make: Factory) -> None:
    client, _ = make()
    await client.post("/_sim/faults", json={"slow_next": 1, "delay_s": 0.2})
    start = time.monotonic()
    r = await client.get(f"{T2V}/1", headers=AUTH)
    assert r.status_code == 404
    assert time.monotonic() - start >= 0.19


async def test_timeout_after_accept(make: Factory) -> None:
    client, sim = make()
    await client.post("/_sim/faults", json={"timeout_after_accept_next": 1, "delay_s": 0.3})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.post(T2V, json={"prompt": "a", "external_task_id": "dup-guard"}, headers=AUTH), timeout=0.05)
    assert sim.state.creates == 1
    r = await client.get(f"{T2V}/dup-guard", headers=AUTH)
    assert r.status_code == 200 and r.json()["data"]["task_info"]["external_task_id"] == "dup-guard"


async def test_bad_fault_payload(make: Factory) -> None:
    client, _ = make()
    assert (await client.post("/_sim/faults", json={"nope": 1})).status_code == 400
    assert (await client.post("/_sim/faults", json={"error_5xx_next": 1, "status": 404})).status_code == 400


# -- media ----------------------------------------------------------------------


async def test_media_png_and_mp4(make: Factory) -> None:
    client, sim = make()
    png = await client.get("/_sim/media/123_0.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert int(png.headers["content-length"]) == len(png.content)
    data = png.content
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, color) == (64, 64, 8, 2)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == 64 * (1 + 64 * 3)

    mp4 = await client.get("/_sim/media/123.mp4")
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    assert int(mp4.headers["content-length"]) == len(mp4.content)
    assert mp4.content[4:8] == b"ftyp"
    boxes = []
    pos = 0
    while pos < len(mp4.content):
        size, kind = struct.unpack(">I4s", mp4.content[pos : pos + 8])
        boxes.append(kind)
        pos += size
    assert boxes == [b"ftyp", b"moov", b"mdat"] and pos == len(mp4.content)
    assert b"avcC" in mp4.content

    again_png = await client.get("/_sim/media/other_5.png")
    again_mp4 = await client.get("/_sim/media/other.mp4")
    shas = (await client.get("/_sim/media-sha256")).json()
    assert shas == MEDIA_SHA256
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(again_png.content).hexdigest() == shas["png"]
    assert hashlib.sha256(mp4.content).hexdigest() == hashlib.sha256(again_mp4.content).hexdigest() == shas["mp4"]
    assert (await client.get("/_sim/media/whatever.txt")).status_code == 404
    assert sim.state.media_downloads == 4


async def test_media_urls_are_downloadable(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    task_id = (await client.post(T2V, json={"prompt": "a"}, headers=AUTH)).json()["data"]["task_id"]
    clock.advance(10)
    url = (await client.get(f"{T2V}/{task_id}", headers=AUTH)).json()["data"]["task_result"]["videos"][0]["url"]
    r = await client.get(url)
    assert hashlib.sha256(r.content).hexdigest() == MEDIA_SHA256["mp4"]


async def test_media_big_expired_and_slow(make: Factory) -> None:
    client, _sim = make()
    n = 200_000
    r = await client.get(f"/_sim/media/big/{n}.bin")
    assert r.status_code == 200 and len(r.content) == n and r.headers["content-length"] == str(n)
    assert hashlib.sha256(r.content).hexdigest() == big_sha256(n)
    assert (await client.get("/_sim/media/expired/abc/def.mp4")).status_code == 403
    await client.post("/_sim/config", json={"slow_media_s": 0.2})
    start = time.monotonic()
    r = await client.get("/_sim/media/1.mp4")
    assert time.monotonic() - start >= 0.15
    assert hashlib.sha256(r.content).hexdigest() == MEDIA_SHA256["mp4"]


# -- callbacks --------------------------------------------------------------------


async def test_callbacks_sent_on_status_change(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(callback_transport=transport, queue_s=1, run_s=2)
    body = {"prompt": "a", "callback_url": "http://hook.test/cb", "external_task_id": "cb-1"}
    task_id = (await client.post(T2V, json=body, headers=AUTH)).json()["data"]["task_id"]
    assert await sim.callbacks.dispatch_once() == 0
    clock.advance(1.5)
    await sim.callbacks.dispatch_once()
    clock.advance(5)
    await sim.callbacks.dispatch_once()
    await sim.callbacks.dispatch_once()  # nothing new
    assert [c["task_status"] for c in received] == ["processing", "succeed"]
    final = received[1]
    assert final["url"] == "http://hook.test/cb"
    assert final["task_id"] == task_id and final["task_info"]["external_task_id"] == "cb-1"
    assert final["task_result"]["videos"][0]["url"].endswith(f"/_sim/media/{task_id}.mp4")
    assert "code" not in final and "data" not in final  # not enveloped
    assert (await client.get("/_sim/stats")).json()["callbacks_sent"] == 2


async def test_callbacks_duplicates_reorder_newapi(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(envelope="newapi", callback_transport=transport, callback_duplicates=1, callback_reorder=True)
    body = {"prompt": "a [sim:fail]", "callback_url": "http://hook.test/cb", "external_task_id": "cb-2"}
    relay_id = (await client.post(T2V, json=body, headers=AUTH)).json()["id"]
    clock.advance(1.0)  # processing: held back because of reorder
    await sim.callbacks.dispatch_once()
    assert received == []
    clock.advance(5)
    await sim.callbacks.dispatch_once()
    assert [c["task_status"] for c in received] == ["failed", "failed", "processing", "processing"]
    assert received[0]["task_status_msg"] == "risk control: content rejected"
    assert all(c["task_id"].isdigit() and c["task_id"] != relay_id for c in received)
    assert all(c["task_info"]["external_task_id"] == "cb-2" for c in received)
    assert received[2]["updated_at"] < received[0]["updated_at"]


async def test_callbacks_disabled_and_delivery_failure(make: Factory, clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, sim = make(callback_transport=httpx.MockTransport(refuse))
    body = {"prompt": "a", "callback_url": "http://hook.test/cb"}
    await client.post(T2V, json=body, headers=AUTH)
    clock.advance(10)
    await sim.callbacks.dispatch_once()  # failures are swallowed
    stats = (await client.get("/_sim/stats")).json()
    assert stats["callbacks_sent"] == 2 and stats["callbacks_failed"] == 2
    await client.post("/_sim/config", json={"callbacks_enabled": False})
    await client.post(T2V, json=body, headers=AUTH)
    clock.advance(10)
    assert await sim.callbacks.dispatch_once() == 0
    assert (await client.get("/_sim/stats")).json()["callbacks_dropped"] == 2


async def test_callback_background_loop(clock: FakeClock) -> None:
    received, transport = callback_recorder()
    app = create_app(SimConfig(clock=clock.monotonic, callback_transport=transport, callback_interval_s=0.02))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        body = {"prompt": "a", "callback_url": "http://hook.test/cb"}
        assert (await client.post(T2V, json=body, headers=AUTH)).status_code == 200
        clock.advance(10)
        deadline = time.monotonic() + 3
        while len(received) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert [c["task_status"] for c in received] == ["processing", "succeed"]


# -- admin ------------------------------------------------------------------------------


async def test_stats_tasks_reset_and_no_key_leak(make: Factory) -> None:
    client, _ = make()
    await client.post(T2V, json={"prompt": "a", "external_task_id": "s-1"}, headers=AUTH)
    await client.post(T2V, json={"prompt": "b"}, headers=AUTH)
    await client.get(f"{T2V}/s-1", headers=AUTH)
    stats = (await client.get("/_sim/stats")).json()
    assert stats["requests"] == {f"POST {T2V}": 2, f"GET {T2V}/{{id}}": 1}
    assert stats["creates"] == 2 and stats["tasks"] == 2 and stats["auth_seen"] is True
    tasks = (await client.get("/_sim/tasks")).json()["tasks"]
    assert [t["external_task_id"] for t in tasks] == ["s-1", ""]
    assert tasks[0]["status"] == "submitted"
    for path in ("/_sim/stats", "/_sim/tasks", "/_sim/config", "/_sim/callbacks"):
        assert KEY not in (await client.get(path)).text
    assert (await client.post("/_sim/reset")).json() == {"ok": True}
    stats = (await client.get("/_sim/stats")).json()
    assert stats["creates"] == 0 and stats["tasks"] == 0 and stats["requests"] == {}


async def test_runtime_config_and_advance(make: Factory) -> None:
    client, _ = make()
    r = await client.post("/_sim/config", json={"envelope": "newapi", "run_s": 1.0})
    assert r.status_code == 200 and r.json()["envelope"] == "newapi"
    assert (await client.post("/_sim/config", json={"envelope": "weird"})).status_code == 400
    assert (await client.post("/_sim/config", json={"clock": 1})).status_code == 400
    relay_id = (await client.post(T2V, json={"prompt": "a"}, headers=AUTH)).json()["id"]
    await client.post("/_sim/advance", json={"seconds": 60})
    d = (await client.get(f"{T2V}/{relay_id}", headers=AUTH)).json()["data"]
    assert d["status"] == "SUCCESS"


def test_python_dash_m_simulator_serves() -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--log-level", "warning"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert r.json()["ok"] is True
        created = httpx.post(f"http://127.0.0.1:{port}{T2V}", json={"prompt": "a"}, headers=AUTH, timeout=5)
        assert created.json()["code"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
