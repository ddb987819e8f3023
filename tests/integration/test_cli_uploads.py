"""`k4u upload FILE` against a running API and on the local database, and `@path` values in
`k4u batch` files: each distinct file uploaded once, replaced by its reference, and a second run
of the same file sends the same requests (nothing created twice)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from api.main import create_app
from models.tables import Job, Upload
from tests.conftest import Sim, make_settings
from tests.integration.test_cli import k4u
from tests.servers import serve
from workers.db import get_engine, session_scope
from workers.dispatch import RecordingDispatcher

TOKEN = "tok-cli-uploads-1"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(50_000)


@pytest.fixture
def api(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[dict[str, str]]:
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        yield {"K4U_API_URL": url, "K4U_API_TOKEN": TOKEN, "K4U_DATABASE_URL": f"sqlite:///{tmp_path}/unused.db"}


def uploads(db_url: str) -> list[Upload]:
    with session_scope(get_engine(db_url)) as s:
        return list(s.exec(select(Upload)).all())


def test_upload_against_the_api_prints_the_reference(api: dict[str, str], db_url: str, tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    r = k4u("upload", "cat.png", env=api, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = uploads(db_url)
    assert r.stdout.strip() == f"k4u://uploads/{row.id}"
    assert (row.filename, row.content_type, row.size, row.sha256) == ("cat.png", "image/png", len(PNG), hashlib.sha256(PNG).hexdigest())
    r = k4u("upload", "missing.png", env=api, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_upload_on_the_local_database(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    env = {"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/k4u.db", "K4U_STORAGE_URL": f"file://{tmp_path}/objects"}
    r = k4u("upload", "cat.png", "--json", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["ref"] == f"k4u://uploads/{answer['id']}" and answer["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert (tmp_path / "objects" / "uploads" / answer["id"]).read_bytes() == PNG


def test_batch_file_values_are_uploaded_once_each(api: dict[str, str], db_url: str, tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.png").write_bytes(PNG)
    (tmp_path / "frames" / "b.png").write_bytes(PNG[::-1])
    lines = [
        {"provider": "kling", "operation": "image2video", "input": {"prompt": "one", "image": "@frames/a.png"}},
        {"provider": "kling", "operation": "image2video", "input": {"prompt": "two", "image": "@frames/a.png", "image_tail": "@frames/b.png"}},
        {"provider": "kling", "operation": "text2video", "input": {"prompt": "@someone says hi"}},
    ]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("\n".join(json.dumps(ln) for ln in lines) + "\n")
    r = k4u("batch", str(batch), "--no-wait", env=api, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "uploaded 2 file(s)" in r.stderr
    rows = {u.sha256: u for u in uploads(db_url)}
    a, b = rows[hashlib.sha256(PNG).hexdigest()], rows[hashlib.sha256(PNG[::-1]).hexdigest()]
    with session_scope(get_engine(db_url)) as s:
        jobs = sorted(s.exec(select(Job)).all(), key=lambda j: j.id)
    assert [j.input.get("image") for j in jobs] == [f"k4u://uploads/{a.id}", f"k4u://uploads/{a.id}", None]
    assert jobs[1].input["image_tail"] == f"k4u://uploads/{b.id}" and jobs[2].input["prompt"] == "@someone says hi"
    assert jobs[1].inputs == [
        {"field": "image", "ref": f"k4u://uploads/{a.id}", "upload_id": a.id, "sha256": a.sha256},
        {"field": "image_tail", "ref": f"k4u://uploads/{b.id}", "upload_id": b.id, "sha256": b.sha256},
    ]
    again = k4u("batch", str(batch), "--no-wait", env=api, cwd=tmp_path)  # resumed: the uploads are reused, no job twice
    assert again.returncode == 0, again.stderr
    assert "uploaded" not in again.stderr and len(uploads(db_url)) == 2
    with session_scope(get_engine(db_url)) as s:
        assert len(s.exec(select(Job)).all()) == 3
    (tmp_path / "bad.jsonl").write_text(json.dumps(lines[0] | {"input": {"image": "@frames/none.png"}}) + "\n")
    r = k4u("batch", str(tmp_path / "bad.jsonl"), "--no-wait", env=api, cwd=tmp_path)
    assert r.returncode == 1 and "line 1: input.image: no such file: frames/none.png" in r.stderr, r.stderr
