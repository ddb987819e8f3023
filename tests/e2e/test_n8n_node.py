"""End to end with a real n8n: the community node (integrations/n8n), built and packed with npm,
is installed as a community package into an n8n from npm (cached outside the repo), against
`k4u dev` + the simulator on loopback. A workflow (Webhook -> Split Out -> Key4U Jobs "Submit and
Wait" -> HTTP Request to a receiver of ours) runs twice: with one item (one job, resumed by its
job.succeeded notification) and with three (one batch, resumed by batch.completed). The items
after the resume must be the finished jobs with the simulator's bytes (sha256) stored. A second
workflow uploads an item's binary file (Upload) and submits Kling image2video with it (its ref, and
the same file as a Binary Input): the relay fetched exactly the bytes uploaded.

Slow the first time (npm install of n8n, several minutes); the cache makes later runs fast."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TOKEN, WEBHOOK_SECRET
from tests.e2e.n8n_runtime import N8n, ensure_n8n, packed_node, tools_missing
from tests.servers import Receiver, webhook_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "n8n"
CRED_ID = "k4uE2eCredential"
WORKFLOW_ID = "k4uE2eWorkflow01"
UPLOAD_WORKFLOW_ID = "k4uE2eWorkflow02"


@pytest.fixture
def e2e_db(tmp_path: Path) -> str:
    """One database flavour is enough here (the stack's own tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path}/k4u.db"


@pytest.fixture
def n8n(tmp_path: Path) -> Iterator[N8n]:
    if (why := tools_missing()) is not None:
        pytest.skip(why)
    folder = tmp_path / "n8n"
    folder.mkdir()
    log = folder / "setup.log"
    instance = N8n(binary=ensure_n8n(log), folder=folder)
    packed_node(folder, log)
    try:
        yield instance
    finally:
        instance.stop()


def workflow(report_url: str) -> dict[str, Any]:
    key4u = {
        "parameters": {
            "operation": "submitAndWait",
            "provider": "kling",
            "providerOperation": "text2video",
            "inputMode": "json",
            "inputJson": '={{ JSON.stringify({ prompt: $json.prompt, duration: "5" }) }}',
            "waitLimitMinutes": "={{ $json.limit_minutes || 10 }}",
            "additionalFields": {"idempotencyKey": "={{ $execution.id }}-{{ $itemIndex }}"},
        },
        "id": str(uuid.uuid4()),
        "name": "Key4U Jobs",
        "type": "n8n-nodes-key4u-jobs.key4uJobs",
        "typeVersion": 1,
        "position": [440, 0],
        "credentials": {"key4uJobsApi": {"id": CRED_ID, "name": "Key4U Jobs (e2e)"}},
    }
    nodes = [
        {
            "parameters": {"httpMethod": "POST", "path": "k4u-e2e", "options": {}},
            "id": str(uuid.uuid4()),
            "name": "Webhook",
            "type": "n8n-nodes-base.webhook",
            "typeVersion": 2,
            "position": [0, 0],
            "webhookId": str(uuid.uuid4()),
        },
        {
            "parameters": {"fieldToSplitOut": "body.jobs", "options": {}},
            "id": str(uuid.uuid4()),
            "name": "Split Out",
            "type": "n8n-nodes-base.splitOut",
            "typeVersion": 1,
            "position": [220, 0],
        },
        key4u,
        {
            "parameters": {
                "method": "POST",
                "url": report_url,
                "sendBody": True,
                "specifyBody": "json",
                "jsonBody": "={{ JSON.stringify($json) }}",
                "options": {},
            },
            "id": str(uuid.uuid4()),
            "name": "Report",
            "type": "n8n-nodes-base.httpRequest",
            "typeVersion": 4.2,
            "position": [660, 0],
        },
    ]
    chain = ["Webhook", "Split Out", "Key4U Jobs", "Report"]
    connections = {a: {"main": [[{"node": b, "type": "main", "index": 0}]]} for a, b in itertools.pairwise(chain)}
    return {"id": WORKFLOW_ID, "name": "Key4U Jobs e2e", "nodes": nodes, "connections": connections, "active": False, "settings": {"executionOrder": "v1"}}


def upload_workflow(report_url: str) -> dict[str, Any]:
    """Webhook (a PNG as base64) -> Convert to File (binary `photo`) -> Key4U Jobs Upload -> Key4U Jobs
    Submit and Wait, Kling image2video: `image` the upload's ref, `image_tail` the same binary as a
    Binary Input (uploaded again: the upload of the same bytes is reused) -> Report."""

    def node(name: str, kind: str, version: float, x: int, parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"parameters": parameters, "id": str(uuid.uuid4()), "name": name, "type": kind, "typeVersion": version, "position": [x, 300]} | extra

    credentials = {"key4uJobsApi": {"id": CRED_ID, "name": "Key4U Jobs (e2e)"}}
    nodes = [
        node("Webhook", "n8n-nodes-base.webhook", 2, 0, {"httpMethod": "POST", "path": "k4u-e2e-upload", "options": {}}, webhookId=str(uuid.uuid4())),
        node(
            "To File",
            "n8n-nodes-base.convertToFile",
            1.1,
            220,
            {
                "operation": "toBinary",
                "sourceProperty": "body.png",
                "binaryPropertyName": "photo",
                "options": {"fileName": "frame.png", "mimeType": "image/png"},
            },
        ),
        node("Upload", "n8n-nodes-key4u-jobs.key4uJobs", 1, 440, {"operation": "upload", "binaryPropertyName": "photo"}, credentials=credentials),
        node(
            "Image to Video",
            "n8n-nodes-key4u-jobs.key4uJobs",
            1,
            660,
            {
                "operation": "submitAndWait",
                "provider": "kling",
                "providerOperation": "image2video",
                "inputMode": "json",
                "inputJson": '={{ JSON.stringify({ prompt: "the frame comes alive", duration: "5", image: $json.ref }) }}',
                "binaryInputs": {"input": [{"field": "image_tail", "binaryProperty": "photo"}]},
                "waitLimitMinutes": 10,
                "additionalFields": {"idempotencyKey": "={{ $execution.id }}-{{ $itemIndex }}"},
            },
            credentials=credentials,
        ),
        node(
            "Report",
            "n8n-nodes-base.httpRequest",
            4.2,
            880,
            {"method": "POST", "url": report_url, "sendBody": True, "specifyBody": "json", "jsonBody": "={{ JSON.stringify($json) }}", "options": {}},
        ),
    ]
    chain = [n["name"] for n in nodes]
    connections = {a: {"main": [[{"node": b, "type": "main", "index": 0}]]} for a, b in itertools.pairwise(chain)}
    return {
        "id": UPLOAD_WORKFLOW_ID,
        "name": "Key4U Jobs e2e upload",
        "nodes": nodes,
        "connections": connections,
        "active": False,
        "settings": {"executionOrder": "v1"},
    }


def trigger(n8n: N8n, prompts: list[str], **extra: Any) -> None:
    r = httpx.post(f"{n8n.url}/webhook/k4u-e2e", json={"jobs": [{"prompt": p, **extra} for p in prompts]}, timeout=30)
    assert r.status_code == 200, r.text


def reports(n8n: N8n, report: Receiver, already: int, n: int) -> list[dict[str, Any]]:
    try:
        got = report.wait(already + n, timeout_s=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- n8n log ---\n{n8n.log.read_text()[-6000:]}") from None
    return [json.loads(x.body) for x in got[already:]]


def run_flow(n8n: N8n, report: Receiver, prompts: list[str]) -> list[dict[str, Any]]:
    already = len(report.received)
    trigger(n8n, prompts)
    return reports(n8n, report, already, len(prompts))


def test_submit_and_wait_resumes_with_the_stored_assets(stack_factory, n8n: N8n) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    with webhook_receiver() as report:
        n8n.import_json(
            "credentials",
            "credentials.json",
            [
                {
                    "id": CRED_ID,
                    "name": "Key4U Jobs (e2e)",
                    "type": "key4uJobsApi",
                    "data": {"baseUrl": stack.api, "apiToken": TOKEN, "webhookSecret": WEBHOOK_SECRET},
                }
            ],
        )
        n8n.import_json("workflow", "workflow.json", workflow(report.url))
        n8n.import_json("workflow", "upload-workflow.json", upload_workflow(report.url))
        for example in sorted(EXAMPLES.glob("*.json")):  # the shipped examples import too
            n8n.cli("import:workflow", f"--input={example}")
        n8n.cli("update:workflow", f"--id={WORKFLOW_ID}", "--active=true")
        n8n.cli("update:workflow", f"--id={UPLOAD_WORKFLOW_ID}", "--active=true")
        started = time.monotonic()
        n8n.start()
        startup_s = time.monotonic() - started

        (job,) = run_flow(n8n, report, ["a red fox in snow"])
        mp4 = stack.sim_admin("/_sim/media-sha256")["mp4"]
        assert job["status"] == "succeeded" and job["provider"] == "kling", job
        assert [a["sha256"] for a in job["assets"]] == [mp4]
        assert job["assets"][0]["url"] == f"{stack.api}/v1/jobs/{job['id']}/assets/0"
        with stack.client() as c:
            asset = c.get(f"/v1/jobs/{job['id']}/assets/0")
            assert asset.status_code == 200
            (note,) = c.get(f"/v1/jobs/{job['id']}/notifications").json()
        # The resume URL went out as callback_url, and n8n took the signed notification.
        assert note["status"] == "delivered" and f"127.0.0.1:{n8n.port}/webhook-waiting/" in note["url"], note

        jobs = run_flow(n8n, report, ["owl", "heron", "crane"])
        assert sorted(j["input"]["prompt"] for j in jobs) == ["crane", "heron", "owl"]
        assert {j["status"] for j in jobs} == {"succeeded"}
        assert all([a["sha256"] for a in j["assets"]] == [mp4] for j in jobs)
        (batch_id,) = {j["batch_id"] for j in jobs}
        with stack.client() as c:
            (batch_note,) = c.get(f"/v1/batches/{batch_id}/notifications").json()
        assert batch_note["status"] == "delivered", batch_note

        # A binary file of the item: Upload, then Kling image2video on its ref and on the same file as a
        # Binary Input (the upload of the same bytes reused); the relay fetched the bytes we stored.
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(30_000)
        sha = hashlib.sha256(png).hexdigest()
        already = len(report.received)
        r = httpx.post(f"{n8n.url}/webhook/k4u-e2e-upload", json={"png": base64.b64encode(png).decode()}, timeout=30)
        assert r.status_code == 200, r.text
        (pictured,) = reports(n8n, report, already, 1)
        assert pictured["status"] == "succeeded" and pictured["operation"] == "image2video", pictured
        ref = pictured["input"]["image"]
        assert ref.startswith("k4u://uploads/upl_") and pictured["input"]["image_tail"] == ref, pictured["input"]
        assert [(i["field"], i["ref"], i["sha256"]) for i in pictured["inputs"]] == [("image", ref, sha), ("image_tail", ref, sha)]
        with stack.client() as c:
            (upload,) = c.get("/v1/uploads", params={"sha256": sha}).json()["items"]
        assert (upload["filename"], upload["content_type"], upload["size"]) == ("frame.png", "image/png", len(png))
        task = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"]}[pictured["provider_task_id"]]
        assert task["inputs_sha256"] == {"image": sha, "image_tail": sha}

        # The wait limit: n8n resumes the execution without a callback and without running the
        # node again; the items it passes on name the job, marked wait_timed_out. n8n's wait
        # tracker looks for due executions at start and every 60 s: a restart makes it look now.
        already = len(report.received)
        trigger(n8n, ["[sim:run=600] a very slow fox"], limit_minutes=0.02)
        with stack.client() as c:
            deadline = time.monotonic() + 30
            while not (slow := c.get("/v1/jobs", params={"status": "running"}).json()["items"]):
                assert time.monotonic() < deadline, "the slow job never started running"
                time.sleep(0.2)
        time.sleep(2.0)  # past the 1.2 s limit
        n8n.stop()
        n8n.start()
        (timed_out,) = reports(n8n, report, already, 1)
        assert timed_out["wait_timed_out"] is True and timed_out["id"] == slow[0]["id"], timed_out
        print(f"n8n {n8n.binary.parent.parent.parent.name}: started in {startup_s:.1f}s")
