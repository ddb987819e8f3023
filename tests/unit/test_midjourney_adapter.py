"""The Midjourney adapter against recorded payloads (tests/payloads/midjourney), plus inputs,
request building, button resolution and parent checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, LostSubmit, ParentRef, PollTarget, ProviderStatus, Rejected, State, SubmitContext, Submitted
from providers.midjourney import MidjourneyAdapter, build_seed, describe_prompts, parse_seed
from tests.payload_cases import cases, check_submit_or_protocol_error, load

CASES = cases("midjourney")
PAYLOADS = CASES[0].parent
mj = MidjourneyAdapter()
HOOK = "https://jobs.example.com/v1/webhooks/midjourney/job_new/tok"


def check_status(st: ProviderStatus, want: dict[str, Any]) -> None:
    assert st.state.value == want["state"]
    assert [{"url": o.url, "kind": o.kind, "meta": dict(o.meta)} for o in st.outputs] == want["outputs"]
    for key in ("task_id", "external_id", "progress", "error_code", "error_message"):
        if key in want:
            assert getattr(st, key) == want[key], key
    if "result_data" in want:
        assert dict(st.result_data) == want["result_data"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    if check_submit_or_protocol_error(mj, resp, want, check_status):
        return
    statuses = mj.parse_poll(resp) if want["kind"] == "poll" else [mj.parse_callback(resp.headers, resp.body)]
    assert len(statuses) == len(want["statuses"])
    for st, w in zip(statuses, want["statuses"], strict=True):
        check_status(st, w)


# -- inputs -------------------------------------------------------------------------------

DATA = "data:image/png;base64,iVBORw0KGgo="


def clean(operation: str, raw: dict[str, Any]) -> dict[str, Any]:
    """What the registry stores as job.input (validate_input's dump)."""
    return mj.operations[operation].schema.model_validate(raw).model_dump(mode="json", exclude_none=True, by_alias=False)


def error_of(operation: str, raw: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as exc:
        clean(operation, raw)
    err = exc.value.errors()[0]
    return ".".join(str(p) for p in err["loc"]), err["msg"]


@pytest.mark.parametrize(
    ("operation", "raw", "field"),
    [
        ("imagine", {}, "prompt"),
        ("imagine", {"prompt": ""}, "prompt"),
        ("imagine", {"prompt": "   "}, "prompt"),
        ("imagine", {"prompt": "x", "base64Array": ["https://x/y.png"]}, "base64Array"),
        ("imagine", {"prompt": "x", "botType": "DALL_E"}, "botType"),
        ("imagine", {"prompt": "x", "mode": "slow"}, "mode"),
        ("blend", {}, "base64Array"),
        ("blend", {"base64Array": [DATA]}, "base64Array"),
        ("blend", {"base64Array": [DATA] * 6}, "base64Array"),
        ("blend", {"base64Array": [DATA, DATA], "dimensions": "WIDE"}, "dimensions"),
        ("describe", {}, "base64"),
        ("describe", {"base64": "https://example.com/a.png"}, "base64"),
        ("video", {"image": "https://x/a.png", "motion": "medium"}, "motion"),
        ("video", {"action": "extend", "index": 4, "taskId": "1"}, "index"),
        ("upload", {}, "base64Array"),
        ("upload", {"base64Array": []}, "base64Array"),
    ],
)
def test_bad_input_names_the_field(operation: str, raw: dict[str, Any], field: str) -> None:
    loc, msg = error_of(operation, raw)
    assert field in loc or field in msg


@pytest.mark.parametrize(
    ("operation", "raw"),
    [
        ("imagine", {"prompt": "x", "bogus": 1}),
        ("action", {"taskId": "1", "customId": "MJ::JOB::upsample::1::h", "bogus": 1}),
        ("blend", {"base64Array": [DATA, DATA], "bogus": 1}),
        ("describe", {"base64": DATA, "bogus": 1}),
        ("modal", {"taskId": "1", "bogus": 1}),
        ("video", {"image": "https://x/a.png", "bogus": 1}),
        ("upload", {"base64Array": [DATA], "bogus": 1}),
        ("upload", {"base64Array": [DATA], "state": "x"}),
    ],
)
def test_extra_fields_are_rejected(operation: str, raw: dict[str, Any]) -> None:
    loc, msg = error_of(operation, raw)
    assert loc in ("bogus", "state") and "Extra inputs" in msg


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "is required"),
        ({"job_id": "job_a", "button": "U1", "taskId": "1", "customId": "c"}, "not both"),
        ({"job_id": "job_a", "customId": "c"}, "not both"),
        ({"job_id": "job_a"}, "job_id and button go together"),
        ({"button": "U1"}, "job_id and button go together"),
        ({"taskId": "1"}, "taskId and customId go together"),
    ],
)
def test_action_takes_exactly_one_form(raw: dict[str, Any], message: str) -> None:
    assert message in error_of("action", raw)[1]


