"""The Seedance adapter against recorded payloads of every documented shape (tests/payloads/seedance),
the requests it builds (content[] order, the batch query's repeated keys, the route prefix), and
the input schema's per-model limits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from models.errors import BatchUnsupported, ProviderProtocolError
from providers.base import TASK_ID_MAX, HttpResponse, PollTarget, ProviderStatus, Rejected, State, SubmitContext, Submitted
from providers.registry import ADAPTERS, validate_input, with_prefix
from providers.seedance import MODELS, SeedanceAdapter, read_task
from tests.payload_cases import cases, load

A = SeedanceAdapter()
T = PollTarget(job_id="j1", task_id="cgt-20250629201507-n6k56", operation="video")
T2 = PollTarget(job_id="j2", task_id="cgt-20250629201512-x7k2p", operation="video")


def run(flow: Any, resp: HttpResponse) -> Any:
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(resp)
    return stop.value.value


def check(st: ProviderStatus, want: dict[str, Any]) -> None:
    assert st.task_id == want["task_id"]
    assert st.state.value == want["state"], (st.state, st.error_message)
    if "outputs" in want:
        assert [[o.kind, o.url] for o in st.outputs] == want["outputs"]
    if "cost" in want:
        assert st.result_data["cost"] == want["cost"]
    if "expires_at" in want:
        assert st.expires_at == datetime.fromisoformat(want["expires_at"])
    if "error_code" in want:
        assert st.error_code == want["error_code"]
    if "message_contains" in want:
        assert want["message_contains"] in (st.error_message or "")
    if "progress" in want:
        assert st.progress == want["progress"]


@pytest.mark.parametrize("case", cases("seedance"), ids=lambda p: p.name)
def test_recorded_payload(case: Path) -> None:
    resp, want = load(case)
    kind, result = want["kind"], want.get("result")
    if kind == "submit":
        if result == "protocol_error":
            with pytest.raises(ProviderProtocolError):
                A.parse_submit(resp)
            return
        got = A.parse_submit(resp)
        if result == "submitted":
            assert isinstance(got, Submitted) and got.task_id == want["task_id"]
            return
        assert isinstance(got, Rejected) and (got.code, got.retryable) == (want["code"], want["retryable"])
        assert want["message_contains"] in got.message
        assert got.retry_after_s == want.get("retry_after_s")
        return
    if kind == "cancel":
        outcome = run(A.cancel(T), resp)
        assert outcome.cancelled is want["cancelled"] and want.get("message_contains", "") in outcome.note
        return
    if kind == "callback":
        statuses = [A.read_callback({}, resp.body, inputs=None).status]  # type: ignore[arg-type]
    else:
        targets, batch = ([T, T2], True) if kind == "batch" else ([T], False)
        if result == "batch_unsupported":
            with pytest.raises(BatchUnsupported):
                run(A.poll(targets, batch=batch), resp)
            return
        if result == "protocol_error":
            with pytest.raises(ProviderProtocolError):
                run(A.poll(targets, batch=batch), resp)
            return
        statuses = run(A.poll(targets, batch=batch), resp)
    assert len(statuses) == len(want["statuses"])
    for st, w in zip(statuses, want["statuses"], strict=True):
        check(st, w)


def test_capabilities_declare_batch_cancel_prefix_and_no_lookup() -> None:
    caps = ADAPTERS["seedance"].capabilities
    assert (caps.max_batch, caps.cancels, caps.route_prefix, caps.lost_submit.value, caps.callback_trust, caps.result_ttl_s) == (
        500,
        True,
        "/volc/v1",
        "none",
        "hint",
        86400,
    )
    assert A.lookup("video", "ext") is None


def test_the_batch_query_repeats_the_task_id_key_and_the_prefix_is_rewritten() -> None:
    targets = [PollTarget(job_id=f"j{i}", task_id=f"cgt-20250629201507-{i:05d}", operation="video") for i in range(500)]
    req = A.build_poll(targets, batch=True)
    url = httpx.Request("GET", "http://relay" + with_prefix(req.path, {"/volc/v1": "/api/v3"}), params=req.query).url
    assert url.path == "/api/v3/contents/generations/tasks"
    assert url.params.get_list("filter.task_ids") == [t.task_id for t in targets] and url.params["page_size"] == "500"
    with pytest.raises(ValueError):
        A.build_poll([*targets, T], batch=True)
    single = A.build_poll([T], batch=False)
    assert (single.method, single.path) == ("GET", "/volc/v1/contents/generations/tasks/cgt-20250629201507-n6k56")


def test_submit_builds_content_in_order_with_extras_and_our_callback() -> None:
    inp = validate_input(
        "seedance",
        "video",
        {
            "model": "doubao-seedance-2-0-260128",
            "prompt": "a cat --fps 24",
            "first_frame": "https://i.example/f.png",
            "reference_audios": ["https://a.example/r.mp3"],
            "content": [{"type": "video_url", "video_url": {"url": "https://v.example/r.mp4"}, "role": "reference_video"}],
            "duration": 15,
            "generate_audio": True,
            "frames": 121,
        },
    )
    ctx = SubmitContext(job_id="j", external_id="e", callback_url="https://us.example/cb/j?t=x", now=datetime.now(UTC))
    req = A.build_submit("video", inp, ctx)
    assert (req.method, req.path) == ("POST", "/volc/v1/contents/generations/tasks")
    assert req.json["content"] == [
        {"type": "text", "text": "a cat --fps 24"},
        {"type": "image_url", "image_url": {"url": "https://i.example/f.png"}, "role": "first_frame"},
        {"type": "audio_url", "audio_url": {"url": "https://a.example/r.mp3"}, "role": "reference_audio"},
        {"type": "video_url", "video_url": {"url": "https://v.example/r.mp4"}, "role": "reference_video"},
    ]
    assert req.json["duration"] == 15 and req.json["frames"] == 121 and req.json["generate_audio"] is True
    assert req.json["callback_url"] == ctx.callback_url and "prompt" not in req.json and "first_frame" not in req.json


def test_the_schema_publishes_the_model_matrix() -> None:
    schema = A.operations["video"].schema.model_json_schema()
    assert schema["x-models"] == MODELS
    assert schema["x-models"]["doubao-seedance-2-0-260128"]["durations"] == list(range(4, 16))


@pytest.mark.parametrize(
    "inp, field, says",
    [
        ({"model": "doubao-seedance-2-0-fast-260128", "prompt": "p", "duration": 3}, "duration", "4-15"),
        ({"model": "doubao-seedance-1-5-pro-251215", "prompt": "p", "reference_audios": ["https://a/x.mp3"]}, "reference_audios", "2.0"),
        ({"model": "doubao-seedance-1-0-lite-t2v-250428", "reference_images": ["https://i/x.png"]}, "reference_images", "no reference images"),
        ({"model": "doubao-seedance-1-0-lite-i2v-250428", "reference_images": ["https://i/x.png"] * 5}, "reference_images", "1-4"),
        (
            {"model": "doubao-seedance-2-0-260128", "prompt": "p", "first_frame": "https://i/a.png", "reference_images": ["https://i/x.png"]},
            "reference_images",
            "cannot be combined",
        ),
        ({"prompt": "p", "last_frame": "https://i/a.png"}, "last_frame", "needs a first_frame"),
        ({"prompt": "p", "first_frame": "ftp://i/a.png"}, "first_frame", "URL"),
        ({"prompt": "p", "content": [{"type": "html"}]}, "content", "type must be"),
        ({"prompt": "p", "content": [{"type": "image_url", "image_url": {"url": "https://i/a.png"}, "role": "mask"}]}, "content", "role"),
        ({"prompt": "p", "generate_audio": True}, "generate_audio", "no sound"),
        ({"prompt": "p", "service_tier": "fast"}, "service_tier", "default"),
        ({}, "content", "give a prompt"),
        (
            {
                "model": "doubao-seedance-1-0-lite-i2v-250428",
                "prompt": "p",
                "content": [{"type": "image_url", "image_url": {"url": "https://i/x.png"}, "role": "reference_image"}] * 5,
            },
            "content",
            "1-4",
        ),
    ],
)
def test_documented_limits_refuse_naming_the_field(inp: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_input("seedance", "video", inp)
    err = exc.value.errors()[0]
    assert err["loc"] == (field,) and says in err["msg"], err


def test_unknown_models_and_extras_pass_through() -> None:
    clean = validate_input(
        "seedance", "video", {"model": "doubao-seedance-3-0", "prompt": "p", "duration": 30, "draft": True, "reference_videos": ["https://v/x.mp4"]}
    )
    assert clean["duration"] == 30 and clean["draft"] is True


def test_relay_values_are_bounded_and_ids_never_cut() -> None:
    long_id = "cgt-" + "x" * (TASK_ID_MAX + 50)
    st = read_task({"id": long_id, "status": "failed", "error": {"code": "c" * 500, "message": "m" * 50_000}})
    assert st.task_id == long_id and st.state is State.FAILED
    assert len(st.error_message or "") <= 2000
    st = read_task({"id": "cgt-1", "status": "succeeded", "content": {"video_url": "https://x/v.mp4?X-Tos-Date=20250629T201603Z&X-Tos-Expires=99999999999"}})
    assert st.expires_at == datetime(2025, 7, 6, 20, 16, 3, tzinfo=UTC), "a signed URL's claimed lifetime is capped at 7 days"
    assert read_task({"id": "cgt-1", "status": "succeeded"}).state is State.RUNNING, "a success names its video; until then it is polled again"
