"""Open mode and the browser, over real HTTP on SQLite and PostgreSQL: without K4U_API_TOKENS the
app itself serves only loopback clients under a loopback Host name (a web page the operator
visits can neither create paid jobs cross-site nor read them through DNS rebinding), every body
that changes state is JSON, and the links handed out never come from an untrusted Host header."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from api.main import create_app
from api.openmode import trusted_host
from models.tables import Job
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers.db import get_engine, session_scope
from workers.dispatch import RecordingDispatcher

GOOD = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox", "duration": 5}}
TOKEN = "tok-open-mode-5c1e"


def jobs(db_url: str) -> int:
    with session_scope(get_engine(db_url)) as s:
        return s.exec(select(func.count()).select_from(Job)).one()


@pytest.fixture
def served(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[Any]:
    """Serve create_app on loopback with these settings; yields the base URL."""

    def start(**extra: Any) -> Any:
        return serve(create_app(make_settings(db_url, sim.url, tmp_path, **extra), dispatcher=RecordingDispatcher()))

    yield start


def test_open_api_serves_loopback_clients_under_loopback_names_only(served, db_url: str) -> None:  # type: ignore[no-untyped-def]
    with served() as url:
        port = url.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", "LOCALHOST", f"127.0.0.1:{port}", "127.8.9.10", "[::1]:8000", "[::1]"):
            r = httpx.get(f"{url}/v1/jobs", headers={"Host": host})
            assert r.status_code == 200, (host, r.text)
        # DNS rebinding: the attacker's name now resolves to 127.0.0.1, the browser sends it as Host
        for host in (f"rebind.attacker.example:{port}", "attacker.example", "127.0.0.1.nip.io", "[::2]:80", "localhost.evil"):
            for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/tools/openapi.json"), ("GET", "/docs"), ("GET", "/ui/"), ("POST", "/v1/jobs")):
                r = httpx.request(method, f"{url}{path}", headers={"Host": host}, json=GOOD)
                assert r.status_code == 403 and "Host" in r.json()["detail"] and "K4U_API_TOKENS" in r.json()["detail"], (host, path, r.text)
        # a client from elsewhere, through a reverse proxy on this machine (uvicorn takes its X-Forwarded-For)
        r = httpx.post(f"{url}/v1/jobs", json=GOOD, headers={"X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 403 and "loopback" in r.json()["detail"], r.text
        assert jobs(db_url) == 0
        # provider webhooks carry their own per-job token and come from outside by design
        r = httpx.post(f"{url}/v1/webhooks/kling/job_0123abcd/tok", json={}, headers={"Host": "jobs.example.com", "X-Forwarded-For": "203.0.113.7"})
        assert r.status_code != 403, r.text
        assert httpx.post(f"{url}/v1/jobs", json=GOOD).status_code == 202


def test_tokens_or_allow_open_api_lift_the_loopback_rule(served) -> None:  # type: ignore[no-untyped-def]
    outside = {"Host": "jobs.example.com", "X-Forwarded-For": "203.0.113.7"}
    with served(api_tokens=TOKEN) as url:
        assert httpx.get(f"{url}/v1/jobs", headers=outside | {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(f"{url}/v1/jobs", headers=outside).status_code == 401
    with served(allow_open_api=True) as url:
        assert httpx.get(f"{url}/v1/jobs", headers=outside).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_a_state_changing_body_must_be_json(served, db_url: str, content_type: str | None) -> None:  # type: ignore[no-untyped-def]
    """A page can POST text/plain (or a typeless Blob) cross-site without a CORS preflight."""
    body = json.dumps(GOOD).encode()
    headers = {"content-type": content_type} if content_type else {}
    with served() as url:
        for path in ("/v1/tools/submit", "/v1/jobs", "/v1/batches"):
            r = httpx.post(f"{url}{path}", content=body if path != "/v1/batches" else json.dumps({"jobs": [GOOD]}), headers=headers)
            assert r.status_code == 415 and "application/json" in r.json()["detail"], (path, r.text)
        assert jobs(db_url) == 0


def test_json_types_bodiless_posts_and_webhooks_pass(served, db_url: str) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(GOOD)
    with served() as url:
        for content_type in ("application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"):
            r = httpx.post(f"{url}/v1/jobs", content=body, headers={"content-type": content_type})
            assert r.status_code == 202, (content_type, r.text)
        job_id = r.json()["id"]
        assert httpx.post(f"{url}/v1/jobs/{job_id}/cancel").status_code == 200  # no body, no type: nothing to refuse
        # providers call back with their own content types; the callback token decides
        r = httpx.post(f"{url}/v1/webhooks/kling/{job_id}/wrong-token", content=b"task_id=1", headers={"content-type": "text/plain"})
        assert r.status_code == 404, r.text
        assert jobs(db_url) == 4


def test_links_never_come_from_an_untrusted_host(served) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    evil = auth | {"Host": "attacker.example"}
    with served(api_tokens=TOKEN) as url:
        r = httpx.post(f"{url}/v1/jobs", json=GOOD, headers=evil)
        assert r.status_code == 202
        assert r.json()["status_url"] == f"{url}/v1/jobs/{r.json()['id']}" == r.headers["location"]  # the address we listen on
        got = httpx.get(r.headers["location"], headers=evil).json()
        assert got["status_url"].startswith(url)
        tool = httpx.post(f"{url}/v1/tools/submit", json=GOOD, headers=evil).json()
        assert tool["job"]["status_url"].startswith(url + "/"), tool
        assert httpx.get(f"{url}/v1/tools/openapi.json", headers=evil).json()["servers"] == [{"url": url}]
        # a loopback name is trusted: the links keep the name the client used
        port = url.rsplit(":", 1)[1]
        r = httpx.post(f"{url}/v1/jobs", json=GOOD, headers=auth | {"Host": f"localhost:{port}"})
        assert r.headers["location"] == f"http://localhost:{port}/v1/jobs/{r.json()['id']}"
    with served(api_tokens=TOKEN, public_url="https://jobs.example.com/") as url:
        r = httpx.post(f"{url}/v1/jobs", json=GOOD, headers=evil)
        assert r.headers["location"] == f"https://jobs.example.com/v1/jobs/{r.json()['id']}" == r.json()["status_url"]
        assert httpx.get(f"{url}/v1/tools/openapi.json", headers=evil).json()["servers"] == [{"url": "https://jobs.example.com"}]


def test_docs_pages_load_everything_from_the_app(served) -> None:  # type: ignore[no-untyped-def]
    """/docs runs on the origin where the gallery keeps its token: no script from a CDN there."""
    with served() as url:
        for page in ("/docs", "/redoc"):
            html = httpx.get(url + page).text
            assert "://" not in html, f"{page} names another host"
            refs = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert any(r.endswith(".js") for r in refs), html
            for ref in refs:
                r = httpx.get(url + ref)
                assert r.status_code == 200 and len(r.content) > 1000, (page, ref, r.status_code)
        assert httpx.get(f"{url}/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("localhost", True),
        ("LocalHost:8000", True),
        ("127.0.0.1:1", True),
        ("127.255.0.9", True),
        ("[::1]:80", True),
        ("[::ffff:127.0.0.1]", True),
        ("::1", False),
        ("localhost:x", False),
        ("evil@localhost", False),
        ("localhost.", False),
        ("0.0.0.0", False),
        ("[::1", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
    ],
)
def test_trusted_host_names_only_this_machine(host: str, trusted: bool) -> None:
    assert trusted_host(host) is trusted
