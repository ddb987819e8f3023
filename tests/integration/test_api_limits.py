"""The API answers every request, bounded, on SQLite and PostgreSQL: body caps enforced while
reading (before auth), JSON nesting depth, size caps on input and metadata, no 5xx for bad
values (URLs, indexes, NUL bytes, surrogates, NaN), served assets that a browser will not
render, and cancel / replay that succeed while the broker is down (the sweep carries them)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, text, update
from sqlmodel import select

from api.limits import BodyLimits, too_deep
from api.main import create_app
from models.tables import Asset, Delivery, Job, JobEvent, utcnow
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers import dispatch
from workers.context import build_runtime
from workers.db import get_engine, session_scope
from workers.dispatch import RecordingDispatcher
from workers.services.sweep import tick

TOKEN = "tok-limits-7f3a9c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox", "duration": 5}}
MiB = 1024 * 1024


@pytest.fixture
def api(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[tuple[httpx.Client, RecordingDispatcher]]:
    recorder = RecordingDispatcher()
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN)
    with serve(create_app(settings, dispatcher=recorder)) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client, recorder


def counts(db_url: str) -> tuple[int, int]:
    with session_scope(get_engine(db_url)) as s:
        return s.exec(select(func.count()).select_from(Job)).one(), s.exec(select(func.count()).select_from(JobEvent)).one()


def locs(r: httpx.Response) -> list[str]:
    return [".".join(map(str, d["loc"])) for d in r.json()["detail"]]


def nested(depth: int) -> Any:
    v: Any = "leaf"
    for _ in range(depth):
        v = {"k": v}
    return v


# -- body caps ---------------------------------------------------------------------------


def test_declared_body_over_the_cap_is_413_before_auth(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    base = str(client.base_url)
    for path in ("/v1/jobs/job_0123abcd/cancel", "/v1/webhooks/kling/job_0123abcd/sometoken"):
        r = httpx.post(base + path, content=b"{" + b" " * (2 * MiB), headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 413, (path, r.text)
        assert "1048576" in r.json()["detail"] and r.json()["limit_bytes"] == MiB
    assert counts(db_url) == (0, 0) and recorder.sent == []


def test_streamed_body_is_cut_off_at_the_cap(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    sent = 0

    def chunks() -> Iterator[bytes]:  # 50 MiB, chunked (no Content-Length)
        nonlocal sent
        for _ in range(800):
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    # POST /v1/jobs has room for one inline file (K4U_MAX_JOB_BODY_BYTES, 32 MiB); its other routes 1 MiB.
    r = client.post("/v1/jobs", content=chunks())
    assert r.status_code == 413 and r.json()["limit_bytes"] == 32 * MiB and "K4U_MAX_JOB_BODY_BYTES" in r.json()["detail"]
    r = client.post("/v1/jobs/job_0123abcd/retry", content=chunks())
    assert r.status_code == 413 and r.json()["limit_bytes"] == MiB and "K4U_MAX_BODY_BYTES" in r.json()["detail"]
    assert counts(db_url) == (0, 0)


def test_middleware_stops_reading_once_past_the_cap() -> None:
    """No buffering beyond the cap: the middleware pulls only the chunks it needs to decide."""
    pulled, sent, reached = 0, [], []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}  # an endless stream

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, rcv: Any, snd: Any) -> None:
        reached.append(scope)

    mw = BodyLimits(app, default_cap=10_000, caps={"/v1/batches": 50_000})
    scope = {"type": "http", "method": "POST", "path": "/v1/jobs", "headers": []}
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 413 and pulled == 11 and reached == []
    pulled, sent[:] = 0, []
    asyncio.run(mw(scope | {"path": "/v1/batches/x"}, receive, send))
    assert sent[0]["status"] == 413 and pulled == 51, "a path prefix has its own cap"


def test_body_cap_is_configurable(db_url: str, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(db_url, sim.url, tmp_path, max_body_bytes=2000, max_job_body_bytes=2000)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        big = GOOD | {"metadata": {"note": "n" * 3000}}
        r = httpx.post(f"{url}/v1/jobs", json=big)
        assert r.status_code == 413 and r.json()["limit_bytes"] == 2000
        assert httpx.post(f"{url}/v1/jobs", json=GOOD).status_code == 202


# -- JSON depth and size caps -------------------------------------------------------------


def test_deep_json_is_422_naming_the_field(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    cases = [
        (GOOD | {"metadata": nested(900)}, "body.metadata"),
        (GOOD | {"input": {"prompt": "x", "extra": nested(200)}}, "body.input"),
    ]
    for body, field in cases:
        r = client.post("/v1/jobs", content=json.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code == 422 and locs(r) == [field], r.text
    r = client.post("/v1/jobs", content=b"[" * 5000 + b"]" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 422 and locs(r) == ["body.body"]
    r = client.post("/v1/jobs", content=b'{"metadata":' + b"[" * 100000)  # unbalanced, no content-type
    assert r.status_code == 422
    hook = httpx.post(f"{client.base_url}/v1/webhooks/kling/job_0123abcd/tok", content=json.dumps(nested(900)))
    assert hook.status_code == 422
    assert counts(db_url) == (0, 0) and recorder.sent == []
    # Brackets inside strings do not count, and 60 levels are fine.
    ok = client.post("/v1/jobs", json=GOOD | {"metadata": {"brackets": "[{" * 500, "deep": nested(60)}})
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32-le"])
def test_the_depth_cap_reads_what_the_json_parser_reads(api, db_url: str, encoding: str) -> None:  # type: ignore[no-untyped-def]
    """json.loads takes a UTF-8 BOM, UTF-16 and UTF-32 too: the scanner must see the same brackets."""
    client, recorder = api
    for doc, field in ((json.dumps(GOOD | {"metadata": nested(300)}), "body.metadata"), ("[" * 5000 + "]" * 5000, "body.body")):
        r = client.post("/v1/jobs", content=doc.encode(encoding), headers={"content-type": "application/json"})
        assert r.status_code == 422 and locs(r) == [field], (encoding, r.text)
    hook = httpx.post(f"{client.base_url}/v1/webhooks/kling/job_0123abcd/tok", content=json.dumps(nested(900)).encode(encoding))
    assert hook.status_code == 422, hook.text
    assert counts(db_url) == (0, 0) and recorder.sent == []
    ok = client.post("/v1/jobs", content=json.dumps(GOOD | {"metadata": nested(60)}).encode(encoding), headers={"content-type": "application/json"})
    assert ok.status_code == 202, ok.text


def test_depth_scanner() -> None:
    assert too_deep(json.dumps({"a": 1, "b": nested(63)}).encode(), 64) is None  # 64 levels with the outer object
    assert too_deep(json.dumps({"a": "z", "b": nested(64)}).encode(), 64) == "b"
    assert too_deep(json.dumps({"a": {"x": 1}, "input": [nested(70)]}).encode(), 64) == "input"
    assert too_deep(json.dumps(["name", nested(70)]).encode(), 64) == "body"
    assert too_deep(json.dumps({"s": '\\"[[[[' * 40}).encode(), 64) is None


def test_input_and_metadata_size_caps(db_url: str, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(db_url, sim.url, tmp_path, max_input_bytes=1000, max_metadata_bytes=200)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        r = httpx.post(f"{url}/v1/jobs", json=GOOD | {"input": {"prompt": "p" * 1200}})
        assert r.status_code == 422 and locs(r) == ["body.input"] and "limit is 1000" in r.text
        r = httpx.post(f"{url}/v1/jobs", json=GOOD | {"metadata": {"note": "m" * 300}})
        assert r.status_code == 422 and locs(r) == ["body.metadata"] and "limit is 200" in r.text
        assert counts(db_url) == (0, 0)
        assert httpx.post(f"{url}/v1/jobs", json=GOOD | {"metadata": {"note": "m" * 150}}).status_code == 202


def test_default_size_caps(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    r = client.post("/v1/jobs", json=GOOD | {"metadata": {"note": "m" * (17 * 1024)}})
    assert r.status_code == 422 and locs(r) == ["body.metadata"]
    r = client.post("/v1/jobs", json=GOOD | {"input": {"prompt": "p" * (300 * 1024)}})
    assert r.status_code == 422 and locs(r) == ["body.input"]


# -- no 5xx for bad values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/hook",
        "http://example.com:99999/hook",
        "http://example.com:0/hook",
        "http://example.com:x/hook",
        "http:///hook",
        "https://exa mple.com/",
        "http://example.com/\x00",
        "http://" + "a" * 300 + "/x",
        "//example.com/x",
    ],
)
def test_bad_callback_url_is_422(api, db_url: str, url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    r = client.post("/v1/jobs", json=GOOD | {"callback_url": url})
    assert r.status_code == 422 and locs(r) == ["body.callback_url"], r.text
    assert counts(db_url) == (0, 0) and recorder.sent == []


def test_asset_index_is_bounded(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    job = client.post("/v1/jobs", json=GOOD).json()
    for index in ("1000000000000000000000000000000", "-1", "10000"):
        r = client.get(f"/v1/jobs/{job['id']}/assets/{index}")
        assert r.status_code == 422 and locs(r) == ["path.index"], r.text
    assert client.get(f"/v1/jobs/{job['id']}/assets/9999").status_code == 404


def test_nul_and_control_characters_never_reach_the_database(api, db_url: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder = api
    for path in ("/v1/jobs/job_%00", "/v1/jobs/job_abc%00/events", "/v1/jobs/%00/notifications", "/v1/jobs/job_%00/assets/0"):
        assert client.get(path).status_code == 404, path
    for path in ("/v1/jobs/job_%00/cancel", "/v1/jobs/job_%00/notifications/replay", "/v1/jobs/job_%00/retry", "/v1/webhooks/kling/job_%00/tok"):
        assert client.post(path, json={}).status_code == 404, path
    assert client.post("/v1/webhooks/kl%00ing/job_0a/tok", json={}).status_code == 400  # unknown provider
    for name in ("cursor", "provider", "batch_id"):
        r = client.get("/v1/jobs", params={name: "job_1\x00"})
        assert r.status_code == 422 and locs(r) == [f"query.{name}"], r.text
    assert client.get("/v1/jobs", params={"cursor": "not-a-job-id"}).status_code == 422
    for field, value in [
        ("provider", "kl\x00ing"),
        ("operation", "text\x002video"),
        ("batch_id", "b\x00"),
        ("idempotency_key", "k\x00"),
        ("batch_id", "line\nbreak"),
    ]:
        r = client.post("/v1/jobs", json=GOOD | {field: value})
        assert r.status_code == 422 and locs(r) == [f"body.{field}"], (field, r.text)
    bad_docs = [
        ("metadata", '{"note": "a\\u0000b"}'),
        ("metadata", '{"a\\u0000": 1}'),
        ("metadata", '{"x": NaN}'),
        ("metadata", '{"x": 1e400}'),
        ("metadata", '{"x": "\\ud800"}'),
        ("input", '{"prompt": "fox\\u0000"}'),
        ("input", '{"prompt": "\\udfff fox"}'),
    ]
    for field, doc in bad_docs:
        body = json.dumps({k: v for k, v in GOOD.items() if k != field})[:-1] + f', "{field}": {doc}}}'
        r = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and locs(r) == [f"body.{field}"], (doc, r.text)
    assert counts(db_url) == (0, 0) and recorder.sent == []


def test_header_with_control_characters_is_422(db_url: str, sim: Sim, tmp_path: Path) -> None:
    """h11 refuses such headers on the wire, so call the app in-process."""
    app = create_app(make_settings(db_url, sim.url, tmp_path), dispatcher=RecordingDispatcher())

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            return await c.post("/v1/jobs", json=GOOD, headers=[(b"Idempotency-Key", b"row\x0042")])

    r = asyncio.run(call())
    assert r.status_code == 422 and locs(r) == ["header.Idempotency-Key"], r.text
    assert counts(db_url) == (0, 0)


def test_database_errors_hide_bound_values(db_url: str) -> None:
    engine = get_engine(db_url)
    assert engine.hide_parameters
    with pytest.raises(Exception) as info, engine.connect() as conn:
        conn.execute(text("SELECT CAST(:v AS INTEGER) + nosuchcolumn"), {"v": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(info.value)


def test_unexpected_errors_answer_json_without_their_text(db_url: str, sim: Sim, tmp_path: Path) -> None:
    app = create_app(make_settings(db_url, sim.url, tmp_path), dispatcher=RecordingDispatcher())

    def boom() -> None:
        raise RuntimeError("SELECT * FROM job WHERE token = 'tok-secret'")

    app.add_api_route("/boom", boom)
    with serve(app) as url:
        r = httpx.get(f"{url}/boom")
    assert r.status_code == 500 and r.json() == {"detail": "internal error", "code": "internal"}


# -- served assets -------------------------------------------------------------------------


def test_local_asset_is_an_attachment_never_sniffed(api, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    job = client.post("/v1/jobs", json=GOOD).json()
    data = b"<html><script>alert(1)</script></html>"
    key = f"{job['id']}/0.mp4"
    (tmp_path / "objects" / job["id"]).mkdir(parents=True)
    (tmp_path / "objects" / key).write_bytes(data)
    with session_scope(get_engine(db_url)) as s:
        s.add(
            Asset(
                job_id=job["id"],
                index=0,
                kind="video",
                source_url="https://cdn.example/x.mp4",
                storage_key=key,
                content_type="video/mp4",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                stored_at=utcnow(),
            )
        )
    r = client.get(f"/v1/jobs/{job['id']}/assets/0")
    assert r.status_code == 200 and r.content == data
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"] == f'attachment; filename="{job["id"]}-0.mp4"'
    (tmp_path / "objects" / key).unlink()  # gone from the store behind our back: an answer, not a 500
    r = client.get(f"/v1/jobs/{job['id']}/assets/0")
    assert r.status_code == 410 and "gone" in r.json()["detail"]


# -- broker down ---------------------------------------------------------------------------


class DownBroker:
    def send(self, task: str, *args: Any) -> None:
        raise ConnectionError("broker unreachable")


def test_cancel_and_replay_answer_while_the_broker_is_down(db_url: str, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(db_url, sim.url, tmp_path, lease_s=30.0)
    with serve(create_app(settings, dispatcher=DownBroker())) as url, httpx.Client(base_url=url, timeout=10) as client:
        job = client.post("/v1/jobs", json=GOOD | {"callback_url": "http://127.0.0.1:9/hook"})
        assert job.status_code == 202
        job_id = job.json()["id"]
        r = client.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        with session_scope(get_engine(db_url)) as s:
            delivery = s.exec(select(Delivery).where(Delivery.job_id == job_id)).one()
            assert delivery.status == "pending" and delivery.next_at is not None
            s.execute(update(Delivery).where(Delivery.id == delivery.id).values(status="failed", next_at=None))  # type: ignore[arg-type]
        r = client.post(f"/v1/jobs/{job_id}/notifications/replay")
        assert r.status_code == 202 and r.json() == {"replayed": [delivery.id]}

    # The beat's sweep, with a working broker, sends what the API could not.
    recorder = RecordingDispatcher()
    rt = build_runtime(settings, recorder)
    rt.clock = lambda: utcnow() + timedelta(seconds=settings.lease_s + 5)
    try:
        tick(rt)
    finally:
        rt.close()
    assert [a[0] for a in recorder.of(dispatch.NOTIFY)] == [delivery.id]
