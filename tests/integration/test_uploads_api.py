"""POST/GET/DELETE /v1/uploads and GET /v1/files/<token> over loopback, on SQLite and PostgreSQL:
raw and multipart bodies streamed into the store, the size cap (413, nothing left), dedupe by
sha256, expiry keeping what waiting jobs need, signed links good, bad and expired."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from api.main import create_app
from models.tables import Upload
from tests.conftest import Driver, FakeClock, Sim, make_settings
from tests.servers import serve
from workers import filelinks
from workers.context import build_runtime
from workers.db import session_scope
from workers.dispatch import RecordingDispatcher
from workers.services.maintenance import clean_store
from workers.storage.local import LocalStore

TOKEN = "tok-uploads-5d1e8b"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)


@pytest.fixture
def stack(db_url: str, sim: Sim, clock: FakeClock, tmp_path: Path) -> Iterator[tuple[httpx.Client, Driver]]:
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN, max_upload_bytes=300_000, public_url="http://127.0.0.1:9")
    recorder = RecordingDispatcher()
    rt = build_runtime(settings, recorder, store=LocalStore(str(tmp_path / "objects")))
    rt.clock = clock.now
    with serve(create_app(settings, runtime=rt)) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client, Driver(rt, recorder, clock)
    rt.close()


def objects(tmp_path: Path) -> list[str]:
    root = tmp_path / "objects"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload_rows(d: Driver) -> int:
    with session_scope(d.rt.engine) as s:
        return s.exec(select(func.count()).select_from(Upload)).one()


def test_raw_and_multipart_uploads_share_one_object(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, d = stack
    raw = client.post("/v1/uploads", params={"filename": "../a/frame.png"}, content=PNG, headers={"content-type": "image/png"})
    assert raw.status_code == 201, raw.text
    a = raw.json()
    assert a["id"].startswith("upl_") and a["ref"] == f"k4u://uploads/{a['id']}"
    assert (a["filename"], a["content_type"], a["size"], a["sha256"]) == ("frame.png", "image/png", len(PNG), hashlib.sha256(PNG).hexdigest())
    assert a["expires_at"] > a["created_at"]
    form = client.post("/v1/uploads", files={"file": ("again.png", PNG, "image/png")})
    assert form.status_code == 201, form.text
    b = form.json()
    assert b["id"] != a["id"] and b["sha256"] == a["sha256"] and b["filename"] == "again.png"
    assert objects(tmp_path) == [f"uploads/{a['id']}"]  # the same bytes: one stored object
    assert client.get(f"/v1/uploads/{b['id']}").json() == b
    # DELETE the first: its object stays for the second; then the second: gone
    assert client.delete(f"/v1/uploads/{a['id']}").status_code == 204
    assert client.get(f"/v1/uploads/{a['id']}").status_code == 404
    assert objects(tmp_path) == [f"uploads/{a['id']}"]
    assert client.delete(f"/v1/uploads/{b['id']}").status_code == 204
    assert objects(tmp_path) == [] and upload_rows(d) == 0
    assert client.delete(f"/v1/uploads/{b['id']}").status_code == 404
    assert client.get("/v1/uploads/not-an-id").status_code == 422
    assert httpx.post(f"{client.base_url}/v1/uploads", content=b"x").status_code == 401


def test_multipart_without_a_file_field_is_422(stack) -> None:  # type: ignore[no-untyped-def]
    client, d = stack
    r = client.post("/v1/uploads", files={"other": ("a.png", b"abc", "image/png")})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "file"]
    assert upload_rows(d) == 0


@pytest.mark.parametrize("how", ["declared", "chunked", "multipart"])
def test_past_the_cap_is_413_with_nothing_left(stack, tmp_path: Path, how: str) -> None:  # type: ignore[no-untyped-def]
    client, d = stack
    big = os.urandom(400_000)  # K4U_MAX_UPLOAD_BYTES is 300,000 here
    if how == "declared":
        r = client.post("/v1/uploads", content=big, headers={"content-type": "image/png"})
    elif how == "chunked":
        r = client.post("/v1/uploads", content=iter([big[i : i + 50_000] for i in range(0, len(big), 50_000)]), headers={"content-type": "image/png"})
    else:
        r = client.post("/v1/uploads", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413, r.text
    assert "K4U_MAX_UPLOAD_BYTES" in r.json()["detail"] and r.json()["limit_bytes"] == 300_000
    assert objects(tmp_path) == [] and upload_rows(d) == 0


def test_files_link_good_bad_and_expired(stack) -> None:  # type: ignore[no-untyped-def]
    client, d = stack
    up = client.post("/v1/uploads", content=PNG, headers={"content-type": "image/png"}).json()
    key = filelinks.link_key(d.rt.settings)
    assert key is not None
    now = int(d.rt.clock().timestamp())
    url = filelinks.file_url(d.rt.settings, up["id"], d.rt.clock())
    assert url is not None and url.startswith("http://127.0.0.1:9/v1/files/") and TOKEN not in url
    token = url.rsplit("/", 1)[1]
    got = httpx.get(f"{client.base_url}/v1/files/{token}")  # no bearer: the link is the key
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png" and got.headers["x-content-type-options"] == "nosniff"
    head = httpx.head(f"{client.base_url}/v1/files/{token}")  # some fetchers ask first
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PNG)) and head.content == b""
    tampered = filelinks.sign(key, up["id"], now + 10**6)[:-2] + "AA"
    other_key = filelinks.sign(b"k" * 32, up["id"], now + 3600)
    for bad in (tampered, other_key, "garbage", f"{up['id']}.{now + 60}"):
        assert httpx.get(f"{client.base_url}/v1/files/{bad}").status_code == 404, bad
    expired = filelinks.sign(key, up["id"], now - 1)
    assert httpx.get(f"{client.base_url}/v1/files/{expired}").status_code == 410
    d.clock.advance(d.rt.settings.input_url_ttl_s + 1)  # the link handed out above is past its time now
    assert httpx.get(f"{client.base_url}/v1/files/{token}").status_code == 410
    client.delete(f"/v1/uploads/{up['id']}")
    fresh = filelinks.sign(key, up["id"], int(d.rt.clock().timestamp()) + 60)
    assert httpx.get(f"{client.base_url}/v1/files/{fresh}").status_code == 404


def test_expired_uploads_go_unless_a_waiting_job_needs_them(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, d = stack
    kept = client.post("/v1/uploads", content=PNG, headers={"content-type": "image/png"}).json()
    twin = client.post("/v1/uploads", content=PNG, headers={"content-type": "image/png"}).json()
    lone = client.post("/v1/uploads", content=b"other bytes", headers={"content-type": "image/png"}).json()
    job = client.post("/v1/jobs", json={"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": kept["ref"]}})
    assert job.status_code == 202, job.text
    d.recorder.sent.clear()  # the job stays queued: nothing runs its submit
    d.clock.advance(d.rt.settings.upload_ttl_s + 1)
    assert clean_store(d.rt) == 2  # the twin and the lone one; the queued job's stays
    assert client.get(f"/v1/uploads/{kept['id']}").status_code == 200
    assert client.get(f"/v1/uploads/{twin['id']}").status_code == 404 and client.get(f"/v1/uploads/{lone['id']}").status_code == 404
    assert objects(tmp_path) == [f"uploads/{kept['id']}"]  # shared with the twin: kept for the job's upload
    # once the job no longer waits (cancelled here), its upload goes too
    assert client.post(f"/v1/jobs/{job.json()['id']}/cancel").status_code == 200
    d.clock.advance(timedelta(seconds=1).total_seconds())
    assert clean_store(d.rt) == 1 and objects(tmp_path) == [] and upload_rows(d) == 0


def test_post_job_with_a_1mb_inline_image_stores_it_as_an_upload(stack) -> None:  # type: ignore[no-untyped-def]
    client, d = stack
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(1_000_000)
    image = "data:image/png;base64," + base64.b64encode(data).decode()  # 1.3 MB of JSON: over 1 MiB, within K4U_MAX_JOB_BODY_BYTES
    body = {"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": image}}
    r = client.post("/v1/jobs", json=body)  # K4U_MAX_UPLOAD_BYTES is 300,000 here: too big to store
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "input", "image"] and "K4U_MAX_UPLOAD_BYTES" in r.text
    d.rt.settings.max_upload_bytes = 2_000_000
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 202, r.text[:300]
    job = r.json()
    (inp,) = job["inputs"]
    assert job["input"]["image"] == inp["ref"] == f"k4u://uploads/{inp['upload_id']}" and inp["field"] == "image"
    assert inp["sha256"] == hashlib.sha256(data).hexdigest()
    assert client.get(f"/v1/uploads/{inp['upload_id']}").json()["content_type"] == "image/png"
    bad = client.post("/v1/jobs", json={"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": "k4u://uploads/upl_1"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "input", "image"]
