"""The generic new-api video adapter (`newapi_video`) against recorded payloads of every documented
shape (tests/payloads/newapi_video: new-api's task DTO, the OpenAI video object, the flat answer of
new-api's docs, vendor answers inside `data`), plus its inputs, requests and bounds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, LostSubmit, PollTarget, ProviderStatus, State, SubmitContext
from providers.newapi_video import NEWAPI_VIDEO
from providers.newapi_video.status import DATA_DEPTH, DATA_VALUES, content_route_of, read_task, url_in_data
from providers.registry import get_adapter, validate_input
from tests.payload_cases import cases, check_submit_or_protocol_error, load

CASES = cases("newapi_video")
T = "task_Rk3v9QmXo2LpWc7nYd4sTb8uHa1eJf6g"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def poll_once(operation: str, resp: HttpResponse, task_id: str = T) -> tuple[Any, ProviderStatus]:
    flow = NEWAPI_VIDEO.poll([PollTarget("job_1", task_id, operation)], batch=False)
    req = next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(resp)
    return req, done.value.value[0]


def check_status(st: ProviderStatus, want: dict[str, Any]) -> None:
    assert st.state.value == want["state"], (st.state, st.error_message)
    if "outputs" in want:
        got = [{"url": o.url, "kind": o.kind, "source": o.meta.get("source")} for o in st.outputs]
        assert got == want["outputs"]
    for key in ("task_id", "progress"):
        if key in want:
            assert getattr(st, key) == want[key], key
    if "error_message_contains" in want:
        assert st.error_message and want["error_message_contains"] in st.error_message, st.error_message
    if "expires_at" in want:
        assert st.expires_at is not None and st.expires_at.isoformat() == want["expires_at"]
    if st.state is State.FAILED:
        assert st.error_code == "provider_failed" and st.error_message


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    if want["kind"] == "submit":
        assert check_submit_or_protocol_error(NEWAPI_VIDEO, resp, want, check_status)
        return
    if want.get("result") == "protocol_error":
        with pytest.raises(ProviderProtocolError):
            poll_once(want["operation"], resp)
        return
    _, st = poll_once(want["operation"], resp)
    check_status(st, want)


def test_every_shape_is_recorded() -> None:
    names = {c.name for c in CASES}
    for prefix in ("submit_", "poll_dto_", "poll_object_", "poll_flat_"):
        assert sum(n.startswith(prefix) for n in names) >= 3, prefix


def ctx() -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1", callback_url="https://us.example/hook", now=NOW)


def test_generations_submit_is_json_with_vendor_fields_passed_through() -> None:
    raw = {
        "model": "wan2.5-i2v-preview",
        "prompt": "a fox",
        "image": "https://in.example/fox.png",
        "size": "1280*720",
        "duration": "5",
        "metadata": {"prompt_extend": True, "watermark": False, "seed": 7, "audio": "https://in.example/a.mp3"},
        "negative_prompt": "blur",
    }
    inp = validate_input("newapi_video", "generations", raw)
    req = NEWAPI_VIDEO.build_submit("generations", inp, ctx())
    assert (req.method, req.path) == ("POST", "/v1/video/generations")
    assert req.json == raw | {"duration": 5}  # neither our job id nor the callback URL is sent: the route takes none
    assert not any(k.lower() == "authorization" for k in req.headers)


def test_videos_submit_json_and_multipart_without_the_sora_size_rule() -> None:
    inp = validate_input(
        "newapi_video", "videos", {"model": "MiniMax-Hailuo-02", "prompt": "p", "size": "1080P", "seconds": 6, "first_frame_image": "https://a/b.png"}
    )
    req = NEWAPI_VIDEO.build_submit("videos", inp, ctx())
    assert (req.path, req.json) == (
        "/v1/videos",
        {"model": "MiniMax-Hailuo-02", "prompt": "p", "size": "1080P", "seconds": "6", "first_frame_image": "https://a/b.png"},
    )
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 64
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    inp = validate_input("newapi_video", "videos", {"model": "wan2.5", "prompt": "p", "input_reference": uri, "metadata": '{"seed": 3}'})
    req = NEWAPI_VIDEO.build_submit("videos", inp, ctx())
    assert req.path == "/v1/videos" and req.json is None and req.files[0].data == png and req.files[0].field == "input_reference"
    assert req.form == {"model": "wan2.5", "prompt": "p", "metadata": '{"seed":3}'}


@pytest.mark.parametrize("size", ["1280*720", "720P", "1080p", "1280x720", "16:9", "4k"])
def test_sizes_of_every_vendor_are_legal(size: str) -> None:
    for op in ("generations", "videos"):
        assert validate_input("newapi_video", op, {"model": "m", "prompt": "p", "size": size})["size"] == size


@pytest.mark.parametrize(
    "operation, bad, field",
    [
        ("generations", {"prompt": "p"}, "model"),
        ("generations", {"model": "", "prompt": "p"}, "model"),
        ("generations", {"model": "m"}, "prompt"),
        ("generations", {"model": "m", "prompt": "  "}, "prompt"),
        ("generations", {"model": "m", "metadata": {"watermark": False}}, "prompt"),
        ("generations", {"model": "m", "prompt": "p", "size": "1280 x 720"}, "size"),
        ("generations", {"model": "m", "prompt": "p", "size": "x" * 33}, "size"),
        ("generations", {"model": "m", "prompt": "p", "duration": 0}, "duration"),
        ("generations", {"model": "m", "prompt": "p", "duration": 121}, "duration"),
        ("generations", {"model": "m", "prompt": "p", "duration": "5s"}, "duration"),
        ("generations", {"model": "m", "prompt": "p", "duration": True}, "duration"),
        ("generations", {"model": "m", "prompt": "p", "duration": 5.5}, "duration"),
        ("generations", {"model": "m", "prompt": "p", "seconds": "-3"}, "seconds"),
        ("generations", {"model": "m", "prompt": "p", "image": "file:///etc/passwd"}, "image"),
        ("generations", {"model": "m", "prompt": "p", "images": ["https://a/b.png", "not base64!"]}, "images"),
        ("generations", {"model": "m", "prompt": "p", "images": ["https://a/b.png"] * 10}, "images"),
        ("generations", {"model": "m", "prompt": "p", "metadata": "[1, 2]"}, "metadata"),
        ("generations", {"model": "m", "prompt": "p", "metadata": "{not json"}, "metadata"),
        ("videos", {"model": "m"}, "prompt"),
        ("videos", {"prompt": "p"}, "model"),
        ("videos", {"model": "m", "prompt": "p", "seconds": "0"}, "seconds"),
        ("videos", {"model": "m", "prompt": "p", "input_reference": "data:image/png;base64,@@@"}, "input_reference"),
    ],
)
def test_bad_input_names_the_field(operation: str, bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_input("newapi_video", operation, bad)
    assert {e["loc"][0] for e in exc.value.errors() if e["loc"]} == {field}, exc.value.errors()


@pytest.mark.parametrize(
    "raw",
    [
        {"model": "m", "image": "https://in.example/a.png"},
        {"model": "m", "images": ["iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"]},
        {"model": "m", "input_reference": "https://in.example/a.png"},
        {"model": "m", "metadata": {"img_url": "https://in.example/a.png"}},
        {"model": "m", "metadata": '{"first_frame_url": "https://in.example/a.png"}'},
    ],
)
def test_generations_without_prompt_when_an_image_is_given(raw: dict[str, Any]) -> None:
    assert "prompt" not in validate_input("newapi_video", "generations", raw)


def test_poll_paths_quote_the_id_and_follow_the_operation() -> None:
    assert NEWAPI_VIDEO.build_poll([PollTarget("j", "task_a/b", "generations")]).path == "/v1/video/generations/task_a%2Fb"
    assert NEWAPI_VIDEO.build_poll([PollTarget("j", T, "videos")]).path == f"/v1/videos/{T}"
    with pytest.raises(ValueError):
        NEWAPI_VIDEO.build_poll([PollTarget("a", "1", "videos"), PollTarget("b", "2", "videos")])


def test_the_dto_row_number_is_never_the_task_id() -> None:
    st = read_task({"code": "success", "data": {"id": 4711, "task_id": T, "status": "QUEUED"}})
    assert st.task_id == T
    assert read_task({"code": "success", "data": {"id": 4711, "status": "QUEUED"}}, task_id=T).task_id == T
    long_id = "task_" + "x" * 400  # never cut: the engine refuses ids over its column instead
    assert read_task({"task_id": long_id, "status": "queued"}).task_id == long_id


def test_content_route_rule() -> None:
    assert content_route_of(f"https://any.host/v1/videos/{T}/content", T) == f"/v1/videos/{T}/content"
    assert content_route_of(f"https://h/v1/videos/{T}/content?sig=1", T) == f"/v1/videos/{T}/content?sig=1"
    assert content_route_of("https://h/v1/videos/task_other/content", T) is None  # another task's: an ordinary URL, no key
    assert content_route_of(f"https://h/v1/videos/{T}/content/extra", T) is None
    assert content_route_of(f"https://h/v1/videos/{T}/content", None) is None
    # a relative path the relay writes is only followed when it is this task's content route
    st = read_task({"task_id": T, "status": "succeeded", "url": "/etc/passwd", "result_url": f"/v1/videos/{T}/content"})
    assert [o.url for o in st.outputs] == [f"/v1/videos/{T}/content"]
    st = read_task({"task_id": T, "status": "succeeded", "url": "/internal/file.mp4"})
    assert st.state is State.FAILED and not st.outputs


def test_url_search_in_data_is_bounded() -> None:
    deep: Any = "https://cdn.example/deep.mp4"
    for _ in range(DATA_DEPTH + 1):
        deep = {"level": deep}
    assert url_in_data(deep, T) is None
    shallow: Any = "https://cdn.example/ok.mp4"
    for _ in range(DATA_DEPTH - 1):
        shallow = {"level": shallow}
    found = url_in_data(shallow, T)
    assert found is not None and found.url == "https://cdn.example/ok.mp4"
    wide = {f"k{i}": i for i in range(DATA_VALUES * 5)} | {"zz_video": "https://cdn.example/late.mp4"}
    assert url_in_data(wide, T) is None
    many = {"items": [*range(10**6), "https://cdn.example/x.mp4"]}
    assert url_in_data(many, T) is None


def test_url_search_prefers_the_video_and_skips_inputs_and_images() -> None:
    data = {
        "input": {"video_url": "https://in.example/source.mp4"},
        "output": {"thumbnail": "https://cdn.example/t.jpg", "file": "https://cdn.example/file", "videos": [{"url": "https://cdn.example/v.mp4"}]},
    }
    found = url_in_data(data, T)
    assert found is not None and (found.url, found.source) == ("https://cdn.example/v.mp4", "data.output.videos[0].url")
    found = url_in_data({"output": {"file": "https://cdn.example/file"}}, T)
    assert found is not None and found.url == "https://cdn.example/file"  # any http(s) URL when nothing says video
    assert url_in_data({"output": {"cover_image_url": "https://cdn.example/c.png", "image": "https://cdn.example/i.png"}}, T) is None
    assert url_in_data(json.dumps({"output": {"video_url": "https://cdn.example/s.mp4"}}), T) is None  # a string is not searched...
    st = read_task({"code": "success", "data": {"task_id": T, "status": "SUCCESS", "data": json.dumps({"output": {"video_url": "https://cdn.example/s.mp4"}})}})
    assert [o.url for o in st.outputs] == ["https://cdn.example/s.mp4"]  # ...unless it is the task's data, kept as JSON text


@pytest.mark.parametrize(
    "body",
    [
        {"status": None},
        {"status": 17, "progress": {"a": 1}},
        {"status": ["x"], "metadata": 5, "data": [1, [2, [3]]], "result_url": 9},
        {"code": "success", "data": "not an object"},
        {"task_id": {"nested": 1}, "status": "IN_PROGRESS", "progress": "abc%"},
        {"status": "SUCCESS", "result_url": "javascript:alert(1)"},
        {"status": "failed", "error": ["not", "a", "message"]},
    ],
)
def test_odd_values_never_break_a_poll(body: dict[str, Any]) -> None:
    for op in ("generations", "videos"):
        _, st = poll_once(op, answer(body))
        assert isinstance(st, ProviderStatus) and (st.progress is None or 0 <= st.progress <= 100)
        if st.state is State.FAILED:
            assert st.error_message


def test_long_relay_texts_are_bounded() -> None:
    _, st = poll_once("generations", answer({"code": "success", "data": {"task_id": T, "status": "FAILURE", "fail_reason": "x" * 50_000}}))
    assert st.state is State.FAILED and st.error_message is not None and len(st.error_message) == 2000


def test_money_safety_capabilities() -> None:
    adapter = get_adapter("newapi_video")
    assert adapter is NEWAPI_VIDEO and set(adapter.operations) == {"generations", "videos"}
    caps = adapter.capabilities
    assert caps.lost_submit is LostSubmit.NONE and not caps.cancels and caps.max_batch == 1 and caps.route_prefix is None
    assert all(adapter.lookup(op, "job_1") is None for op in adapter.operations)
    assert adapter.cancel(PollTarget("job_1", T, "videos")) is None


def test_the_documented_examples_are_valid_inputs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text()
    examples = [json.loads(line) for line in doc.splitlines() if line.startswith('{"provider": "newapi_video"')]
    assert {e["operation"] for e in examples} == {"generations", "videos"}
    for e in examples:
        validate_input(e["provider"], e["operation"], e["input"])
