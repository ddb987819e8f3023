"""The simulator's generic new-api video tasks (`simulator.newapi_video`, `simulator.newapi_routes`):
both routes for any model, both status vocabularies and the flat one, the URL in each documented
place, "no available channel", the paid ledger and the bytes.

Time is the shared fake clock: with queue_s=3 and run_s=4 a task is queued for 3 s, runs for 4 s
and is final at +7 s.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from simulator.media import MEDIA_SHA256
from tests.conftest import FakeClock
from tests.unit.conftest import SIM_BASE, Factory

AUTH = {"Authorization": "Bearer sk-test-newapi"}

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 3.0, "run_s": 4.0}


async def generate(client: httpx.AsyncClient, prompt: str = "a cat", model: str = "wan2.5-t2v-preview", **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/video/generations", json={"model": model, "prompt": prompt, **extra}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def videos(client: httpx.AsyncClient, prompt: str = "a cat", model: str = "MiniMax-Hailuo-02", **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/videos", json={"model": model, "prompt": prompt, **extra}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_generations_lifecycle_in_the_task_dto(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = await generate(client, image="https://in.example/first.png", duration=5, metadata={"watermark": False})
    assert set(sub) == {"id", "task_id", "object", "model", "status", "progress", "created_at"}
    assert sub["id"] == sub["task_id"] and sub["task_id"].startswith("task_") and (sub["status"], sub["progress"]) == ("queued", 0)
    path = f"/v1/video/generations/{sub['task_id']}"
    seen = []
    for _ in range(8):
        body = await get(client, path)
        assert body["code"] == "success" and isinstance(body["data"]["id"], int) and body["data"]["task_id"] == sub["task_id"]
        seen.append((body["data"]["status"], body["data"]["progress"], "result_url" in body["data"]))
        clock.advance(1)
    assert seen == [
        ("NOT_START", "0%", False),
        ("SUBMITTED", "0%", False),
        ("QUEUED", "0%", False),
        ("IN_PROGRESS", "0%", False),
        ("IN_PROGRESS", "24%", False),
        ("IN_PROGRESS", "49%", False),
        ("IN_PROGRESS", "74%", False),
        ("SUCCESS", "100%", True),
    ]
    done = body["data"]
    assert done["data"]["input"]["img_url"] == "https://in.example/first.png" and done["data"]["output"]["cover_image_url"].endswith(".png")
    media = await client.get(done["result_url"])  # no key needed
    assert media.status_code == 200 and hashlib.sha256(media.content).hexdigest() == MEDIA_SHA256["mp4"]
    obj = await get(client, f"/v1/videos/{sub['task_id']}")  # one task table: the other route answers too
    assert (obj["object"], obj["status"], obj["metadata"]["url"]) == ("video", "completed", done["result_url"])


async def test_videos_route_takes_any_model_json_or_multipart(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    sub = await videos(client, size="1080P", seconds="6")
    r = await client.post(
        "/v1/videos",
        data={"model": "wan2.5-i2v", "prompt": "animate", "metadata": '{"seed": 3}'},
        files={"input_reference": ("a.png", b"\x89PNG", "image/png")},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    rows = {t["task_id"]: t for t in (await client.get("/_sim/tasks")).json()["tasks"]}
    assert rows[r.json()["id"]]["input_reference"]["sha256"] == hashlib.sha256(b"\x89PNG").hexdigest()
    assert rows[sub["id"]]["provider"] == "newapi" and rows[sub["id"]]["model"] == "MiniMax-Hailuo-02"
    words = []
    for _ in range(3):
        body = await get(client, f"/v1/videos/{sub['id']}")
        words.append(body["status"])
        clock.advance(3.5)
    assert words == ["queued", "in_progress", "completed"]
    assert body["size"] == "1080P" and body["metadata"]["url"].startswith(f"{SIM_BASE}/_sim/media/video/")
    paid = (await client.get("/_sim/paid")).json()["paid"]
    assert [p["kind"] for p in paid] == ["newapi/videos", "newapi/videos"]
    assert (await videos(client, model="sora-2"))["status"] == "queued"  # Sora stays Sora
    assert (await client.get("/_sim/paid")).json()["paid"][-1]["kind"] == "openai/sora"


@pytest.mark.parametrize(
    "directives, route, where",
    [
        ("", "generations", ["data", "result_url"]),
        ("[sim:vocab=object]", "generations", ["metadata", "url"]),
        ("[sim:vocab=flat]", "generations", ["url"]),
        ("[sim:url=video_url]", "generations", ["data", "video_url"]),
        ("[sim:url=metadata]", "generations", ["data", "metadata", "url"]),
        ("[sim:url=data]", "generations", ["data", "data", "output", "video_url"]),
        ("[sim:url=data] [sim:vocab=object]", "videos", ["data", "output", "video_url"]),
        ("[sim:url=result_url]", "videos", ["result_url"]),
        ("[sim:vocab=dto]", "videos", ["data", "result_url"]),
    ],
)
async def test_the_url_in_each_documented_place(make: Factory, clock: FakeClock, directives: str, route: str, where: list[str]) -> None:
    client, _ = make()
    sub = await generate(client, f"x {directives}")
    path = f"/v1/video/generations/{sub['id']}" if route == "generations" else f"/v1/videos/{sub['id']}"
    clock.advance(8)
    node: Any = await get(client, path)
    for key in where:
        node = node[key]
    assert node == f"{SIM_BASE}/_sim/media/video/{sub['id']}.mp4"


async def test_proxy_and_no_url(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    proxy = await generate(client, "x [sim:url=proxy]")
    none = await videos(client, "y [sim:url=none]")
    clock.advance(8)
    data = (await get(client, f"/v1/video/generations/{proxy['id']}"))["data"]
    assert data["result_url"] == f"{SIM_BASE}/v1/videos/{proxy['id']}/content"
    assert (await client.get(data["result_url"])).status_code == 401  # new-api's proxy wants the key
    assert (await client.get(data["result_url"], headers=AUTH)).status_code == 200
    obj = await get(client, f"/v1/videos/{none['id']}")
    assert obj["status"] == "completed" and obj["metadata"] == {} and "url" not in obj and "video_url" not in obj
    content = await client.get(f"/v1/videos/{none['id']}/content", headers=AUTH)
    assert content.status_code == 200 and hashlib.sha256(content.content).hexdigest() == MEDIA_SHA256["mp4"]


async def test_failure_and_undocumented_words(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    failed = await generate(client, "x [sim:fail]")
    odd = await videos(client, "y [sim:word=warming_up]")
    clock.advance(4)
    assert (await get(client, f"/v1/videos/{odd['id']}"))["status"] == "warming_up"
    clock.advance(4)
    data = (await get(client, f"/v1/video/generations/{failed['id']}"))["data"]
    assert data["status"] == "FAILURE" and "violates" in data["fail_reason"] and "result_url" not in data
    obj = await get(client, f"/v1/videos/{failed['id']}")
    assert obj["status"] == "failed" and "violates" in obj["error"]["message"]
    assert (await get(client, f"/v1/videos/{odd['id']}"))["status"] == "completed"


async def test_no_available_channel_by_directive_and_by_config(make: Factory) -> None:
    client, _ = make()
    r = await client.post("/v1/video/generations", json={"model": "wan2.5", "prompt": "x [sim:no_channel]"}, headers=AUTH)
    assert r.status_code == 503 and r.json()["message"] == "no available channel for model wan2.5 under group default"
    assert (await client.post("/_sim/config", json={"unrouted_models": "MiniMax-Hailuo-02, kling-v2"})).status_code == 200
    r = await client.post("/v1/videos", json={"model": "MiniMax-Hailuo-02", "prompt": "x"}, headers=AUTH)
    assert r.status_code == 503 and "under group default" in r.json()["error"]["message"]
    await generate(client, model="wan2.5")  # another model is routed
    assert (await client.get("/_sim/paid")).json()["count"] == 1
    await client.post("/_sim/config", json={"unrouted_models": "*"})
    r = await client.post("/v1/video/generations", json={"model": "anything", "prompt": "x"}, headers=AUTH)
    assert r.status_code == 503
    assert (await videos(client, model="sora-2"))["status"] == "queued"  # `*` is every generic model, not Sora
    await client.post("/_sim/config", json={"unrouted_models": ""})
    await videos(client)
    assert (await client.get("/_sim/paid")).json()["count"] == 3


@pytest.mark.parametrize(
    "body, message",
    [
        ({"prompt": "x"}, "model is required"),
        ({"model": "m"}, "prompt is required"),
        ({"model": "m", "prompt": "x", "duration": "five"}, "duration"),
        ({"model": "m", "prompt": "x", "images": "https://a/b.png"}, "images"),
        ({"model": "m", "prompt": "x", "metadata": "{}"}, "metadata"),
        ({"model": "m", "prompt": "x [sim:reject]"}, "safety"),
    ],
)
async def test_generations_refusals(make: Factory, body: dict[str, Any], message: str) -> None:
    client, _ = make()
    r = await client.post("/v1/video/generations", json=body, headers=AUTH)
    assert r.status_code == 400 and message in r.json()["message"] and set(r.json()) == {"code", "message", "data"}
    assert (await client.post("/v1/video/generations", json={"model": "m", "image": "https://a/b.png"}, headers=AUTH)).status_code == 200
    assert (await client.get("/_sim/paid")).json()["count"] == 1


async def test_auth_faults_unknown_ids_and_poll_counters(make: Factory) -> None:
    client, _ = make()
    assert (await client.post("/v1/video/generations", json={"model": "m", "prompt": "x"})).status_code == 401
    r = await client.get("/v1/video/generations/task_nope", headers=AUTH)
    assert r.status_code == 400 and r.json()["code"] == "task_not_exist"
    sora = await videos(client, model="sora-2")
    assert (await client.get(f"/v1/video/generations/{sora['id']}", headers=AUTH)).status_code == 400  # not a generic task
    await client.post("/_sim/faults", json={"error_5xx_next": 1, "status": 502, "after_accept": True})
    r = await client.post("/v1/video/generations", json={"model": "m", "prompt": "lost"}, headers=AUTH)
    assert r.status_code == 502
    paid = (await client.get("/_sim/paid")).json()["paid"]
    assert [(p["kind"], p["answered"]) for p in paid][-1] == ("newapi/generations", 502)  # made and billed, answer lost
    task_id = paid[-1]["task_id"]
    await get(client, f"/v1/video/generations/{task_id}")
    await get(client, f"/v1/videos/{task_id}")
    polls = (await client.get("/_sim/stats")).json()["polls"]
    assert polls["video_generations"] == 3 and polls["video_openai"] == 1  # every GET of the route counts, refused ones too
