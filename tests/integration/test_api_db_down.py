"""A database that cannot be reached is an outage the client may wait out: 503 with Retry-After,
never a bare 500 or a dropped connection."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.main import create_app
from tests.conftest import make_settings
from tests.servers import serve
from workers.dispatch import RecordingDispatcher

GOOD = {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox"}}


def test_unreachable_database_answers_503(tmp_path: Path) -> None:
    from cli.procs import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/k4u_nowhere?connect_timeout=2"
    settings = make_settings(url, "http://127.0.0.1:9", tmp_path)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as base, httpx.Client(base_url=base, timeout=20) as c:
        for r in (c.post("/v1/jobs", json=GOOD), c.get("/v1/jobs"), c.get("/v1/jobs/job_0123456789ab0123456789abcdef")):
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5" and r.json()["code"] == "unavailable"
            assert "k4u_nowhere" not in r.text and "127.0.0.1" not in r.text