@pytest.mark.parametrize(
    ("operation", "raw", "message"),
    [
        ("modal", {}, "exactly one of job_id or taskId"),
        ("modal", {"job_id": "job_a", "taskId": "1"}, "exactly one of job_id or taskId"),
        ("video", {}, "image is required"),
        ("video", {"image": "https://x/a.png", "index": 1}, "only for action: extend"),
        ("video", {"action": "extend", "taskId": "1"}, "extend needs index"),
        ("video", {"action": "extend", "index": 0}, "exactly one of job_id or taskId"),
    ],
)
def test_parent_forms_are_checked(operation: str, raw: dict[str, Any], message: str) -> None:
    assert message in error_of(operation, raw)[1]


def test_valid_inputs_keep_the_proxy_field_names() -> None:
    assert clean("action", {"taskId": "17", "customId": "MJ::JOB::upsample::1::h", "chooseSameChannel": True}) == {
        "taskId": "17",
        "customId": "MJ::JOB::upsample::1::h",
        "chooseSameChannel": True,
    }
    assert clean("blend", {"base64Array": [DATA, DATA], "dimensions": "SQUARE", "mode": "relax"}) == {
        "base64Array": [DATA, DATA],
        "dimensions": "SQUARE",
        "mode": "relax",
    }
    assert clean("video", {"action": "extend", "index": 0, "job_id": "job_v"}) == {"action": "extend", "index": 0, "job_id": "job_v"}


# -- submit requests ----------------------------------------------------------------------


def ctx(callback_url: str | None = HOOK, parent: ParentRef | None = None) -> SubmitContext:
    return SubmitContext(job_id="job_new", external_id="job_new", callback_url=callback_url, now=datetime.now(UTC), parent=parent)


@pytest.mark.parametrize(
    ("operation", "raw", "path"),
    [
        ("imagine", {"prompt": "fox"}, "/mj/submit/imagine"),
        ("imagine", {"prompt": "fox", "mode": "fast"}, "/mj-fast/mj/submit/imagine"),
        ("blend", {"base64Array": [DATA, DATA], "mode": "relax"}, "/mj-relax/mj/submit/blend"),
        ("describe", {"base64": DATA, "mode": "turbo"}, "/mj-turbo/mj/submit/describe"),
        ("action", {"taskId": "1", "customId": "MJ::JOB::upsample::1::h"}, "/mj/submit/action"),
        ("modal", {"taskId": "1", "prompt": "a hat"}, "/mj/submit/modal"),
        ("video", {"image": "https://x/a.png", "motion": "low"}, "/mj/submit/video"),
        ("upload", {"base64Array": [DATA], "mode": "fast"}, "/mj-fast/mj/submit/upload-discord-images"),
    ],
)
def test_submit_path_and_mode_prefix(operation: str, raw: dict[str, Any], path: str) -> None:
    req = mj.build_submit(operation, clean(operation, raw), ctx())
    assert (req.method, req.path) == ("POST", path)
    assert "mode" not in req.json
    assert not any(k.lower() == "authorization" for k in req.headers)


