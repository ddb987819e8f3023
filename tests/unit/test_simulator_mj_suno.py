"""Unit tests for the simulator's Midjourney (`/mj`) and Suno (`/suno`) fakes.

Time is driven through an injected fake clock (`clock.monotonic`); with
queue_s=1 and run_s=4 an MJ task is SUBMITTED for 1 s, then IN_PROGRESS at
0% / 25% / 50% / 75% (one step per second), then final at +5 s.
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import Any

import httpx
import pytest

from simulator.codecs import MP3_FRAME_BYTES, jpeg_block_levels
from simulator.media import MEDIA_SHA256
from tests.conftest import FakeClock
from tests.unit.conftest import Factory, callback_recorder

AUTH = {"Authorization": "Bearer sk-test-mj-suno"}
BASE = "http://sim.test"

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 1.0, "run_s": 4.0}


async def mj(client: httpx.AsyncClient, name: str, body: dict[str, Any], prefix: str = "") -> httpx.Response:
    return await client.post(f"{prefix}/mj/submit/{name}", json=body, headers=AUTH)


async def mj_ok(client: httpx.AsyncClient, name: str, body: dict[str, Any], code: int = 1) -> str:
    r = await mj(client, name, body)
    assert r.status_code == 200, r.text
    assert r.json()["code"] == code, r.json()
    task_id: str = r.json()["result"]
    return task_id


async def fetch(client: httpx.AsyncClient, task_id: str, prefix: str = "") -> dict[str, Any]:
    r = await client.get(f"{prefix}/mj/task/{task_id}/fetch", headers=AUTH)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def finished_imagine(client: httpx.AsyncClient, clock: FakeClock, prompt: str = "a red fox") -> dict[str, Any]:
    task_id = await mj_ok(client, "imagine", {"prompt": prompt})
    clock.advance(6)
    task = await fetch(client, task_id)
    assert task["status"] == "SUCCESS"
    return task


async def press(client: httpx.AsyncClient, clock: FakeClock, parent: dict[str, Any], label: str) -> dict[str, Any]:
    custom_id = next(b["customId"] for b in parent["buttons"] if b["label"] == label)
    child_id = await mj_ok(client, "action", {"taskId": parent["id"], "customId": custom_id})
    clock.advance(6)
    return await fetch(client, child_id)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- Midjourney: lifecycle and results ------------------------------------------------


async def test_mj_imagine_lifecycle_grid_split_and_buttons(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await mj(client, "imagine", {"prompt": "a red fox", "state": "job-7", "botType": "NIJI_JOURNEY"})
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 1 and body["description"] == "Submit success" and isinstance(body["properties"], dict)
    task_id = body["result"]
    assert re.fullmatch(r"\d{16}", task_id)
    t = await fetch(client, task_id)
    assert t["id"] == task_id and t["action"] == "IMAGINE" and t["status"] == "SUBMITTED" and t["progress"] == "0%"
    assert t["imageUrl"] == "" and t["buttons"] == [] and "imageUrls" not in t
    assert t["state"] == "job-7" and t["botType"] == "NIJI_JOURNEY" and t["prompt"] == "a red fox"
    assert t["submitTime"] > 1_600_000_000_000 and t["startTime"] == 0 and t["finishTime"] == 0
    clock.advance(1.5)
    t = await fetch(client, task_id)
    assert (t["status"], t["progress"], t["imageUrl"]) == ("IN_PROGRESS", "0%", "")
    clock.advance(1.0)
    t = await fetch(client, task_id)
    assert (t["status"], t["progress"]) == ("IN_PROGRESS", "25%")
    assert t["imageUrl"] == f"{BASE}/_sim/media/preview/{task_id}_25.png" and "imageUrls" not in t
    preview = await client.get(t["imageUrl"])
    assert sha(preview.content) == MEDIA_SHA256["png_preview"] != MEDIA_SHA256["png"]
    clock.advance(3.0)
    t = await fetch(client, task_id)
    assert (t["status"], t["progress"], t["failReason"]) == ("SUCCESS", "100%", "")
    assert t["imageUrl"] == f"{BASE}/_sim/media/{task_id}_0.png"
    assert [u["url"] for u in t["imageUrls"]] == [f"{BASE}/_sim/media/{task_id}_{i}.png" for i in range(1, 5)]
    assert t["finishTime"] - t["startTime"] == 4000 and t["startTime"] - t["submitTime"] == 1000
    assert t["properties"]["finalPrompt"] == "a red fox"
    labels = [b["label"] for b in t["buttons"]]
    assert labels == ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]
    ids = [b["customId"] for b in t["buttons"]]
    assert re.fullmatch(r"MJ::JOB::upsample::1::[0-9a-f-]{36}", ids[0])
    assert re.fullmatch(r"MJ::JOB::reroll::0::[0-9a-f-]{36}::SOLO", ids[4]) and t["buttons"][4]["emoji"] == "🔄"
    assert re.fullmatch(r"MJ::JOB::variation::4::[0-9a-f-]{36}", ids[8])
    assert all(set(b) == {"customId", "emoji", "label", "type", "style"} for b in t["buttons"])
    for url in [t["imageUrl"], t["imageUrls"][3]["url"]]:
        assert sha((await client.get(url)).content) == MEDIA_SHA256["png"]


async def test_mj_image_urls_can_be_disabled_and_failure(make: Factory, clock: FakeClock) -> None:
    client, _ = make(mj_image_urls=False)
    t = await finished_imagine(client, clock)
    assert "imageUrls" not in t and t["imageUrl"]
    failing = await mj_ok(client, "imagine", {"prompt": "doomed [sim:fail]"})
    clock.advance(6)
    t = await fetch(client, failing)
    assert t["status"] == "FAILURE" and t["failReason"] and t["imageUrl"] == "" and t["buttons"] == []


async def test_mj_run_directive(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    task_id = await mj_ok(client, "imagine", {"prompt": "slow [sim:run=20]"})
    clock.advance(10)
    assert (await fetch(client, task_id))["status"] == "IN_PROGRESS"
    clock.advance(12)
    assert (await fetch(client, task_id))["status"] == "SUCCESS"


async def test_mj_upscale_action(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    parent = await finished_imagine(client, clock)
    up = await press(client, clock, parent, "U2")
    assert up["action"] == "UPSCALE" and up["status"] == "SUCCESS"
    assert up["customId"].startswith("MJ::JOB::upsample::2::") and parent["id"] in up["description"]
    assert up["imageUrl"].endswith(f"/_sim/media/{up['id']}_0.png") and "imageUrls" not in up
    by_label = {b["label"]: b for b in up["buttons"]}
    assert re.fullmatch(r"MJ::Outpaint::50::1::[0-9a-f-]{36}::SOLO", by_label["Zoom Out 2x"]["customId"])
    assert by_label["Zoom Out 1.5x"]["customId"].startswith("MJ::Outpaint::75::1::")
    assert by_label["Custom Zoom"]["customId"].startswith("MJ::CustomZoom::")
    assert re.fullmatch(r"MJ::Inpaint::1::[0-9a-f-]{36}::SOLO", by_label["Vary (Region)"]["customId"])
    pans = {b["emoji"]: b["customId"] for b in up["buttons"] if b["customId"].startswith("MJ::JOB::pan_")}
    assert pans["⬅️"].startswith("MJ::JOB::pan_left::1::") and set(pans) == {"⬅️", "➡️", "⬆️", "⬇️"}
    zoom = await press(client, clock, up, "Zoom Out 2x")
    assert zoom["action"] == "ZOOM" and len(zoom["imageUrls"]) == 4
    variation = await press(client, clock, parent, "V1")
    assert variation["action"] == "VARIATION" and variation["buttons"][0]["label"] == "U1"


async def test_mj_action_errors(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    running = await mj_ok(client, "imagine", {"prompt": "still drawing"})
    r = await mj(client, "action", {"taskId": running, "customId": "MJ::JOB::upsample::1::x"})
    assert r.status_code == 400
    assert r.json() == {"description": "task_status_not_success", "type": "upstream_error", "code": 4}
    r = await mj(client, "action", {"taskId": "1234", "customId": "MJ::JOB::upsample::1::x"})
    assert r.status_code == 400 and r.json()["description"] == "task_no_found"
    clock.advance(6)
    r = await mj(client, "action", {"taskId": running, "customId": "MJ::JOB::upsample::1::not-this-hash"})
    assert r.status_code == 200 and r.json()["code"] == 4 and r.json()["description"] == "invalid customId"
    assert r.json()["result"] is None
    r = await mj(client, "action", {"taskId": running})
    assert r.status_code == 400 and r.json()["code"] == 4


async def test_mj_code21_dedupe_imagine_and_button(make: Factory, clock: FakeClock) -> None:
    client, sim = make()
    first = await finished_imagine(client, clock, "same prompt")
    r = await mj(client, "imagine", {"prompt": "same prompt"})
    body = r.json()
    assert r.status_code == 200 and body["code"] == 21 and body["result"] == first["id"]
    assert body["properties"] == {"status": "SUCCESS", "imageUrl": first["imageUrl"]}
    assert sim.state.creates == 1
    up_id = await mj_ok(client, "action", {"taskId": first["id"], "customId": first["buttons"][0]["customId"]})
    again = await mj(client, "action", {"taskId": first["id"], "customId": first["buttons"][0]["customId"]})
    assert again.json()["code"] == 21 and again.json()["result"] == up_id
    assert again.json()["properties"]["status"] == "SUBMITTED"
    await client.post("/_sim/config", json={"mj_dedupe_code21": False})
    assert await mj_ok(client, "imagine", {"prompt": "same prompt"}) != first["id"]
    stats = (await client.get("/_sim/stats")).json()
    assert stats["mj_submit_codes"] == {"1": 3, "21": 2}


async def test_mj_code22_queued(make: Factory, clock: FakeClock) -> None:
    client, sim = make()
    r = await mj(client, "imagine", {"prompt": "busy [sim:queued]"})
    assert r.json()["code"] == 22 and r.json()["properties"]["numberOfQueues"] == 3
    task_id = r.json()["result"]
    assert sim.state.creates == 1
    assert (await fetch(client, task_id))["status"] == "NOT_START"
    clock.advance(0.7)
    assert (await fetch(client, task_id))["status"] == "SUBMITTED"
    clock.advance(6)
    assert (await fetch(client, task_id))["status"] == "SUCCESS"


async def test_mj_newapi_code_rewrite(make: Factory, clock: FakeClock) -> None:
    client, _ = make(mj_newapi_codes=True)
    assert (await mj(client, "imagine", {"prompt": "q [sim:queued]"})).json()["code"] == 1
    up = await press(client, clock, await finished_imagine(client, clock), "U1")
    inpaint = next(b["customId"] for b in up["buttons"] if b["label"] == "Vary (Region)")
    r = await mj(client, "action", {"taskId": up["id"], "customId": inpaint})
    assert r.json()["code"] == 21  # modal actions keep 21 through new-api


async def test_mj_code23_queue_full(make: Factory) -> None:
    client, sim = make()
    r = await mj(client, "imagine", {"prompt": "x [sim:queuefull]"})
    assert r.status_code == 200 and r.json()["code"] == 23 and r.json()["result"] is None
    assert (await client.post("/_sim/faults", json={"mj_queue_full_next": 1})).json()["mj_queue_full_next"] == 1
    assert (await mj(client, "imagine", {"prompt": "y"})).json()["code"] == 23
    assert sim.state.creates == 0 and (await client.get("/_sim/tasks")).json()["tasks"] == []
    assert (await mj(client, "imagine", {"prompt": "y"})).json()["code"] == 1


async def test_mj_code24_banned(make: Factory) -> None:
    client, sim = make()
    r = await mj(client, "imagine", {"prompt": "draw [sim:banned=gore] now"})
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 24 and body["description"] == "banned prompt" and body["result"] is None
    assert body["properties"] == {"promptEn": "draw [sim:banned=gore] now", "bannedWord": "gore"}
    r = await mj(client, "imagine", {"prompt": "A BannedWord here"})
    assert r.json()["code"] == 24 and r.json()["properties"]["bannedWord"] == "bannedword"
    assert sim.state.creates == 0


async def test_mj_modal_imagine_flow(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    task_id = await mj_ok(client, "imagine", {"prompt": "remix me [sim:modal]"})
    assert (await fetch(client, task_id))["status"] == "SUBMITTED"
    r = await mj(client, "modal", {"taskId": task_id})
    assert r.status_code == 200 and r.json()["code"] == 4  # not parked yet
    clock.advance(100)
    assert (await fetch(client, task_id))["status"] == "MODAL"
    r = await mj(client, "modal", {"taskId": task_id, "prompt": "remixed prompt"})
    assert r.json()["code"] == 1 and r.json()["result"] == task_id
    t = await fetch(client, task_id)
    assert (t["status"], t["progress"]) == ("IN_PROGRESS", "0%")
    clock.advance(4.5)
    t = await fetch(client, task_id)
    assert t["status"] == "SUCCESS" and t["prompt"] == "remixed prompt" and len(t["buttons"]) == 9
    assert (await mj(client, "modal", {"taskId": "999"})).status_code == 400


async def test_mj_vary_region_parks_in_modal(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    up = await press(client, clock, await finished_imagine(client, clock), "U3")
    inpaint = next(b["customId"] for b in up["buttons"] if b["label"] == "Vary (Region)")
    r = await mj(client, "action", {"taskId": up["id"], "customId": inpaint})
    assert r.status_code == 200 and r.json()["code"] == 21
    child = r.json()["result"]
    assert child != up["id"]
    t = await fetch(client, child)
    assert t["status"] == "MODAL" and t["action"] == "INPAINT"
    clock.advance(50)
    assert (await fetch(client, child))["status"] == "MODAL"
    assert (await mj_ok(client, "modal", {"taskId": child, "maskBase64": "data:image/png;base64,AAAA"})) == child
    clock.advance(4.5)
    t = await fetch(client, child)
    assert t["status"] == "SUCCESS" and t["maskBase64"] == "data:image/png;base64,AAAA"


async def test_mj_describe_blend_video_upload(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    describe_id = await mj_ok(client, "describe", {"base64": "data:image/png;base64,AAAA"})
    r = await mj(client, "blend", {"base64Array": ["data:image/png;base64,AAAA"]})
    assert r.status_code == 200 and r.json()["code"] == 4
    assert (await mj(client, "blend", {"base64Array": ["a", "b"], "dimensions": "WIDE"})).json()["code"] == 4
    blend_id = await mj_ok(client, "blend", {"base64Array": ["a", "b", "c"], "dimensions": "PORTRAIT"})
    video_id = await mj_ok(client, "video", {"image": "https://x/y.png", "motion": "high", "prompt": "waves"})
    assert (await mj(client, "video", {"image": "https://x/y.png", "motion": "fast"})).json()["code"] == 4
    clock.advance(6)
    d = await fetch(client, describe_id)
    assert d["action"] == "DESCRIBE" and d["status"] == "SUCCESS" and d["imageUrl"].endswith(".png")
    lines = [line for line in d["properties"]["finalPrompt"].split("\n") if line.strip()]
    assert [line[:2] for line in lines] == ["1️", "2️", "3️", "4️"]
    assert all(line.startswith(mark + " ") for line, mark in zip(lines, ["1️⃣", "2️⃣", "3️⃣", "4️⃣"], strict=True))
    assert d["prompt"] == d["properties"]["finalPrompt"]
    b = await fetch(client, blend_id)
    assert b["action"] == "BLEND" and len(b["imageUrls"]) == 4
    v = await fetch(client, video_id)
    assert v["action"] == "VIDEO" and v["status"] == "SUCCESS" and "imageUrls" not in v
    assert [u["url"] for u in v["videoUrls"]] == [f"{BASE}/_sim/media/{video_id}_{i}.mp4" for i in range(4)]
    assert v["videoUrl"] == v["videoUrls"][0]["url"]
    assert sha((await client.get(v["videoUrls"][2]["url"])).content) == MEDIA_SHA256["mp4"]
    ext = await mj_ok(client, "video", {"action": "extend", "taskId": video_id, "index": 1, "motion": "low"})
    assert (await fetch(client, ext))["action"] == "VIDEO"
    r = await mj(client, "video", {"action": "extend", "taskId": blend_id, "index": 1})
    assert r.status_code == 400
    r = await mj(client, "upload-discord-images", {"base64Array": ["a", "b"]})
    assert r.status_code == 200 and r.json()["code"] == 1 and r.json()["description"] == "success"
    urls = r.json()["result"]
    assert isinstance(urls, list) and len(urls) == 2
    assert sha((await client.get(urls[1])).content) == MEDIA_SHA256["png"]


async def test_mj_list_by_condition(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    a = await mj_ok(client, "imagine", {"prompt": "a"})
    b = await mj_ok(client, "imagine", {"prompt": "b"})
    r = await client.post("/mj/task/list-by-condition", json={"ids": [b, "404404", a]}, headers=AUTH)
    assert r.status_code == 200
    assert [t["id"] for t in r.json()] == [b, a] and r.json()[0]["status"] == "SUBMITTED"
    empty: list[dict[str, Any]] = [{"ids": []}, {}]
    for body in empty:
        r = await client.post("/mj/task/list-by-condition", json=body, headers=AUTH)
        assert r.status_code == 200 and r.json() == []
    stats = (await client.get("/_sim/stats")).json()
    assert stats["requests"]["POST /mj/task/list-by-condition"] == 3
    assert stats["polls"]["mj_batch"] == 3


async def test_mj_list_disabled_is_404(make: Factory) -> None:
    client, _ = make(mj_list_enabled=False)
    r = await client.post("/mj/task/list-by-condition", json={"ids": ["1"]}, headers=AUTH)
    assert r.status_code == 404
    expected = "Invalid URL (POST /mj/task/list-by-condition)"
    assert r.json() == {"error": {"message": expected, "type": "invalid_request_error"}}
    await client.post("/_sim/config", json={"mj_list_enabled": True})
    assert (await client.post("/mj/task/list-by-condition", json={}, headers=AUTH)).status_code == 200


async def test_mj_mode_prefix_and_stats(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await mj(client, "imagine", {"prompt": "relaxed"}, prefix="/mj-relax")
    assert r.json()["code"] == 1
    task_id = r.json()["result"]
    t = await fetch(client, task_id, prefix="/fast")
    assert t["mode"] == "relax"
    await fetch(client, task_id)
    await fetch(client, task_id)
    assert (await client.post("/bogus/mj/submit/imagine", json={"prompt": "x"}, headers=AUTH)).status_code == 404
    stats = (await client.get("/_sim/stats")).json()
    assert stats["requests"]["POST /mj-relax/mj/submit/imagine"] == 1
    assert stats["requests"]["GET /fast/mj/task/{id}/fetch"] == 1
    assert stats["requests"]["GET /mj/task/{id}/fetch"] == 2
    assert stats["polls"]["mj_single"] == 3 and stats["poll_requests"] == 3
    assert stats["creates_by_family"] == {"mj": 1} and stats["tasks_by_family"]["mj"] == 1


async def test_mj_errors_auth_seed_and_faults(make: Factory, clock: FakeClock) -> None:
    client, sim = make()
    r = await client.post("/mj/submit/imagine", json={"prompt": "x"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    r = await mj(client, "imagine", {"prompt": "  "})
    assert r.status_code == 400
    assert r.json() == {"description": "prompt_is_required", "type": "upstream_error", "code": 4}
    r = await client.get("/mj/task/123/fetch", headers=AUTH)
    assert r.status_code == 400 and r.json()["description"] == "task_no_found"
    t = await finished_imagine(client, clock)
    r = await client.get(f"/mj/task/{t['id']}/image-seed", headers=AUTH)
    assert r.json()["code"] == 1 and r.json()["description"] == "success" and r.json()["result"].isdigit()
    await client.post("/_sim/faults", json={"rate_limit_next": 1})
    r = await mj(client, "imagine", {"prompt": "limited"})
    assert r.status_code == 429 and r.json()["code"] == 30 and r.headers["Retry-After"] == "1"
    await client.post("/_sim/faults", json={"error_5xx_next": 1, "status": 502, "after_accept": True})
    r = await mj(client, "imagine", {"prompt": "accepted then 502"})
    assert r.status_code == 502 and r.json()["type"] == "upstream_error"
    assert sim.state.creates == 2 and any(x.prompt == "accepted then 502" for x in sim.state.mj.tasks.values())


# -- Midjourney: notifyHook ------------------------------------------------------------------


async def test_mj_notify_hook_every_status_and_progress(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(callback_transport=transport)
    body = {"prompt": "hooked", "notifyHook": "http://hook.test/mj", "state": "corr-1"}
    task_id = await mj_ok(client, "imagine", body)
    assert await sim.callbacks.dispatch_once() == 0
    for _ in range(7):
        clock.advance(1.0)
        await sim.callbacks.dispatch_once()
    seen = [(c["status"], c["progress"]) for c in received]
    assert seen == [("IN_PROGRESS", "0%"), ("IN_PROGRESS", "25%"), ("IN_PROGRESS", "50%"), ("IN_PROGRESS", "75%"), ("SUCCESS", "100%")]
    assert all(c["url"] == "http://hook.test/mj" and c["id"] == task_id and c["state"] == "corr-1" for c in received)
    assert received[1]["imageUrl"].endswith(f"/preview/{task_id}_25.png")
    assert received[-1]["imageUrl"].endswith(f"/{task_id}_0.png") and len(received[-1]["buttons"]) == 9
    assert "code" not in received[-1]  # the bare task object
    assert (await client.get("/_sim/stats")).json()["callbacks_sent"] == 5


async def test_mj_notify_reorder_duplicates_modal_and_disabled(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(callback_transport=transport, callback_reorder=True, callback_duplicates=1)
    await mj_ok(client, "imagine", {"prompt": "r [sim:fail]", "notifyHook": "http://hook.test/mj"})
    clock.advance(2.5)
    await sim.callbacks.dispatch_once()
    assert received == []
    clock.advance(5)
    await sim.callbacks.dispatch_once()
    assert [c["status"] for c in received] == ["FAILURE", "FAILURE"] + ["IN_PROGRESS"] * 8
    assert [c["progress"] for c in received[2:]] == ["0%", "0%", "25%", "25%", "50%", "50%", "75%", "75%"]
    assert received[0]["failReason"] and received[0]["progress"] == "75%"
    received.clear()
    await client.post("/_sim/config", json={"callback_reorder": False, "callback_duplicates": 0})
    task_id = await mj_ok(client, "imagine", {"prompt": "m [sim:modal]", "notifyHook": "http://hook.test/mj"})
    clock.advance(2)
    await sim.callbacks.dispatch_once()
    assert [c["status"] for c in received] == ["MODAL"]
    await mj_ok(client, "modal", {"taskId": task_id})
    clock.advance(5)
    await sim.callbacks.dispatch_once()
    assert [c["status"] for c in received][-1] == "SUCCESS" and len(received) == 6
    await client.post("/_sim/config", json={"callbacks_enabled": False})
    await mj_ok(client, "imagine", {"prompt": "quiet", "notifyHook": "http://hook.test/mj"})
    clock.advance(10)
    assert await sim.callbacks.dispatch_once() == 0
    assert (await client.get("/_sim/stats")).json()["callbacks_dropped"] == 5


# -- Suno -------------------------------------------------------------------------------------


async def suno_submit(client: httpx.AsyncClient, body: dict[str, Any], kind: str = "music") -> str:
    r = await client.post(f"/suno/submit/{kind}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["code"] == "success" and r.json()["message"] == "", r.json()
    task_id: str = r.json()["data"]
    return task_id


async def suno_fetch(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    r = await client.get(f"/suno/fetch/{task_id}", headers=AUTH)
    assert r.status_code == 200 and r.json()["code"] == "success", r.text
    data: dict[str, Any] = r.json()["data"]
    return data


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def test_suno_inspiration_lifecycle(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    task_id = await suno_submit(client, {"gpt_description_prompt": "a song about rain", "mv": "chirp-v3-5"})
    assert re.fullmatch(UUID, task_id)
    t = await suno_fetch(client, task_id)
    assert t["task_id"] == task_id and t["action"] == "MUSIC" and t["status"] == "SUBMITTED"
    assert t["progress"] == "0%" and t["start_time"] == 0 and t["submit_time"] < 10_000_000_000
    clips = t["data"]
    assert len(clips) == 2 and all(c["status"] == "submitted" and c["audio_url"] == "" for c in clips)
    clock.advance(0.6)
    t = await suno_fetch(client, task_id)
    assert t["status"] == "QUEUED" and {c["status"] for c in t["data"]} == {"queued"}
    clock.advance(1.0)
    t = await suno_fetch(client, task_id)
    assert t["status"] == "IN_PROGRESS" and {c["status"] for c in t["data"]} == {"streaming"}
    streaming = [c["audio_url"] for c in t["data"]]
    assert streaming[0] == f"{BASE}/_sim/media/stream/{clips[0]['id']}.mp3"
    stream_bytes = (await client.get(streaming[0])).content
    assert sha(stream_bytes) == MEDIA_SHA256["mp3_stream"] and t["data"][0]["metadata"]["duration"] is None
    clock.advance(4.0)
    t = await suno_fetch(client, task_id)
    assert (t["status"], t["progress"], t["fail_reason"]) == ("SUCCESS", "100%", "")
    assert t["finish_time"] - t["start_time"] == 4 or t["finish_time"] - t["start_time"] == 3
    for clip, old_url in zip(t["data"], streaming, strict=True):
        assert clip["status"] == "complete" and re.fullmatch(UUID, clip["id"])
        assert clip["audio_url"] == f"{BASE}/_sim/media/{clip['id']}.mp3" != old_url
        assert clip["image_url"] == f"{BASE}/_sim/media/{clip['id']}.jpeg" and clip["image_large_url"]
        assert clip["video_url"] == f"{BASE}/_sim/media/{clip['id']}.mp4"
        assert clip["model_name"] == "chirp-v3-5" and clip["major_model_version"] == "v3.5"
        meta = clip["metadata"]
        assert meta["gpt_description_prompt"] == "a song about rain" and meta["prompt"] and meta["tags"]
        assert meta["duration"] == 1.8 and meta["error_message"] is None
    audio = (await client.get(t["data"][0]["audio_url"])).content
    assert sha(audio) == MEDIA_SHA256["mp3"] != sha(stream_bytes)
    assert sha((await client.get(t["data"][1]["image_url"])).content) == MEDIA_SHA256["jpg"]
    assert sha((await client.get(t["data"][1]["video_url"])).content) == MEDIA_SHA256["mp4"]


async def test_suno_custom_and_continuation(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    body = {"prompt": "", "title": "Instrumental One", "tags": "lofi, chill", "negative_tags": "metal"}
    body["mv"] = "chirp-v4"
    first = await suno_submit(client, body)
    r = await client.post(
        "/suno/submit/music",
        json={**body, "task_id": first, "continue_clip_id": "nope", "continue_at": 10},
        headers=AUTH,
    )
    assert r.status_code == 200 and r.json()["code"] == "fail" and r.json()["data"] is None
    clock.advance(6)
    t = await suno_fetch(client, first)
    clip = t["data"][0]
    assert clip["title"] == "Instrumental One" and clip["metadata"]["tags"] == "lofi, chill"
    assert clip["metadata"]["prompt"] == "" and clip["metadata"]["negative_tags"] == "metal"
    assert clip["metadata"]["gpt_description_prompt"] is None
    cont = {**body, "prompt": "[Verse] more", "task_id": first, "continue_clip_id": clip["id"], "continue_at": 12.5}
    second = await suno_submit(client, cont)
    clock.advance(6)
    t2 = await suno_fetch(client, second)
    assert t2["status"] == "SUCCESS"
    assert t2["data"][0]["metadata"]["continue_clip_id"] == clip["id"]
    assert t2["data"][0]["metadata"]["continue_at"] == 12.5 and t2["data"][0]["id"] != clip["id"]


async def test_suno_clipfail_and_fail(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    half = await suno_submit(client, {"gpt_description_prompt": "one good one bad [sim:clipfail]"})
    bad = await suno_submit(client, {"prompt": "la", "title": "Nope [sim:fail]", "tags": "pop"})
    clock.advance(6)
    t = await suno_fetch(client, half)
    assert t["status"] == "SUCCESS"
    good, broken = t["data"]
    assert good["status"] == "complete" and good["audio_url"].endswith(".mp3")
    assert broken["status"] == "error" and broken["audio_url"] == ""
    assert broken["metadata"]["error_message"] == "clip generation failed" and broken["metadata"]["error_type"]
    t = await suno_fetch(client, bad)
    assert t["status"] == "FAILURE" and t["fail_reason"]
    assert {c["status"] for c in t["data"]} == {"error"}


async def test_suno_lyrics(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    task_id = await suno_submit(client, {"prompt": "summer love"}, kind="lyrics")
    t = await suno_fetch(client, task_id)
    assert t["action"] == "LYRICS" and t["status"] == "SUBMITTED" and t["data"] is None
    clock.advance(6)
    t = await suno_fetch(client, task_id)
    assert t["status"] == "SUCCESS"
    assert t["data"]["status"] == "complete" and t["data"]["id"] and "summer love" in t["data"]["text"]
    assert t["data"]["title"] == "Summer Love"
    r = await client.post("/suno/submit/lyrics", json={"prompt": ""}, headers=AUTH)
    assert r.status_code == 200 and r.json()["code"] == "fail"


async def test_suno_batch_fetch(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    music = await suno_submit(client, {"gpt_description_prompt": "x"})
    lyrics = await suno_submit(client, {"prompt": "y"}, kind="lyrics")
    r = await client.post("/suno/fetch", json={"ids": [lyrics, "missing", music]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["code"] == "success"
    assert [t["task_id"] for t in r.json()["data"]] == [lyrics, music]
    r = await client.post("/suno/fetch", json={"ids": [lyrics, music], "action": "MUSIC"}, headers=AUTH)
    assert [t["task_id"] for t in r.json()["data"]] == [music]
    assert (await client.post("/suno/fetch", json={"ids": []}, headers=AUTH)).json()["data"] == []
    assert (await client.post("/suno/fetch", json={}, headers=AUTH)).json()["data"] == []
    await client.post("/_sim/config", json={"suno_batch_enabled": False})
    r = await client.post("/suno/fetch", json={"ids": [music]}, headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Invalid URL (POST /suno/fetch)"
    await suno_fetch(client, music)
    stats = (await client.get("/_sim/stats")).json()
    assert stats["requests"]["POST /suno/fetch"] == 5 and stats["requests"]["GET /suno/fetch/{id}"] == 1
    assert stats["polls"] == {"suno_batch": 5, "suno_single": 1} and stats["creates_by_family"] == {"suno": 2}


async def test_suno_errors(make: Factory) -> None:
    client, sim = make()
    r = await client.post("/suno/submit/music", json={"title": "t", "tags": "pop"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"code": "fail", "message": "prompt is required", "data": None}
    r = await client.get("/suno/fetch/unknown", headers=AUTH)
    assert r.status_code == 400 and r.json()["code"] == "task_not_exist"
    assert (await client.post("/suno/submit/music", json={"prompt": "x"})).status_code == 401
    r = await client.post("/suno/submit/concat", json={"clip_id": "x"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["code"] == "invalid_action"
    await client.post("/_sim/faults", json={"rate_limit_next": 1})
    r = await client.post("/suno/submit/music", json={"prompt": "x"}, headers=AUTH)
    assert r.status_code == 429 and r.json()["code"] == "rate_limit_exceeded"
    assert sim.state.creates == 0
    assert (await client.get("/_sim/stats")).json()["suno_submit_codes"] == {"fail": 1}


async def test_suno_notify_hook_only_when_enabled(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(callback_transport=transport)
    body = {"gpt_description_prompt": "hook", "notify_hook": "http://hook.test/suno"}
    await suno_submit(client, body)
    clock.advance(10)
    assert await sim.callbacks.dispatch_once() == 0
    await client.post("/_sim/config", json={"suno_notify_enabled": True})
    task_id = await suno_submit(client, body)
    clock.advance(10)
    await sim.callbacks.dispatch_once()
    assert [c["status"] for c in received] == ["QUEUED"] + ["IN_PROGRESS"] * 4 + ["SUCCESS"]
    assert all(c["task_id"] == task_id and c["notify_hook"] == "http://hook.test/suno" for c in received)
    assert received[-1]["data"][0]["status"] == "complete"


# -- media, admin -------------------------------------------------------------------------------


async def test_media_mp3_jpeg_valid_and_stable(make: Factory) -> None:
    client, _ = make()
    shas = (await client.get("/_sim/media-sha256")).json()
    assert {"png", "mp4", "mp3", "mp3_stream", "jpg", "png_preview"} <= set(shas)
    mp3 = await client.get("/_sim/media/abc-1.mp3")
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    data = mp3.content
    assert len(data) % MP3_FRAME_BYTES == 0
    for pos in range(0, len(data), MP3_FRAME_BYTES):
        header = struct.unpack(">I", data[pos : pos + 4])[0]
        assert header >> 21 == 0x7FF  # frame sync (0xFFE...)
        assert (header >> 19) & 3 == 3 and (header >> 17) & 3 == 1  # MPEG-1, Layer III
        bitrate_idx, rate_idx = (header >> 12) & 0xF, (header >> 10) & 3
        assert (bitrate_idx, rate_idx) == (5, 2)  # 64 kbit/s, 32 kHz -> 144*64000/32000 = 288 bytes
    stream = (await client.get("/_sim/media/stream/abc-1.mp3")).content
    assert data.startswith(stream) and len(stream) < len(data) and stream[:2] == b"\xff\xfb"
    jpeg = await client.get("/_sim/media/abc-1.jpeg")
    assert jpeg.headers["content-type"] == "image/jpeg"
    jp = jpeg.content
    assert jp[:2] == b"\xff\xd8" and jp[-2:] == b"\xff\xd9"
    sof = jp.index(b"\xff\xc0")
    precision, height, width, components = struct.unpack(">BHHB", jp[sof + 4 : sof + 10])
    assert (precision, height, width, components) == (8, 32, 32, 1) and len(jpeg_block_levels()) == 16
    again = [(await client.get(p)).content for p in ("/_sim/media/other.mp3", "/_sim/media/x.jpg")]
    assert sha(data) == sha(again[0]) == shas["mp3"] == MEDIA_SHA256["mp3"]
    assert sha(jp) == sha(again[1]) == shas["jpg"]
    assert sha(stream) == shas["mp3_stream"]
    assert (await client.get("/_sim/media/nope/abc.mp3")).status_code == 404


async def test_reset_and_config_fields(make: Factory, clock: FakeClock) -> None:
    client, sim = make()
    cfg = (await client.get("/_sim/config")).json()
    assert cfg["mj_dedupe_code21"] is True and cfg["mj_list_enabled"] is True and cfg["mj_image_urls"] is True
    assert cfg["suno_notify_enabled"] is False and cfg["suno_batch_enabled"] is True and cfg["mj_newapi_codes"] is False
    assert (await client.post("/_sim/config", json={"mj_list_enabled": "no"})).status_code == 400
    await mj_ok(client, "imagine", {"prompt": "a"})
    await suno_submit(client, {"gpt_description_prompt": "b"})
    rows = (await client.get("/_sim/tasks")).json()["tasks"]
    assert sorted(r["family"] for r in rows) == ["mj", "suno"]
    stats = (await client.get("/_sim/stats")).json()
    assert stats["creates"] == 2 and stats["tasks"] == 2 and stats["creates_by_family"] == {"mj": 1, "suno": 1}
    await client.post("/_sim/reset")
    stats = (await client.get("/_sim/stats")).json()
    assert stats["creates"] == 0 and stats["tasks"] == 0 and stats["creates_by_family"] == {}
    assert stats["mj_submit_codes"] == {} and stats["suno_submit_codes"] == {} and stats["polls"] == {}
    assert sim.state.mj.tasks == {} and sim.state.suno.tasks == {}
