"""The simulator's probabilistic faults (rates 0 and 1, and a seeded middle rate) and its ledger
of paid tasks, for Kling, Midjourney and Suno creates alike."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from simulator import SimConfig, create_app
from simulator.chaos import LONG_TASK_ID, Dice
from tests.servers import serve
from tests.unit.conftest import Factory

AUTH = {"Authorization": "Bearer sk-chaos"}
CREATES = {
    "kling": ("/kling/v1/videos/text2video", {"prompt": "chaos-000001 a fox", "external_task_id": "job_1"}),
    "mj": ("/mj/submit/imagine", {"prompt": "chaos-000002 a lighthouse", "state": "job_2"}),
    "suno": ("/suno/submit/music", {"gpt_description_prompt": "chaos-000003 lofi rain"}),
}
POLLS = {"kling": "/kling/v1/videos/text2video/123", "mj": "/mj/task/123/fetch", "suno": "/suno/fetch/123"}

pytestmark = pytest.mark.anyio


async def paid(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    body = (await client.get("/_sim/paid")).json()
    assert body["count"] == len(body["paid"])
    return body["paid"]  # type: ignore[no-any-return]


async def test_rates_default_to_zero_and_every_create_is_in_the_paid_ledger(make: Factory) -> None:
    client, _ = make()
    for path, body in CREATES.values():
        assert (await client.post(path, json=body, headers=AUTH)).status_code == 200
    rows = await paid(client)
    assert [(r["family"], r["answered"]) for r in rows] == [("kling", 200), ("mj", 200), ("suno", 200)]
    assert [r["prompt"].split()[0] for r in rows] == ["chaos-000001", "chaos-000002", "chaos-000003"]
    assert rows[0]["external_id"] == "job_1" and rows[0]["kind"] == "videos/text2video"
    assert rows[1]["state"] == "job_2" and rows[1]["kind"] == "IMAGINE"
    assert rows[2]["kind"] == "MUSIC" and all(r["task_id"] for r in rows)
    assert (await client.get("/_sim/stats")).json()["paid_tasks"] == 3


@pytest.mark.parametrize("family", list(CREATES))
async def test_accept_502_makes_the_task_then_answers_502(make: Factory, family: str) -> None:
    client, sim = make(accept_502_rate=1.0)
    path, body = CREATES[family]
    r = await client.post(path, json=body, headers=AUTH)
    assert r.status_code == 502
    (row,) = await paid(client)
    assert row["family"] == family and row["answered"] == 502
    store = {"kling": sim.state.tasks, "mj": sim.state.mj.tasks, "suno": sim.state.suno.tasks}[family]
    assert row["task_id"] in store, "the task exists and will run"
    assert (await client.get("/_sim/stats")).json()["faults_fired"] == {"accept_502": 1}


@pytest.mark.parametrize("family", list(CREATES))
async def test_5xx_rate_one_refuses_every_relay_request_without_processing_it(make: Factory, family: str) -> None:
    client, _ = make(error_5xx_rate=1.0)
    path, body = CREATES[family]
    r = await client.post(path, json=body, headers=AUTH)
    assert r.status_code in (500, 502, 503, 504)
    assert (await client.get(POLLS[family], headers=AUTH)).status_code in (500, 502, 503, 504)
    assert await paid(client) == []
    # Admin and media routes are not relay routes: no fault there.
    assert (await client.get("/_sim/media/x.mp4")).status_code == 200


@pytest.mark.parametrize("family", list(CREATES))
async def test_429_rate_one_answers_429_with_retry_after(make: Factory, family: str) -> None:
    client, _ = make()
    r = await client.post("/_sim/faults", json={"rate_limit_rate": 1})
    assert r.status_code == 200 and r.json()["rate_limit_rate"] == 1.0
    path, body = CREATES[family]
    r = await client.post(path, json=body, headers=AUTH)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert await paid(client) == []
    assert (await client.get("/_sim/stats")).json()["faults_fired"] == {"rate_limit": 1}


@pytest.mark.parametrize("family", list(CREATES))
async def test_long_task_id_rate_one_makes_a_paid_task_with_a_300_character_id(make: Factory, family: str) -> None:
    client, _ = make(long_task_id_rate=1.0)
    path, body = CREATES[family]
    assert (await client.post(path, json=body, headers=AUTH)).status_code == 200
    (row,) = await paid(client)
    assert len(row["task_id"]) == LONG_TASK_ID
    r = await client.get(POLLS[family].replace("123", row["task_id"]), headers=AUTH)
    assert r.status_code == 200 and row["task_id"] in r.text, "the task answers by its long id"
    assert (await client.get("/_sim/stats")).json()["faults_fired"] == {"long_task_id": 1}


async def test_injected_429s_carry_the_configured_retry_after(make: Factory) -> None:
    client, _ = make()
    assert (await client.post("/_sim/config", json={"retry_after": "86400"})).status_code == 200
    assert (await client.post("/_sim/faults", json={"rate_limit_next": len(POLLS)})).status_code == 200
    for path in POLLS.values():
        r = await client.get(path, headers=AUTH)
        assert r.status_code == 429 and r.headers["retry-after"] == "86400", path


async def test_rates_are_set_through_config_or_faults_and_validated(make: Factory) -> None:
    client, sim = make()
    r = await client.post("/_sim/config", json={"error_5xx_rate": 0.1, "media_cut_rate": 0.2, "fault_seed": 7})
    assert r.status_code == 200 and r.json()["media_cut_rate"] == 0.2
    assert sim.state.dice.seed == 7
    r = await client.post("/_sim/faults", json={"accept_502_rate": 0.1, "fault_seed": 9, "rate_limit_next": 1})
    assert r.status_code == 200 and r.json()["accept_502_rate"] == 0.1 and r.json()["rate_limit_next"] == 1
    assert sim.state.dice.seed == 9
    for bad in ({"error_5xx_rate": 1.5}, {"media_cut_rate": -0.1}, {"rate_limit_rate": "x"}, {"fault_seed": 1.5}):
        for route in ("/_sim/config", "/_sim/faults"):
            r = await client.post(route, json=bad | {"slow_next": 3} if route == "/_sim/faults" else bad)
            assert r.status_code == 400 and next(iter(bad)) in r.json()["error"], (route, bad)
    assert sim.state.faults.slow_next == 0, "a rejected payload changes nothing"
    with pytest.raises(ValueError, match="accept_502_rate"):
        SimConfig(accept_502_rate=2.0)


async def test_the_same_seed_gives_the_same_faults(make: Factory) -> None:
    outcomes = []
    for _ in range(2):
        client, _ = make(rate_limit_rate=0.3, error_5xx_rate=0.2, fault_seed=42)
        codes = [(await client.get(POLLS["kling"], headers=AUTH)).status_code for _ in range(60)]
        outcomes.append(codes)
        assert 429 in codes and any(c >= 500 for c in codes) and 404 in codes  # unfaulted: task not found
    assert outcomes[0] == outcomes[1]


def test_dice_rates_zero_and_one_do_not_draw() -> None:
    dice = Dice(1)
    assert not any(dice.roll(0.0) for _ in range(100)) and all(dice.roll(1.0) for _ in range(100))
    fresh = Dice(1)
    assert dice.fraction(0, 1) == fresh.fraction(0, 1)


def test_media_cut_announces_the_full_length_and_drops_the_connection() -> None:
    app = create_app(SimConfig(media_cut_rate=1.0))
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        want = client.get("/_sim/media-sha256").json()
        got = bytearray()
        with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", "/_sim/media/task_1.mp4") as r:
            assert r.status_code == 200
            length = int(r.headers["content-length"])
            for chunk in r.iter_bytes():
                got += chunk
        assert 0 < len(got) < length
        stats = client.get("/_sim/stats").json()
        assert stats["faults_fired"] == {"media_cut": 1} and stats["media_downloads"] == 1
        client.post("/_sim/config", json={"media_cut_rate": 0})
        whole = client.get("/_sim/media/task_1.mp4")
        assert hashlib.sha256(whole.content).hexdigest() == want["mp4"]
