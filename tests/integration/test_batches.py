"""Batches over real HTTP (uvicorn on loopback) on SQLite and PostgreSQL: accepted in one insert per
table with no broker message, one bad item rejects all, idempotent re-sends, counts, cancel with the
broker down, and the one batch.completed notification sent through the engine's tick."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func
from sqlmodel import select

from api.main import create_app
from models.schemas import BatchCreate
from models.tables import Batch, Delivery, Job, JobEvent
from tests.conftest import Sim, make_settings
from tests.servers import serve, webhook_receiver
from workers import dispatch, signing
from workers.db import get_engine, session_scope
from workers.dispatch import RecordingDispatcher
from workers.services.batches import batch_deliveries, create_batch, get_batch
from workers.services.notify import replay_batch_notifications

TOKEN = "tok-batches-1"
T2V = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox"}}


def item(i: int, **extra: Any) -> dict[str, Any]:
    return T2V | {"input": {"prompt": f"a red fox, take {i}"}} | extra


class BrokerDown:
    def send(self, task: str, *args: Any) -> None:
        raise ConnectionError("broker unreachable")


@pytest.fixture
def api_factory(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[Any]:
    with_stack = []

    def make(dispatcher: Any = None, **extra: Any) -> tuple[httpx.Client, Any]:
        recorder = dispatcher or RecordingDispatcher()
        settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN, **extra)
        cm = serve(create_app(settings, dispatcher=recorder))
        url = cm.__enter__()
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        with_stack.append((cm, client))
        return client, recorder

    yield make
    for cm, client in with_stack:
        client.close()
        cm.__exit__(None, None, None)


@pytest.fixture
def api(api_factory: Any) -> tuple[httpx.Client, RecordingDispatcher]:
    return api_factory()  # type: ignore[no-any-return]


def rows(db_url: str) -> tuple[int, int, int]:
    with session_scope(get_engine(db_url)) as s:
        return (
            s.exec(select(func.count()).select_from(Job)).one(),
            s.exec(select(func.count()).select_from(JobEvent)).one(),
            s.exec(select(func.count()).select_from(Batch)).one(),
        )


def test_a_batch_is_accepted_queued_and_due_now_without_a_broker_message(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    r = client.post("/v1/batches", json={"jobs": [item(i, metadata={"row": i}) for i in range(5)], "metadata": {"sheet": "A"}})
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["id"].startswith("batch_") and r.headers["location"].endswith(f"/v1/batches/{b['id']}")
    assert (b["total"], b["status"], b["finished_at"], b["metadata"]) == (5, "running", None, {"sheet": "A"})
    assert b["counts"] == {"waiting": 0, "queued": 5, "submitting": 0, "running": 0, "downloading": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert len(b["job_ids"]) == 5 and len(set(b["job_ids"])) == 5
    assert recorder.sent == []  # the beat's tick submits them
    with session_scope(get_engine(db_url)) as s:
        jobs = {j.id: j for j in s.exec(select(Job).where(Job.batch_id == b["id"])).all()}
        created = s.exec(select(func.count()).select_from(JobEvent).where(JobEvent.reason == "created")).one()
    assert set(jobs) == set(b["job_ids"]) and created == 5
    assert all(j.status == "queued" and j.next_at is not None and j.next_at <= datetime.now(UTC) for j in jobs.values())
    assert [jobs[i].meta for i in b["job_ids"]] == [{"row": i} for i in range(5)]  # job_ids in item order
    assert client.get(f"/v1/batches/{b['id']}").json() == {k: v for k, v in b.items() if k != "job_ids"}
    one = client.get(f"/v1/jobs/{b['job_ids'][2]}").json()
    assert one["batch_id"] == b["id"] and one["input"]["prompt"] == "a red fox, take 2"


def test_batch_jobs_page_in_item_order_with_a_status_filter(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    b = client.post("/v1/batches", json={"jobs": [item(i) for i in range(5)]}).json()
    client.post("/v1/batches", json={"jobs": [item(9)]})  # another batch: never listed
    client.post(f"/v1/jobs/{b['job_ids'][1]}/cancel")
    pages, cursor = [], None
    while True:
        page = client.get(f"/v1/batches/{b['id']}/jobs", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        pages.append([j["id"] for j in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i for p in pages for i in p] == b["job_ids"] and [len(p) for p in pages] == [2, 2, 1]
    cancelled = client.get(f"/v1/batches/{b['id']}/jobs", params={"status": "cancelled"}).json()
    assert [j["id"] for j in cancelled["items"]] == [b["job_ids"][1]] and cancelled["next_cursor"] is None
    assert client.get(f"/v1/batches/{b['id']}").json()["counts"]["cancelled"] == 1
    assert client.get(f"/v1/batches/{b['id']}/jobs", params={"status": "bogus"}).status_code == 422
    assert client.get(f"/v1/batches/{b['id']}/jobs", params={"cursor": "nope"}).status_code == 422


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"jobs": [item(0), item(1), T2V | {"input": {"prompt": "x", "duration": "7"}}]}, ["body", "jobs", 2, "input", "duration"]),
        ({"jobs": [item(0), {"operation": "text2video", "input": {"prompt": "x"}}]}, ["body", "jobs", 1, "provider"]),
        ({"jobs": [item(0), item(1) | {"provider": "nope"}]}, ["body", "jobs", 1, "provider"]),
        ({"jobs": [item(0), item(1) | {"operation": "lipsync"}]}, ["body", "jobs", 1, "operation"]),
        ({"jobs": [item(0), item(1) | {"surprise": 1}]}, ["body", "jobs", 1, "surprise"]),
        ({"jobs": [item(0), item(1) | {"callback_url": "ftp://x"}]}, ["body", "jobs", 1, "callback_url"]),
        ({"jobs": [item(0), item(1) | {"batch_id": "mine"}]}, ["body", "jobs", 1, "batch_id"]),
        ({"jobs": [item(0, idempotency_key="k"), item(1, idempotency_key="k")]}, ["body", "jobs", 1, "idempotency_key"]),
        ({"jobs": [item(0)], "callback_url": "not a url"}, ["body", "callback_url"]),
        ({"jobs": []}, ["body", "jobs"]),
        ({"jobs": [item(0)], "extra": 1}, ["body", "extra"]),
    ],
)
def test_one_bad_item_rejects_the_batch_naming_its_index_and_field(api, db_url: str, body: dict, loc: list) -> None:  # type: ignore[no-untyped-def,type-arg]
    client, recorder = api
    before = rows(db_url)
    r = client.post("/v1/batches", json=body)
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["detail"]], r.json()
    assert rows(db_url) == before and recorder.sent == []


def test_a_job_cannot_join_a_batch_through_post_jobs(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """Membership of a batch comes only from POST /v1/batches: its total, counts and batch.completed
    are about the jobs it created. A free label (no such batch) still groups jobs as before."""
    client, recorder = api
    b = client.post("/v1/batches", json={"jobs": [item(0)]}).json()
    before = rows(db_url)
    r = client.post("/v1/jobs", json=item(1, batch_id=b["id"]))
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "batch_id"]] and "POST /v1/batches" in r.text
    assert rows(db_url) == before and recorder.of(dispatch.SUBMIT) == []
    got = client.get(f"/v1/batches/{b['id']}").json()
    assert (got["total"], got["counts"]["queued"]) == (1, 1)
    assert client.post("/v1/jobs", json=item(2, batch_id="my-label")).status_code == 202


def test_too_many_items_and_a_private_callback_are_refused(api_factory, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = api_factory(max_batch_jobs=3)
    r = client.post("/v1/batches", json={"jobs": [item(i) for i in range(4)]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "jobs"] and "K4U_MAX_BATCH_JOBS" in r.text
    strict, _ = api_factory(allow_private_urls=False)
    r = strict.post("/v1/batches", json={"jobs": [item(0), item(1, callback_url="http://127.0.0.1:5678/hook")]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "jobs", 1, "callback_url"]
    r = strict.post("/v1/batches", json={"jobs": [item(0)], "callback_url": "http://169.254.169.254/latest"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "callback_url"]
    assert rows(db_url) == (0, 0, 0)


def test_a_resent_batch_creates_nothing_twice(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    body = {"jobs": [item(i, idempotency_key=f"row-{i}") for i in range(4)]}
    first = client.post("/v1/batches", json=body)
    assert first.status_code == 202
    before = rows(db_url)
    again = client.post("/v1/batches", json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["job_ids"] == first.json()["job_ids"]
    assert rows(db_url) == before
    changed = {"jobs": [item(i, idempotency_key=f"row-{i}") for i in range(4)]}
    changed["jobs"][2]["input"] = {"prompt": "something else"}
    r = client.post("/v1/batches", json=changed)
    assert r.status_code == 409 and "jobs.2" in r.json()["detail"]
    assert rows(db_url) == before
    # A key the API has seen before (here in POST /v1/jobs) maps to its job; the new items make a new batch.
    single = client.post("/v1/jobs", json=item(7, idempotency_key="solo")).json()
    mixed = client.post("/v1/batches", json={"jobs": [item(8), item(7, idempotency_key="solo"), item(0, idempotency_key="row-0")]})
    assert mixed.status_code == 202
    m = mixed.json()
    assert m["job_ids"][1:] == [single["id"], first.json()["job_ids"][0]] and m["total"] == 1 and m["id"] != first.json()["id"]
    r = client.post("/v1/batches", json={"jobs": [item(7, idempotency_key="solo")]})
    assert r.status_code == 409 and "not one batch" in r.json()["detail"]


def test_accepting_is_one_insert_per_table(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    inserts: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement.split("(")[0].split()[-1].strip('"'))

    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        r = client.post("/v1/batches", json={"jobs": [item(i, idempotency_key=f"one-insert-{i}") for i in range(200)]})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert r.status_code == 202
    assert sorted(inserts) == ["batch", "job", "job_event"]


def test_ten_thousand_items_fit_the_default_body_cap(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    jobs = [item(i, idempotency_key=f"big-{i}", metadata={"row": i}, callback_url=f"https://hooks.example.com/n8n/{i}") for i in range(10_000)]
    payload = json.dumps({"jobs": jobs}).encode()
    assert len(payload) > 1024 * 1024  # past K4U_MAX_BODY_BYTES (1 MiB) of /v1/jobs
    r = client.post("/v1/batches", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text[:300]
    assert r.json()["total"] == 10_000 and r.json()["counts"]["queued"] == 10_000 and recorder.sent == []
    assert rows(db_url) == (10_000, 10_000, 1)


def test_the_batch_body_cap_is_its_own(api_factory) -> None:  # type: ignore[no-untyped-def]
    client, _ = api_factory(max_batch_body_bytes=4000, max_body_bytes=100_000)
    r = client.post("/v1/batches", json={"jobs": [item(i) for i in range(100)]})
    assert r.status_code == 413 and "K4U_MAX_BATCH_BODY_BYTES" in r.json()["detail"] and r.json()["limit_bytes"] == 4000
    assert client.post("/v1/jobs", json=item(0, metadata={"pad": "x" * 5000})).status_code == 202


def test_unknown_batches_are_404(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    for bid in ("nope", "batch_0123abcd"):
        assert client.get(f"/v1/batches/{bid}").status_code == 404
        assert client.get(f"/v1/batches/{bid}/jobs").status_code == 404
        assert client.post(f"/v1/batches/{bid}/cancel").status_code == 404
        assert client.get(f"/v1/batches/{bid}/notifications").status_code == 404
    assert httpx.get(f"{client.base_url}/v1/batches/nope").status_code == 401


def test_cancel_stops_every_unfinished_job_and_answers_with_the_broker_down(api_factory, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = api_factory(dispatcher=BrokerDown())
    hook = "http://127.0.0.1:9/hook"
    b = client.post("/v1/batches", json={"jobs": [item(i, callback_url=hook) for i in range(3)] + [item(3)], "callback_url": hook}).json()
    assert client.post(f"/v1/jobs/{b['job_ids'][0]}/cancel").status_code == 200  # one finished already
    r = client.post(f"/v1/batches/{b['id']}/cancel")
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["counts"]["cancelled"] == 4 and out["status"] == "completed" and out["finished_at"]
    for job_id in b["job_ids"]:
        events = client.get(f"/v1/jobs/{job_id}/events").json()
        assert [(e["from"], e["to"]) for e in events] == [(None, "queued"), ("queued", "cancelled")]
    with session_scope(get_engine(db_url)) as s:
        deliveries = s.exec(select(Delivery)).all()
    assert sorted(d.event for d in deliveries) == ["batch.completed"] + ["job.cancelled"] * 3
    assert all(d.status == "pending" and d.next_at is not None for d in deliveries)  # the tick sends them
    (batch_note,) = [d for d in deliveries if d.batch_id]
    assert batch_note.id == f"msg_{b['id']}_completed" and batch_note.job_id is None
    assert json.loads(batch_note.payload)["data"]["counts"]["cancelled"] == 4
    again = client.post(f"/v1/batches/{b['id']}/cancel")
    assert again.status_code == 202 and again.json() == out
    assert len(client.get(f"/v1/batches/{b['id']}/notifications").json()) == 1


def test_the_tick_submits_the_jobs_and_sends_batch_completed_once(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    with webhook_receiver() as hook:
        hook.script = [500]  # the first attempt fails: retried like a job notification
        body = BatchCreate(
            jobs=[
                {"provider": "kling", "operation": "text2video", "input": {"prompt": "ok"}},
                {"provider": "kling", "operation": "text2video", "input": {"prompt": "[sim:fail] no"}},
            ],
            callback_url=hook.url,
            metadata={"run": 7},
        )
        batch, jobs, created = create_batch(d.rt, body)
        assert created and d.recorder.sent == []
        counts = d.tick()
        assert counts["queued"] == 2 and d.job(jobs[0].id).status == "running"
        for _ in range(40):
            d.run_for(1)
            if len(hook.received) >= 2:
                break
        assert [d.job(j.id).status for j in jobs] == ["succeeded", "failed"]
        d.run_for(5)
        notes = list(hook.received)
        assert len(notes) == 2, [n.body for n in notes]  # the failed attempt, then its retry: one notification
        first, second = notes
        assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{batch.id}_completed"
        note = json.loads(second.body)
        assert note["type"] == "batch.completed" and note["data"]["id"] == batch.id and note["data"]["metadata"] == {"run": 7}
        assert note["data"]["status"] == "completed" and note["data"]["finished_at"]
        assert {k: v for k, v in note["data"]["counts"].items() if v} == {"succeeded": 1, "failed": 1}
        h = second.headers
        assert signing.verify(
            d.rt.settings.webhook_secret.get_secret_value(),
            h["webhook-id"],
            int(h["webhook-timestamp"]),
            second.body,
            h["webhook-signature"],
            now=int(time.time()),
        )
        assert get_batch(d.rt, batch.id).status == "completed"
        ((delivery, attempts),) = batch_deliveries(d.rt, batch.id)
        assert delivery.status == "delivered" and [a.status_code for a in attempts] == [500, 200]
        assert replay_batch_notifications(d.rt, batch.id) == [delivery.id]
        d.drain()
        assert len(hook.received) == 3 and hook.received[2].body == first.body
    assert [t for t, _ in d.results].count(dispatch.NOTIFY) == 3
