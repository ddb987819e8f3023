"""The Suno adapter: recorded payloads of every documented shape (tests/payloads/suno), input
validation per music mode, submit bodies, continuation parents, poll requests and clip outputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, LostSubmit, ParentRef, ParentSpec, PollTarget, ProviderStatus, Rejected, State, SubmitContext, Submitted
from providers.suno import SunoAdapter, parse_task
from tests.payload_cases import cases, check_submit_or_protocol_error, load

CASES = cases("suno")
suno = SunoAdapter()
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
HOOK = "https://jobs.example.com/v1/webhooks/suno/job_1/tok"
CLIP_A, CLIP_B = "4c3b2a1f-8e7d-4f6a-9b5c-0d1e2f3a4b5c", "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"


def validate(operation: str, raw: dict[str, Any]) -> dict[str, Any]:
    """As the registry validates input: the schema, then the JSON dump without None fields."""
    return suno.operations[operation].schema.model_validate(raw).model_dump(mode="json", exclude_none=True, by_alias=False)


def ctx(callback_url: str | None = None, parent: ParentRef | None = None) -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1", callback_url=callback_url, now=NOW, parent=parent)


def parent(**kw: Any) -> ParentRef:
    fields: dict[str, Any] = {
        "job_id": "job_parent",
        "task_id": "0f3c9d2e-6b1a-4e8f-a7c5-2d4b6e8f0a1c",
        "operation": "music",
        "status": "succeeded",
        "result": {
            "clips": [
                {"id": CLIP_A, "title": "Neon Tides", "status": "complete"},
                {"id": CLIP_B, "title": "Neon Tides", "status": "error", "error_message": "moderation"},
            ]
        },
    }
    return ParentRef(**(fields | kw))


def as_dict(st: ProviderStatus) -> dict[str, Any]:
    return {
        "task_id": st.task_id,
        "state": st.state.value,
        "progress": st.progress,
        "error_message": st.error_message,
        "outputs": [{"url": o.url, "kind": o.kind, "meta": dict(o.meta)} for o in st.outputs],
        "result_data": dict(st.result_data),
    }


# --- recorded payloads ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    if check_submit_or_protocol_error(suno, resp, want):
        return
    statuses = suno.parse_poll(resp) if want["kind"] == "poll" else [suno.parse_callback(resp.headers, resp.body)]
    assert len(statuses) == len(want["statuses"])
    for st, exp in zip(statuses, want["statuses"], strict=True):
        got = as_dict(st)
        if exp["outputs"] and "meta" not in exp["outputs"][0]:
            got["outputs"] = [{"url": o["url"], "kind": o["kind"]} for o in got["outputs"]]
        for key, value in exp.items():
            assert got[key] == value, key


def test_every_recorded_case_has_all_three_files() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert {p.name for p in case.iterdir()} == {"response.json", "body", "expected.json"}, case.name


# --- input validation ------------------------------------------------------------------

SONG = {"prompt": "[Verse]\nNeon rain", "title": "Neon Tides", "tags": "synthwave"}


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ({"gpt_description_prompt": "a sea shanty about a lost ferry"}, "inspiration"),
        (SONG, "custom"),
        (SONG | {"continue_clip_id": CLIP_A, "continue_at": 61.5, "task_id": "T1"}, "continuation"),
        ({"mode": "custom"} | SONG, "custom"),
    ],
)
def test_mode_is_explicit_or_inferred_and_kept(raw: dict[str, Any], mode: str) -> None:
    assert validate("music", raw)["mode"] == mode


def test_inspiration_accepts_its_optional_fields_and_any_model_name() -> None:
    got = validate("music", {"gpt_description_prompt": "lofi rain", "make_instrumental": True, "mv": "chirp-fenix"})
    assert got == {"mode": "inspiration", "gpt_description_prompt": "lofi rain", "make_instrumental": True, "mv": "chirp-fenix"}


def test_custom_allows_empty_lyrics_for_an_instrumental() -> None:
    got = validate("music", {"prompt": "", "title": "Drift", "tags": "ambient", "negative_tags": "drums", "make_instrumental": True})
    assert got["prompt"] == "" and got["mode"] == "custom"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"mode": "inspiration"}, "gpt_description_prompt"),
        ({"title": "T", "tags": "pop"}, "prompt"),
        ({"prompt": "", "tags": "pop"}, "title"),
        ({"prompt": "", "title": "T"}, "tags"),
        ({"mode": "continuation", "prompt": "", "title": "T", "tags": "pop", "continue_at": 10, "task_id": "T1"}, "continue_clip_id"),
        (SONG | {"continue_clip_id": CLIP_A, "task_id": "T1"}, "continue_at"),
    ],
)
def test_each_mode_names_its_missing_required_field(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate("music", raw)
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"gpt_description_prompt": "x", "title": "T"}, "title"),
        ({"gpt_description_prompt": "x", "prompt": "lyrics"}, "prompt"),
        ({"gpt_description_prompt": "x", "tags": "pop"}, "tags"),
        ({"mode": "custom", "gpt_description_prompt": "x"} | SONG, "gpt_description_prompt"),
        (SONG | {"continue_at": 30}, "continue_at"),
        (SONG | {"mode": "custom", "continue_clip_id": CLIP_A}, "continue_clip_id"),
        (SONG | {"task_id": "T1"}, "task_id"),
        (SONG | {"job_id": "job_x"}, "job_id"),
        (
            SONG | {"continue_clip_id": CLIP_A, "continue_at": 1, "task_id": "T", "mode": "continuation", "gpt_description_prompt": "x"},
            "gpt_description_prompt",
        ),
    ],
)
def test_a_field_of_another_mode_is_refused_by_name(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate("music", raw)
    err = exc.value.errors()[0]
    assert err["loc"] == (field,)
    assert field in err["msg"] and "not allowed" in err["msg"]


@pytest.mark.parametrize("ref", [{}, {"task_id": "T1", "job_id": "job_x"}])
def test_continuation_needs_exactly_one_original(ref: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of task_id"):
        validate("music", SONG | {"continue_clip_id": CLIP_A, "continue_at": 12.0} | ref)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"gpt_description_prompt": ""}, "gpt_description_prompt"),
        ({"prompt": "", "title": "", "tags": "pop"}, "title"),
        ({"prompt": "", "title": "T", "tags": ""}, "tags"),
        (SONG | {"continue_clip_id": CLIP_A, "continue_at": -1, "task_id": "T1"}, "continue_at"),
        (SONG | {"mode": "remix"}, "mode"),
        (SONG | {"mv": ""}, "mv"),
        (SONG | {"wait_audio": True}, "wait_audio"),
        (SONG | {"make_instrumental": "perhaps"}, "make_instrumental"),
    ],
)
def test_bad_values_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate("music", raw)
    assert exc.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize("raw", [{}, {"prompt": ""}, {"prompt": "sea", "title": "x"}])
def test_lyrics_needs_a_non_empty_prompt_and_nothing_else(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate("lyrics", raw)
    assert validate("lyrics", {"prompt": "a ferry at dawn"}) == {"prompt": "a ferry at dawn"}


def test_schemas_publish_as_json_schema() -> None:
    for op in suno.operations.values():
        schema = op.schema.model_json_schema()
        assert schema["additionalProperties"] is False
    assert set(suno.operations) == {"music", "lyrics"}


# --- submit -----------------------------------------------------------------------------


def test_inspiration_body_has_relay_names_and_the_hook() -> None:
    req = suno.build_submit("music", validate("music", {"gpt_description_prompt": "lofi rain", "mv": "chirp-v4"}), ctx(HOOK))
    assert (req.method, req.path) == ("POST", "/suno/submit/music")
    assert req.json == {"gpt_description_prompt": "lofi rain", "mv": "chirp-v4", "notify_hook": HOOK}
    assert not any(k.lower() == "authorization" for k in req.headers)


def test_custom_body_keeps_empty_lyrics_and_has_no_hook_without_public_url() -> None:
    req = suno.build_submit("music", validate("music", {"prompt": "", "title": "Drift", "tags": "ambient"}), ctx())
    assert req.json == {"prompt": "", "title": "Drift", "tags": "ambient"}


def test_continuation_by_relay_task_id_passes_it_through() -> None:
    clean = validate("music", SONG | {"continue_clip_id": CLIP_A, "continue_at": 61.5, "task_id": "T-raw"})
    assert suno.parent_of("music", clean) is None
    req = suno.build_submit("music", clean, ctx(HOOK))
    assert req.json == SONG | {"continue_clip_id": CLIP_A, "continue_at": 61.5, "task_id": "T-raw", "notify_hook": HOOK}


def test_continuation_by_our_job_id_resolves_the_parent_task() -> None:
    clean = validate("music", SONG | {"continue_clip_id": CLIP_A, "continue_at": 61.5, "job_id": "job_parent"})
    assert suno.parent_of("music", clean) == ParentSpec(field="job_id", job_id="job_parent", statuses=frozenset({"succeeded"}))
    req = suno.build_submit("music", clean, ctx(parent=parent()))
    assert req.json == SONG | {"continue_clip_id": CLIP_A, "continue_at": 61.5, "task_id": parent().task_id}
    with pytest.raises(ValueError, match="job_parent"):
        suno.build_submit("music", clean, ctx())


def test_lyrics_body() -> None:
    req = suno.build_submit("lyrics", {"prompt": "a ferry at dawn"}, ctx(HOOK))
    assert (req.method, req.path, req.json) == ("POST", "/suno/submit/lyrics", {"prompt": "a ferry at dawn", "notify_hook": HOOK})
    assert suno.parent_of("lyrics", {"prompt": "x"}) is None


@pytest.mark.parametrize(
    ("body", "task_id"),
    [
        ({"code": "success", "message": "", "data": {"task_id": "T9"}}, "T9"),
        ({"code": "SUCCESS", "data": "T8"}, "T8"),
    ],
)
def test_submit_id_variants(body: dict[str, Any], task_id: str) -> None:
    assert suno.parse_submit(HttpResponse(200, {}, json.dumps(body).encode())) == Submitted(task_id)


@pytest.mark.parametrize("body", [b'{"code":"success","data":""}', b'{"data":"T1"}', b"not json", b"[]"])
def test_unreadable_submit_answers_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProviderProtocolError):
        suno.parse_submit(HttpResponse(200, {}, body))


@pytest.mark.parametrize(
    ("code", "message", "retryable"),
    [
        ("generate_failed", "moderation: artist name", False),
        ("fail", "insufficient credits", False),
        ("rate_limit", "", True),
        ("fail", "request timed out upstream", True),
        ("too_many_requests", "", True),
    ],
)
def test_http200_refusals_are_final_unless_they_mean_later(code: str, message: str, retryable: bool) -> None:
    got = suno.parse_submit(HttpResponse(200, {}, json.dumps({"code": code, "message": message, "data": None}).encode()))
    assert isinstance(got, Rejected) and (got.code, got.retryable) == (f"suno_{code}", retryable)


# --- parents ----------------------------------------------------------------------------

CONT = SONG | {"mode": "continuation", "continue_clip_id": CLIP_A, "continue_at": 30.0, "job_id": "job_parent"}


def test_check_parent_accepts_a_complete_clip_of_a_music_job() -> None:
    suno.check_parent("music", CONT, parent())
    suno.check_parent("lyrics", {"prompt": "x"}, parent(operation="lyrics"))


@pytest.mark.parametrize(
    ("kw", "clip", "needle"),
    [
        ({"operation": "lyrics"}, CLIP_A, "lyrics job"),
        ({"task_id": None}, CLIP_A, "no relay task id"),
        ({}, "00000000-0000-4000-8000-000000000000", f"available clip ids: {CLIP_A}"),
        ({}, CLIP_B, f"available clip ids: {CLIP_A}"),  # the errored clip cannot be extended
        ({"result": {}}, CLIP_A, "available clip ids: none"),
    ],
)
def test_check_parent_refusals(kw: dict[str, Any], clip: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        suno.check_parent("music", CONT | {"continue_clip_id": clip}, parent(**kw))


def test_a_succeeded_jobs_result_serves_as_parent() -> None:
    resp, _ = load(next(c for c in CASES if c.name == "poll_single_success_one_clip_error"))
    st = suno.parse_poll(resp)[0]
    ref = parent(result=dict(st.result_data))
    suno.check_parent("music", CONT | {"continue_clip_id": CLIP_B}, ref)
    with pytest.raises(ValueError, match=CLIP_B):
        suno.check_parent("music", CONT | {"continue_clip_id": CLIP_A}, ref)


# --- polling ----------------------------------------------------------------------------


def test_batch_poll_sends_all_ids_without_an_action_filter() -> None:
    targets = [PollTarget("job_a", "T1", "music"), PollTarget("job_b", "T2", "lyrics"), PollTarget("job_c", "T3", "music")]
    req = suno.build_poll(targets, batch=True)
    assert (req.method, req.path, req.json) == ("POST", "/suno/fetch", {"ids": ["T1", "T2", "T3"]})
    assert suno.build_poll([PollTarget("job_a", "T1", "music")]).json == {"ids": ["T1"]}


def test_single_poll_is_the_fallback() -> None:
    req = suno.build_poll([PollTarget("job_a", "task_Qm7Z", "music")], batch=False)
    assert (req.method, req.path, req.json) == ("GET", "/suno/fetch/task_Qm7Z", None)
    assert suno.build_poll([PollTarget("j", "a/b", "music")], batch=False).path == "/suno/fetch/a%2Fb"
    with pytest.raises(ValueError):
        suno.build_poll([PollTarget("a", "1", "music"), PollTarget("b", "2", "music")], batch=False)
    with pytest.raises(ValueError):
        suno.build_poll([PollTarget(f"j{i}", str(i), "music") for i in range(101)])


def clip(cid: str, status: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "title": "T",
        "status": status,
        "audio_url": f"https://cdn1.suno.ai/{cid}.mp3",
        "image_url": f"https://cdn2.suno.ai/image_{cid}.jpeg",
        "image_large_url": None,
        "video_url": "",
    } | kw


def test_outputs_per_clip_in_order_with_cover_fallback_and_no_empty_urls() -> None:
    st = parse_task({"task_id": "T", "action": "MUSIC", "status": "SUCCESS", "data": [clip("c1", "complete"), clip("c2", "complete")]})
    assert [(o.kind, o.meta["role"], o.meta["clip_id"]) for o in st.outputs] == [
        ("audio", "audio", "c1"),
        ("image", "cover", "c1"),
        ("audio", "audio", "c2"),
        ("image", "cover", "c2"),
    ]
    assert st.outputs[1].url == "https://cdn2.suno.ai/image_c1.jpeg"
    assert st.outputs[0].meta == {"clip_id": "c1", "title": "T", "role": "audio"}


def test_streaming_urls_are_never_offered_for_download() -> None:
    streaming = clip("c2", "streaming", audio_url="https://audiopipe.suno.ai/?item_id=c2")
    for status in ("IN_PROGRESS", "SUCCESS"):
        st = parse_task({"task_id": "T", "status": status, "progress": "100%", "data": [clip("c1", "complete"), streaming]})
        assert st.state is State.RUNNING and not st.outputs


def test_failure_with_a_pending_clip_and_no_complete_one_fails() -> None:
    st = parse_task({"task_id": "T", "status": "FAILURE", "fail_reason": "timed out", "data": [clip("c1", "streaming")]})
    assert (st.state, st.error_message) == (State.FAILED, "timed out")


def test_success_without_any_clip_fails() -> None:
    st = parse_task({"task_id": "T", "action": "MUSIC", "status": "SUCCESS", "data": []})
    assert st.state is State.FAILED and st.error_message


def test_upstream_task_nested_in_the_dto_data() -> None:
    upstream = {"task_id": "up", "status": "SUCCESS", "data": [clip("c1", "complete")]}
    st = parse_task({"task_id": "task_x", "action": "MUSIC", "status": "SUCCESS", "progress": "100%", "data": upstream})
    assert st.task_id == "task_x" and [o.url for o in st.outputs][:1] == ["https://cdn1.suno.ai/c1.mp3"]


@pytest.mark.parametrize(
    "data",
    [
        {"id": "L", "text": "la la", "title": "Song", "status": "complete"},
        [{"id": "L", "text": "la la", "title": "Song", "status": "complete"}],
    ],
)
def test_lyrics_result_shapes_even_without_action(data: Any) -> None:
    for task in ({"task_id": "L", "action": "LYRICS", "status": "SUCCESS", "data": data}, {"task_id": "L", "status": "SUCCESS", "data": data}):
        st = parse_task(task)
        assert (st.state, dict(st.result_data), list(st.outputs)) == (State.SUCCEEDED, {"title": "Song", "text": "la la"}, [])


def test_lyrics_failures() -> None:
    failed = parse_task({"task_id": "L", "action": "LYRICS", "status": "FAILURE", "fail_reason": "prompt rejected"})
    assert (failed.state, failed.error_message) == (State.FAILED, "prompt rejected")
    empty = parse_task({"task_id": "L", "action": "LYRICS", "status": "SUCCESS", "data": {"id": "L", "status": "error"}})
    assert empty.state is State.FAILED
    running = parse_task({"task_id": "L", "action": "LYRICS", "status": "IN_PROGRESS", "progress": "50%"})
    assert (running.state, running.progress) == (State.RUNNING, 50)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("", State.QUEUED),
        ("NOT_START", State.QUEUED),
        ("SUBMITTED", State.QUEUED),
        ("QUEUED", State.QUEUED),
        ("IN_PROGRESS", State.RUNNING),
        ("UNKNOWN", State.RUNNING),
        ("FAIL", State.FAILED),
        ("FAILURE", State.FAILED),
        ("SOMETHING_NEW", State.UNKNOWN),
    ],
)
def test_task_status_enum(status: str, state: State) -> None:
    assert parse_task({"task_id": "T", "action": "MUSIC", "status": status}).state is state


def test_callback_rejects_non_json_and_lookup_is_absent() -> None:
    with pytest.raises(ProviderProtocolError):
        suno.parse_callback({}, b"<xml/>")
    assert suno.build_lookup("music", "job_1") is None
    assert suno.parse_lookup(HttpResponse(200, {}, b"{}")) is None


def test_capabilities() -> None:
    caps = suno.capabilities
    assert (caps.max_batch, caps.callback_trust, caps.result_ttl_s, caps.lost_submit is LostSubmit.LOOKUP) == (100, "hint", None, False)
    assert (caps.expected_s, caps.deadline_s) == (100.0, 1800.0)
    assert suno.name == "suno"
