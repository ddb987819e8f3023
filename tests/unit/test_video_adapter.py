"""Sora, Veo and Grok adapters against the shapes of providers.md §2.5-2.7, §5, §6, §10.6."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, ParentRef, PollTarget, State, SubmitContext, Submitted
from providers.registry import get_adapter, validate_input
from providers.video import GROK, SORA, VEO
from providers.video.status import STATUS_MAP, normalize_status, read_status

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def poll_once(adapter: Any, target: PollTarget, resp: HttpResponse) -> Any:
    flow = adapter.poll([target], batch=False)
    req = next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(resp)
    return req, done.value.value[0]


@pytest.mark.parametrize(
    "raw, state",
    [
        ("queued", State.QUEUED),
        ("pending", State.QUEUED),
        ("submitted", State.QUEUED),
        ("preparing", State.QUEUED),
        ("unknown", State.QUEUED),
        ("", State.QUEUED),
        ("NOT_START", State.QUEUED),
        ("in_progress", State.RUNNING),
        ("processing", State.RUNNING),
        ("running", State.RUNNING),
        ("generating", State.RUNNING),
        ("image_downloading", State.RUNNING),
        ("video_generating", State.RUNNING),
        ("video_generation_completed", State.RUNNING),
        ("video_upsampling", State.RUNNING),
        ("video_upsampling_completed", State.RUNNING),
        ("completed", State.SUCCEEDED),
        ("success", State.SUCCEEDED),
        ("SUCCEEDED", State.SUCCEEDED),
        ("finished", State.SUCCEEDED),
        ("failed", State.FAILED),
        ("error", State.FAILED),
        ("video_generation_failed", State.FAILED),
        ("video_upsampling_failed", State.FAILED),
        ("cancelled", State.CANCELLED),
        ("canceled", State.CANCELLED),
        ("warming_up", State.UNKNOWN),
        (None, State.QUEUED),
        (17, State.UNKNOWN),
    ],
)
def test_every_status_synonym(raw: Any, state: State) -> None:
    assert normalize_status(raw) is state


def test_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        assert normalize_status("brand_new_state_x") is State.UNKNOWN
    assert sum("brand_new_state_x" in r.message for r in caplog.records) == 1


def test_unified_query_with_colon_id_is_url_encoded() -> None:
    t = PollTarget("job_1", "sora-2:task_01kabc", "video_unified")
    req, st = poll_once(
        SORA,
        t,
        answer(
            {
                "id": t.task_id,
                "status": "pending",
                "progress": "0",
                "detail": {"pending_info": {"status": "processing", "progress_pct": 0.35}},
                "video_url": None,
            }
        ),
    )
    url = httpx.Request("GET", "http://relay" + req.path, params=req.query).url
    assert req.path == "/v1/video/query" and url.raw_path == b"/v1/video/query?id=sora-2%3Atask_01kabc"
    # progress by field: "0" is a percent, 0.35 a fraction; the inner status disagreeing is shown, not trusted
    assert st.state is State.QUEUED and st.progress == 35 and "processing" in (st.detail or "")


def test_progress_scale_is_chosen_by_field_not_value() -> None:
    assert read_status({"id": "t", "status": "processing", "progress": "1"}, content_path=None).progress == 1
    assert read_status({"id": "t", "status": "processing", "progress": 1}, content_path=None).progress == 1
    assert read_status({"id": "t", "status": "processing", "detail": {"pending_info": {"progress_pct": 1.0}}}, content_path=None).progress == 100
    assert read_status({"id": "t", "status": "processing", "progress": "45%"}, content_path=None).progress == 45


@pytest.mark.parametrize(
    "body",
    [
        {"id": "task_1", "status": "completed", "video_url": "https://cdn.example/v.mp4"},
        {"task_id": "task_1", "status": "succeeded", "url": "https://cdn.example/v.mp4"},
        {"code": "success", "message": "", "data": {"task_id": "task_1", "status": "SUCCESS", "result_url": "https://cdn.example/v.mp4"}},
        {"id": "task_1", "status": "finished", "metadata": json.dumps({"url": "https://cdn.example/v.mp4"})},
    ],
)
def test_unified_success_in_every_envelope(body: dict[str, Any]) -> None:
    _, st = poll_once(GROK, PollTarget("j", "task_1", "video"), answer(body))
    assert st.state is State.SUCCEEDED and st.task_id == "task_1"
    assert [o.url for o in st.outputs] == ["https://cdn.example/v.mp4"] and not st.outputs[0].relay_route


def test_unified_success_needs_a_url_and_veo_intermediates_are_not_terminal() -> None:
    t = PollTarget("j", "veo3.1-fast:task_9", "video")
    for raw in ("video_generation_completed", "video_upsampling", "video_upsampling_completed"):
        assert poll_once(VEO, t, answer({"id": t.task_id, "status": raw, "video_url": None}))[1].state is State.RUNNING
    assert poll_once(VEO, t, answer({"id": t.task_id, "status": "completed", "video_url": None}))[1].state is State.RUNNING
    done = poll_once(
        VEO, t, answer({"id": t.task_id, "status": "completed", "video_url": "https://x/v.mp4", "metadata": {"duration": 8}, "enhanced_prompt": "a cat"})
    )[1]
    assert done.state is State.SUCCEEDED and done.result_data["metadata"] == {"duration": 8}
    assert done.result_data["enhanced_prompt"] == "a cat"


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"status": "failed", "error": "content policy"}, "content policy"),
        ({"status": "failed", "error": {"message": "quota", "code": "x"}}, "quota"),
        ({"status": "error", "fail_reason": "upstream timeout"}, "upstream timeout"),
        ({"status": "video_generation_failed", "detail": {"failure_reason": "unsafe prompt"}}, "unsafe prompt"),
        ({"status": "video_upsampling_failed"}, "video_upsampling_failed"),
    ],
)
def test_failure_reason_from_every_placement(body: dict[str, Any], reason: str) -> None:
    _, st = poll_once(VEO, PollTarget("j", "task_2", "video"), answer({"id": "task_2", **body}))
    assert st.state is State.FAILED and reason in (st.error_message or "")


def test_openai_completed_without_url_is_the_relay_content_route() -> None:
    t = PollTarget("j", "task_abc", "video")
    req, st = poll_once(
        SORA,
        t,
        answer(
            {"id": "task_abc", "object": "video", "status": "completed", "progress": 100, "expires_at": 1796083200, "metadata": '{"seed": 3}', "error": None}
        ),
    )
    assert req.path == "/v1/videos/task_abc"
    assert st.state is State.SUCCEEDED and st.outputs[0].url == "/v1/videos/task_abc/content" and st.outputs[0].relay_route
    assert st.expires_at == datetime.fromtimestamp(1796083200, UTC) and st.result_data["metadata"] == {"seed": 3}
    direct = poll_once(SORA, t, answer({"id": "task_abc", "status": "completed", "video_url": "https://relay.example/f/v.mp4"}))[1]
    assert direct.outputs[0].url == "https://relay.example/f/v.mp4" and not direct.outputs[0].relay_route


def test_openai_in_progress_and_not_found() -> None:
    t = PollTarget("j", "task_abc", "video")
    assert poll_once(SORA, t, answer({"id": "task_abc", "status": "in_progress", "progress": 40}))[1].progress == 40
    gone = poll_once(SORA, t, answer({"code": "task_not_exist", "message": "task_not_exist"}, 400))[1]
    assert gone.state is State.UNKNOWN
    with pytest.raises(ProviderProtocolError):
        poll_once(SORA, t, answer({"error": {"message": "bad"}}, 400))


def ctx() -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1", callback_url=None, now=NOW)


def test_openai_submit_json_and_multipart() -> None:
    inp = validate_input("sora", "video", {"prompt": "a cat", "seconds": 8, "size": "720x1280", "watermark": False})
    req = SORA.build_submit("video", inp, ctx())
    assert (req.path, req.json) == ("/v1/videos", {"prompt": "a cat", "model": "sora-2", "seconds": "8", "size": "720x1280", "watermark": False})
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    inp = validate_input("sora", "video", {"prompt": "a cat", "input_reference": uri, "metadata": {"a": 1}})
    req = SORA.build_submit("video", inp, ctx())
    assert req.json is None and req.files[0].data == png and req.files[0].content_type == "image/png"
    assert req.form == {"prompt": "a cat", "model": "sora-2", "metadata": '{"a":1}'}
    url_ref = validate_input("sora", "video", {"prompt": "p", "input_reference": "https://img.example/a.png"})
    assert SORA.build_submit("video", url_ref, ctx()).json["input_reference"] == "https://img.example/a.png"


@pytest.mark.parametrize(
    "bad",
    [
        {"prompt": ""},
        {"prompt": "p", "seconds": "abc"},
        {"prompt": "p", "size": "big"},
        {"prompt": "p", "input_reference": "file:///etc/passwd"},
        {"prompt": "p", "input_reference": "data:image/png;base64,@@@"},
    ],
)
def test_openai_input_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_input("sora", "video", bad)


def test_unified_submit_and_envelopes() -> None:
    inp = validate_input("veo", "video", {"prompt": "sea", "enhance_prompt": True, "aspect_ratio": "16:9"})
    req = VEO.build_submit("video", inp, ctx())
    assert req.path == "/v1/video/create" and req.json == {"prompt": "sea", "model": "veo3.1-fast", "aspect_ratio": "16:9", "enhance_prompt": True}
    for body in (
        {"id": "veo3.1-fast:task_1", "status": "pending", "status_update_time": 1},
        {"task_id": "veo3.1-fast:task_1", "status": "queued"},
        {"data": {"task_id": "veo3.1-fast:task_1", "status": "pending"}},
        {"data": {"id": "veo3.1-fast:task_1"}},
    ):
        got = VEO.parse_submit(answer(body))
        assert isinstance(got, Submitted) and got.task_id == "veo3.1-fast:task_1"


def test_submit_rejections_and_unknown_outcomes() -> None:
    assert SORA.parse_submit(answer({"error": {"message": "prompt rejected", "type": "invalid_request_error"}}, 400)).retryable is False  # type: ignore[union-attr]
    assert SORA.parse_submit(answer({"error": {"message": "slow down"}}, 429)).retryable is True  # type: ignore[union-attr]
    with pytest.raises(ProviderProtocolError):
        SORA.parse_submit(answer({"error": "bad gateway"}, 502))
    with pytest.raises(ProviderProtocolError):
        SORA.parse_submit(HttpResponse(200, {}, b"<html>"))
    with pytest.raises(ProviderProtocolError):
        SORA.parse_submit(answer({"status": "queued"}))
    assert SORA.parse_submit(answer({"code": "fail_to_fetch_task", "message": "upstream said no"})).code == "fail_to_fetch_task"  # type: ignore[union-attr]


def test_remix_by_video_id_and_by_job() -> None:
    inp = validate_input("sora", "remix", {"prompt": "now at night", "video_id": "task_abc"})
    assert SORA.parent_of("remix", inp) is None
    assert SORA.build_submit("remix", inp, ctx()).path == "/v1/videos/task_abc/remix"
    inp = validate_input("sora", "remix", {"prompt": "now at night", "job_id": "job_parent"})
    spec = SORA.parent_of("remix", inp)
    assert spec is not None and spec.field == "job_id"
    parent = ParentRef("job_parent", "task_p", "video", "succeeded", {})
    SORA.check_parent("remix", inp, parent)
    c = SubmitContext(job_id="job_1", external_id="job_1", callback_url=None, now=NOW, parent=parent)
    assert SORA.build_submit("remix", inp, c).json == {"prompt": "now at night"}
    with pytest.raises(ValueError, match="OpenAI format"):
        SORA.check_parent("remix", inp, ParentRef("job_parent", "sora-2:task_p", "video_unified", "succeeded", {}))


@pytest.mark.parametrize("bad", [{"prompt": "p"}, {"prompt": "p", "job_id": "a", "video_id": "b"}, {"prompt": "p", "video_id": "sora-2:task_1"}])
def test_remix_input_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_input("sora", "remix", bad)


def test_families_and_operations() -> None:
    assert set(get_adapter("sora").operations) == {"video", "video_unified", "remix"}
    assert set(get_adapter("veo").operations) == {"video", "video_openai"}
    assert set(get_adapter("grok").operations) == {"video"}
    assert all(s in STATUS_MAP for s in ("queued", "completed", "failed"))
    # no lookup and no callbacks through the relay: a lost answer fails the job instead of a resend
    assert all(a.lookup(op, "job_1") is None for a in (SORA, VEO, GROK) for op in a.operations)
