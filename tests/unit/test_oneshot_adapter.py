"""The one-shot families' adapters (images, speech) against every recorded answer shape, their
requests (JSON, multipart uploads, the streamed speech body), their input checks (422 naming
`input.<field>`, the published per-model limits) and the capability's own rules."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from models.errors import ProviderProtocolError
from providers.base import Capabilities, HttpResponse, LostSubmit, ProviderStatus, Rejected, State, SubmitContext, Submitted
from providers.oneshot import GEMINI_IMAGE, IDEOGRAM, IMAGES, SPEECH, OneShotAdapter
from providers.registry import clean_input
from simulator.media import PNG_BYTES
from tests.payload_cases import cases, load

CTX = SubmitContext(job_id="job_1", external_id="job_1", callback_url=None, now=datetime(2026, 12, 7, tzinfo=UTC))
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()


def check(adapter: OneShotAdapter, resp: HttpResponse, want: dict[str, Any]) -> None:
    if want["result"] == "protocol_error":
        with pytest.raises(ProviderProtocolError):
            adapter.parse_submit(resp)
        return
    got = adapter.parse_submit(resp)
    if want["result"] == "rejected":
        assert isinstance(got, Rejected)
        assert (got.code, got.retryable) == (want["code"], want["retryable"])
        assert want["message_contains"] in got.message
        assert got.retry_after_s == want.get("retry_after_s")
        return
    assert isinstance(got, Submitted) and got.task_id is None, "no relay task id: the engine mints one"
    st = got.status
    assert isinstance(st, ProviderStatus) and st.state == State(want["result"])
    if want["result"] == "failed":
        assert st.error_code == want["error_code"] and want["message_contains"] in (st.error_message or "")
        return
    assert len(st.outputs) == len(want["outputs"])
    for out, w in zip(st.outputs, want["outputs"], strict=True):
        assert out.url.startswith(w["url_prefix"]) and out.kind == w["kind"] and not out.relay_route
        assert dict(out.meta) == w.get("meta", dict(out.meta))
    assert dict(st.result_data) == want["result_data"]


@pytest.mark.parametrize("case", cases("images"), ids=lambda p: p.name)
def test_images_answers(case: Path) -> None:
    resp, want = load(case)
    check(IMAGES, resp, want)


@pytest.mark.parametrize("case", cases("speech"), ids=lambda p: p.name)
def test_speech_answers(case: Path) -> None:
    resp, want = load(case)
    check(SPEECH, resp, want)


@pytest.mark.parametrize("case", cases("gemini_image"), ids=lambda p: p.name)
def test_gemini_image_answers(case: Path) -> None:
    resp, want = load(case)
    check(GEMINI_IMAGE, resp, want)


@pytest.mark.parametrize("case", cases("ideogram"), ids=lambda p: p.name)
def test_ideogram_answers(case: Path) -> None:
    resp, want = load(case)
    check(IDEOGRAM, resp, want)


def test_gemini_request_carries_the_prompt_the_images_inline_and_the_image_config() -> None:
    inp = clean_input(
        GEMINI_IMAGE, "generate", {"prompt": "p", "model": "gemini-3-pro-image-preview", "images": [PNG_URI], "aspect_ratio": "16:9", "image_size": "2K"}
    )
    req = GEMINI_IMAGE.build_submit("generate", inp, CTX)
    assert (req.method, req.path) == ("POST", "/v1beta/models/gemini-3-pro-image-preview:generateContent")
    assert req.json == {
        "contents": [{"role": "user", "parts": [{"text": "p"}, {"inlineData": {"mimeType": "image/png", "data": PNG_URI.split(",", 1)[1]}}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}},
    }
    plain = GEMINI_IMAGE.build_submit("generate", clean_input(GEMINI_IMAGE, "generate", {"prompt": "p", "text_too": False}), CTX)
    assert plain.path == "/v1beta/models/gemini-2.5-flash-image:generateContent" and plain.json["generationConfig"] == {"responseModalities": ["IMAGE"]}


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"prompt": "p", "model": "../v1/x"}, "model"),
        ({"prompt": "p", "image_size": "2K"}, "image_size"),
        ({"prompt": "p", "aspect_ratio": "7:3"}, "aspect_ratio"),
        ({"prompt": "p", "images": ["https://example.com/a.png"]}, "images"),
        ({"prompt": "p", "temperature": 1}, "temperature"),
    ],
)
def test_gemini_input_refusals_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        clean_input(GEMINI_IMAGE, "generate", raw)
    assert exc.value.errors()[0]["loc"][0] == field


def test_ideogram_generate_is_json_and_the_others_multipart() -> None:
    gen = IDEOGRAM.build_submit("generate", clean_input(IDEOGRAM, "generate", {"prompt": "a poster", "aspect_ratio": "16x9", "num_images": 2}), CTX)
    assert (gen.path, gen.json) == ("/ideogram/v1/ideogram-v3/generate", {"prompt": "a poster", "aspect_ratio": "16x9", "num_images": 2})
    edit = IDEOGRAM.build_submit("edit", clean_input(IDEOGRAM, "edit", {"prompt": "a hat", "image": PNG_URI, "mask": "https://cdn.example.com/m.png"}), CTX)
    assert edit.path == "/ideogram/v1/ideogram-v3/edit" and edit.form == {"prompt": "a hat"}
    assert [(f.field, f.source_url) for f in edit.files] == [("image", None), ("mask", "https://cdn.example.com/m.png")]
    bg = IDEOGRAM.build_submit("replace_background", clean_input(IDEOGRAM, "replace_background", {"prompt": "a beach", "image": PNG_URI, "seed": 3}), CTX)
    assert bg.path == "/ideogram/v1/ideogram-v3/replace-background" and bg.form == {"prompt": "a beach", "seed": "3"}
    reframe = IDEOGRAM.build_submit("reframe", clean_input(IDEOGRAM, "reframe", {"image": PNG_URI, "resolution": "1536x640"}), CTX)
    assert reframe.form == {"resolution": "1536x640"} and [f.field for f in reframe.files] == ["image"]
    with pytest.raises(ValidationError) as exc:
        clean_input(IDEOGRAM, "generate", {"prompt": "p", "aspect_ratio": "16:9"})
    assert exc.value.errors()[0]["loc"][0] == "aspect_ratio"
    with pytest.raises(ValidationError) as exc:
        clean_input(IDEOGRAM, "remix", {"prompt": "p", "image": PNG_URI, "image_weight": 101})
    assert exc.value.errors()[0]["loc"][0] == "image_weight"


def test_b64_outputs_decode_to_the_answer_bytes() -> None:
    resp, _ = load(next(c for c in cases("images") if c.name == "gpt_image_b64_usage"))
    got = IMAGES.parse_submit(resp)
    assert isinstance(got, Submitted) and got.status is not None
    assert base64.b64decode(got.status.outputs[0].url.split(",", 1)[1]) == PNG_BYTES


def test_a_huge_relay_message_is_bounded() -> None:
    body = json.dumps({"error": {"message": "x" * 100_000, "code": "c" * 500}}).encode()
    got = IMAGES.parse_submit(HttpResponse(200, {}, body))
    assert isinstance(got, Rejected) and len(got.message) == 2000 and len(got.code) == 64


def test_generate_is_json_without_stream() -> None:
    inp = clean_input(IMAGES, "generate", {"prompt": "p", "model": "doubao-seedream-4-0", "stream": False, "watermark": False, "prompt_extend": True})
    req = IMAGES.build_submit("generate", inp, CTX)
    assert (req.method, req.path, req.stream_body_as_asset) == ("POST", "/v1/images/generations", False)
    assert req.json == {"prompt": "p", "model": "doubao-seedream-4-0", "watermark": False, "prompt_extend": True}


def test_edit_is_multipart_with_every_image_and_the_mask_as_files() -> None:
    inp = clean_input(IMAGES, "edit", {"prompt": "p", "image": [PNG_URI, PNG_URI], "mask": PNG_URI, "n": 2, "background": "transparent"})
    req = IMAGES.build_submit("edit", inp, CTX)
    assert (req.method, req.path, req.json) == ("POST", "/v1/images/edits", None)
    assert [(f.field, f.content_type, f.data) for f in req.files] == [("image[]", "image/png", PNG_BYTES)] * 2 + [("mask", "image/png", PNG_BYTES)]
    assert req.form == {"prompt": "p", "model": "gpt-image-1", "n": "2", "background": "transparent"}
    one = IMAGES.build_submit("edit", clean_input(IMAGES, "edit", {"prompt": "p", "image": PNG_URI}), CTX)
    assert [f.field for f in one.files] == ["image"] and one.files[0].filename == "image_0.png"


def test_edit_images_given_by_url_are_fetched_by_the_engine_before_sending() -> None:
    inp = clean_input(IMAGES, "edit", {"prompt": "p", "image": ["https://cdn.example.com/in/cat.webp?sig=1", PNG_URI], "mask": "https://cdn.example.com/m"})
    req = IMAGES.build_submit("edit", inp, CTX)
    url_part, data_part, mask = req.files
    assert (url_part.source_url, url_part.data, url_part.filename, url_part.max_bytes) == (
        "https://cdn.example.com/in/cat.webp?sig=1",
        b"",
        "image_0.webp",
        20 * 1024**2,
    )
    assert data_part.source_url is None and data_part.data == PNG_BYTES
    assert (mask.field, mask.source_url, mask.filename) == ("mask", "https://cdn.example.com/m", "mask.png")


def test_speech_asks_for_the_body_to_be_streamed_as_the_asset() -> None:
    inp = clean_input(SPEECH, "speech", {"input": "hello", "voice": "coral", "response_format": "wav", "speed": 1.25})
    req = SPEECH.build_submit("speech", inp, CTX)
    assert (req.method, req.path, req.stream_body_as_asset) == ("POST", "/v1/audio/speech", True)
    assert req.json == {"model": "gpt-4o-mini-tts", "input": "hello", "voice": "coral", "response_format": "wav", "speed": 1.25}


@pytest.mark.parametrize(
    "operation, raw, field, words",
    [
        ("generate", {"prompt": "p", "stream": True}, "stream", "not supported"),
        ("generate", {"prompt": "p", "model": "dall-e-3", "size": "1536x1024"}, "size", "1792x1024"),
        ("generate", {"prompt": "p", "model": "dall-e-3", "n": 2}, "n", "at most 1"),
        ("generate", {"prompt": "p", "size": "huge"}, "size", "WIDTHxHEIGHT"),
        ("generate", {"prompt": "p", "response_format": "svg"}, "response_format", ""),
        ("generate", {"prompt": ""}, "prompt", ""),
        ("edit", {"prompt": "p", "image": "https://example.com/a b.png"}, "image", "without spaces"),
        ("edit", {"prompt": "p", "image": "ftp://example.com/a.png"}, "image", "data: URI"),
        ("edit", {"prompt": "p", "image": "data:text/plain;base64,aGk="}, "image", "of an image"),
        ("edit", {"prompt": "p", "image": []}, "image", "1 to 16"),
        ("edit", {"prompt": "p", "image": PNG_URI, "mask": "data:image/png;base64,!!"}, "mask", ""),
    ],
)
def test_images_input_refusals_name_the_field(operation: str, raw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        clean_input(IMAGES, operation, raw)
    err = exc.value.errors()[0]
    assert err["loc"][0] == field and words in err["msg"]


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"input": "hi", "model": "tts-1", "instructions": "whisper"}, "instructions"),
        ({"input": "hi", "speed": 5}, "speed"),
        ({"input": "hi", "response_format": "ogg"}, "response_format"),
        ({"input": "hi", "stream_format": "sse"}, "stream_format"),
        ({"input": ""}, "input"),
    ],
)
def test_speech_input_refusals_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        clean_input(SPEECH, "speech", raw)
    assert exc.value.errors()[0]["loc"][0] == field


def test_any_model_and_the_relays_extras_pass_through() -> None:
    inp = clean_input(IMAGES, "generate", {"prompt": "p", "model": "flux-kontext-pro", "size": "2048x2048", "n": 4, "seed": 7, "guidance": 3.5})
    assert inp == {"prompt": "p", "model": "flux-kontext-pro", "size": "2048x2048", "n": 4, "seed": 7, "guidance": 3.5}
    with pytest.raises(ValidationError):
        clean_input(IMAGES, "generate", {"prompt": "p", "bad name!": 1})


def test_the_per_model_limits_are_published() -> None:
    generate = IMAGES.operations["generate"].schema.model_json_schema()
    assert generate["x-models"]["dall-e-3"] == {"sizes": ["1024x1024", "1792x1024", "1024x1792"], "max_n": 1}
    assert SPEECH.operations["speech"].schema.model_json_schema()["x-models"]["tts-1"] == {"instructions": False}


def test_a_oneshot_capability_has_nothing_to_look_up_poll_or_cancel() -> None:
    assert IMAGES.capabilities.oneshot and IMAGES.capabilities.request_timeout_s == 300.0
    assert IMAGES.capabilities.lost_submit is LostSubmit.NONE and SPEECH.capabilities.oneshot
    assert GEMINI_IMAGE.capabilities.oneshot and IDEOGRAM.capabilities.oneshot and IDEOGRAM.capabilities.result_ttl_s == 86400
    for bad in ({"lost_submit": LostSubmit.LOOKUP}, {"max_batch": 10}, {"cancels": True}):
        with pytest.raises(ValueError, match="oneshot"):
            Capabilities(oneshot=True, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        Capabilities(request_timeout_s=0)


def test_get_providers_says_which_families_are_one_shot() -> None:
    from api.routes.providers import list_providers

    published = {p.name: p for p in list_providers().providers}
    for name in ("images", "speech", "gemini_image", "ideogram"):
        assert published[name].oneshot and published[name].request_timeout_s == 300.0 and published[name].lost_submit == "none", name
    assert not published["kling"].oneshot and published["kling"].request_timeout_s is None