def test_submit_adds_hook_and_state_echo() -> None:
    req = mj.build_submit("imagine", clean("imagine", {"prompt": "fox", "botType": "NIJI_JOURNEY"}), ctx())
    assert req.json == {"prompt": "fox", "botType": "NIJI_JOURNEY", "state": "job_new", "notifyHook": HOOK}


def test_submit_keeps_the_callers_state_and_omits_hook_without_public_url() -> None:
    req = mj.build_submit("imagine", clean("imagine", {"prompt": "fox", "state": "batch-7"}), ctx(callback_url=None))
    assert req.json == {"prompt": "fox", "state": "batch-7"}


def test_upload_is_not_a_task_so_no_hook_or_state() -> None:
    req = mj.build_submit("upload", clean("upload", {"base64Array": [DATA]}), ctx())
    assert req.json == {"base64Array": [DATA]}


GRID = json.loads((PAYLOADS / "poll_list_two_tasks" / "body").read_bytes())[1]
UPSCALED = json.loads((PAYLOADS / "poll_fetch_newapi_upscale_success" / "body").read_bytes())


def parent_from(task: dict[str, Any], job_id: str = "job_parent", operation: str = "imagine", status: str = "succeeded") -> ParentRef:
    """The parent as the engine loads it: job.result is what parse_poll produced."""
    st = mj.parse_poll(HttpResponse(200, {}, json.dumps(task).encode()))[0]
    return ParentRef(job_id=job_id, task_id=st.task_id, operation=operation, status=status, result=dict(st.result_data))


@pytest.mark.parametrize(
    ("task", "button", "custom_id"),
    [
        (GRID, "U1", "MJ::JOB::upsample::1::0b5c9a3e-4f6d-4b8a-9c1e-7d2f3a6b8e41"),
        (GRID, "u1", "MJ::JOB::upsample::1::0b5c9a3e-4f6d-4b8a-9c1e-7d2f3a6b8e41"),
        (GRID, "V3", "MJ::JOB::variation::3::0b5c9a3e-4f6d-4b8a-9c1e-7d2f3a6b8e41"),
        (GRID, "reroll", "MJ::JOB::reroll::0::0b5c9a3e-4f6d-4b8a-9c1e-7d2f3a6b8e41::SOLO"),
        (UPSCALED, "zoom_out_2x", "MJ::Outpaint::50::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "Zoom Out 1.5x", "MJ::Outpaint::75::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "zoom_out_1.5x", "MJ::Outpaint::75::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "Vary (Region)", "MJ::Inpaint::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "vary_region", "MJ::Inpaint::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "upscale_subtle", "MJ::JOB::upsample_v6_2x_subtle::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "pan_left", "MJ::JOB::pan_left::1::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3::SOLO"),
        (UPSCALED, "bookmark", "MJ::BOOKMARK::e3a7f1c2-8b4d-4e5f-a6b7-c8d9e0f1a2b3"),
    ],
)
def test_action_resolves_the_button_from_the_parent_job(task: dict[str, Any], button: str, custom_id: str) -> None:
    parent = parent_from(task)
    raw = clean("action", {"job_id": "job_parent", "button": button, "chooseSameChannel": True})
    mj.check_parent("action", raw, parent)
    req = mj.build_submit("action", raw, ctx(parent=parent))
    assert req.path == "/mj/submit/action"
    assert req.json == {"taskId": task["id"], "customId": custom_id, "chooseSameChannel": True, "state": "job_new", "notifyHook": HOOK}


def test_check_parent_lists_the_available_buttons() -> None:
    raw = clean("action", {"job_id": "job_parent", "button": "U5"})
    with pytest.raises(ValueError) as exc:
        mj.check_parent("action", raw, parent_from(GRID))
    assert str(exc.value) == "no button 'U5' on job job_parent; available: U1, U2, U3, U4, reroll, V1, V2, V3, V4"
    with pytest.raises(ValueError, match=r"available: Upscale \(Subtle\), .*Zoom Out 2x, .*pan_left, .*bookmark"):
        mj.check_parent("action", clean("action", {"job_id": "job_parent", "button": "U1"}), parent_from(UPSCALED))
    bare = ParentRef("job_parent", "17", "imagine", "succeeded", {})
    with pytest.raises(ValueError, match="available: none"):
        mj.check_parent("action", raw, bare)


