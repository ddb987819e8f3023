"""The MiniMax adapter: recorded answers of every documented shape (tests/payloads/minimax: submit,
status query, files/retrieve, callbacks; native and new-api DTO), the two-read poll flow, the
model matrix checked before anything is sent, and the relay's values kept bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from models.errors import ProviderProtocolError, ProviderUnavailable
from providers.base import CallbackInputs, HttpRequest, HttpResponse, LostSubmit, PollTarget, ProviderStatus, Rejected, State, SubmitContext, Submitted
from providers.minimax import QUERY, RETRIEVE, SUBMIT, MinimaxAdapter
from providers.minimax.inputs import VIDEO_MODELS
from providers.minimax.parse import normalize_status
from providers.registry import validate_input
from tests.payload_cases import cases, check_submit_or_protocol_error, load

CASES = cases("minimax")
mm = MinimaxAdapter()
NOW = datetime(2026, 12, 1, tzinfo=UTC)
TID = "106916112212032"
SUCCESS = {"task_id": TID, "status": "Success", "file_id": "205258526306433", "video_width": 1366, "video_height": 768, "base_resp": {"status_code": 0}}


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def ctx(callback_url: str | None = None) -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1", callback_url=callback_url, now=NOW)


def drive(operation: str, *answers: HttpResponse) -> tuple[list[HttpRequest], ProviderStatus | None]:
    """Run the poll flow on the given answers: the requests it made and its status (None: it wants more)."""
    flow = mm.poll([PollTarget("job_1", TID, operation)], batch=False)
    requests = [next(flow)]
    for resp in answers:
        try:
            requests.append(flow.send(resp))
        except StopIteration as done:
            [st] = done.value
            return requests, st
    return requests, None


def check_status(st: ProviderStatus, want: dict[str, Any]) -> None:
    got = {
        "task_id": st.task_id,
        "state": st.state.value,
        "progress": st.progress,
        "error_code": st.error_code,
        "error_message": st.error_message,
        "result_data": dict(st.result_data),
        "outputs": [{"url": o.url, "kind": o.kind} for o in st.outputs],
        "expires_at": int(st.expires_at.timestamp()) if st.expires_at else None,
    }
    for key, value in want.items():
        assert got[key] == value, key


# --- recorded payloads ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    if want["kind"] == "submit":
        assert check_submit_or_protocol_error(mm, resp, want, check_status)
        return
    if want["kind"] == "callback":
        verdict = mm.read_callback(resp.headers, resp.body, CallbackInputs(secret=None, now=NOW))
        assert verdict.trust == "hint" and verdict.status is not None
        check_status(verdict.status, want["status"])
        return
    answers = [resp] if want["kind"] == "query" else [answer(SUCCESS), resp]
    if want["result"] in ("protocol_error", "unavailable"):
        with pytest.raises(ProviderUnavailable if want["result"] == "unavailable" else ProviderProtocolError):
            drive(want["operation"], *answers)
        return
    requests, st = drive(want["operation"], *answers)
    if want["result"] == "retrieve":
        assert st is None and requests[-1] == HttpRequest("GET", RETRIEVE, query={"file_id": want["file_id"]})
        return
    assert st is not None and st.task_id == TID
    check_status(st, want["status"])


def test_every_recorded_case_has_all_three_files() -> None:
    assert len(CASES) >= 40
    for case in CASES:
        assert {p.name for p in case.iterdir()} == {"body", "expected.json", "response.json"}, case.name


# --- statuses and the flow -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, state",
    [
        ("Queueing", State.QUEUED),
        ("Preparing", State.QUEUED),
        ("Processing", State.RUNNING),
        ("Success", State.SUCCEEDED),
        ("success", State.SUCCEEDED),
        ("Fail", State.FAILED),
        ("Failed", State.FAILED),
        ("Expired", State.FAILED),
        ("NOT_START", State.QUEUED),
        ("SUBMITTED", State.QUEUED),
        ("IN_PROGRESS", State.RUNNING),
        ("SUCCESS", State.SUCCEEDED),
        ("FAILURE", State.FAILED),
        ("Rendering", State.UNKNOWN),
        ("", State.UNKNOWN),
        (None, State.UNKNOWN),
        (7, State.UNKNOWN),
    ],
)
def test_every_status_word(raw: Any, state: State) -> None:
    assert normalize_status(raw) is state


def test_a_plain_running_answer_takes_the_quiet_path() -> None:
    """No result data, no detail: the engine reschedules it in one statement with the others."""
    _, st = drive("video", answer({"task_id": TID, "status": "Processing", "file_id": "", "base_resp": {"status_code": 0, "status_msg": "success"}}))
    assert st is not None and st.state is State.RUNNING and not st.result_data and st.detail is None


def test_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        assert normalize_status("brand_new_minimax_word") is State.UNKNOWN
    assert sum("brand_new_minimax_word" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("operation", ["video", "tts_async"])
def test_the_poll_is_a_status_query_then_one_retrieve(operation: str) -> None:
    url = "https://cdn.example/out.bin?Expires=1763680598"
    file = {"file_id": 205258526306433, "filename": "output.mp4", "download_url": url}
    requests, st = drive(operation, answer(SUCCESS), answer({"file": file, "base_resp": {"status_code": 0, "status_msg": "success"}}))
    assert requests[0] == HttpRequest("GET", QUERY[operation], query={"task_id": TID})
    assert requests[1] == HttpRequest("GET", RETRIEVE, query={"file_id": "205258526306433"})
    assert st is not None and st.state is State.SUCCEEDED and st.progress == 100
    assert st.expires_at == datetime.fromtimestamp(1763680598, UTC)
    assert st.outputs[0].meta["file_id"] == "205258526306433" and not st.outputs[0].relay_route
    assert st.result_data["file_id"] == "205258526306433"
    if operation == "video":
        assert st.result_data["video_width"] == 1366 and st.outputs[0].kind == "video"


@pytest.mark.parametrize("expires", ["soon", "-5", "99999999999999", ""])
def test_an_unreadable_url_expiry_is_left_to_the_family_default(expires: str) -> None:
    file = {"file_id": 1, "download_url": f"https://cdn.example/a.mp4?Expires={expires}"}
    _, st = drive("video", answer(SUCCESS), answer({"file": file, "base_resp": {"status_code": 0}}))
    assert st is not None and st.state is State.SUCCEEDED and st.expires_at is None
    assert mm.capabilities.result_ttl_s == 9 * 3600


# --- submit ---------------------------------------------------------------------------


def test_video_body_carries_the_input_and_the_callback_url() -> None:
    inp = validate_input("minimax", "video", {"prompt": "a cat [Pan left]", "duration": 10, "resolution": "768P", "prompt_optimizer": False})
    req = mm.build_submit("video", inp, ctx("https://jobs.example/v1/webhooks/minimax/job_1/tok"))
    assert req.method == "POST" and req.path == SUBMIT["video"] == "/minimax/v1/video_generation"
    assert req.json == inp | {"callback_url": "https://jobs.example/v1/webhooks/minimax/job_1/tok"}
    assert "callback_url" not in (mm.build_submit("video", inp, ctx()).json or {})


def test_tts_body() -> None:
    raw = {
        "model": "speech-02-hd",
        "text": "Long text...",
        "voice_setting": {"voice_id": "male-qn-qingse", "speed": 1.2, "vol": 1, "pitch": 0, "emotion": "happy"},
        "audio_setting": {"audio_sample_rate": 32000, "bitrate": 128000, "format": "mp3", "channel": 1},
        "pronunciation_dict": {"tone": ["omg/oh my god"]},
        "language_boost": "auto",
        "voice_modify": {"pitch": 10, "intensity": -20, "timbre": 0},
    }
    inp = validate_input("minimax", "tts_async", raw)
    req = mm.build_submit("tts_async", inp, ctx("https://jobs.example/hook"))
    assert req.path == "/minimax/v1/t2a_async_v2" and req.json == raw


def test_task_ids_are_never_cut_and_relay_text_is_bounded() -> None:
    long_id = "7" * 300
    got = mm.parse_submit(answer({"task_id": long_id, "base_resp": {"status_code": 0}}))
    assert isinstance(got, Submitted) and got.task_id == long_id
    refused = mm.parse_submit(answer({"task_id": "", "base_resp": {"status_code": 1026, "status_msg": "x" * 5000}}))
    assert isinstance(refused, Rejected) and len(refused.message) == 2000
    _, st = drive("video", answer({"task_id": TID, "status": "Fail", "base_resp": {"status_code": 1027, "status_msg": "y" * 5000}}))
    assert st is not None and st.state is State.FAILED and len(st.error_message or "") == 2000
    long_file = "9" * 201  # an id is never cut: one too long to store is an unreadable answer (polled again)
    with pytest.raises(ProviderProtocolError, match="201 characters"):
        drive("video", answer(SUCCESS | {"file_id": long_file}))
    requests, _ = drive("video", answer(SUCCESS | {"file_id": long_file[:200]}))
    assert requests[-1].query == {"file_id": long_file[:200]}


@pytest.mark.parametrize("code", ["1002", "1002.0", True, None, {"x": 1}])
def test_odd_base_resp_codes(code: Any) -> None:
    got = mm.parse_submit(answer({"task_id": "" if code == "1002" else TID, "base_resp": {"status_code": code, "status_msg": "m"}}))
    if code == "1002":  # a numeric string is the code it spells
        assert isinstance(got, Rejected) and got.code == "minimax_1002" and got.retryable
    else:  # unreadable: as if absent (the answer names its task)
        assert isinstance(got, Submitted) and got.task_id == TID


def test_capabilities_declare_no_lookup_and_hint_callbacks() -> None:
    caps = mm.capabilities
    assert caps.lost_submit is LostSubmit.NONE and mm.lookup("video", "job_1") is None
    assert caps.callback_trust == "hint" and not caps.cancels and caps.max_batch == 1
    assert caps.route_prefix == "/minimax/v1"
    assert all(p.startswith(caps.route_prefix + "/") for p in [*SUBMIT.values(), *QUERY.values(), RETRIEVE])


# --- inputs ---------------------------------------------------------------------------


def test_the_model_matrix_is_published() -> None:
    schema = mm.operations["video"].schema.model_json_schema()
    assert schema["x-models"] == VIDEO_MODELS
    assert schema["x-models"]["MiniMax-Hailuo-2.3"]["durations_at"] == {"1080P": [6]}
    assert set(schema["properties"]["model"]["enum"]) == set(VIDEO_MODELS)


IMG = "https://img.example/first.png"


@pytest.mark.parametrize(
    "inp, field, words",
    [
        ({"prompt": "x", "resolution": "1080P", "duration": 10}, "resolution", "6 s only"),
        ({"prompt": "x", "model": "MiniMax-Hailuo-02", "resolution": "1080P", "duration": 10}, "resolution", "6 s only"),
        ({"prompt": "x", "resolution": "512P"}, "resolution", "768P, 1080P"),
        ({"prompt": "x", "model": "T2V-01-Director", "duration": 10}, "duration", "6"),
        ({"prompt": "x", "duration": 8}, "duration", ""),
        ({"prompt": "x", "model": "MiniMax-Hailuo-2.3-Fast"}, "first_frame_image", "needs"),
        ({"prompt": "x", "model": "I2V-01-live"}, "first_frame_image", "needs"),
        ({"prompt": "x", "model": "S2V-01"}, "subject_reference", "needs"),
        ({"prompt": "x", "last_frame_image": IMG}, "last_frame_image", "MiniMax-Hailuo-02"),
        ({"prompt": "x", "model": "T2V-01-Director", "first_frame_image": IMG}, "first_frame_image", "does not take"),
        ({"prompt": "x" * 2001}, "prompt", ""),
        ({}, "prompt", "required"),
        ({"prompt": "x", "first_frame_image": "file:///etc/passwd"}, "first_frame_image", "http"),
        ({"prompt": "x", "first_frame_image": "data:text/plain;base64,aGk="}, "first_frame_image", "image"),
        ({"prompt": "x", "model": "Hailuo-99"}, "model", ""),
        ({"prompt": "x", "callback_url": "https://x"}, "callback_url", ""),
    ],
)
def test_bad_video_input_names_the_field(inp: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_input("minimax", "video", inp)
    err = exc.value.errors()[0]
    assert err["loc"][0] == field and words in err["msg"], err


@pytest.mark.parametrize(
    "inp",
    [
        {"prompt": "x", "resolution": "1080P", "duration": 6},
        {"model": "MiniMax-Hailuo-2.3-Fast", "first_frame_image": IMG},
        {"prompt": "x", "model": "MiniMax-Hailuo-02", "first_frame_image": IMG, "last_frame_image": IMG, "resolution": "512P", "duration": 10},
        {"prompt": "x", "model": "S2V-01", "subject_reference": [{"type": "character", "image": [IMG]}]},
        {"prompt": "x", "model": "I2V-01-Director", "first_frame_image": "data:image/png;base64,iVBORw0KGgo="},
    ],
)
def test_good_video_input(inp: dict[str, Any]) -> None:
    assert validate_input("minimax", "video", inp)


@pytest.mark.parametrize(
    "inp, field",
    [
        ({"text": "a", "text_file_id": 1, "voice_setting": {"voice_id": "v"}}, "text"),
        ({"voice_setting": {"voice_id": "v"}}, "text"),
        ({"text": "x" * 50001, "voice_setting": {"voice_id": "v"}}, "text"),
        ({"text": "a"}, "voice_setting"),
        ({"text": "a", "voice_setting": {"voice_id": "v", "speed": 3}}, "voice_setting"),
        ({"text": "a", "voice_setting": {"voice_id": "v"}, "audio_setting": {"format": "ogg"}}, "audio_setting"),
        ({"text": "a", "voice_setting": {"voice_id": "v"}, "model": "gpt-4o"}, "model"),
        ({"text": "a", "voice_setting": {"voice_id": "v", "bad key": 1}}, "voice_setting"),
        ({"text": "a", "voice_setting": {"voice_id": "v"}, "speed": 1}, "speed"),
    ],
)
def test_bad_tts_input_names_the_field(inp: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_input("minimax", "tts_async", inp)
    assert exc.value.errors()[0]["loc"][0] == field, exc.value.errors()


def test_get_providers_publishes_the_matrix_and_the_prefix() -> None:
    from api.routes.providers import list_providers

    [published] = [p for p in list_providers().providers if p.name == "minimax"]
    assert published.route_prefix == "/minimax/v1" and published.lost_submit == "none" and published.result_ttl_s == 9 * 3600
    ops = {o.name: o.input_schema for o in published.operations}
    assert set(ops) == {"video", "tts_async"} and ops["video"]["x-models"]["S2V-01"]["requires"] == ["subject_reference"]


def test_the_documented_examples_are_valid_input() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text()
    examples = [json.loads(line) for line in text.splitlines() if line.startswith('{"provider": "minimax"')]
    assert {e["operation"] for e in examples} == {"video", "tts_async"} and len(examples) >= 5
    for e in examples:
        assert validate_input("minimax", e["operation"], e["input"])
