"""The relay-side cancel of a cancelled job's task, on SQLite and PostgreSQL, with a family made up
for the test against the simulator's Kling routes (no shipped family of the simulator has a
cancel): its cancel flow calls the Kling list route, which nothing else calls, so the simulator's
request counter for that route counts the cancels the relay received."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlmodel import col, select

from models.schemas import JobCreate
from models.tables import Job, JobEvent
from providers import registry
from providers.base import (
    AdapterDefaults,
    CancelOutcome,
    Capabilities,
    Flow,
    HttpRequest,
    HttpResponse,
    Operation,
    PollTarget,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from tests.conftest import Driver, Sim
from workers import dispatch
from workers.db import session_scope
from workers.outcomes import Outcome
from workers.services.create import cancel_job, create_job
from workers.services.provider_cancel import cancel_at_provider

CANCEL_ROUTE = "GET /kling/v1/videos/text2video"  # the list route: only the cancel flow calls it


class _Input(BaseModel):
    prompt: str


class CancelFamily(AdapterDefaults):
    """Submits to the Kling text2video route, polls its task, and cancels through the list route,
    reporting fal's answer for a task that already started."""

    name = "cancelfam"
    operations: Mapping[str, Operation] = {"make": Operation("make", _Input, "test family")}
    capabilities = Capabilities(callback_trust="hint", expected_s=60.0, cancels=True)

    def __init__(self) -> None:
        self.cancel_targets: list[PollTarget] = []

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        return HttpRequest("POST", "/kling/v1/videos/text2video", json={"prompt": input["prompt"], "external_task_id": ctx.external_id})

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        task_id = str(resp.json()["data"]["task_id"])
        return Submitted(task_id, handle={"cancel_path": "/kling/v1/videos/text2video"})

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        yield HttpRequest("GET", f"/kling/v1/videos/text2video/{targets[0].task_id}")
        return [ProviderStatus(targets[0].task_id, State.RUNNING)]

    def cancel(self, target: PollTarget) -> Flow[CancelOutcome] | None:
        return self._cancel(target)

    def _cancel(self, target: PollTarget) -> Flow[CancelOutcome]:
        self.cancel_targets.append(target)
        resp = yield HttpRequest("GET", target.handle["cancel_path"], query={"pageSize": "1", "cancel": target.task_id})
        if resp.status >= 300:
            return CancelOutcome(False, f"HTTP {resp.status}")
        return CancelOutcome(False, "fal cancel answered HTTP 400: ALREADY_STARTED")


@pytest.fixture
def family(monkeypatch: pytest.MonkeyPatch) -> CancelFamily:
    fam = CancelFamily()
    monkeypatch.setitem(registry.ADAPTERS, fam.name, fam)
    monkeypatch.setitem(Driver.HANDLERS, dispatch.CANCEL, cancel_at_provider)
    return fam


def cancels_received(sim: Sim) -> int:
    seen = sim.admin("/_sim/auth-seen")["routes"].get(CANCEL_ROUTE, {})
    return int(seen.get("with_auth", 0)) + int(seen.get("without_auth", 0))


def events(d: Driver, job_id: str) -> list[tuple[str | None, str, str]]:
    with session_scope(d.rt.engine) as s:
        rows = s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))).all()
        return [(e.old_status, e.new_status, e.reason) for e in rows]


def running_job(d: Driver, provider: str = "cancelfam", operation: str = "make") -> Job:
    job, _ = create_job(d.rt, JobCreate(provider=provider, operation=operation, input={"prompt": "a kite"}))
    d.drain()
    running = d.job(job.id)
    assert running.status == "running" and running.provider_task_id, (running.status, running.error_message)
    return running


