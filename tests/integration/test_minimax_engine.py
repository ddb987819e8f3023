"""MiniMax through the engine: real database, the simulator over loopback. Both operations in both
answer shapes (native with the files/retrieve read, new-api's DTO with the file inside), HTTP-200
base_resp errors (1002 later then taken, 1008/1026/2013 failing with MiniMax's words, 1002 on a
query polled through), a failed and an expired task, a download URL gone (asked again, then
`result_expired`), the documented prefix replaced by K4U_ROUTE_PREFIXES, and a lost submit answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from models.errors import RequestInvalid
from models.schemas import JobCreate
from models.tables import JobEvent
from tests.conftest import Sim
from workers.db import session_scope
from workers.services.create import create_job

TTS = {"text": "Hello from the relay.", "voice_setting": {"voice_id": "English_Graceful_Lady", "speed": 1.0}}


def sim_task(sim: Sim, task_id: str) -> dict[str, Any]:
    rows = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("family") == "minimax" and t["task_id"] == task_id]
    assert rows, f"simulator has no MiniMax task {task_id}"
    return rows[0]


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


@pytest.mark.parametrize("envelope", ["native", "newapi"])
def test_video_and_tts_end_to_end(d, sim: Sim, envelope: str) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"envelope": envelope})
    video = d.create("minimax", "video", {"prompt": "a lighthouse at dusk [Push in]", "duration": 6, "resolution": "1080P"})
    tts = d.create("minimax", "tts_async", TTS | {"text": "Hello from the relay. [sim:shape=dto_bare]"})
    d.run_for(20)
    for job_id, kind in ((video, "video"), (tts, "audio")):
        job = d.public(job_id)
        assert job["status"] == "succeeded", job["error"]
        task = sim_task(sim, job["provider_task_id"])
        assert [a["kind"] for a in job["assets"]] == [kind]
        assert job["assets"][0]["sha256"] == task["content_sha256"] and job["assets"][0]["size"] == task["content_size"]
        assert job["result"]["file_id"] == str(task["file_id"])
        # the signed URL's own expiry (about 9 h from the simulator's clock), not the family's default
        expires = int(parse_qs(urlsplit(job["assets"][0]["source_url"]).query)["Expires"][0])
        assert d.job(job_id).result_expires_at == datetime.fromtimestamp(expires, UTC)
    assert d.public(video)["result"]["video_width"] == 1366
    assert d.public(tts)["result"]["cost"] == {"usage_characters": len("Hello from the relay. [sim:shape=dto_bare]")}
    seen = sim.admin("/_sim/auth-seen")["routes"]
    assert seen["GET /_sim/media/minimax/{name}"]["with_auth"] == 0, "the relay key must never reach a download URL"
    # native answers need the files/retrieve read; a DTO with the file inside does not (the bare one does)
    retrieves = seen.get("GET /minimax/v1/files/retrieve", {}).get("with_auth", 0)
    assert retrieves == (2 if envelope == "native" else 1)


def test_base_resp_errors_later_and_final(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    later = d.create("minimax", "video", {"prompt": "busy then fine [sim:busy=1]"})
    assert d.job(later).status == "queued" and d.job(later).error_code == "minimax_1002"
    final = {code: d.create("minimax", "video", {"prompt": f"refused [sim:code={code}]"}) for code in (1008, 1026, 2013)}
    polled = d.create("minimax", "tts_async", TTS | {"text": "query busy [sim:query_busy=2]"})
    d.run_for(30)
    job = d.public(later)
    assert job["status"] == "succeeded", job["error"]
    for code, job_id in final.items():
        job = d.public(job_id)
        assert job["status"] == "failed" and job["error"]["code"] == f"minimax_{code}"
    assert "insufficient balance" in d.public(final[1008])["error"]["message"]
    assert "sensitive" in d.public(final[1026])["error"]["message"]
    assert d.public(polled)["status"] == "succeeded", "a 1002 on a query is the query's, not the task's"
    paid = [p for p in sim.admin("/_sim/paid")["paid"] if p["family"] == "minimax"]
    assert len(paid) == 2, "a refused submit makes no task and costs nothing; the 1002 one is paid once"


def test_failed_and_expired_tasks_carry_the_reason(d) -> None:  # type: ignore[no-untyped-def]
    failed = d.create("minimax", "video", {"prompt": "x [sim:fail]"})
    expired = d.create("minimax", "tts_async", TTS | {"text": "x [sim:expired]"})
    d.run_for(20)
    job = d.public(failed)
    assert job["status"] == "failed" and job["error"]["code"] == "minimax_1027" and "sensitive" in job["error"]["message"]
    job = d.public(expired)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired" and "Expired" in job["error"]["message"]


def test_a_download_url_that_expired_fails_result_expired_after_one_fresh_one(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = d.create("minimax", "video", {"prompt": "x [sim:expire=0]"})
    d.run_for(20)
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "result_expired", job.error_message
    with session_scope(d.rt.engine) as s:
        reasons = [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()]
    assert sum("fresh" in r for r in reasons) == 1, reasons
    assert sim_task(sim, job.provider_task_id or "")["retrieves"] == 2, "the first URL, then one fresh one"


def test_limits_are_checked_before_any_paid_call(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({"prompt": "x", "resolution": "1080P", "duration": 10}, "input.resolution"),
        ({"prompt": "x", "model": "MiniMax-Hailuo-2.3-Fast"}, "input.first_frame_image"),
        ({"prompt": "x" * 2001}, "input.prompt"),
    ]
    for inp, field in cases:
        with pytest.raises(RequestInvalid) as exc:
            create_job(d.rt, JobCreate(provider="minimax", operation="video", input=inp))
        assert exc.value.field == field, exc.value.message
    with pytest.raises(RequestInvalid) as exc:
        create_job(d.rt, JobCreate(provider="minimax", operation="tts_async", input=TTS | {"text_file_id": 123}))
    assert exc.value.field == "input.text"
    assert sim.admin("/_sim/paid")["count"] == 0


def test_another_route_prefix_by_setting(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0, route_prefixes="minimax=/v1")
    job_id = d.create("minimax", "tts_async", TTS)
    d.run_for(15)
    assert d.public(job_id)["status"] == "succeeded"
    seen = sim.admin("/_sim/auth-seen")["routes"]
    assert seen["POST /v1/t2a_async_v2"]["with_auth"] == 1 and "POST /minimax/v1/t2a_async_v2" not in seen


def test_lost_submit_answer_fails_without_a_second_charge(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """No client id, no lookup: the job fails clearly rather than risk a second charge."""
    d = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = d.create("minimax", "video", {"prompt": "lost answer"})
    d.run_for(60)
    job = d.public(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown"
    assert sim.admin("/_sim/paid")["count"] == 1, "the paid POST must not be resent"
