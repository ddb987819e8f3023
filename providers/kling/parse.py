"""Kling task shapes, normalized once for every operation (providers.md §4, providers-next.md §4.1).

- the Kling-official task object `{task_id, task_status, task_status_msg, task_info{external_task_id},
  task_result{videos[], images[], audios[]}, final_unit_deduction}` (bare, or under `data`);
- new-api's generic task DTO `{code: "success", data: {task_id, status: SUCCESS..., progress: "50%",
  result_url | fail_reason, data: <raw upstream>}}` (§2.5);
- the video object `{id, status: completed, metadata: {url}}` (§2.6);
- identify-face's immediate answer `{session_id, face_data[]}`: no task, nothing to download.
Every URL under `task_result` becomes an output (a bounded walk), its kind from the list it is
in (videos, images, audios) or else from its key or extension.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import OutputRef, ProviderStatus, State, Submitted
from providers.wire import object_at, parse_progress, str_or_none

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

MAX_OUTPUTS = 32  # URLs taken from one task_result
MAX_DEPTH = 5  # nesting walked under task_result
MAX_NODES = 2000  # values visited under task_result
MAX_FACES = 20  # identify-face faces kept in job.result
MAX_VALUE = 2000  # characters of one relay string kept in job.result
_LIST_KIND = {"videos": "video", "images": "image", "audios": "audio"}
_EXT_KIND = {".mp4": "video", ".mov": "video", ".webm": "video", ".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image"}
_AUDIO_EXT = (".mp3", ".wav", ".m4a", ".aac", ".ogg", ".flac")
_META_KEYS = ("id", "index", "duration", "duration_mp3", "duration_wav")


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


def identified_faces(inner: Mapping[str, Any]) -> Submitted:
    """identify-face's answer: done at once; the session and the faces go to job.result."""
    session = str_or_none(inner.get("session_id"))
    if session is None:
        raise ProviderProtocolError("identify-face answer carries no session_id")
    faces = inner.get("face_data")
    kept = [_bounded(f) for f in faces[:MAX_FACES] if isinstance(f, Mapping)] if isinstance(faces, list) else []
    result: dict[str, Any] = {"session_id": session, "face_data": kept}
    cost = _cost(inner.get("final_unit_deduction"))
    if cost is not None:
        result["cost"] = cost
    return Submitted(session, ProviderStatus(session, State.SUCCEEDED, progress=100, result_data=result))


def _bounded(face: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in list(face.items())[:16]:
        if isinstance(v, bool | int | float) or v is None:
            out[str(k)[:64]] = v
        elif isinstance(v, str):
            out[str(k)[:64]] = v[:MAX_VALUE]
    return out


def outputs_of(result: object) -> list[OutputRef]:
    """Every http(s) URL under task_result, at most MAX_OUTPUTS, each once, with its kind."""
    outputs: list[OutputRef] = []
    seen: set[str] = set()
    for url, kind, meta in _walk(result, None, {}, 0, [0]):
        if url not in seen and len(outputs) < MAX_OUTPUTS:
            seen.add(url)
            outputs.append(OutputRef(url, kind, meta=meta))
    return outputs


def _walk(node: object, kind: str | None, meta: Mapping[str, Any], depth: int, visited: list[int]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    visited[0] += 1
    if depth > MAX_DEPTH or visited[0] > MAX_NODES:
        return
    if isinstance(node, Mapping):
        here = dict(meta) | {k: node[k] for k in _META_KEYS if isinstance(node.get(k), str | int | float) and not isinstance(node.get(k), bool)}
        for key, value in node.items():
            if isinstance(value, str):
                if value.startswith(("http://", "https://")) and len(value) <= 4000:
                    yield value, kind or _kind_of(str(key), value), here | ({"field": str(key)} if key != "url" else {})
            else:
                yield from _walk(value, _LIST_KIND.get(str(key), kind), here if kind else {}, depth + 1, visited)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, kind, {"index": i} if kind else {}, depth + 1, visited)


def _kind_of(key: str, url: str) -> str:
    path = url.split("?", 1)[0].lower()
    if "mp3" in key or "wav" in key or "audio" in key or path.endswith(_AUDIO_EXT):
        return "audio"
    for ext, kind in _EXT_KIND.items():
        if path.endswith(ext):
            return kind
    return "image" if "image" in key else "video" if "video" in key else "file"


def _cost(raw: object) -> dict[str, float] | None:
    """final_unit_deduction ("1", 0.5) as result.cost.units; anything else is dropped."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        units = float(str(raw).strip())
    except ValueError:
        return None
    return {"units": units} if 0 <= units < 1e9 else None


def result_data_of(d: Mapping[str, Any], outputs: list[OutputRef]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    cost = _cost(d.get("final_unit_deduction"))
    if cost is not None:
        data["cost"] = cost
    video_ids = [str(o.meta["id"])[:200] for o in outputs if o.kind == "video" and "id" in o.meta]
    if video_ids:
        data["video_id"] = video_ids[0]  # what video-extend, identify-face and video-to-audio take
    msg = str_or_none(d.get("task_status_msg"))
    if msg:
        data["task_status_msg"] = msg[:MAX_VALUE]
    return data


def _native(d: Mapping[str, Any]) -> ProviderStatus:
    raw_state = str(d.get("task_status") or "")
    state = _NATIVE_STATE.get(raw_state, State.UNKNOWN)
    task_result = d.get("task_result")
    # identify-face served as a task: its result is the session and the faces, nothing to download
    session = isinstance(task_result, Mapping) and str_or_none(task_result.get("session_id")) is not None
    outputs = [] if session else outputs_of(task_result)
    info = d.get("task_info") or {}
    ext = info.get("external_task_id") if isinstance(info, dict) else None
    result_data = result_data_of(d, outputs)
    if session and state is State.SUCCEEDED and isinstance(task_result, Mapping):
        faces = identified_faces(task_result).status
        result_data |= dict(faces.result_data) if faces else {}
    failed = state is State.FAILED
    if state is State.SUCCEEDED and not outputs and "session_id" not in result_data:
        state, failed = State.FAILED, True
        msg: str | None = "task succeeded without any result URL"
    else:
        msg = str(d.get("task_status_msg") or "") or None
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
        action = str(d.get("action") or "").lower()
        kind = "image" if action.startswith("image") else "audio" if "audio" in action else "video"
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
