"""Reading Vidu's answers: the submit answer, the task query and the callback (the query's body).

Shapes (providers-next.md §4.7, providers.md §10.5; new-api `relay/channel/task/vidu`):
- submit: `{task_id, state: "created", model, prompt, images, duration, ..., payload, credits?, created_at}`;
- query `GET /ent/v2/tasks/{id}/creations` and callback:
  `{id, state, err_code, credits, payload, creations: [{id, url, cover_url, watermarked_url?}]}`;
- a relay may wrap either in new-api's envelope `{code: "success", message, data: <answer>}` or
  `{code, data: {task_id, status, progress, fail_reason, result_url, data: <answer>}}`; both are read.
- errors: `{code: 400, reason: "BadRequest", message: "..."}` (Vidu) or `{error: {message}}` (relay).

`state` created/queueing -> queued, processing -> running, success -> succeeded, failed -> failed;
any other word is `unknown` (the job keeps polling). `payload` is our external id echoed back.
`credits` becomes `result.cost.credits` when the task ends. A task id is read from `id` or `task_id` (never cut).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from models.errors import ProviderProtocolError
from providers.base import OutputRef, ProviderStatus, State
from providers.wire import error_message, parse_progress, str_or_none

STATES: dict[str, State] = {
    "created": State.QUEUED,
    "queueing": State.QUEUED,
    "processing": State.RUNNING,
    "success": State.SUCCEEDED,
    "failed": State.FAILED,
}
# new-api's task DTO (when a relay answers with its own envelope instead of Vidu's body).
_NEWAPI: dict[str, State] = {
    "NOT_START": State.QUEUED,
    "SUBMITTED": State.QUEUED,
    "QUEUED": State.QUEUED,
    "IN_PROGRESS": State.RUNNING,
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
EXTERNAL_ID_MAX = 200  # a longer echo cannot be one of our external ids


def relay_message(data: Any) -> str:
    """The relay's or Vidu's words for an error: `message` / `error.message`, with Vidu's `reason`."""
    message = error_message(data)
    reason = str_or_none(data.get("reason")) if isinstance(data, Mapping) else None
    if reason and reason not in message:
        return f"{reason}: {message}" if message else reason
    return message


def unwrap(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Vidu's own body inside a new-api envelope, or the body itself."""
    inner = data.get("data")
    if isinstance(inner, Mapping) and ("state" in inner or "task_id" in inner or "creations" in inner):
        nested = inner.get("data")
        if "state" not in inner and isinstance(nested, Mapping) and "state" in nested:
            return {"task_id": inner.get("task_id"), **nested}
        return inner
    return data


def task_id_of(d: Mapping[str, Any]) -> str | None:
    return str_or_none(d.get("task_id")) or str_or_none(d.get("id"))


def _kind(url: str, image_result: bool | None) -> str:
    if image_result is not None:
        return "image" if image_result else "video"
    return "image" if PurePosixPath(urlsplit(url).path).suffix.lower() in _IMAGE_SUFFIXES else "video"


def _outputs(creations: Any, image_result: bool | None) -> list[OutputRef]:
    outputs: list[OutputRef] = []
    for i, c in enumerate(creations if isinstance(creations, list) else []):
        if not isinstance(c, Mapping):
            continue
        url = str_or_none(c.get("url")) or str_or_none(c.get("watermarked_url"))
        meta = {"index": i} | ({"creation_id": str(c["id"])} if str_or_none(c.get("id")) else {})
        if url:
            outputs.append(OutputRef(url, _kind(url, image_result), meta=meta))
        cover = str_or_none(c.get("cover_url"))
        if cover and cover != url:
            outputs.append(OutputRef(cover, "image", meta=meta | {"role": "cover"}))
    return outputs


def _cost(credits: Any) -> dict[str, Any]:
    if isinstance(credits, bool) or not isinstance(credits, (int, float)) or not math.isfinite(credits) or credits < 0:
        return {}
    return {"cost": {"credits": credits}}


def _echo(payload: Any) -> str | None:
    value = str_or_none(payload)
    return value if value is not None and len(value) <= EXTERNAL_ID_MAX else None


def read_task(data: Any, *, task_id: str | None = None, image_result: bool | None = None) -> ProviderStatus:
    """A query or callback body as a status. `task_id` stands in where the body names none (the
    query's own id); `image_result` says whether `creations[].url` is an image (reference2image),
    None: judged by the URL's suffix (a callback, whose operation the body does not say)."""
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("Vidu task answer is not a JSON object")
    d = unwrap(data)
    if "state" not in d and isinstance(data.get("data"), Mapping) and "status" in data["data"]:
        return _newapi_dto(data["data"], task_id, image_result)
    raw = str(d.get("state") or "").strip().lower()  # none at all: unknown, like any word nobody documents
    state = STATES.get(raw, State.UNKNOWN)
    tid = task_id_of(d) or task_id
    outputs = _outputs(d.get("creations"), image_result) if state is State.SUCCEEDED else []
    # The cost only with the end: a running status with result data would cost every poll a write of its own.
    result = _cost(d.get("credits")) if state in (State.SUCCEEDED, State.FAILED) else {}
    ext = _echo(d.get("payload"))
    if state is State.SUCCEEDED and not any(o.meta.get("role") != "cover" for o in outputs):
        return ProviderStatus(
            tid, State.FAILED, result_data=result, error_code="provider_failed", error_message="task succeeded without any result URL", external_id=ext
        )
    if state is State.FAILED:
        err = str_or_none(d.get("err_code"))
        detail = str_or_none(d.get("err_msg")) or str_or_none(d.get("message"))
        message = f"Vidu task failed: {err or 'no err_code given'}" + (f" ({detail})" if detail else "")
        return ProviderStatus(tid, state, result_data=result, error_code=f"vidu_{err}" if err else "provider_failed", error_message=message, external_id=ext)
    progress = 100 if state is State.SUCCEEDED else parse_progress(d.get("progress"))
    detail = None if raw in STATES else f"Vidu state {raw[:60]!r}" if raw else "no Vidu state in the answer"
    return ProviderStatus(tid, state, progress, outputs, result, external_id=ext, detail=detail)


def _newapi_dto(d: Mapping[str, Any], task_id: str | None, image_result: bool | None) -> ProviderStatus:
    state = _NEWAPI.get(str(d.get("status") or "").strip().upper(), State.UNKNOWN)
    tid = task_id_of(d) or task_id
    url = str_or_none(d.get("result_url"))
    if state is State.SUCCEEDED:
        if not url:
            return ProviderStatus(tid, State.FAILED, error_code="provider_failed", error_message="task succeeded without any result URL")
        return ProviderStatus(tid, state, 100, [OutputRef(url, _kind(url, image_result))])
    if state is State.FAILED:
        return ProviderStatus(tid, state, error_code="provider_failed", error_message=str_or_none(d.get("fail_reason")) or "the task failed")
    return ProviderStatus(tid, state, parse_progress(d.get("progress")))
