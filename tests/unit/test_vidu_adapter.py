"""The Vidu adapter against recorded payloads of every documented shape (tests/payloads/vidu), the
requests it builds (our payload echo, our callback URL, the route per operation), and the input
schemas: the per-model matrix published as `x-models` and enforced with errors naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers.base import HttpResponse, PollTarget, ProviderStatus, State, SubmitContext
from providers.registry import ADAPTERS, clean_input, route_prefix_map, with_prefix
from providers.vidu import MATRIX, ViduAdapter
from tests.payload_cases import cases, check_submit_or_protocol_error, load

CASES = cases("vidu")
vidu = ViduAdapter()
IMG = "https://images.example.com/a.png"
PNG_URI = "data:image/png;base64,iVBORw0KGgo="


def check_status(st: ProviderStatus, want: dict[str, Any]) -> None:
    assert st.state.value == want["state"]
    assert [{"url": o.url, "kind": o.kind} for o in st.outputs] == want["outputs"]
    for key in ("task_id", "external_id", "progress", "error_code", "error_message"):
        if key in want:
            assert getattr(st, key) == want[key], key
    if "cost" in want:
        assert st.result_data.get("cost") == want["cost"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    if want.get("result") == "protocol_error" and want["kind"] == "poll":
        from models.errors import ProviderProtocolError

        with pytest.raises(ProviderProtocolError):
            vidu.read_poll(resp, PollTarget("job_1", "T-from-target", "text2video"))
        return
    if check_submit_or_protocol_error(vidu, resp, want, check_status):
        return
    if want["kind"] == "poll":
        st = vidu.read_poll(resp, PollTarget("job_1", "T-from-target", want["operation"]))
    else:
        st = vidu.parse_callback(resp.headers, resp.body)
    check_status(st, want)


def ctx(callback: str | None = "https://jobs.example.com/v1/webhooks/vidu/job_1/tok") -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1-a2", callback_url=callback, now=datetime.now(UTC))


@pytest.mark.parametrize(
    ("op", "path"),
    [
        ("text2video", "/ent/v2/text2video"),
        ("img2video", "/ent/v2/img2video"),
        ("start_end2video", "/ent/v2/start-end2video"),
        ("reference2video", "/ent/v2/reference2video"),
        ("reference2image", "/ent/v2/reference2image"),
    ],
)
def test_submit_route_per_operation_carries_our_payload_and_callback(op: str, path: str) -> None:
    inp = {"model": "viduq2", "prompt": "p", "images": [IMG] * (2 if op == "start_end2video" else 1)}
    if op == "text2video":
        del inp["images"]
    req = vidu.build_submit(op, clean_input(vidu, op, inp), ctx())
    assert (req.method, req.path) == ("POST", path)
    assert req.json["payload"] == "job_1-a2" and req.json["callback_url"] == ctx().callback_url
    assert not any(k.lower() == "authorization" for k in req.headers)
    assert with_prefix(req.path, route_prefix_map("vidu=/vidu/ent/v2")) == "/vidu" + path


def test_without_a_public_url_there_is_no_callback_url() -> None:
    req = vidu.build_submit("text2video", {"model": "viduq1", "prompt": "p"}, ctx(callback=None))
    assert "callback_url" not in req.json and req.json["payload"] == "job_1-a2"


def test_poll_path_and_no_batch() -> None:
    assert vidu.build_poll([PollTarget("j", "848723454735167488", "img2video")]).path == "/ent/v2/tasks/848723454735167488/creations"
    assert vidu.build_poll([PollTarget("j", "a/b", "img2video")]).path == "/ent/v2/tasks/a%2Fb/creations"
    with pytest.raises(ValueError):
        vidu.build_poll([PollTarget("a", "1", "text2video"), PollTarget("b", "2", "text2video")])


def test_a_long_task_id_is_never_cut() -> None:
    long_id = "9" * 400
    got = vidu.parse_submit(HttpResponse(200, {}, b'{"task_id": "' + long_id.encode() + b'", "state": "created"}'))
    assert got.task_id == long_id  # type: ignore[union-attr]


def test_capabilities() -> None:
    caps = vidu.capabilities
    assert ADAPTERS["vidu"].capabilities == caps
    assert (caps.lost_submit.value, caps.callback_trust, caps.result_ttl_s, caps.route_prefix) == ("callback_echo", "token", 3600, "/ent/v2")
    assert vidu.lookup("text2video", "job_1") is None


def test_the_matrix_is_published_with_every_video_schema() -> None:
    for op in ("text2video", "img2video", "start_end2video", "reference2video"):
        schema = vidu.operations[op].schema.model_json_schema()
        assert schema["x-models"] == MATRIX
        assert schema["x-models"]["viduq1"]["durations"] == [5] and schema["x-models"]["viduq2"]["durations"] == list(range(1, 11))
    assert set(vidu.operations["reference2image"].schema.model_json_schema()["properties"]) >= {"images", "prompt", "aspect_ratio"}


def refused(op: str, inp: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as exc:
        clean_input(vidu, op, inp)
    err = exc.value.errors()[0]
    return tuple(err["loc"]), err["msg"]


@pytest.mark.parametrize(
    ("op", "inp", "loc", "says"),
    [
        ("text2video", {"model": "viduq1", "prompt": "p", "duration": 4}, ("duration",), "viduq1 makes 5 s videos"),
        ("text2video", {"model": "viduq2", "prompt": "p", "duration": 11}, ("duration",), "1-10"),
        ("text2video", {"model": "viduq3-pro", "prompt": "p", "duration": 17}, ("duration",), "16"),
        ("img2video", {"model": "viduq2", "images": [IMG], "audio": True}, ("audio",), "q3"),
        ("text2video", {"model": "viduq2", "prompt": "x" * 2001}, ("prompt",), "2000"),
        ("text2video", {"model": "viduq2"}, ("prompt",), "required"),
        ("text2video", {"model": "viduq2", "prompt": "p", "aspect_ratio": "21:9"}, ("aspect_ratio",), "16:9"),
        ("text2video", {"model": "viduq2", "prompt": "p", "payload": "mine"}, ("payload",), "set by Key4U Jobs"),
        ("text2video", {"model": "viduq2", "prompt": "p", "callback_url": "https://me"}, ("callback_url",), "beside input"),
        ("text2video", {"model": "viduq2", "prompt": "p", "nonsense": 1}, ("nonsense",), "not permitted"),
        ("img2video", {"model": "viduq2", "images": []}, ("images",), "at least 1"),
        ("start_end2video", {"model": "viduq2", "images": [IMG]}, ("images",), "at least 2"),
        ("reference2video", {"model": "viduq2", "prompt": "p", "images": [IMG] * 8}, ("images",), "at most 7"),
        ("reference2image", {"model": "viduq2", "prompt": "p", "images": ["ftp://x/a.png"]}, ("images",), "http(s) URL"),
        ("reference2image", {"model": "viduq2", "prompt": "p", "images": ["data:text/plain;base64,aGk="]}, ("images",), "data:image"),
        ("img2video", {"model": "viduq2", "images": [IMG], "style": "anime"}, ("style",), "not permitted"),
    ],
)
def test_documented_impossible_inputs_name_the_field(op: str, inp: dict[str, Any], loc: tuple[str, ...], says: str) -> None:
    got_loc, msg = refused(op, inp)
    assert got_loc[: len(loc)] == loc and says in msg, (got_loc, msg)


@pytest.mark.parametrize(
    ("op", "inp"),
    [
        ("text2video", {"model": "viduq3-pro", "prompt": "p", "duration": 16, "audio": True, "resolution": "1080p", "bgm": True, "style": "anime"}),
        ("text2video", {"model": "viduq1", "prompt": "p", "duration": 5, "resolution": "1080p", "seed": 7, "watermark": True}),
        ("img2video", {"model": "vidu2.0", "images": [PNG_URI], "duration": 4, "resolution": "1080p", "movement_amplitude": "large"}),
        ("start_end2video", {"model": "viduq3-turbo", "images": [IMG, PNG_URI], "duration": 1}),
        ("reference2video", {"model": "viduq2", "prompt": "p", "images": [IMG] * 7, "aspect_ratio": "3:4"}),
        ("reference2image", {"model": "viduq2", "prompt": "p", "images": [IMG], "aspect_ratio": "4:3", "resolution": "1080p"}),
    ],
)
def test_what_the_models_take_is_accepted(op: str, inp: dict[str, Any]) -> None:
    assert clean_input(vidu, op, inp) == inp


def test_states_map_and_unknown_words_keep_polling() -> None:
    t = PollTarget("j", "1", "text2video")
    for word, state in [
        ("created", State.QUEUED),
        ("queueing", State.QUEUED),
        ("processing", State.RUNNING),
        ("PROCESSING", State.RUNNING),
        ("", State.UNKNOWN),
    ]:
        st = vidu.read_poll(HttpResponse(200, {}, f'{{"id":"1","state":"{word}"}}'.encode()), t)
        assert st.state is state, word
    st = vidu.read_poll(HttpResponse(200, {}, b'{"id":"1","state":{"odd":1},"credits":true}'), t)
    assert st.state is State.UNKNOWN and "cost" not in st.result_data
