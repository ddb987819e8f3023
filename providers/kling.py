"""Kling through the relay (providers.md §4): text2video, image2video, image.

Two response families reach us and both are parsed here, once:
- the Kling-official envelope `{code: 0, message, data: {task_id, task_status, task_result...}}`;
- new-api shapes: the OpenAI-video-like submit answer `{id, task_id, object: "video", status}`,
  the generic task DTO `{code: "success", data: {task_id, status: SUCCESS..., progress: "50%",
  result_url | fail_reason, data: <raw upstream>}}` (§2.5) and the video object
  `{id, status: completed, metadata: {url}}` (§2.6).
HTTP 200 with a non-zero Kling `code` is a rejection, not an acceptance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.errors import ProviderProtocolError
from providers.base import (
    AdapterDefaults,
    Capabilities,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    Operation,
    OutputRef,
    PollTarget,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from providers.rejections import submit_rejection
from providers.wire import error_message, is_not_found, json_or_none, object_at, parse_progress, str_or_none

PATHS = {
    "text2video": "/kling/v1/videos/text2video",
    "image2video": "/kling/v1/videos/image2video",
    "image": "/kling/v1/images/generations",
}


class _KlingInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model_name: str = Field("kling-v1", alias="model", description="kling-v1, kling-v1-6, kling-v2-1-master, kling-v2-6, ...")
    negative_prompt: str | None = Field(None, max_length=2500)


class _VideoInput(_KlingInput):
    cfg_scale: float | None = Field(None, ge=0, le=1)
    mode: Literal["std", "pro"] | None = None
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = None
    duration: Literal["5", "10"] | None = None
    sound: Literal["on", "off"] | None = None
    camera_control: dict[str, Any] | None = None
    watermark_info: dict[str, Any] | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Any] | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_as_string(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class Text2VideoInput(_VideoInput):
    prompt: str = Field(..., min_length=1, max_length=2500)


class Image2VideoInput(_VideoInput):
    prompt: str | None = Field(None, max_length=2500)
    image: str | None = Field(None, description="URL or base64 of the first frame")
    image_tail: str | None = Field(None, description="URL or base64 of the last frame")
    static_mask: str | None = None
    dynamic_masks: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _needs_an_image(self) -> Image2VideoInput:
        if not self.image and not self.image_tail:
            raise ValueError("image or image_tail is required")
        return self


class ImageInput(_KlingInput):
    prompt: str = Field(..., min_length=1, max_length=2500)
    image: str | None = None
    image_reference: Literal["subject", "face"] | None = None
    image_fidelity: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=9)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] | None = None


# Kling business codes (official error table): 1302/1303 are rate and concurrency limits,
# 5000-5002 server trouble; the rest (auth 100x, account 110x, params 120x, policy 130x) are final.
_RETRYABLE_CODES = {1302, 1303, 5000, 5001, 5002}

_NATIVE_STATE = {"submitted": State.QUEUED, "processing": State.RUNNING, "succeed": State.SUCCEEDED, "failed": State.FAILED}
_NEWAPI_STATE = {
    "": State.QUEUED,
    "NOT_START": State.QUEUED,
    "SUBMITTED": State.QUEUED,
    "QUEUED": State.QUEUED,
    "IN_PROGRESS": State.RUNNING,
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
    "UNKNOWN": State.RUNNING,
}
_VIDEO_STATE = {
    "queued": State.QUEUED,
    "pending": State.QUEUED,
    "in_progress": State.RUNNING,
    "processing": State.RUNNING,
    "completed": State.SUCCEEDED,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "unknown": State.QUEUED,
}


class KlingAdapter(AdapterDefaults):
    name = "kling"
    operations: Mapping[str, Operation] = {
        "text2video": Operation("text2video", Text2VideoInput, "Text to video (/kling/v1/videos/text2video)"),
        "image2video": Operation("image2video", Image2VideoInput, "Image to video (/kling/v1/videos/image2video)"),
        "image": Operation("image", ImageInput, "Image generation (/kling/v1/images/generations)"),
    }
    # Kling keeps results 30 days (§4.6); a 5 s video takes 60-120 s.
    capabilities = Capabilities(
        max_batch=1,
        callback_trust="token",
        result_ttl_s=30 * 86400,
        expected_s=90.0,
        deadline_s=3600.0,
        lost_submit=LostSubmit.LOOKUP,
    )

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body = dict(input)
        body["external_task_id"] = ctx.external_id
        if ctx.callback_url:
            body["callback_url"] = ctx.callback_url
        return HttpRequest("POST", PATHS[operation], json=body)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        message = error_message(data)
        if resp.status >= 300:
            return submit_rejection(resp, message)
        if not isinstance(data, dict):
            raise ProviderProtocolError("submit answer is not a JSON object")
        code = data.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            if code != 0:
                return Rejected(f"kling_{code}", message or f"Kling code {code}", code in _RETRYABLE_CODES)
            inner = data.get("data") or {}
            task_id = inner.get("task_id") if isinstance(inner, dict) else None
        elif isinstance(code, str) and code not in ("success", "0", ""):
            return Rejected(code, message or code, False)
        else:
            nested = data.get("data")
            inner = nested if isinstance(nested, dict) else data
            task_id = inner.get("id") or inner.get("task_id")
        if not task_id:
            raise ProviderProtocolError("submit answer carries no task id")
        return Submitted(str(task_id))

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if len(targets) != 1:
            raise ValueError("Kling has no batch query; poll one task at a time")
        t = targets[0]
        return HttpRequest("GET", f"{PATHS[t.operation]}/{t.task_id}")

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]:
        data = json_or_none(resp)
        if resp.status in (400, 404) and is_not_found(data):
            return [ProviderStatus(None, State.UNKNOWN, error_message=error_message(data))]
        if resp.status >= 300:
            raise ProviderProtocolError(f"HTTP {resp.status} on query: {error_message(data)[:200]}")
        if not isinstance(data, dict):
            raise ProviderProtocolError("query answer is not a JSON object")
        code = data.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            raise ProviderProtocolError(f"Kling code {code}: {error_message(data)[:200]}")
        return [parse_task(data)]

    def build_lookup(self, operation: str, external_id: str) -> HttpRequest | None:
        # The single-task query accepts the external_task_id in place of the task id (§4.4).
        return HttpRequest("GET", f"{PATHS[operation]}/{external_id}")

    def parse_lookup(self, resp: HttpResponse) -> Submitted | None:
        data = json_or_none(resp)
        if resp.status in (400, 404) and is_not_found(data):
            return None
        statuses = self.parse_poll(resp)
        st = statuses[0]
        if st.task_id is None:
            return None
        return Submitted(st.task_id, st)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, dict):
            raise ProviderProtocolError("callback body is not a JSON object")
        return parse_task(data)


def parse_task(data: Mapping[str, Any]) -> ProviderStatus:
    """Normalize any of the documented task shapes (native, new-api DTO, video object)."""
    inner = data.get("data") if isinstance(data.get("data"), dict) else None
    if inner is not None and "task_status" in inner:
        return _native(inner)
    if "task_status" in data:
        return _native(data)
    if inner is not None and ("status" in inner or "task_id" in inner):
        return _newapi_dto(inner)
    if data.get("object") == "video" or ("status" in data and ("id" in data or "task_id" in data)):
        return _video_object(data)
    raise ProviderProtocolError("unrecognised Kling task shape")


def _native(d: Mapping[str, Any]) -> ProviderStatus:
    raw_state = str(d.get("task_status") or "")
    state = _NATIVE_STATE.get(raw_state, State.UNKNOWN)
    result = d.get("task_result") or {}
    outputs: list[OutputRef] = []
    if isinstance(result, dict):
        for v in result.get("videos") or []:
            if isinstance(v, dict) and v.get("url"):
                outputs.append(OutputRef(v["url"], "video", meta={k: v[k] for k in ("id", "duration") if k in v}))
        for i in result.get("images") or []:
            if isinstance(i, dict) and i.get("url"):
                outputs.append(OutputRef(i["url"], "image", meta={"index": i.get("index")}))
    info = d.get("task_info") or {}
    ext = info.get("external_task_id") if isinstance(info, dict) else None
    failed = state is State.FAILED
    if state is State.SUCCEEDED and not outputs:
        state, failed = State.FAILED, True
        msg: str | None = "task succeeded without any result URL"
    else:
        msg = str(d.get("task_status_msg") or "") or None
    result_data = {k: d[k] for k in ("final_unit_deduction", "task_status_msg") if d.get(k) not in (None, "")}
    return ProviderStatus(
        task_id=str_or_none(d.get("task_id")),
        state=state,
        progress=100 if state is State.SUCCEEDED else None,
        outputs=outputs,
        result_data=result_data,
        external_id=str_or_none(ext),
        error_code="provider_failed" if failed else None,
        error_message=msg if failed else None,
    )


def _newapi_dto(d: Mapping[str, Any]) -> ProviderStatus:
    state = _NEWAPI_STATE.get(str(d.get("status") or ""), State.UNKNOWN)
    raw = object_at(d, "data")
    nested = raw.get("data")
    upstream = _native(nested if isinstance(nested, dict) else raw) if raw and "task_status" in (nested or raw) else None
    outputs = list(upstream.outputs) if upstream else []
    fail_reason = str(d.get("fail_reason") or "")
    url = d.get("result_url") or ""
    # Older new-api rows kept the result URL in fail_reason (§2.5).
    if not url and state is State.SUCCEEDED and fail_reason.startswith(("http://", "https://")):
        url, fail_reason = fail_reason, ""
    if url and not any(o.url == url for o in outputs):
        kind = "image" if str(d.get("action") or "").startswith("image") else "video"
        outputs.insert(0, OutputRef(str(url), kind))
    failed = state is State.FAILED
    if state is State.SUCCEEDED and not outputs:
        state, failed, fail_reason = State.FAILED, True, "task succeeded without any result URL"
    return ProviderStatus(
        task_id=str_or_none(d.get("task_id")),
        state=state,
        progress=100 if state is State.SUCCEEDED else parse_progress(d.get("progress")),
        outputs=outputs,
        result_data=dict(upstream.result_data) if upstream else {},
        external_id=upstream.external_id if upstream else None,
        error_code="provider_failed" if failed else None,
        error_message=(fail_reason or "failed") if failed else None,
    )


def _video_object(d: Mapping[str, Any]) -> ProviderStatus:
    state = _VIDEO_STATE.get(str(d.get("status") or "").lower(), State.UNKNOWN)
    meta = object_at(d, "metadata")
    url = meta.get("url") or d.get("url") or d.get("video_url")
    outputs = [OutputRef(str(url), "video")] if url else []
    err = object_at(d, "error")
    failed = state is State.FAILED
    if state is State.SUCCEEDED and not outputs:
        state, failed = State.FAILED, True
        err = {"message": "task succeeded without any result URL"}
    return ProviderStatus(
        task_id=str_or_none(d.get("id") or d.get("task_id")),
        state=state,
        progress=100 if state is State.SUCCEEDED else parse_progress(d.get("progress")),
        outputs=outputs,
        error_code="provider_failed" if failed else None,
        error_message=str(err.get("message") or "failed") if failed else None,
    )
