"""`k4u submit/status/wait/cancel/retry` as a person runs them: against a running API on loopback
(--api/--token, or K4U_API_URL/K4U_API_TOKEN) and on the local database; errors are one line
naming the problem with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.main import create_app
from models.schemas import JobCreate
from tests.conftest import Driver, Sim, make_settings
from tests.integration.test_cli import k4u
from tests.servers import serve
from workers.dispatch import RecordingDispatcher
from workers.services.create import create_job

TOKEN = "tok-cli-jobs-1"
GOOD = '{"prompt": "a red fox", "duration": "5"}'


def no_traceback(r: object) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr  # type: ignore[attr-defined]


@pytest.fixture
def api(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A running API on loopback; the env that points the CLI at it."""
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        yield {"K4U_API_URL": url, "K4U_API_TOKEN": TOKEN, "K4U_DATABASE_URL": f"sqlite:///{tmp_path}/unused.db"}


def finished_job(engine_factory, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """A Kling job run to success by the engine (simulator, fake clock), its file in tmp_path/objects."""
    driver: Driver = engine_factory()
    job, _ = create_job(driver.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "fox"}))
    driver.drain()
    driver.run_for(30)
    assert driver.job(job.id).status == "succeeded"
    return job.id


def test_submit_status_wait_cancel_against_the_api(api: dict[str, str], tmp_path: Path) -> None:
    r = k4u("submit", "kling", "text2video", "--input", GOOD, "--idempotency-key", "row-1", "--json", env=api, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["status"] == "queued" and job["input"]["prompt"] == "a red fox"
    again = k4u("submit", "kling", "text2video", "--input", GOOD, "--idempotency-key", "row-1", "--json", env=api, cwd=tmp_path)
    assert json.loads(again.stdout)["id"] == job["id"]  # same key, same request: the same job
    r = k4u("submit", "kling", "text2video", "--input", '{"prompt": "other"}', "--idempotency-key", "row-1", env=api, cwd=tmp_path)
    assert r.returncode == 1 and "409" in r.stderr, r.stderr
    r = k4u("status", job["id"], env=api, cwd=tmp_path)
    assert r.returncode == 0 and f"job {job['id']} is queued: kling/text2video" in r.stdout
    r = k4u("wait", job["id"], "--timeout", "1", env=api, cwd=tmp_path)
    assert r.returncode == 3 and "still queued after 1 s" in r.stderr
    r = k4u("cancel", job["id"], env=api, cwd=tmp_path)
    assert r.returncode == 0 and "is cancelled" in r.stdout
    for cmd in (("cancel", job["id"]), ("retry", job["id"])):
        r = k4u(*cmd, env=api, cwd=tmp_path)
        assert r.returncode == 1 and "conflict (HTTP 409)" in r.stderr, r.stderr
        no_traceback(r)
    r = k4u("wait", job["id"], env=api, cwd=tmp_path)
    assert r.returncode == 1 and "is cancelled" in r.stdout  # finished, but not succeeded


def test_errors_name_the_problem_against_the_api(api: dict[str, str], tmp_path: Path) -> None:
    cases = [
        (("submit", "kling", "text2video", "--input", '{"prompt": "x", "duration": "7"}'), "input.duration"),
        (("submit", "kling", "lipsync", "--input", GOOD), "operation"),
        (("submit", "nope", "x", "--input", GOOD), "provider"),
        (("submit", "kling", "text2video", "--input", GOOD, "--callback-url", "ftp://x"), "callback_url"),
        (("status", "job_0123456789abcdef"), "unknown job"),
        (("wait", "job_0123456789abcdef"), "unknown job"),
        (("cancel", "job_0123456789abcdef"), "unknown job"),
    ]
    for args, needle in cases:
        r = k4u(*args, env=api, cwd=tmp_path)
        assert r.returncode == 1 and needle in r.stderr, (args, r.stderr)
        no_traceback(r)
    r = k4u("status", "job_0123456789abcdef", env=api | {"K4U_API_TOKEN": "wrong-token-x"}, cwd=tmp_path)
    assert r.returncode == 1 and "HTTP 401" in r.stderr and "wrong-token-x" not in r.stderr
    r = k4u("submit", "kling", "text2video", "--input", "{nope", env=api, cwd=tmp_path)
    assert r.returncode == 2 and "--input is not valid JSON" in r.stderr
    for cmd in (("submit", "kling", "text2video", "--input", GOOD), ("status", "job_x"), ("wait", "job_x"), ("cancel", "job_x")):
        r = k4u(*cmd, "--api", "http://127.0.0.1:9", cwd=tmp_path)
        assert r.returncode == 1 and "cannot reach http://127.0.0.1:9" in r.stderr, r.stderr
        no_traceback(r)


def test_a_finished_job_shows_its_files_and_wait_exits_0(api: dict[str, str], db_url: str, engine_factory, tmp_path: Path, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = finished_job(engine_factory, tmp_path)
    r = k4u("wait", job_id, "--timeout", "5", env=api, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sha = sim.sha256()
    assert "is succeeded" in r.stdout and f"/v1/jobs/{job_id}/assets/0" in r.stdout
    assert any(h in r.stdout for h in sha.values()), (r.stdout, sha)
    # the same job straight from the database: the stored file's path instead of its URL
    if db_url.startswith("sqlite"):
        local = {"K4U_DATABASE_URL": db_url, "K4U_STORAGE_URL": f"file://{tmp_path}/objects"}
        r = k4u("status", job_id, env=local, cwd=tmp_path)
        assert r.returncode == 0 and str(tmp_path / "objects") in r.stdout, r.stdout


def test_commands_on_the_local_database(tmp_path: Path) -> None:
    env = {"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/k4u.db", "K4U_STORAGE_URL": f"file://{tmp_path}/objects"}
    r = k4u("submit", "kling", "text2video", "--input", GOOD, "--idempotency-key", "k-1", "--json", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    again = k4u("submit", "kling", "text2video", "--input", GOOD, "--idempotency-key", "k-1", "--json", env=env, cwd=tmp_path)
    assert json.loads(again.stdout)["id"] == job["id"]
    r = k4u("submit", "kling", "text2video", "--input", '{"prompt": "x", "duration": "7"}', env=env, cwd=tmp_path)
    assert r.returncode == 1 and "input.duration" in r.stderr
    r = k4u("status", job["id"], env=env, cwd=tmp_path)
    assert r.returncode == 0 and "is queued" in r.stdout
    r = k4u("wait", job["id"], "--timeout", "0.5", env=env, cwd=tmp_path)
    assert r.returncode == 3
    assert k4u("cancel", job["id"], env=env, cwd=tmp_path).returncode == 0
    r = k4u("cancel", job["id"], env=env, cwd=tmp_path)
    assert r.returncode == 1 and "already cancelled" in r.stderr
    r = k4u("status", "job_missing", env=env, cwd=tmp_path)
    assert r.returncode == 1 and "unknown job: no job job_missing" in r.stderr
    no_traceback(r)


def test_help_describes_the_commands() -> None:
    out = k4u("--help").stdout
    for cmd in ("submit", "status", "wait", "retry", "cancel", "batch"):
        assert cmd in out
    text = " ".join(k4u("wait", "--help").stdout.split())
    assert "--timeout" in text and "3 if it is still running" in text
    text = " ".join(k4u("submit", "--help").stdout.split())
    for opt in ("--input", "--callback-url", "--idempotency-key", "--wait", "--api", "--token"):
        assert opt in text


LINE = {"provider": "kling", "operation": "text2video", "input": {"prompt": "fox"}}
ORPHAN = {"provider": "midjourney", "operation": "action", "input": {"job_id": "job_0123456789abcdef", "button": "U1"}}


def write_jsonl(path: Path, *bodies: dict) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    return path


@pytest.mark.parametrize("mode", ["api", "local"])
def test_batch_creates_each_line_once_and_names_bad_lines(mode: str, api: dict[str, str], db_url: str, tmp_path: Path) -> None:
    if mode == "local" and not db_url.startswith("sqlite"):
        pytest.skip("the local mode is covered on SQLite here, on PostgreSQL by tests/e2e/test_cli_batch.py")
    env = api if mode == "api" else {"K4U_DATABASE_URL": db_url, "K4U_STORAGE_URL": f"file://{tmp_path}/objects"}
    # a bad line the CLI sees itself, and one only the server can judge (a parent job that does not exist)
    bad = write_jsonl(tmp_path / "bad.jsonl", LINE, LINE | {"input": {"prompt": "x", "duration": "7"}})
    r = k4u("batch", str(bad), env=env, cwd=tmp_path)
    assert r.returncode == 1 and "line 2: input.duration" in r.stderr and "nothing was created" in r.stderr, r.stderr
    bad = write_jsonl(tmp_path / "bad2.jsonl", LINE, ORPHAN)
    r = k4u("batch", str(bad), env=env, cwd=tmp_path)
    assert r.returncode == 1 and "line 2: input.job_id" in r.stderr and "job_0123456789abcdef" in r.stderr, r.stderr
    no_traceback(r)
    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text(
        'provider,operation,input.prompt,input.duration,metadata.row\nkling,text2video,"fox, a",5,1\nkling,text2video,fox b,,2\n\nkling,text2video,fox c,7,4\n'
    )
    r = k4u("batch", str(csv_file), env=env, cwd=tmp_path)
    assert r.returncode == 1 and "line 5: input.duration" in r.stderr
    assert rows(db_url) == 0  # nothing was created by any of them

    csv_file.write_text(csv_file.read_text().replace("fox c,7", "fox c,10"))
    out = tmp_path / "out.csv"
    first = k4u("batch", str(csv_file), "--no-wait", "--results", str(out), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    results = out.read_text()
    assert results.splitlines()[0] == "line,job_id,status,files,sha256,downloaded,error_code,error_message"
    again = k4u("batch", str(csv_file), "--no-wait", "--results", str(out), env=env, cwd=tmp_path)
    assert again.returncode == 0 and out.read_text() == results  # the same jobs, nothing created twice
    assert rows(db_url) == 3
    lines = [line.split(",")[:3] for line in results.splitlines()[1:]]
    assert [(n, s) for n, _, s in lines] == [("2", "queued"), ("3", "queued"), ("5", "queued")]
    job = k4u("status", lines[0][1], "--json", env=env, cwd=tmp_path)
    assert json.loads(job.stdout)["input"]["prompt"] == "fox, a" and json.loads(job.stdout)["metadata"] == {"row": "1"}


def rows(db_url: str) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    from models.tables import Job
    from workers.db import get_engine, session_scope

    with session_scope(get_engine(db_url)) as s:
        return s.exec(select(func.count()).select_from(Job)).one()
