"""The simulator's MiniMax fake: the three-call flow (submit, status query, files/retrieve), the
word per phase, base_resp errors by directive, a file resolvable only after Success, the signed
download URL that expires, the new-api DTO by configuration and the second route prefix.

Time is the shared fake clock: with queue_s=1 and run_s=4 a task is final at +5 s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulator.media import MEDIA_SHA256
from tests.conftest import FakeClock
from tests.unit.conftest import SIM_BASE, Factory

AUTH = {"Authorization": "Bearer sk-test-minimax"}
TTS = {"model": "speech-2.6-hd", "text": "hello", "voice_setting": {"voice_id": "v"}}

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 1.0, "run_s": 4.0}


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], prefix: str = "/minimax/v1") -> dict[str, Any]:
    r = await client.post(f"{prefix}{path}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text  # MiniMax's own errors are HTTP 200 too
    return r.json()  # type: ignore[no-any-return]


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(f"/minimax/v1{path}", params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_video_three_call_flow_and_expiring_url(make: Factory, clock: FakeClock) -> None:
    client, sim = make()
    sub = await post(client, "/video_generation", {"model": "MiniMax-Hailuo-2.3", "prompt": "a cat [sim:expire=60]"})
    task_id = sub["task_id"]
    assert sub["base_resp"]["status_code"] == 0 and task_id.isdigit()
    words = []
    for _ in range(4):
        body = await get(client, "/query/video_generation", task_id=task_id)
        words.append(body["status"])
        if body["status"] != "Success":
            assert body["file_id"] == ""
        clock.advance(0.6 if len(words) < 3 else 4)
    assert words == ["Queueing", "Preparing", "Processing", "Success"]
    file_id = body["file_id"]
    assert body["video_width"] == 1366 and file_id.isdigit()
    file = (await get(client, "/files/retrieve", file_id=file_id))["file"]
    assert file["file_id"] == int(file_id) and file["download_url"].startswith(f"{SIM_BASE}/_sim/media/minimax/{file_id}.mp4?Expires=")
    media = await client.get(file["download_url"])  # no key
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
    clock.advance(61)
    gone = await client.get(file["download_url"])
    assert gone.status_code == 403 and "expired" in gone.text
    fresh = (await get(client, "/files/retrieve", file_id=file_id))["file"]["download_url"]
    assert (await client.get(fresh)).status_code == 200
    [row] = [t for t in (await client.get("/_sim/tasks")).json()["tasks"] if t["family"] == "minimax"]
    assert row["content_sha256"] == MEDIA_SHA256["mp4"] and row["retrieves"] == 2
    assert sim.state.paid.rows[0]["family"] == "minimax"


async def test_a_file_resolves_only_after_success(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = await post(client, "/t2a_async_v2", TTS)
    assert sub["usage_characters"] == 5 and isinstance(sub["file_id"], int) and sub["task_token"]
    early = await get(client, "/files/retrieve", file_id=sub["file_id"])
    assert early["file"] is None and early["base_resp"]["status_code"] == 2013
    assert (await get(client, "/query/t2a_async_query_v2", task_id=sub["task_id"]))["status"] == "Processing"
    clock.advance(5)
    assert (await get(client, "/query/t2a_async_query_v2", task_id=sub["task_id"]))["status"] == "Success"
    file = (await get(client, "/files/retrieve", file_id=sub["file_id"]))["file"]
    assert file["filename"] == "output.mp3" and (await client.get(file["download_url"])).headers["content-type"] == "audio/mpeg"


@pytest.mark.parametrize("code", [1004, 1008, 1026, 2013, 2049])
async def test_refusals_by_directive_make_no_task(make: Factory, code: int) -> None:
    client, sim = make()
    body = await post(client, "/video_generation", {"model": "MiniMax-Hailuo-02", "prompt": f"x [sim:code={code}]"})
    assert body["task_id"] == "" and body["base_resp"]["status_code"] == code and body["base_resp"]["status_msg"]
    assert sim.state.paid.rows == []


async def test_busy_then_taken_and_the_matrix_refused(make: Factory) -> None:
    client, sim = make()
    inp = {"model": "MiniMax-Hailuo-2.3", "prompt": "x [sim:busy=2]"}
    codes = [(await post(client, "/video_generation", inp))["base_resp"]["status_code"] for _ in range(3)]
    assert codes == [1002, 1002, 0] and len(sim.state.paid.rows) == 1
    refused = await post(client, "/video_generation", {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "resolution": "1080P", "duration": 10})
    assert refused["base_resp"]["status_code"] == 2013 and "1080P" in refused["base_resp"]["status_msg"]


async def test_failures_expiry_and_query_busy(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    fail = (await post(client, "/video_generation", {"model": "MiniMax-Hailuo-2.3", "prompt": "x [sim:fail]"}))["task_id"]
    expired = (await post(client, "/t2a_async_v2", TTS | {"text": "x [sim:expired]"}))["task_id"]
    busy = (await post(client, "/t2a_async_v2", TTS | {"text": "x [sim:query_busy=1]"}))["task_id"]
    assert (await get(client, "/query/t2a_async_query_v2", task_id=busy)) == {
        "base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded, please retry later"}
    }
    clock.advance(5)
    body = await get(client, "/query/video_generation", task_id=fail)
    assert body["status"] == "Fail" and body["base_resp"]["status_code"] == 1027
    assert (await get(client, "/query/t2a_async_query_v2", task_id=expired))["status"] == "Expired"
    assert (await get(client, "/query/t2a_async_query_v2", task_id=busy))["status"] == "Success"


async def test_newapi_envelope_wraps_the_answer_with_the_file(make: Factory, clock: FakeClock) -> None:
    client, _ = make(envelope="newapi")
    task_id = (await post(client, "/video_generation", {"model": "MiniMax-Hailuo-2.3", "prompt": "x"}))["task_id"]
    running = await get(client, "/query/video_generation", task_id=task_id)
    assert running["code"] == "success" and running["data"]["status"] == "QUEUED" and running["data"]["data"]["status"] == "Queueing"
    clock.advance(5)
    done = (await get(client, "/query/video_generation", task_id=task_id))["data"]
    assert done["status"] == "SUCCESS" and done["data"]["file"]["download_url"].startswith(SIM_BASE)


async def test_the_bare_v1_prefix_serves_the_same_routes(make: Factory) -> None:
    client, _ = make()
    sub = await post(client, "/t2a_async_v2", TTS, prefix="/v1")
    r = await client.get("/v1/query/t2a_async_query_v2", params={"task_id": sub["task_id"]}, headers=AUTH)
    assert r.json()["status"] == "Processing"
    assert (await client.get("/minimax/v1/query/video_generation", params={"task_id": "1"})).status_code == 401
