"""The HTTP API over real HTTP (uvicorn on loopback) on SQLite and PostgreSQL: the public
contract, errors that name the field, idempotency, and nothing written on a bad request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from api.main import create_app
from models.tables import Job, JobEvent
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers import dispatch
from workers.db import get_engine, session_scope
from workers.dispatch import RecordingDispatcher

TOKEN = "tok-integration-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox", "duration": 5}}


@pytest.fixture
def api(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[tuple[httpx.Client, RecordingDispatcher]]:
    recorder = RecordingDispatcher()
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=f"other-token,{TOKEN}")
    with serve(create_app(settings, dispatcher=recorder)) as url, httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        yield client, recorder


def rows(db_url: str) -> tuple[int, int]:
    with session_scope(get_engine(db_url)) as s:
        return s.exec(select(func.count()).select_from(Job)).one(), s.exec(select(func.count()).select_from(JobEvent)).one()


def test_create_answers_at_once_with_id_and_status_url(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    r = client.post("/v1/jobs", json=GOOD | {"metadata": {"sheet_row": 12}})
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "queued" and job["id"].startswith("job_")
    assert job["status_url"].endswith(f"/v1/jobs/{job['id']}") and r.headers["location"] == job["status_url"]
    assert job["input"] == {"prompt": "a red fox", "duration": "5", "model_name": "kling-v1"}
    assert job["metadata"] == {"sheet_row": 12} and job["error"] is None and job["assets"] == []
    assert recorder.of(dispatch.SUBMIT) == [(job["id"], 0)]
    got = client.get(job["status_url"]).json()
    assert got["id"] == job["id"] and set(got) >= {"provider_task_id", "batch_id", "result", "submitted_at", "finished_at", "progress"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"operation": "text2video", "input": {"prompt": "x"}}, "provider"),
        (GOOD | {"provider": "nope"}, "provider"),
        (GOOD | {"operation": "lipsync"}, "operation"),
        (GOOD | {"input": {}}, "prompt"),
        (GOOD | {"input": {"prompt": "x", "duration": "7"}}, "duration"),
        (GOOD | {"input": {"prompt": "x", "cfg_scale": 3}}, "cfg_scale"),
        ({k: v for k, v in GOOD.items() if k != "input"}, "input"),
        (GOOD | {"callback_url": "ftp://x"}, "callback_url"),
        (GOOD | {"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(api, db_url: str, body: dict, field: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    client, recorder = api
    before = rows(db_url)
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    locs = [".".join(map(str, d["loc"])) for d in r.json()["detail"]]
    assert any(field in loc for loc in locs), locs
    assert rows(db_url) == before and recorder.sent == []


def test_private_callback_url_refused_unless_allowed(db_url: str, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(db_url, sim.url, tmp_path, allow_private_urls=False)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        r = httpx.post(f"{url}/v1/jobs", json=GOOD | {"callback_url": "http://127.0.0.1:5678/webhook-waiting/1"})
        assert r.status_code == 422 and "callback_url" in r.text
        r = httpx.post(f"{url}/v1/jobs", json=GOOD | {"callback_url": "http://169.254.169.254/latest"})
        assert r.status_code == 422


def test_token_is_required(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    base = str(client.base_url)
    assert httpx.post(f"{base}/v1/jobs", json=GOOD).status_code == 401
    assert httpx.get(f"{base}/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{base}/v1/providers").status_code == 401
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_idempotency_same_body_replays_different_body_conflicts(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    first = client.post("/v1/jobs", json=GOOD, headers={"Idempotency-Key": "row-42"})
    again = client.post("/v1/jobs", json=GOOD, headers={"Idempotency-Key": "row-42"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    in_body = client.post("/v1/jobs", json=GOOD | {"idempotency_key": "row-42"})
    assert in_body.status_code == 200 and in_body.json()["id"] == first.json()["id"]
    before = rows(db_url)
    other = client.post("/v1/jobs", json=GOOD | {"input": {"prompt": "another"}}, headers={"Idempotency-Key": "row-42"})
    assert other.status_code == 409
    assert rows(db_url) == before and len(recorder.of(dispatch.SUBMIT)) == 1


def test_unknown_job_is_404(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    assert client.get("/v1/jobs/job_nope").status_code == 404
    assert client.post("/v1/jobs/job_nope/cancel").status_code == 404
    assert client.get("/v1/jobs/job_nope/assets/0").status_code == 404


def test_list_filters_and_cursor(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    ids = [client.post("/v1/jobs", json=GOOD | {"batch_id": "b1" if i % 2 else "b2"}).json()["id"] for i in range(5)]
    page1 = client.get("/v1/jobs", params={"limit": 2}).json()
    page2 = client.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    page3 = client.get("/v1/jobs", params={"limit": 2, "cursor": page2["next_cursor"]}).json()
    got = [j["id"] for p in (page1, page2, page3) for j in p["items"]]
    assert got == list(reversed(ids)) and page3["next_cursor"] is None
    assert {j["id"] for j in client.get("/v1/jobs", params={"batch_id": "b1"}).json()["items"]} == {ids[1], ids[3]}
    assert len(client.get("/v1/jobs", params={"status": "queued", "provider": "kling"}).json()["items"]) == 5
    assert client.get("/v1/jobs", params={"status": "bogus"}).status_code == 422
    assert client.get("/v1/jobs", params={"limit": 0}).status_code == 422


def test_cancel_then_cancel_again(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    job = client.post("/v1/jobs", json=GOOD).json()
    r = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["finished_at"]
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
    events = client.get(f"/v1/jobs/{job['id']}/events").json()
    assert [(e["from"], e["to"]) for e in events] == [(None, "queued"), ("queued", "cancelled")]


def test_providers_publish_input_schemas(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    providers = {p["name"]: p for p in client.get("/v1/providers").json()["providers"]}
    kling = providers["kling"]
    ops = {o["name"]: o for o in kling["operations"]}
    assert set(ops) == {
        "text2video",
        "image2video",
        "image",
        "omni_video",
        "multi_image2video",
        "video_extend",
        "effects",
        "motion_control",
        "avatar",
        "identify_face",
        "lip_sync",
        "video_to_audio",
        "sound_effect",
        "multi_image2image",
        "virtual_try_on",
    }
    assert "prompt" in ops["text2video"]["input_schema"]["required"]
    assert ops["omni_video"]["input_schema"]["x-models"]["kling-video-o1"]["durations"][0] == "3"
    n = ops["image"]["input_schema"]["properties"]["n"]["anyOf"][0]
    assert (n["minimum"], n["maximum"]) == (1, 9)


def test_openapi_and_metrics(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    client.post("/v1/jobs", json=GOOD)
    spec = client.get("/openapi.json").json()
    assert "/v1/jobs" in spec["paths"] and "/v1/jobs/{job_id}/cancel" in spec["paths"]
    text = client.get("/metrics").text
    assert 'k4u_jobs{provider="kling",status="queued"} 1.0' in text


def test_readyz_reports_missing_broker(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"] == "ok" and r.json()["checks"]["broker"].startswith("error")