def test_cancel_asks_the_relay_once_and_records_its_answer(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job = running_job(d)
    cancelled = cancel_job(d.rt, job.id)
    assert cancelled.status == "cancelled" and cancelled.provider_cancel == "pending"
    msgs = d.recorder.of(dispatch.CANCEL)
    assert msgs == [(job.id, d.job(job.id).version)]
    d.recorder.sent.append((dispatch.CANCEL, msgs[0]))  # a duplicate delivery of the same message
    d.drain()
    assert [r for t, r in d.results if t == dispatch.CANCEL] == [Outcome.CANCELLED, Outcome.STALE]
    assert cancels_received(sim) == 1
    assert [t.task_id for t in family.cancel_targets] == [job.provider_task_id]
    assert family.cancel_targets[0].handle == {"cancel_path": "/kling/v1/videos/text2video"}
    assert family.cancel_targets[0].input == {"prompt": "a kite"}
    done = d.job(job.id)
    assert done.status == "cancelled" and done.provider_cancel == "done" and done.next_at is None and done.provider_cancel_attempts == 1
    assert events(d, job.id)[-2:] == [
        ("running", "cancelled", "cancelled by the caller"),
        ("cancelled", "cancelled", "provider cancel did not stop the task: fal cancel answered HTTP 400: ALREADY_STARTED"),
    ]
    d.run_for(30, step=5)  # nothing left to do: no second cancel
    assert cancels_received(sim) == 1


def test_a_lost_cancel_message_is_resent_by_the_sweep(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job = running_job(d)
    cancel_job(d.rt, job.id)
    d.recorder.sent = [m for m in d.recorder.sent if m[0] != dispatch.CANCEL]  # the broker lost it
    d.drain()
    assert cancels_received(sim) == 0 and d.job(job.id).provider_cancel == "pending"
    counts = d.tick()  # next_at (now) has passed: the sweep claims the job and sends the cancel again
    assert counts["cancelled"] == 1
    assert cancels_received(sim) == 1 and d.job(job.id).provider_cancel == "done"
    assert d.tick()["cancelled"] == 0


def test_relay_503_on_cancel_is_retried_with_backoff(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job = running_job(d)
    sim.admin("/_sim/faults", {"error_5xx_next": 2, "status": 503})
    cancel_job(d.rt, job.id)
    d.drain()
    first = d.job(job.id)
    assert first.provider_cancel == "pending" and first.provider_cancel_attempts == 1
    assert first.next_at is not None
    wait_s = (first.next_at - d.clock.now()).total_seconds()
    assert 1.5 <= wait_s <= 2.5  # backoff(1): 2 s +- 20 %
    assert d.tick()["cancelled"] == 0  # not before its next_at
    d.run_for(3)
    second = d.job(job.id)
    assert second.provider_cancel == "pending" and second.provider_cancel_attempts == 2
    with session_scope(d.rt.engine) as s:
        failed_at = s.exec(select(JobEvent.at).where(JobEvent.job_id == job.id).order_by(col(JobEvent.id).desc())).first()
    assert second.next_at is not None and failed_at is not None
    assert 3.2 <= (second.next_at - failed_at).total_seconds() <= 4.8  # backoff(2): 4 s +- 20 %, from the failed try
    d.run_for(6)
    done = d.job(job.id)
    assert done.provider_cancel == "done" and done.provider_cancel_attempts == 3 and done.next_at is None
    assert cancels_received(sim) == 3
    reasons = [r for old, new, r in events(d, job.id) if old == new == "cancelled"]
    assert len(reasons) == 3
    assert reasons[0].startswith("provider cancel attempt 1 of 5 failed (HTTP 503)")
    assert reasons[1].startswith("provider cancel attempt 2 of 5 failed (HTTP 503)")
    assert "ALREADY_STARTED" in reasons[2]


def test_cancel_given_up_after_max_attempts(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(provider_cancel_max_attempts=3)
    job = running_job(d)
    sim.admin("/_sim/faults", {"error_5xx_next": 50, "status": 502})
    cancel_job(d.rt, job.id)
    d.drain()
    d.run_for(60, step=2)
    gone = d.job(job.id)
    assert gone.status == "cancelled" and gone.provider_cancel == "failed" and gone.next_at is None
    assert gone.provider_cancel_attempts == 3 and cancels_received(sim) == 3
    last = events(d, job.id)[-1]
    assert last[:2] == ("cancelled", "cancelled") and last[2].startswith("provider cancel given up: 3 attempt(s), the last: HTTP 502")
    d.run_for(60, step=10)
    assert cancels_received(sim) == 3


def test_a_family_without_cancel_gets_no_provider_cancel(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job = running_job(d, "kling", "text2video")
    cancelled = cancel_job(d.rt, job.id)
    assert cancelled.provider_cancel is None and d.recorder.of(dispatch.CANCEL) == []
    row = d.job(job.id)
    assert row.provider_cancel is None and row.next_at is None
    assert d.tick()["cancelled"] == 0


def test_a_queued_job_has_nothing_to_cancel_at_the_relay(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job, _ = create_job(d.rt, JobCreate(provider="cancelfam", operation="make", input={"prompt": "a kite"}))
    d.recorder.sent.clear()
    assert cancel_job(d.rt, job.id).provider_cancel is None and d.recorder.of(dispatch.CANCEL) == []


class CancelDuringSubmit(httpx.BaseTransport):
    """The network to the relay, where the caller cancels the job while its submit POST is out."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.cancel: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/kling/v1/videos/text2video" and self.cancel is not None:
            self.cancel()
        return self.inner.handle_request(request)


def test_a_submit_accepted_after_a_local_cancel_is_cancelled_at_the_relay(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    transport = CancelDuringSubmit()
    d = engine_factory(relay_transport=transport)
    job, _ = create_job(d.rt, JobCreate(provider="cancelfam", operation="make", input={"prompt": "a kite"}))
    transport.cancel = lambda: cancel_job(d.rt, job.id)
    d.drain()
    assert [r for t, r in d.results if t == dispatch.SUBMIT] == [Outcome.LOST_AFTER_ACCEPT]
    assert [r for t, r in d.results if t == dispatch.CANCEL] == [Outcome.CANCELLED]
    tasks = sim.admin("/_sim/tasks")["tasks"]
    assert len(tasks) == 1
    row = d.job(job.id)
    assert row.status == "cancelled" and row.provider_task_id and row.provider_cancel == "done"
    assert row.provider_handle == {"cancel_path": "/kling/v1/videos/text2video"}
    assert cancels_received(sim) == 1 and [t.task_id for t in family.cancel_targets] == [row.provider_task_id]
    trail = events(d, job.id)
    assert trail[-3:] == [
        ("submitting", "cancelled", "cancelled by the caller"),
        ("cancelled", "cancelled", f"the relay accepted task {row.provider_task_id} after the job was cancelled"),
        ("cancelled", "cancelled", "provider cancel did not stop the task: fal cancel answered HTTP 400: ALREADY_STARTED"),
    ]


def test_a_task_id_too_long_to_keep_accepted_after_a_local_cancel_is_only_noted(engine_factory, sim: Sim, family: CancelFamily) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"long_task_id_rate": 1.0})
    transport = CancelDuringSubmit()
    d = engine_factory(relay_transport=transport)
    job, _ = create_job(d.rt, JobCreate(provider="cancelfam", operation="make", input={"prompt": "a kite"}))
    transport.cancel = lambda: cancel_job(d.rt, job.id)
    d.drain()
    (task,) = sim.admin("/_sim/tasks")["tasks"]
    row = d.job(job.id)
    assert row.status == "cancelled" and row.provider_task_id is None and row.provider_cancel is None
    assert cancels_received(sim) == 0
    assert events(d, job.id)[-1] == (
        "cancelled",
        "cancelled",
        f"the relay accepted task {task['task_id'][:80]}... (300 characters, "
        "too long to keep or cancel by) after the job was cancelled; it may run and be charged",
    )
