"""GET /v1/jobs?batch_id=: the relay-reported cost of the whole batch, summed per key, in the body
(`cost`) and the X-K4U-Batch-Cost header, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from api.main import create_app
from models.tables import Job
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers.db import get_engine, session_scope, table_of
from workers.dispatch import RecordingDispatcher

TOKEN = "tok-cost-totals-1"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN)
    with (
        serve(create_app(settings, dispatcher=RecordingDispatcher())) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c,
    ):
        yield c


def add_jobs(db_url: str, rows: list[tuple[str | None, str, dict[str, Any] | None]]) -> None:
    """(batch_id, status, result) per job, in one INSERT; ids in creation order."""
    values = [
        {
            "id": f"job_{i:012x}{'0' * 16}",
            "provider": "replicate",
            "operation": "predict",
            "status": status,
            "version": 0,
            "progress": 0,
            "input": {},
            "metadata": {},
            "result": result,
            "batch_id": batch,
            "callback_token": "t",
            "submit_state": "accepted",
            "submit_attempts": 1,
            "submit_resends": 0,
            "attempt": 1,
            "download_attempts": 0,
            "provider_cancel_attempts": 0,
            "poll_count": 0,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i, (batch, status, result) in enumerate(rows, start=1)
    ]
    with session_scope(get_engine(db_url)) as s:
        s.execute(insert(table_of(Job)), values)


def test_batch_cost_sums_the_whole_batch_in_body_and_header(client: httpx.Client, db_url: str) -> None:
    add_jobs(
        db_url,
        [
            ("b1", "succeeded", {"cost": {"predict_time_s": 2.9}, "output": ["x"]}),
            ("b1", "succeeded", {"cost": {"predict_time_s": 0.1, "inference_s": 1.2}}),
            ("b1", "succeeded", {"cost": {"inference_s": 0.3, "images": 2}}),
            ("b1", "failed", {"cost": {"predict_time_s": 1.0, "note": "text is not a number", "flag": True}}),
            ("b1", "succeeded", {"final_unit_deduction": "1"}),  # Kling: no cost object, left alone
            ("b1", "queued", None),
            ("b1", "succeeded", {"cost": "not an object"}),
            ("b2", "succeeded", {"cost": {"predict_time_s": 100.0}}),  # another batch
            (None, "succeeded", {"cost": {"predict_time_s": 1000.0}}),
        ],
    )
    want = {"images": 2, "inference_s": 1.5, "predict_time_s": 4.0, "jobs_with_cost": 4}
    r = client.get("/v1/jobs", params={"batch_id": "b1", "limit": 1})  # one job on the page, the whole batch in the total
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 1 and body["next_cursor"]
    assert body["cost"] == want
    assert json.loads(r.headers["x-k4u-batch-cost"]) == want
    assert " " not in r.headers["x-k4u-batch-cost"]  # compact
    assert isinstance(body["cost"]["images"], int) and isinstance(body["cost"]["jobs_with_cost"], int)
    page2 = client.get("/v1/jobs", params={"batch_id": "b1", "limit": 1, "cursor": body["next_cursor"], "status": "failed"})
    assert page2.json()["cost"] == want  # neither the page nor the other filters narrow the batch's total


def test_no_cost_without_batch_id_and_zero_for_an_empty_batch(client: httpx.Client, db_url: str) -> None:
    add_jobs(db_url, [("b1", "succeeded", {"cost": {"predict_time_s": 2.0}})])
    r = client.get("/v1/jobs")
    assert r.status_code == 200 and r.json()["cost"] is None and "x-k4u-batch-cost" not in r.headers
    empty = client.get("/v1/jobs", params={"batch_id": "nope"})
    assert empty.json() == {"items": [], "next_cursor": None, "cost": {"jobs_with_cost": 0}}
    assert empty.headers["x-k4u-batch-cost"] == '{"jobs_with_cost":0}'


def test_batch_cost_streams_across_chunks(client: httpx.Client, db_url: str) -> None:
    """2,500 jobs: more than two chunks of the streamed read, every one counted once."""
    add_jobs(db_url, [("big", "succeeded", {"cost": {"inference_s": 0.25, "steps": 3}}) for _ in range(2500)])
    r = client.get("/v1/jobs", params={"batch_id": "big", "limit": 5})
    assert r.json()["cost"] == {"inference_s": 625.0, "steps": 7500, "jobs_with_cost": 2500}
