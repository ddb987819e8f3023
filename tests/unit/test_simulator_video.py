"""Unit tests for the simulator's video fakes: the unified format (`/v1/video/create` +
`/v1/video/query`, Sora / Veo / Grok), the OpenAI format (`/v1/videos*`), ranged media and the
auth-seen counters.

Time is the shared fake clock: with queue_s=1 and run_s=4 a task is queued for 1 s, runs for 4 s
and is final at +5 s.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import httpx
import pytest

from simulator import SimConfig, create_app
from simulator.media import MEDIA_SHA256, big_sha256, iter_big, iter_big_range
from tests.conftest import FakeClock
from tests.servers import serve
from tests.unit.conftest import SIM_BASE, Factory

AUTH = {"Authorization": "Bearer sk-test-video"}
ULID_ID = r"task_01k[0-9a-z]{23}"

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 1.0, "run_s": 4.0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def create(client: httpx.AsyncClient, model: str, prompt: str = "a cat", **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/video/create", json={"model": model, "prompt": prompt, **extra}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def query(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    r = await client.get("/v1/video/query", params={"id": task_id}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def videos(client: httpx.AsyncClient, prompt: str = "a cat", **fields: Any) -> dict[str, Any]:
    r = await client.post("/v1/videos", json={"prompt": prompt, **fields}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def task_row(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    rows = (await client.get("/_sim/tasks")).json()["tasks"]
    return next(r for r in rows if r["task_id"] == task_id)  # type: ignore[no-any-return]


# -- unified format -----------------------------------------------------------------


async def test_unified_sora_lifecycle_colon_id_and_inner_status(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = await create(client, "sora-2", images=[], orientation="portrait", size="small", style="anime")
    assert re.fullmatch(r"sora-2:" + ULID_ID, sub["id"])
    assert sub["status"] == "pending" and sub["object"] == "video" and isinstance(sub["status_update_time"], int)
    assert {"model", "progress", "created_at", "size", "detail"} <= set(sub)
    task_id = sub["id"]
    raw, encoded = task_id, task_id.replace(":", "%3A")
    plain = (await client.get(f"/v1/video/query?id={raw}", headers=AUTH)).json()
    enc = (await client.get(f"/v1/video/query?id={encoded}", headers=AUTH)).json()
    assert plain["id"] == enc["id"] == task_id
    assert plain["video_url"] is None and plain["progress"] == "0"
    assert (plain["status"], plain["detail"]["pending_info"]["status"]) == ("pending", "queued")
    assert plain["detail"]["input"]["style"] == "anime"  # unknown extras are accepted and echoed
    clock.advance(1.5)  # 12 % into the run: the top level lags behind the inner status
    body = await query(client, task_id)
    assert (body["status"], body["detail"]["pending_info"]["status"]) == ("pending", "processing")
    assert body["progress"] == "12" and body["detail"]["pending_info"]["progress_pct"] == 0.12
    clock.advance(2)
    assert (await query(client, task_id))["status"] == "processing"
    clock.advance(2)
    done = await query(client, task_id)
    assert done["status"] == "completed" and done["progress"] == "100"
    assert done["video_url"].startswith(f"{SIM_BASE}/_sim/media/")
    assert isinstance(json.loads(done["metadata"]), dict)  # Sora's metadata is a JSON string
    assert done["detail"]["generations"][0]["url"] == done["video_url"]
    media = await client.get(done["video_url"])  # no key needed
    assert media.status_code == 200 and sha(media.content) == MEDIA_SHA256["mp4"]
    assert (await task_row(client, task_id))["content_sha256"] == MEDIA_SHA256["mp4"]


async def test_unified_veo_phases_ids_alternate_and_url_only_at_completed(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = await create(client, "veo3.1-fast", "a dog [sim:run=5]", enable_upsample=True, enhance_prompt=True)
    assert re.fullmatch(r"veo3\.1-fast:" + ULID_ID, sub["id"])
    assert set(sub) == {"id", "status", "status_update_time", "enhanced_prompt"}
    assert sub["enhanced_prompt"].startswith("a dog") and "[sim:" not in sub["enhanced_prompt"]
    second = await create(client, "veo3.1-fast", "again [sim:run=3]")
    assert re.fullmatch(ULID_ID, second["id"])  # every other Veo id has no model prefix
    seen = []
    for _ in range(7):
        body = await query(client, sub["id"])
        seen.append(body["status"])
        assert (body["video_url"] is not None) == (body["status"] == "completed")
        assert body["progress"].endswith("%") and isinstance(body["metadata"], dict)
        clock.advance(1)
    assert seen == [
        "pending",
        "image_downloading",
        "video_generating",
        "video_generation_completed",
        "video_upsampling",
        "video_upsampling_completed",
        "completed",
    ]
    third = await create(client, "veo3", "no upsampling [sim:run=3]")
    seen = []
    for _ in range(5):
        seen.append((await query(client, third["id"]))["status"])
        clock.advance(1)
    assert seen == ["pending", "image_downloading", "video_generating", "video_generation_completed", "completed"]


async def test_unified_grok_shapes_and_statuses(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = await create(client, "grok-video-3", aspect_ratio="16:9", duration=6)
    assert set(sub) == {"task_id", "status", "status_update_time"} and re.fullmatch(ULID_ID, sub["task_id"])
    statuses = []
    for _ in range(3):
        statuses.append((await query(client, sub["task_id"]))["status"])
        clock.advance(2.5)
    assert statuses == ["queued", "processing", "completed"]


@pytest.mark.parametrize(
    ("model", "shape", "status", "where"),
    [
        ("sora-2", "", "failed", "detail.failure_reason"),
        ("veo3-fast", "", "video_generation_failed", "error"),
        ("grok-video-3", "", "failed", "error.message"),
        ("sora-2", "plain", "failed", "error"),
        ("sora-2", "data", "FAILURE", "data.fail_reason"),
        ("veo3", "url", "failed", "error"),
        ("veo3", "error_string", "video_generation_failed", "error"),
        ("sora-2", "error_object", "failed", "error.message"),
        ("grok-video-3", "fail_reason", "failed", "fail_reason"),
        ("grok-video-3", "detail_reason", "failed", "detail.failure_reason"),
    ],
)
async def test_unified_failure_reason_placements(make: Factory, clock: FakeClock, model: str, shape: str, status: str, where: str) -> None:
    client, _ = make()
    directive = f"[sim:shape={shape}]" if shape else ""
    sub = await create(client, model, f"x [sim:fail] {directive}")
    task_id = sub.get("id") or sub.get("task_id") or sub["data"]["task_id"]
    clock.advance(6)
    body = await query(client, task_id)
    status_of = body["data"]["status"] if shape == "data" else body["status"]
    assert status_of == status
    value: Any = body
    for part in where.split("."):
        value = value[part]
    assert "violates the usage policy" in value
    assert not body.get("video_url") and not body.get("url")


async def test_unified_success_shapes_and_veo_fail_word(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    data = await create(client, "veo3.1-fast", "x [sim:shape=data]")
    assert set(data) == {"code", "message", "data"} and set(data["data"]) == {"task_id", "status"}
    url = await create(client, "sora-2", "x [sim:shape=url]")
    plain = await create(client, "grok-video-3", "x [sim:shape=plain]")
    upsample = await create(client, "veo3", "x [sim:fail=video_upsampling_failed]", enable_upsample=True)
    assert "result_url" not in (await query(client, data["data"]["task_id"]))["data"]
    clock.advance(6)
    d = (await query(client, data["data"]["task_id"]))["data"]
    assert d["status"] == "SUCCESS" and d["result_url"].startswith(SIM_BASE) and d["progress"] == "100%"
    u = await query(client, url["task_id"])
    assert u["status"] == "succeeded" and u["url"].startswith(SIM_BASE) and u["error"] is None
    p = await query(client, plain["id"])
    assert p["status"] == "completed" and p["video_url"].startswith(SIM_BASE)
    assert (await query(client, upsample["id"]))["status"] == "video_upsampling_failed"


async def test_unified_errors_auth_and_paid_ledger(make: Factory) -> None:
    client, _ = make()
    r = await client.post("/v1/video/create", json={"model": "sora-2", "prompt": "a"})
    assert r.status_code == 401 and "error" in r.json()
    r = await client.post("/v1/video/create", json={"model": "sora-2", "prompt": "a [sim:reject]"}, headers=AUTH)
    assert r.status_code == 400 and set(r.json()) == {"code", "message", "data"}
    r = await client.post("/v1/video/create", json={"model": "sora-2", "prompt": " "}, headers=AUTH)
    assert r.status_code == 400 and "prompt" in r.json()["message"]
    r = await client.post("/v1/video/create", json={"model": "dall-e", "prompt": "a"}, headers=AUTH)
    assert r.status_code == 503 and "no available channel" in r.json()["message"]
    r = await client.get("/v1/video/query", params={"id": "sora-2:task_01knope"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["code"] == "task_not_exist"
    sub = await create(client, "sora-2", "paid one")
    oai = await videos(client, "paid two")
    r = await client.get("/v1/video/query", params={"id": oai["id"]}, headers=AUTH)
    assert r.status_code == 400  # an OpenAI-format task is not a unified one
    paid = (await client.get("/_sim/paid")).json()["paid"]
    assert [(p["family"], p["task_id"], p["kind"]) for p in paid] == [("video", sub["id"], "unified/sora"), ("video", oai["id"], "openai/sora")]


async def test_synonym_storm(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    task_id = (await create(client, "sora-2", "x [sim:synonyms] [sim:queue=1] [sim:run=1]"))["id"]
    queued = [await query(client, task_id) for _ in range(6)]
    assert [b["status"] for b in queued] == ["pending", "submitted", "preparing", "unknown", "", "queued"]
    clock.advance(1.5)
    running = [await query(client, task_id) for _ in range(5)]
    assert {b["status"] for b in running} == {"in_progress", "processing", "running", "generating", "warming_up"}
    assert all(b["video_url"] is None for b in queued + running)
    clock.advance(1)
    done = [await query(client, task_id) for _ in range(4)]
    assert {b["status"] for b in done} == {"completed", "success", "succeeded", "finished"}
    assert all(b["video_url"] for b in done)
    oai = await videos(client, "y [sim:synonyms]")
    seen = [(await client.get(f"/v1/videos/{oai['id']}", headers=AUTH)).json()["status"] for _ in range(6)]
    assert set(seen) == {"queued", "pending", "submitted", "preparing", "unknown", ""}


# -- OpenAI format ------------------------------------------------------------------


async def test_openai_lifecycle_and_content(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    obj = await videos(client, model="sora-2", seconds="8", size="1280x720")
    assert re.fullmatch(r"task_[A-Za-z0-9]{32}", obj["id"]) and obj["task_id"] == obj["id"]
    assert obj["object"] == "video" and obj["status"] == "queued" and obj["progress"] == 0
    assert (obj["seconds"], obj["size"], obj["error"], obj["completed_at"]) == ("8", "1280x720", None, None)
    assert "video_url" not in obj and obj["remixed_from_video_id"] is None
    content = f"/v1/videos/{obj['id']}/content"
    r = await client.get(content, headers=AUTH)
    assert r.status_code == 400 and "queued" in r.json()["error"]["message"]
    clock.advance(2)
    running = (await client.get(f"/v1/videos/{obj['id']}", headers=AUTH)).json()
    assert running["status"] == "in_progress" and 0 < running["progress"] < 100
    assert "in_progress" in (await client.get(content, headers=AUTH)).json()["error"]["message"]
    clock.advance(4)
    done = (await client.get(f"/v1/videos/{obj['id']}", headers=AUTH)).json()
    assert done["status"] == "completed" and done["progress"] == 100 and "video_url" not in done
    assert done["expires_at"] == done["completed_at"] + 86400
    assert (await client.get(content)).status_code == 401
    r = await client.get(content, headers=AUTH)
    assert r.status_code == 200 and sha(r.content) == MEDIA_SHA256["mp4"]
    assert r.headers["cache-control"] == "public, max-age=86400" and r.headers["accept-ranges"] == "bytes"
    r = await client.get("/v1/videos/task_nope/content", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert (await client.get("/v1/videos/task_nope", headers=AUTH)).status_code == 404


async def test_openai_multipart_upload_is_recorded(make: Factory) -> None:
    client, _ = make()
    image = bytes(range(256)) * 40
    r = await client.post(
        "/v1/videos",
        headers=AUTH,
        data={"prompt": "animate", "model": "veo_3_1-fast", "seconds": "8", "metadata": '{"output_config": {}}'},
        files={"input_reference": ("ref.png", image, "image/png")},
    )
    assert r.status_code == 200, r.text
    ref = (await task_row(client, r.json()["id"]))["input_reference"]
    assert ref["sha256"] == sha(image) and ref["size"] == len(image) and ref["filename"] == "ref.png"
    json_ref = await videos(client, input_reference="https://example.test/a.png", metadata={"k": 1})
    assert (await task_row(client, json_ref["id"]))["input_reference"]["value"] == "https://example.test/a.png"
    bad = await client.post("/v1/videos", headers=AUTH, data={"prompt": "x", "metadata": "{nope"})
    assert bad.status_code == 400 and "metadata" in bad.json()["error"]["message"]
    missing = await client.post("/v1/videos", headers=AUTH, files={"input_reference": ("a.png", b"1", "image/png")})
    assert missing.status_code == 400 and missing.json()["error"]["type"] == "invalid_request_error"
    seconds = await client.post("/v1/videos", headers=AUTH, json={"prompt": "x", "seconds": "four"})
    assert seconds.status_code == 400


async def test_openai_content_blocked_502_redirect_and_expiry(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    blocked = await videos(client, "x [sim:blocked]")
    flaky = await videos(client, "x [sim:content_502=2]")
    moved = await videos(client, "x [sim:content_redirect]")
    short = await videos(client, "x [sim:expire=10]")
    clock.advance(6)
    assert (await client.get(f"/v1/videos/{blocked['id']}/content", headers=AUTH)).status_code == 403
    codes = [(await client.get(f"/v1/videos/{flaky['id']}/content", headers=AUTH)).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    r = await client.get(f"/v1/videos/{moved['id']}/content", headers=AUTH)
    assert r.status_code == 302 and r.headers["location"].startswith(f"{SIM_BASE}/_sim/media/video/")
    media = await client.get(r.headers["location"])
    assert media.status_code == 200 and sha(media.content) == MEDIA_SHA256["mp4"]
    obj = (await client.get(f"/v1/videos/{short['id']}", headers=AUTH)).json()
    assert obj["expires_at"] == obj["completed_at"] + 10
    assert (await client.get(f"/v1/videos/{short['id']}/content", headers=AUTH)).status_code == 200
    clock.advance(10)
    assert (await client.get(f"/v1/videos/{short['id']}/content", headers=AUTH)).status_code == 404
    shaped = await videos(client, "x [sim:shape=video_url] [sim:expire=1]")
    assert (await client.get(f"/v1/videos/{shaped['id']}", headers=AUTH)).json()["video_url"] is None
    clock.advance(5)
    url = (await client.get(f"/v1/videos/{shaped['id']}", headers=AUTH)).json()["video_url"]
    assert url.startswith(f"{SIM_BASE}/_sim/media/video/") and (await client.get(url)).status_code == 200
    clock.advance(1)
    assert (await client.get(url)).status_code == 404


async def test_remix_needs_an_openai_parent_and_is_paid(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    parent = await videos(client, model="sora-2-pro", seconds="12")
    r = await client.post(f"/v1/videos/{parent['id']}/remix", json={"prompt": "more"}, headers=AUTH)
    assert r.status_code == 400  # the parent has not completed yet
    clock.advance(6)
    r = await client.post(f"/v1/videos/{parent['id']}/remix", json={"prompt": "make it snow"}, headers=AUTH)
    assert r.status_code == 200, r.text
    child = r.json()
    assert child["remixed_from_video_id"] == parent["id"] and child["id"] != parent["id"]
    assert (child["model"], child["seconds"], child["status"]) == ("sora-2-pro", "12", "queued")
    unified = (await create(client, "sora-2"))["id"]
    clock.advance(6)
    r = await client.post(f"/v1/videos/{unified}/remix", json={"prompt": "no"}, headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    kinds = [p["kind"] for p in (await client.get("/_sim/paid")).json()["paid"]]
    assert kinds == ["openai/sora", "openai/remix", "unified/sora"]


# -- ranged media -------------------------------------------------------------------


def test_iter_big_range_is_a_slice_of_iter_big() -> None:
    n = 3 * 65536 + 123
    full = b"".join(iter_big(n))
    for a, b in [(0, n), (5, 65543), (65535, 65537), (n - 1, n), (131072, n)]:
        assert b"".join(iter_big_range(a, b)) == full[a:b]


async def test_big_media_ranges_if_range_and_ignore(make: Factory) -> None:
    client, _ = make()
    n = 200_000
    url = f"/_sim/media/big/{n}.bin"
    full = await client.get(url)
    assert full.status_code == 200 and sha(full.content) == big_sha256(n)
    etag = full.headers["etag"]
    assert full.headers["accept-ranges"] == "bytes" and etag.startswith('"')
    assert (await client.get(url)).headers["etag"] == etag  # stable per content
    r = await client.get(url, headers={"Range": "bytes=150000-"})
    assert r.status_code == 206 and r.content == full.content[150000:]
    assert r.headers["content-range"] == f"bytes 150000-{n - 1}/{n}" and r.headers["content-length"] == "50000"
    r = await client.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == full.content[10:20]
    r = await client.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == full.content[-5:]
    r = await client.get(url, headers={"Range": f"bytes={n}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{n}"
    r = await client.get(url, headers={"Range": "bytes=100-", "If-Range": etag})
    assert r.status_code == 206 and r.content == full.content[100:]
    r = await client.get(url, headers={"Range": "bytes=100-", "If-Range": '"big-v1-other"'})
    assert r.status_code == 200 and r.content == full.content
    r = await client.get(url + "?ignore_range=1", headers={"Range": "bytes=100-"})
    assert r.status_code == 200 and r.content == full.content and "accept-ranges" not in r.headers
    head = await client.head(url)
    assert head.headers["content-length"] == str(n) and head.headers["etag"] == etag
    huge = 2 * 1024**3 + 7  # a range at the end of a 2 GiB blob does not generate what precedes it
    start = time.monotonic()
    r = await client.get(f"/_sim/media/big/{huge}.bin", headers={"Range": f"bytes={huge - 10}-"})
    assert r.status_code == 206 and len(r.content) == 10 and time.monotonic() - start < 2
    assert r.content == b"".join(iter_big_range(huge - 10, huge))


async def test_video_size_no_range_and_task_sha(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sized = await videos(client, "x [sim:size=300000]")
    stubborn = (await create(client, "grok-video-3", "x [sim:no_range]"))["task_id"]
    clock.advance(6)
    row = await task_row(client, sized["id"])
    assert row["content_sha256"] == big_sha256(300000) and row["content_size"] == 300000
    content = f"/v1/videos/{sized['id']}/content"
    head = await client.get(content, headers={**AUTH, "Range": "bytes=0-99999"})
    tail = await client.get(content, headers={**AUTH, "Range": "bytes=100000-", "If-Range": head.headers["etag"]})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert sha(head.content + tail.content) == row["content_sha256"]
    url = (await query(client, stubborn))["video_url"]
    r = await client.get(url, headers={"Range": "bytes=100-"})
    assert r.status_code == 200 and sha(r.content) == MEDIA_SHA256["mp4"]


def test_cut_at_drops_every_request_starting_before_k() -> None:
    clock = FakeClock()
    app = create_app(SimConfig(clock=clock.monotonic, queue_s=0, run_s=0))
    n, k = 300_000, 123_456
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        path = f"/_sim/media/big/{n}.bin?cut_at={k}"
        got = bytearray()
        with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", path) as r:
            assert r.headers["content-length"] == str(n)
            for chunk in r.iter_bytes():
                got += chunk
        assert len(got) == k
        rest = client.get(path, headers={"Range": f"bytes={k}-"})
        assert rest.status_code == 206 and sha(bytes(got) + rest.content) == big_sha256(n)
        task = client.post("/v1/videos", json={"prompt": f"x [sim:size={n}] [sim:cut_at={k}]"}, headers=AUTH).json()
        content = f"/v1/videos/{task['id']}/content"
        for headers in (AUTH, AUTH, {**AUTH, "Range": "bytes=1000-"}):  # not only the first request
            got = bytearray()
            with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", content, headers=headers) as r:
                for chunk in r.iter_bytes():
                    got += chunk
            assert len(got) == k - (1000 if "Range" in headers else 0)
        first = client.get(content, headers={**AUTH, "Range": f"bytes=0-{k - 1}"})
        rest = client.get(content, headers={**AUTH, "Range": f"bytes={k}-"})
        assert (first.status_code, rest.status_code) == (206, 206)
        assert sha(first.content + rest.content) == big_sha256(n)


# -- admin --------------------------------------------------------------------------


async def test_auth_seen_per_route_reset_and_advance(make: Factory) -> None:
    client, _ = make()
    task_id = (await create(client, "sora-2"))["id"]
    oai = await videos(client)
    await client.post("/_sim/advance", json={"seconds": 6})  # moves the video clock too
    url = (await query(client, task_id))["video_url"]
    assert url is not None
    await client.get(url)
    await client.get(f"/v1/videos/{oai['id']}/content", headers=AUTH)
    await client.get(f"/v1/videos/{oai['id']}/content")  # 401, counted without
    await client.get("/_sim/media/big/10.bin")
    seen = (await client.get("/_sim/auth-seen")).json()["routes"]
    assert seen["POST /v1/video/create"] == {"with_auth": 1, "without_auth": 0}
    assert seen["GET /v1/video/query"] == {"with_auth": 1, "without_auth": 0}
    assert seen["GET /v1/videos/{video_id}/content"] == {"with_auth": 1, "without_auth": 1}
    assert seen["GET /_sim/media/video/{name}"] == {"with_auth": 0, "without_auth": 1}
    assert seen["GET /_sim/media/big/{n}.bin"] == {"with_auth": 0, "without_auth": 1}
    stats = (await client.get("/_sim/stats")).json()
    assert stats["tasks_by_family"]["video"] == 2 and stats["polls"]["video_unified"] == 1
    await client.post("/_sim/reset")
    after = (await client.get("/_sim/auth-seen")).json()["routes"]
    assert after == {"POST /_sim/reset": {"with_auth": 0, "without_auth": 1}}
    assert [r for r in (await client.get("/_sim/tasks")).json()["tasks"] if r["family"] == "video"] == []
