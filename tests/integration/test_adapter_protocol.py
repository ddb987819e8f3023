"""The adapter protocol (version 2) as the engine runs it, with a family made up for the test
against the simulator's Kling routes: the handle a submit returns is persisted and handed back on
every poll and result read, a poll flow makes a follow-up read before it answers, a result read
adds to job.result, and relay-relative outputs are fetched with the key on the first hop only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from models.schemas import JobCreate
from providers import registry
from providers.base import (
    AdapterDefaults,
    Capabilities,
    Flow,
    HttpRequest,
    HttpResponse,
    Operation,
    OutputRef,
    PollTarget,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from tests.conftest import Sim
from workers.services.create import create_job


class _Input(BaseModel):
    prompt: str


class FlowFamily(AdapterDefaults):
    """Submits to the Kling text2video route; keeps the poll path in its handle; on success reads
    the task a second time (a stand-in for fal's status-then-result) and fetches one extra field."""

    name = "flowfam"
    operations: Mapping[str, Operation] = {"make": Operation("make", _Input, "test family")}
    capabilities = Capabilities(callback_trust="hint", expected_s=4.0, result_ttl_s=3600)

    def __init__(self) -> None:
        self.poll_handles: list[dict[str, Any]] = []
        self.extra_handles: list[dict[str, Any]] = []

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        return HttpRequest("POST", "/kling/v1/videos/text2video", json={"prompt": input["prompt"], "external_task_id": ctx.external_id})

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        task_id = str(resp.json()["data"]["task_id"])
        return Submitted(task_id, handle={"poll_path": f"/kling/v1/videos/text2video/{task_id}", "api": "native"})

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        self.poll_handles.append(dict(t.handle))
        first = yield HttpRequest("GET", t.handle["poll_path"])
        status = first.json()["data"]["task_status"]
        if status != "succeed":
            return [ProviderStatus(t.task_id, State.RUNNING)]
        second = yield HttpRequest("GET", t.handle["poll_path"])  # the follow-up read
        videos = second.json()["data"]["task_result"]["videos"]
        cdn = OutputRef(videos[0]["url"], "video")
        # the same bytes through a relay route: fetched with the key, on that first request only
        relay = OutputRef("/_sim/media/" + videos[0]["url"].rsplit("/", 1)[1], "video")
        return [ProviderStatus(t.task_id, State.SUCCEEDED, outputs=[cdn, relay])]

    def fetch_extra(self, target: PollTarget) -> Flow[Mapping[str, Any]] | None:
        self.extra_handles.append(dict(target.handle))
        resp = yield HttpRequest("GET", target.handle["poll_path"])
        return {"extra_status": resp.json()["data"]["task_status"]}


@pytest.fixture
def family(monkeypatch: pytest.MonkeyPatch) -> FlowFamily:
    fam = FlowFamily()
    monkeypatch.setitem(registry.ADAPTERS, fam.name, fam)
    return fam


def test_handle_flows_and_relay_outputs(engine_factory, sim: Sim, family: FlowFamily) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)
    job, _ = create_job(d.rt, JobCreate(provider="flowfam", operation="make", input={"prompt": "a kite"}))
    d.drain()
    d.run_for(20)
    done = d.job(job.id)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    handle = {"poll_path": f"/kling/v1/videos/text2video/{done.provider_task_id}", "api": "native"}
    assert done.provider_handle == handle
    assert family.poll_handles and all(h == handle for h in family.poll_handles)
    assert family.extra_handles == [handle]
    assert done.result == {"extra_status": "succeed"}
    assert done.result_expires_at is not None
    seen = sim.admin("/_sim/auth-seen")
    seen = seen.get("routes", seen)
    media = [v for k, v in seen.items() if k.startswith("GET /_sim/media")]
    # the CDN URL went without the key, the relay route with it (its first and only hop)
    assert sum(v.get("without_auth", 0) for v in media) == 1 and sum(v.get("with_auth", 0) for v in media) == 1, seen


def test_downloads_that_expire_soonest_go_first(engine_factory) -> None:  # type: ignore[no-untyped-def]
    """Both the broker priority of a download and the sweep's re-drive order follow result expiry."""
    from datetime import UTC, datetime, timedelta

    from models.status import JobStatus
    from models.tables import Job
    from workers import jobs
    from workers.db import session_scope
    from workers.services.apply import download_priority

    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert download_priority(now + timedelta(minutes=50), now) < download_priority(now + timedelta(hours=20), now) < download_priority(None, now)
    d = engine_factory()
    expiries = {"job_late": now + timedelta(days=20), "job_none": None, "job_soon": now + timedelta(minutes=30), "job_mid": now + timedelta(hours=5)}
    with session_scope(d.rt.engine) as s:
        for job_id, expires in expiries.items():
            s.add(
                Job(
                    id=job_id,
                    provider="kling",
                    operation="text2video",
                    status=JobStatus.DOWNLOADING.value,
                    input={},
                    callback_token="t",
                    created_at=now,
                    updated_at=now,
                    next_at=now - timedelta(seconds=1),
                    result_expires_at=expires,
                )
            )
    with session_scope(d.rt.engine) as s:
        claimed = jobs.claim_due(s, JobStatus.DOWNLOADING, now=now, lease_s=60, limit=10)
    assert [c[0] for c in claimed] == ["job_soon", "job_mid", "job_late", "job_none"]
