"""/v1/tools for Coze and Dify: always HTTP 200 with {ok, job, error}; input as an object or a JSON
string; scalar parameters only; its own OpenAPI 3.0.3 document, validated; each operation run,
over real HTTP with the real database, through to a finished job on the engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from api.main import create_app
from tests.conftest import Driver, Sim, make_settings
from tests.servers import serve

TOKEN = "tok-tools-1"
JSON = {"content-type": "application/json"}
DEEP = '{"prompt": "x", "k": ' + '{"k": ' * 3000 + "1" + "}" * 3001  # JSON in a string, nested past the body's cap


@pytest.fixture
def tools(db_url: str, sim: Sim, tmp_path: Path, engine_factory) -> Iterator[tuple[httpx.Client, Driver]]:  # type: ignore[no-untyped-def]
    """The API over HTTP, and an engine driver on the same database and dispatcher."""
    sim.admin("/_sim/config", {"queue_s": 0.5, "run_s": 2.0})
    d: Driver = engine_factory(api_tokens=TOKEN, poll_expected_s=2.0, poll_min_interval_s=1.0)
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN)
    with (
        serve(create_app(settings, dispatcher=d.recorder)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=70) as client,
    ):
        yield client, d


def test_the_document_is_valid_openapi_303_for_coze_and_dify(tools) -> None:  # type: ignore[no-untyped-def]
    client, _ = tools
    r = httpx.get(f"{client.base_url}/v1/tools/openapi.json")  # no token: platforms import it by URL
    assert r.status_code == 200
    doc = r.json()
    validate(doc)  # raises on an invalid OpenAPI 3.0 document
    assert doc["openapi"] == "3.0.3" and len(doc["servers"]) == 1
    ops = {op["operationId"]: (path, method, op) for path, item in doc["paths"].items() for method, op in item.items()}
    assert set(ops) == {"submit_generation_job", "get_job_status", "wait_for_job"}
    for _path, _method, op in ops.values():
        assert len(op["description"]) > 60, "descriptions are what a model reads to choose a tool"
        for p in op.get("parameters", []):
            assert p["in"] in ("query", "path", "header") and p["schema"]["type"] not in ("object", "array")
        if "requestBody" in op:
            assert op["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert set(schema["required"]) == {"ok", "job", "error"}
        assert set(schema["properties"]["job"]["required"]) >= {"job_id", "status", "done", "result_url", "result_urls", "error_message"}


def test_submit_wait_status_to_a_finished_job(tools, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    client, d = tools
    r = client.post("/v1/tools/submit", json={"provider": "kling", "operation": "text2video", "input": json.dumps({"prompt": "a red fox"})})
    assert r.status_code == 200 and r.json()["ok"], r.text
    job = r.json()["job"]
    assert job["status"] == "queued" and job["done"] is False and job["result_url"] is None
    d.drain()
    d.run_for(15)
    r = client.get("/v1/tools/wait", params={"job_id": job["job_id"], "seconds": "5"})
    got = r.json()
    assert r.status_code == 200 and got["ok"] and got["job"]["done"] and got["job"]["status"] == "succeeded", got
    assert got["job"]["result_url"].endswith(f"/v1/jobs/{job['job_id']}/assets/0")
    assert got["job"]["result_sha256"] == [sim.sha256()["mp4"]]
    status = client.get("/v1/tools/status", params={"job_id": job["job_id"]}).json()
    assert status["ok"] and status["job"] == got["job"]
    # an object input and an idempotency key: the same key never makes a second job
    body = {"provider": "kling", "input": {"prompt": "again"}, "idempotency_key": "coze-run-1"}
    first, again = client.post("/v1/tools/submit", json=body).json(), client.post("/v1/tools/submit", json=body).json()
    assert first["ok"] and again["ok"] and first["job"]["job_id"] == again["job"]["job_id"]


@pytest.mark.parametrize(
    "call, code, field",
    [
        (("POST", "/v1/tools/submit", {"json": {"provider": "kling", "input": "{not json"}}), "invalid_request", "input"),
        (("POST", "/v1/tools/submit", {"json": {"provider": "nope", "input": {"prompt": "x"}}}), "invalid_request", "provider"),
        (("POST", "/v1/tools/submit", {"json": {"provider": "kling", "input": {}}}), "invalid_request", "input.prompt"),
        (("POST", "/v1/tools/submit", {"json": {"provider": "kling", "input": DEEP}}), "invalid_request", "input"),
        (("POST", "/v1/tools/submit", {"json": {"provider": "kling", "input": {"prompt": "x"}, "metadata": "[" * 5000}}), "invalid_request", "metadata"),
        (("POST", "/v1/tools/submit", {"content": b"[1, 2]", "headers": JSON}), "invalid_request", "body"),
        (("POST", "/v1/tools/submit", {"content": b"\xff\xfe", "headers": JSON}), "invalid_request", "body"),
        (("GET", "/v1/tools/status", {"params": {"job_id": "job_0123456789abcdef"}}), "not_found", "job_id"),
        (("GET", "/v1/tools/status", {"params": {"job_id": "x" * 5000}}), "not_found", "job_id"),
        (("GET", "/v1/tools/status", {}), "not_found", "job_id"),
        (("GET", "/v1/tools/wait", {"params": {"job_id": "job_0123", "seconds": "61"}}), "invalid_request", "seconds"),
        (("GET", "/v1/tools/wait", {"params": {"job_id": "job_0123", "seconds": "nan"}}), "invalid_request", "seconds"),
    ],
)
def test_every_problem_is_a_200_naming_it(tools, call: tuple[str, str, dict[str, Any]], code: str, field: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = tools
    method, path, kw = call
    r = client.request(method, path, **kw)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is False and body["job"] is None and body["error"]["code"] == code
    assert body["error"]["field"] == field or (body["error"]["field"] or "").startswith(field), body


def test_auth_bearer_or_api_key_and_refusal_is_still_200(tools) -> None:  # type: ignore[no-untyped-def]
    client, _ = tools
    url = f"{client.base_url}/v1/tools/status"
    refused = httpx.get(url, params={"job_id": "job_01"}, headers={"Authorization": "Bearer wrong"}).json()
    assert refused["ok"] is False and refused["error"]["code"] == "unauthorized"
    assert httpx.get(url, params={"job_id": "job_01"}).json()["error"]["code"] == "unauthorized"
    with_key = httpx.get(url, params={"job_id": "job_01"}, headers={"X-API-Key": TOKEN}).json()
    assert with_key["error"]["code"] == "not_found"


@pytest.mark.parametrize("platform", ["coze", "dify"])
def test_the_shipped_examples_are_the_served_document(platform: str) -> None:
    from api.tools_openapi import tools_document

    shipped = json.loads((Path(__file__).resolve().parents[2] / "examples" / platform / "key4u-jobs-tools.openapi.json").read_text())
    validate(shipped)
    assert shipped == tools_document("https://jobs.example.com"), "regenerate the example from api.tools_openapi"
