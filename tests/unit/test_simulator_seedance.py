"""Unit tests for the simulator's Seedance fake: ids, lifecycle words (`processing`, `expired`),
the batch query with repeated ids, page_size and the 7-day window, the prefixes served, the
envelope, cancel rules and the expiring media. queue_s=1, run_s=4: final at +5 s."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock
from tests.unit.conftest import Factory, callback_recorder

AUTH = {"Authorization": "Bearer sk-test-seedance"}
TASKS = "/volc/v1/contents/generations/tasks"
MODEL = "doubao-seedance-1-0-pro-250528"

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"queue_s": 1.0, "run_s": 4.0}


async def create(client: httpx.AsyncClient, text: str = "a boat", path: str = TASKS, **extra: Any) -> httpx.Response:
    return await client.post(path, json={"model": MODEL, "content": [{"type": "text", "text": text}], **extra}, headers=AUTH)


async def test_lifecycle_ids_and_the_processing_alias(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    r = await create(client, "a boat [sim:processing]", return_last_frame=True)
    task_id = r.json()["id"]
    assert re.fullmatch(r"cgt-\d{14}-[a-z0-9]{5}", task_id)
    words = []
    for _ in range(3):
        words.append((await client.get(f"{TASKS}/{task_id}", headers=AUTH)).json()["status"])
        clock.advance(2.5)
    assert words == ["queued", "processing", "succeeded"]
    done = (await client.get(f"{TASKS}/{task_id}", headers=AUTH)).json()
    assert "X-Tos-Expires=86400" in done["content"]["video_url"] and "last_frame_url" in done["content"]
    assert done["usage"]["total_tokens"] > 0
    media = await client.get(httpx.URL(done["content"]["video_url"]).raw_path.decode())
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"


async def test_batch_query_repeated_ids_page_size_and_window(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    ids = [(await create(client, f"clip {i}")).json()["id"] for i in range(3)]
    r = await client.get(TASKS, params=[("filter.task_ids", ids[0]), ("filter.task_ids", ids[2]), ("page_size", "500")], headers=AUTH)
    page = r.json()
    assert page["total"] == 2 and {t["id"] for t in page["items"]} == {ids[0], ids[2]}
    assert (await client.get(TASKS, params={"page_size": "501"}, headers=AUTH)).status_code == 400
    assert (await client.get(TASKS, params={"page_size": "2", "page_num": "2"}, headers=AUTH)).json()["items"][0]["id"] == ids[0]
    clock.advance(8 * 86400)
    assert (await client.get(TASKS, params=[("filter.task_ids", ids[0])], headers=AUTH)).json() == {"total": 0, "items": []}


async def test_prefixes_served_envelope_and_batch_switch(make: Factory) -> None:
    client, sim = make(seedance_prefixes="/api/v3", seedance_envelope=True, seedance_batch_enabled=False)
    assert (await create(client)).status_code == 404
    r = await create(client, path="/api/v3/contents/generations/tasks")
    body = r.json()
    assert body["code"] == "success" and body["data"]["data"]["id"].startswith("cgt-")
    task = (await client.get(f"/api/v3/contents/generations/tasks/{body['data']['task_id']}", headers=AUTH)).json()
    assert task["data"]["status"] == "SUBMITTED" and task["data"]["data"]["status"] == "queued"
    assert (await client.get("/api/v3/contents/generations/tasks", headers=AUTH)).status_code == 404
    assert sim.state.paid.rows and len(sim.state.paid.rows) == 1


async def test_cancel_queued_only_and_expired_failed_words(make: Factory, clock: FakeClock) -> None:
    client, _ = make()
    queued = (await create(client, "later [sim:queue=30]")).json()["id"]
    running = (await create(client, "now [sim:queue=0] [sim:run=30]")).json()["id"]
    expired = (await create(client, "never [sim:expired]")).json()["id"]
    failed = (await create(client, "bad [sim:fail]")).json()["id"]
    assert (await client.delete(f"{TASKS}/{queued}", headers=AUTH)).status_code == 200
    r = await client.delete(f"{TASKS}/{running}", headers=AUTH)
    assert r.status_code == 400 and "cannot be cancelled" in r.json()["error"]["message"]
    clock.advance(6.0)
    get = {t: (await client.get(f"{TASKS}/{t}", headers=AUTH)).json() for t in (queued, running, expired, failed)}
    assert [get[t]["status"] for t in (queued, running, expired, failed)] == ["cancelled", "running", "expired", "failed"]
    assert get[failed]["error"]["code"] == "OutputVideoSensitiveContentDetected"
    assert (await create(client, "x [sim:reject]")).json()["error"]["code"] == "InputTextSensitiveContentDetected"
    assert (await client.post(TASKS, json={"model": "nope", "content": [{"type": "text", "text": "x"}]}, headers=AUTH)).status_code == 404


async def test_callbacks_post_the_task_on_each_status_change(make: Factory, clock: FakeClock) -> None:
    received, transport = callback_recorder()
    client, sim = make(callback_transport=transport)
    task_id = (await create(client, callback_url="https://us.example/hook/1")).json()["id"]
    seen = []
    for _ in range(4):
        await sim.callbacks.dispatch_once()
        seen += [(r["id"], r["status"]) for r in received[len(seen) :]]
        clock.advance(2.5)
    assert seen == [(task_id, "running"), (task_id, "succeeded")]
    assert received[-1]["url"] == "https://us.example/hook/1" and "video_url" in received[-1]["content"]