def test_check_parent_needs_a_task_id_and_the_right_state() -> None:
    with pytest.raises(ValueError, match="no Midjourney task id"):
        mj.check_parent("action", clean("action", {"job_id": "j", "button": "U1"}), ParentRef("j", None, "imagine", "succeeded", {}))
    modal = clean("modal", {"job_id": "j", "prompt": "a red hat"})
    with pytest.raises(ValueError, match="not awaiting input"):
        mj.check_parent("modal", modal, ParentRef("j", "17", "action", "running", {"awaiting_input": False}))
    mj.check_parent("modal", modal, ParentRef("j", "17", "action", "running", {"awaiting_input": True}))
    extend = clean("video", {"action": "extend", "index": 1, "job_id": "j"})
    with pytest.raises(ValueError, match="extend needs a video job"):
        mj.check_parent("video", extend, ParentRef("j", "17", "imagine", "succeeded", {}))
    mj.check_parent("video", extend, ParentRef("j", "17", "video", "succeeded", {}))


@pytest.mark.parametrize(
    ("operation", "raw", "statuses"),
    [
        ("action", {"job_id": "job_p", "button": "U1"}, {"succeeded"}),
        ("action", {"taskId": "1", "customId": "c"}, None),
        ("modal", {"job_id": "job_p"}, {"running"}),
        ("modal", {"taskId": "1"}, None),
        ("video", {"action": "extend", "index": 2, "job_id": "job_p"}, {"succeeded"}),
        ("video", {"action": "extend", "index": 2, "taskId": "1"}, None),
        ("video", {"image": "https://x/a.png"}, None),
        ("imagine", {"prompt": "fox"}, None),
    ],
)
def test_parent_of(operation: str, raw: dict[str, Any], statuses: set[str] | None) -> None:
    spec = mj.parent_of(operation, clean(operation, raw))
    if statuses is None:
        assert spec is None
    else:
        assert spec is not None and (spec.field, spec.job_id, set(spec.statuses)) == ("job_id", "job_p", statuses)


def test_modal_and_extend_take_the_parents_task_id() -> None:
    parked = ParentRef("job_p", "1730622043087519", "action", "running", {"awaiting_input": True})
    req = mj.build_submit("modal", clean("modal", {"job_id": "job_p", "prompt": "a red hat", "maskBase64": DATA}), ctx(parent=parked))
    assert req.json == {"taskId": "1730622043087519", "prompt": "a red hat", "maskBase64": DATA, "state": "job_new", "notifyHook": HOOK}
    video = ParentRef("job_v", "1730623005518342", "video", "succeeded", {})
    req = mj.build_submit("video", clean("video", {"action": "extend", "index": 2, "job_id": "job_v", "motion": "high"}), ctx(None, video))
    assert req.json == {"action": "extend", "index": 2, "taskId": "1730623005518342", "motion": "high", "state": "job_new"}


def test_build_submit_refuses_a_missing_parent() -> None:
    with pytest.raises(ValueError, match="job_p"):
        mj.build_submit("action", clean("action", {"job_id": "job_p", "button": "U1"}), ctx(parent=None))


# -- submit answers beyond the recorded samples ----------------------------------------------


def answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, headers or {}, json.dumps(body).encode())


def test_code21_modal_by_status_and_in_progress_by_default() -> None:
    got = mj.parse_submit(answer({"code": 21, "description": "exists", "result": "9", "properties": {"status": "MODAL"}}))
    assert isinstance(got, Submitted) and got.status is not None
    assert (got.status.state, got.status.result_data["awaiting_input"]) == (State.RUNNING, True)
    got = mj.parse_submit(answer({"code": 21, "description": "任务已存在", "result": "9", "properties": {"status": "IN_PROGRESS"}}))
    assert got == Submitted("9")


