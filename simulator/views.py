"""Response bodies in the two envelopes: Kling native and new-api.

Pure functions: (task, time, base URL) -> JSON-ready dict. See
shared/docs/providers.md §2.4, §2.5, §2.7 and §4.3-§4.5.
"""

from __future__ import annotations

import uuid
from typing import Any

from simulator.config import SimConfig
from simulator.state import FAIL_MESSAGE, FAILED, KINDS, PROCESSING, SUBMITTED, SUCCEED, SimState, Task, parse_directives, video_id_of

# Kling task_status -> new-api internal status (§2.7).
NEWAPI_STATUS = {SUBMITTED: "SUBMITTED", PROCESSING: "IN_PROGRESS", SUCCEED: "SUCCESS", FAILED: "FAILURE"}


def request_id() -> str:
    return str(uuid.uuid4())


def media_urls(task: Task, base: str) -> list[str]:
    """Result links, pointing back at this simulator (`[sim:expire]`: links that answer 403)."""
    base = f"{base}/_sim/media/expired" if parse_directives(task.prompt).expire else f"{base}/_sim/media"
    if task.is_image:
        return [f"{base}/{task.task_id}_{i}.png" for i in range(task.n)]
    urls = [] if task.kind == "audio/text-to-audio" else [f"{base}/{task.task_id}.mp4"]
    if task.kind.startswith("audio/"):
        urls.append(f"{base}/{task.task_id}_audio.mp3")
    return urls


def task_result(task: Task, base: str) -> dict[str, Any]:
    """`images[]`, `videos[]`, and `audios[]` for the audio kinds (video-to-audio: both)."""
    urls = media_urls(task, base)
    if task.is_image:
        return {"images": [{"index": i, "url": url} for i, url in enumerate(urls)]}
    out: dict[str, Any] = {}
    if not urls[0].endswith(".mp3"):
        out["videos"] = [{"id": video_id_of(task.task_id), "url": urls[0], "duration": task.duration}]
    if urls[-1].endswith(".mp3"):
        out["audios"] = [{"id": f"{task.task_id}-audio", "url_mp3": urls[-1], "duration_mp3": task.duration}]
    return out


def native_task(task: Task, state: SimState, at: float, base: str) -> dict[str, Any]:
    """The Kling task object as it was at monotonic time `at` (also the callback body)."""
    status = task.status_at(at)
    obj: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": FAIL_MESSAGE if status == FAILED else "",
        "task_info": {"external_task_id": task.external_task_id},
        "created_at": state.wall_ms(task.created),
        "updated_at": state.wall_ms(task.changed_at(status)),
    }
    if status == SUCCEED:
        obj["task_result"] = task_result(task, base)
        obj["final_unit_deduction"] = "1"
    return obj


def native_ok(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}


def native_create(task: Task, state: SimState) -> dict[str, Any]:
    return native_ok(
        {
            "task_id": task.task_id,
            "task_status": SUBMITTED,
            "task_info": {"external_task_id": task.external_task_id},
            "created_at": state.wall_ms(task.created),
            "updated_at": state.wall_ms(task.created),
        }
    )


def newapi_create(task: Task, state: SimState) -> dict[str, Any]:
    """new-api's OpenAI-video-like answer to a Kling create (§4.3)."""
    return {
        "id": task.relay_id,
        "task_id": task.relay_id,
        "object": "video",
        "model": task.model,
        "status": "queued",
        "progress": 0,
        "created_at": state.wall_s(task.created),
    }


def newapi_dto(task: Task, state: SimState, config: SimConfig, base: str) -> dict[str, Any]:
    """new-api generic task DTO in its `{code:"success"}` envelope (§2.5)."""
    now = state.now()
    status = task.status_at(now)
    raw = native_task(task, state, now, base)
    result_url = media_urls(task, base)[0] if status == SUCCEED else ""
    fail_reason = FAIL_MESSAGE if status == FAILED else ""
    if result_url and config.legacy_result_in_fail_reason:
        fail_reason, result_url = result_url, ""
    data: dict[str, Any] = {
        "id": task.db_id,
        "created_at": state.wall_s(task.created),
        "updated_at": state.wall_s(task.changed_at(status)),
        "task_id": task.relay_id,
        "platform": "kling",
        "user_id": 1,
        "group": "default",
        "channel_id": 1,
        "quota": 0,
        "action": KINDS[task.kind],
        "status": NEWAPI_STATUS[status],
        "fail_reason": fail_reason,
        "submit_time": state.wall_s(task.created),
        "start_time": state.wall_s(task.started) if status != SUBMITTED else 0,
        "finish_time": state.wall_s(task.finished) if status in (SUCCEED, FAILED) else 0,
        "progress": f"{task.progress_at(now)}%",
        "properties": {"input": task.prompt},
        "data": raw,
    }
    if result_url:
        data["result_url"] = result_url
    return {"code": "success", "message": "", "data": data}


# -- errors -----------------------------------------------------------------
# name -> (http status, native code, new-api code)
_ERRORS: dict[str, tuple[int, int, str]] = {
    "auth": (401, 1000, ""),
    "invalid": (400, 1201, "invalid_request"),
    "not_found": (404, 1201, "task_not_exist"),
    "rate_limit": (429, 1302, "rate_limit_exceeded"),
    "server": (500, 5000, "fail_to_fetch_task"),
    "reject": (200, 1301, "task_failed"),
    "duplicate": (400, 1201, "invalid_request"),
}


def error(name: str, message: str, envelope: str, status: int | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for an error in the given envelope."""
    http, native_code, newapi_code = _ERRORS[name]
    if status is not None:
        http = status
    if envelope == "native":
        return http, {"code": native_code, "message": message, "request_id": request_id()}
    if name == "auth":
        return 401, {"error": {"message": message, "type": "invalid_request_error"}}
    if name == "not_found":
        # new-api: missing task -> HTTP 400, code task_not_exist (§2.4)
        return 400, {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    if name == "reject":
        # new-api turns an upstream code != 0 into a relay error (not an HTTP 200).
        http = 400
    return http, {"code": newapi_code, "message": message, "data": None}
