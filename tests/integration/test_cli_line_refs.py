"""`k4u batch` with line references, as a process against an API on loopback: the POST /v1/batches
body it sends carries the batch item references (`k4u://items/<i>/assets/<index>`), never a
`k4u://lines/` string; and a bad reference is named with its line and field before any request.

The API here is a recorder (the references' resolution is the engine's, tested there): it answers
what the CLI needs and keeps every request it was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from tests.integration.test_cli import k4u
from tests.servers import serve

TOKEN = "tok-cli-lines-1"


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, Any]]]]:
    seen: list[tuple[str, str, Any]] = []
    jobs: dict[str, list[dict[str, Any]]] = {}
    app = FastAPI()

    @app.post("/v1/batches", status_code=201)
    async def create_batch(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append(("POST", "/v1/batches", body))
        batch_id = f"bat_{len(jobs) + 1}"
        jobs[batch_id] = [
            {"id": f"job_{batch_id}_{i}", "status": "queued", "provider": j["provider"], "operation": j["operation"], "attempt": 1, "assets": []}
            for i, j in enumerate(body["jobs"])
        ]
        return {"id": batch_id, "status": "running", "job_ids": [j["id"] for j in jobs[batch_id]]}

    @app.get("/v1/batches/{batch_id}/jobs")
    async def batch_jobs(batch_id: str) -> dict[str, Any]:
        seen.append(("GET", f"/v1/batches/{batch_id}/jobs", None))
        return {"items": jobs[batch_id], "next_cursor": None}

    with serve(app) as url:
        yield url, seen


def test_line_references_are_sent_as_batch_item_references(recorder: tuple[str, list[tuple[str, str, Any]]], tmp_path: Path) -> None:
    url, seen = recorder
    env = {"K4U_API_URL": url, "K4U_API_TOKEN": TOKEN}
    lines = [
        {"provider": "midjourney", "operation": "imagine", "input": {"prompt": "a red fox"}},
        {"provider": "kling", "operation": "image2video", "input": {"prompt": "it runs", "image": "k4u://lines/1/assets/0"}},
        {
            "provider": "kling",
            "operation": "image2video",
            "input": {"prompt": "it jumps", "image": "k4u://lines/1/assets/3", "image_tail": "k4u://lines/2/assets/0"},
        },
    ]
    (tmp_path / "chain.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    r = k4u("batch", "chain.jsonl", "--no-wait", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (post,) = [body for method, _, body in seen if method == "POST"]
    sent = post["jobs"]
    assert sent[0]["input"] == lines[0]["input"]
    assert sent[1]["input"] == {"prompt": "it runs", "image": "k4u://items/0/assets/0"}
    assert sent[2]["input"] == {"prompt": "it jumps", "image": "k4u://items/0/assets/3", "image_tail": "k4u://items/1/assets/0"}
    assert [j["idempotency_key"].rsplit("-", 1)[1] for j in sent] == ["1", "2", "3"]
    assert "k4u://lines/" not in json.dumps(post)
    results = [json.loads(x) for x in (tmp_path / "chain.jsonl.results.jsonl").read_text().splitlines()]
    assert [(row["line"], row["job_id"]) for row in results] == [(1, "job_bat_1_0"), (2, "job_bat_1_1"), (3, "job_bat_1_2")]

    seen.clear()
    (tmp_path / "bad.csv").write_text(
        "provider,operation,input.prompt,input.image\nmidjourney,imagine,a red fox,\nkling,image2video,it runs,k4u://lines/4/assets/0\nmidjourney,imagine,a cat,\n"
    )
    r = k4u("batch", "bad.csv", "--no-wait", env=env, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "line 3: input.image: k4u://lines/4/assets/0 names line 4, a later line" in r.stderr, r.stderr
    assert seen == [], "nothing is sent for a file with a bad line"