@pytest.mark.parametrize(
    ("body", "status", "code", "retryable"),
    [
        ({"code": 24, "description": "banned", "properties": {}}, 200, "mj_banned_prompt", False),
        ({"code": 5, "description": "unknown error"}, 200, "mj_unknown", True),
        ({"code": 99, "description": "odd"}, 200, "mj_99", False),
        ({"description": "saturated", "type": "upstream_error", "code": 30}, 400, "rate_limited", True),
        ({"description": "no account", "type": "upstream_error", "code": 3}, 400, "mj_no_account", True),
    ],
)
def test_other_codes(body: dict[str, Any], status: int, code: str, retryable: bool) -> None:
    got = mj.parse_submit(answer(body, status))
    assert isinstance(got, Rejected) and (got.code, got.retryable) == (code, retryable) and got.message


def test_429_honours_retry_after() -> None:
    got = mj.parse_submit(answer({"description": "busy", "type": "upstream_error", "code": 30}, 429, {"Retry-After": "7"}))
    assert got == Rejected("rate_limited", "busy", True, 7.0)


# -- polling ----------------------------------------------------------------------------------


def test_build_poll_batch_and_single() -> None:
    targets = [PollTarget("job_a", "17", "imagine"), PollTarget("job_b", "18", "action"), PollTarget("job_m", "17", "modal")]
    req = mj.build_poll(targets)
    assert (req.method, req.path, req.json) == ("POST", "/mj/task/list-by-condition", {"ids": ["17", "18"]})
    req = mj.build_poll(targets[:1], batch=False)
    assert (req.method, req.path, req.json) == ("GET", "/mj/task/17/fetch", None)
    with pytest.raises(ValueError):
        mj.build_poll(targets, batch=False)
    with pytest.raises(ValueError):
        mj.build_poll([])


def test_poll_answer_chains_into_the_next_action() -> None:
    """A workflow can press a button from the job JSON alone: result_data -> ParentRef -> action."""
    parent = parent_from(GRID)
    assert parent.result["buttons"][0]["label"] == "U1"
    req = mj.build_submit("action", clean("action", {"job_id": "job_parent", "button": "V2"}), ctx(parent=parent))
    assert req.json["customId"].startswith("MJ::JOB::variation::2::")


def test_callback_must_be_a_task_object() -> None:
    with pytest.raises(ProviderProtocolError):
        mj.parse_callback({}, b'{"code": 1}')
    with pytest.raises(ProviderProtocolError):
        mj.parse_callback({}, b"not json")


def test_unknown_status_keeps_polling() -> None:
    st = mj.parse_poll(answer({"id": "5", "status": "WEIRD", "progress": "10%"}))[0]
    assert (st.state, st.progress) == (State.UNKNOWN, 10)


def test_describe_prompts_strip_the_number_marks() -> None:
    assert describe_prompts("1️⃣ a fox\n\n2️⃣ a cat --ar 1:1\n3. a dog\n") == ["a fox", "a cat --ar 1:1", "a dog"]


def test_seed_helpers_and_no_lookup() -> None:
    req = build_seed("1730621718151844")
    assert (req.method, req.path) == ("GET", "/mj/task/1730621718151844/image-seed")
    assert parse_seed(answer({"code": 1, "description": "success", "result": "2417864935"})) == "2417864935"
    assert parse_seed(answer({"code": 4, "description": "task_no_found", "result": None})) is None
    assert parse_seed(answer({"description": "x"}, 404)) is None
    assert mj.build_lookup("imagine", "job_x") is None
    assert mj.parse_lookup(answer({})) is None


def test_capabilities() -> None:
    caps = mj.capabilities
    assert (caps.max_batch, caps.callback_trust, caps.result_ttl_s, caps.deadline_s, caps.lost_submit is LostSubmit.LOOKUP) == (
        100,
        "token",
        86400,
        3600.0,
        False,
    )
    assert list(mj.operations) == ["imagine", "action", "blend", "describe", "modal", "video", "upload"]


def test_package_modules_stay_under_300_lines() -> None:
    root = Path(__file__).resolve().parents[2] / "providers" / "midjourney"
    for path in root.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 300, path
