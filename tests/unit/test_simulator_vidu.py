"""The simulator's Vidu fake: both prefixes (and serving only one), Vidu's refusals, the lifecycle
with the payload echoed, callbacks at processing and at the end, expiring media, the paid ledger.

Time is the shared fake clock: with queue_s=1 and run_s=4 a task is final at +5 s."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from simulator.media import MEDIA_SHA256
from tests.conftest import FakeClock
from tests.unit.conftest import Factory, callback_recorder

AUTH = {"Authorization": "Bearer sk-test-vidu"}
IMG = "https://images.example.com/a.png"

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 1.0, "run_s": 4.0}


async def submit(client: httpx.AsyncClient, route: str, prefix: str = "/ent/v2", **body: Any) -> httpx.Response:
    return await client.post(f"{prefix}/{route}", json={"model": "viduq2", **body}, headers=AUTH)


async def query(client: httpx.AsyncClient, task_id: str, prefix: str = "/ent/v2") -> dict[str, Any]:
    r = await client.get(f"{prefix}/tasks/{task_id}/creations", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_lifecycle_payload_echo_media_and_expiry(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await submit(client, "text2video", prompt="a fox [sim:expire=60]", payload="job_1", duration=5)
    assert r.status_code == 200, r.text
    sub = r.json()
    assert sub["state"] == "created" and sub["payload"] == "job_1" and sub["credits"] == 20 and sub["task_id"].isdigit()
    states = []
    for step in (0.0, 0.5, 1.0, 4.0):
        clock.advance(step)
        body = await query(client, sub["task_id"])
        states.append(body["state"])
        assert body["payload"] == "job_1" and body["id"] == sub["task_id"]
    assert states == ["created", "queueing", "processing", "success"]
    (creation,) = body["creations"]
    video, cover = await client.get(creation["url"]), await client.get(creation["cover_url"])
    assert hashlib.sha256(video.content).hexdigest() == MEDIA_SHA256["mp4"] and hashlib.sha256(cover.content).hexdigest() == MEDIA_SHA256["jpg"]
    assert "expires=" in creation["url"]
    clock.advance(61)
    assert (await client.get(creation["url"])).status_code == 403
    paid = (await client.get("/_sim/paid")).json()
    assert paid["count"] == 1 and paid["paid"][0]["external_id"] == "job_1" and paid["paid"][0]["family"] == "vidu"


async def test_image_route_failure_and_unknown_words(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    image = (await submit(client, "reference2image", prompt="statue", images=[IMG])).json()
    failed = (await submit(client, "img2video", images=[IMG], prompt="x [sim:fail=ImageDownloadFailure]")).json()
    odd = (await submit(client, "start-end2video", images=[IMG, IMG], prompt="x [sim:state=rendering] [sim:envelope]")).json()
    clock.advance(2)
    assert (await query(client, odd["task_id"]))["data"]["state"] == "rendering"
    clock.advance(4)
    done = await query(client, image["task_id"])
    assert done["creations"][0]["url"].split("?")[0].endswith("_0.png") and "cover_url" not in done["creations"][0]
    bad = await query(client, failed["task_id"])
    assert (bad["state"], bad["err_code"], bad["creations"]) == ("failed", "ImageDownloadFailure", [])


@pytest.mark.parametrize(
    ("route", "body", "says"),
    [
        ("text2video", {"model": "viduq1", "prompt": "p", "duration": 8}, "duration 8"),
        ("text2video", {"prompt": "p", "audio": True}, "audio"),
        ("img2video", {"images": []}, "1 image"),
        ("start-end2video", {"images": [IMG]}, "2 image"),
        ("reference2video", {"prompt": "p", "images": [IMG] * 8}, "1-7"),
        ("text2video", {"model": "vidu9", "prompt": "p"}, "model"),
        ("text2video", {"prompt": "p [sim:reject]"}, "content review"),
    ],
)
async def test_vidu_refusals_create_nothing(make: Factory, route: str, body: dict[str, Any], says: str) -> None:
    client, _ = make()
    r = await submit(client, route, **body)
    assert r.status_code == 400 and says in r.json()["message"] and {"code", "reason", "message"} <= set(r.json())
    assert (await client.get("/_sim/paid")).json()["count"] == 0


async def test_both_prefixes_and_serving_only_one(make: Factory) -> None:
    client, _ = make()
    a = (await submit(client, "text2video", "/vidu/ent/v2", prompt="p")).json()
    assert (await query(client, a["task_id"]))["id"] == a["task_id"]  # one store behind both
    assert (await client.post("/_sim/config", json={"vidu_prefixes": "/vidu/ent/v2"})).status_code == 200
    assert (await submit(client, "text2video", prompt="p")).status_code == 404
    assert (await client.get(f"/ent/v2/tasks/{a['task_id']}/creations", headers=AUTH)).status_code == 404
    assert (await query(client, a["task_id"], "/vidu/ent/v2"))["id"] == a["task_id"]
    assert (await client.post("/_sim/config", json={"vidu_prefixes": "/v1"})).status_code == 400
    assert (await client.get(f"/ent/v2/tasks/{a['task_id']}/creations")).status_code == 404  # not routed: before auth


async def test_callbacks_at_processing_and_the_end_echo_the_payload(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(callback_transport=transport)
    sub = (await submit(client, "img2video", images=[IMG], payload="job_9", callback_url="http://hook.test/cb")).json()
    quiet = (await submit(client, "img2video", images=[IMG], prompt="[sim:no_callback]", callback_url="http://hook.test/cb")).json()
    assert "callback_url" not in sub and quiet["task_id"]
    assert await sim.callbacks.dispatch_once() == 0
    clock.advance(1.5)
    await sim.callbacks.dispatch_once()
    clock.advance(5)
    await sim.callbacks.dispatch_once()
    await sim.callbacks.dispatch_once()
    assert [(c["state"], c["id"], c["payload"]) for c in received] == [("processing", sub["task_id"], "job_9"), ("success", sub["task_id"], "job_9")]
    assert received[1]["url"] == "http://hook.test/cb" and received[1]["creations"][0]["url"]
    assert (await client.get("/_sim/stats")).json()["callbacks_dropped"] == 2
