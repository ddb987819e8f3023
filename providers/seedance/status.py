"""Reading Seedance answers: the native task object, new-api's envelope around it, the batch page.

- Native task: `{id, model, status, error{code,message}|null, created_at, updated_at,
  content{video_url, last_frame_url?}, usage{completion_tokens, total_tokens}, seed, resolution,
  ratio, duration|frames, framespersecond, service_tier, generate_audio, draft}`.
- new-api's envelope: `{code:"success", message, data:{task_id, status, progress, fail_reason,
  data:<native task>}}`, its status in new-api's enum (`SUBMITTED`, `IN_PROGRESS`, `SUCCESS`,
  `FAILURE`...); the native task inside wins where present.
- Batch page: `{total, items:[<task>]}`, raw or in the envelope's `data`.
Status words: `queued`; `running` and `processing` (gateways); `succeeded`; `failed`;
`cancelled`; `expired` (the task outlived `execution_expires_after`: failed with `timeout`). Any
other word is UNKNOWN: the job is polled again. Result URLs are signed TOS links whose
`X-Tos-Date` + `X-Tos-Expires` say when they stop working.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from models.errors import ErrorCode, ProviderProtocolError
from providers.base import OutputRef, ProviderStatus, State
from providers.wire import error_message, object_at, parse_progress, str_or_none

log = logging.getLogger("k4u.providers.seedance")

STATUS_MAP: dict[str, State] = {
    "queued": State.QUEUED,
    "running": State.RUNNING,
    "processing": State.RUNNING,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "canceled": State.CANCELLED,
    "expired": State.FAILED,
    # new-api's task enum, in its envelope
    "not_start": State.QUEUED,
    "submitted": State.QUEUED,
    "in_progress": State.RUNNING,
    "success": State.SUCCEEDED,
    "failure": State.FAILED,
}
_logged_unknown: set[str] = set()
_RESULT_FIELDS = ("model", "seed", "resolution", "ratio", "duration", "frames", "framespersecond", "service_tier", "generate_audio", "draft", "usage")
MAX_TTL_S = 7 * 86400  # a signed URL claiming longer is read as this


def normalize_status(raw: object) -> State:
    value = str(raw if raw is not None else "").strip().lower()
    state = STATUS_MAP.get(value)
    if state is None:
        if value not in _logged_unknown and len(_logged_unknown) < 1000:
            _logged_unknown.add(value)
            log.warning("unknown seedance status %r: polling on", value[:80])
        return State.UNKNOWN
    return state


def is_success_code(code: object) -> bool:
    return code in (None, 0, "0", "success", "SUCCESS", 200)


def unwrap(data: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(native task, new-api DTO) of an answer: the DTO is {} for a raw task; the native task is
    {} when the envelope carries only the DTO."""
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("seedance answer is not a JSON object")
    inner = data.get("data")
    if isinstance(inner, Mapping) and "status" not in data and "id" not in data:
        native = inner.get("data")
        if isinstance(native, Mapping) and ("status" in native or "id" in native):
            return native, inner
        if "task_id" in inner:  # new-api's DTO without the native task
            return {}, inner
        return inner, {}  # an envelope around the native task
    return data, {}


def task_id_of(native: Mapping[str, Any], dto: Mapping[str, Any]) -> str | None:
    return str_or_none(native.get("id")) or str_or_none(dto.get("task_id")) or str_or_none(dto.get("id"))


def url_expiry(url: str) -> datetime | None:
    """When a signed TOS URL stops working: `X-Tos-Date` (20250629T201507Z) + `X-Tos-Expires` (s)."""
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    date, expires = query.get("x-tos-date"), query.get("x-tos-expires")
    if not date or not expires or not expires.isdigit():
        return None
    try:
        start = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return start + timedelta(seconds=min(int(expires), MAX_TTL_S))


def _failure(native: Mapping[str, Any], dto: Mapping[str, Any], raw: str) -> str:
    err = native.get("error")
    if isinstance(err, Mapping) and (err.get("message") or err.get("code")):
        message, code = str(err.get("message") or ""), str(err.get("code") or "")
        return f"{message} ({code})" if message and code else message or code
    if isinstance(err, str) and err.strip():
        return err.strip()
    if dto.get("fail_reason"):
        return str(dto["fail_reason"])
    return f"the relay reported {raw[:60]!r}"


def _cost(usage: object) -> dict[str, int] | None:
    if not isinstance(usage, Mapping):
        return None
    tokens = usage.get("total_tokens")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        return None
    return {"total_tokens": tokens}


def read_task(data: Any) -> ProviderStatus:
    """One task, raw or enveloped."""
    native, dto = unwrap(data)
    task_id = task_id_of(native, dto)
    raw = str(native.get("status") if "status" in native else dto.get("status") or "")
    state = normalize_status(raw)
    content = object_at(native, "content")
    video = str_or_none(content.get("video_url")) or str_or_none(dto.get("result_url"))
    frame = str_or_none(content.get("last_frame_url"))
    result: dict[str, Any] = {k: native[k] for k in _RESULT_FIELDS if native.get(k) not in (None, "", [], {})}
    cost = _cost(native.get("usage"))
    if cost:
        result["cost"] = cost
    progress = parse_progress(dto.get("progress")) if dto else None
    if state is State.SUCCEEDED:
        if not video:  # a success names its video; without one, a later answer will
            return ProviderStatus(task_id, State.RUNNING, progress, result_data=result, detail="succeeded without a video_url yet")
        outputs = [OutputRef(video, "video", meta={"source": "video_url"})]
        if frame:
            outputs.append(OutputRef(frame, "image", meta={"source": "last_frame_url"}))
        return ProviderStatus(task_id, state, 100, outputs, result, expires_at=url_expiry(video))
    if state is State.FAILED:
        code = ErrorCode.TIMEOUT.value if raw.lower() == "expired" else ErrorCode.PROVIDER_FAILED.value
        message = _failure(native, dto, raw)
        if raw.lower() == "expired":
            message = f"the task expired at the relay before it ran (execution_expires_after): {message}"
        return ProviderStatus(task_id, state, progress, result_data=result, error_code=code, error_message=message)
    if state is State.CANCELLED:
        return ProviderStatus(task_id, state, progress, result_data=result, error_message=_failure(native, dto, raw))
    return ProviderStatus(task_id, state, progress, result_data=result, detail=f"relay: {raw[:40]}" if state is State.UNKNOWN else None)


def read_page(data: Any) -> list[ProviderStatus]:
    """The batch query's page: `{total, items}` raw or in the envelope's `data`."""
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("seedance list answer is not a JSON object")
    page = data.get("data") if isinstance(data.get("data"), Mapping) and "items" not in data else data
    items = page.get("items") if isinstance(page, Mapping) else None
    if items is None and not is_success_code(data.get("code")):
        raise ProviderProtocolError(f"seedance list answer: {error_message(data)[:200] or data.get('code')}")
    if not isinstance(items, list):
        raise ProviderProtocolError("seedance list answer carries no items")
    return [read_task(t) for t in items if isinstance(t, Mapping)]
