"""The Kling adapter against recorded payloads of every documented shape (tests/payloads/kling)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from providers.base import HttpResponse, PollTarget, ProviderStatus, SubmitContext
from providers.kling import KlingAdapter
from tests.payload_cases import cases, check_submit_or_protocol_error, load

CASES = cases("kling")
kling = KlingAdapter()


def check_status(st: ProviderStatus, want: dict[str, Any]) -> None:
    assert st.state.value == want["state"]
    assert [{"url": o.url, "kind": o.kind} for o in st.outputs] == want["outputs"]
    for key in ("task_id", "external_id", "progress", "error_message"):
        if key in want:
            assert getattr(st, key) == want[key], key
    if "result_data" in want:
        assert dict(st.result_data) == want["result_data"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    if check_submit_or_protocol_error(kling, resp, want, check_status):
        return
    st = kling.parse_poll(resp)[0] if want["kind"] == "poll" else kling.parse_callback(resp.headers, resp.body)
    check_status(st, want)


def test_build_submit_adds_correlation_and_callback_but_no_credentials() -> None:
    ctx = SubmitContext(job_id="job_1", external_id="job_1", callback_url="https://us/v1/webhooks/kling/job_1/tok", now=datetime.now(UTC))
    req = kling.build_submit("text2video", {"prompt": "fox", "model_name": "kling-v1"}, ctx)
    assert (req.method, req.path) == ("POST", "/kling/v1/videos/text2video")
    assert req.json == {"prompt": "fox", "model_name": "kling-v1", "external_task_id": "job_1", "callback_url": ctx.callback_url}
    assert not any(k.lower() == "authorization" for k in req.headers)


def test_build_submit_without_public_url_has_no_callback() -> None:
    ctx = SubmitContext(job_id="j", external_id="j", callback_url=None, now=datetime.now(UTC))
    assert "callback_url" not in kling.build_submit("image", {"prompt": "x"}, ctx).json


@pytest.mark.parametrize(
    ("operation", "path"),
    [
        ("text2video", "/kling/v1/videos/text2video/T1"),
        ("image2video", "/kling/v1/videos/image2video/T1"),
        ("image", "/kling/v1/images/generations/T1"),
    ],
)
def test_poll_path_follows_operation(operation: str, path: str) -> None:
    assert kling.build_poll([PollTarget("job", "T1", operation)]).path == path


def test_lookup_by_external_id_and_absent_task() -> None:
    req = kling.build_lookup("text2video", "job_abc")
    assert req is not None and req.path == "/kling/v1/videos/text2video/job_abc"
    absent = HttpResponse(400, {}, b'{"code":"task_not_exist","message":"task_not_exist","data":null}')
    assert kling.parse_lookup(absent) is None
    found = HttpResponse(200, {}, json.dumps({"code": 0, "data": {"task_id": "99", "task_status": "processing"}}).encode())
    got = kling.parse_lookup(found)
    assert got is not None and got.task_id == "99"


def test_batch_poll_is_refused() -> None:
    with pytest.raises(ValueError):
        kling.build_poll([PollTarget("a", "1", "image"), PollTarget("b", "2", "image")])
