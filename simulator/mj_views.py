"""Midjourney response bodies: the task object, submit envelopes, error shapes.

Pure functions of (task, monotonic time, config). Shapes follow
providers.md §2.4 (relay-side errors), §3.1-§3.5 (envelope, task object).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from simulator.mj import DESCRIBE, FAIL_REASON, GRID, SINGLE, VIDEO, MjTask, buttons_for
from simulator.timeline import FAILURE, IN_PROGRESS, SUCCESS

if TYPE_CHECKING:
    from simulator.config import SimConfig
    from simulator.state import SimState

INSTANCE = {"discordInstanceId": "sim-instance-1", "discordChannelId": "sim-channel-1"}


def media_base(task: MjTask, config: SimConfig) -> str:
    return (config.public_base or task.public_base).rstrip("/")


def grid_url(task: MjTask, base: str) -> str:
    return f"{base}/_sim/media/{task.id}_0.png"


def split_urls(task: MjTask, base: str) -> list[dict[str, str]]:
    return [{"url": f"{base}/_sim/media/{task.id}_{i}.png"} for i in range(1, 5)]


def video_urls(task: MjTask, base: str) -> list[dict[str, str]]:
    return [{"url": f"{base}/_sim/media/{task.id}_{i}.mp4"} for i in range(4)]


def _image_url(task: MjTask, base: str, status: str, progress: int) -> str:
    if status == SUCCESS:
        return grid_url(task, base)
    if status == IN_PROGRESS and progress > 0 and task.result in (GRID, SINGLE):
        return f"{base}/_sim/media/preview/{task.id}_{progress}.png"  # low-res preview
    return ""


def task_view(task: MjTask, state: SimState, at: float, config: SimConfig) -> dict[str, Any]:
    """The task object as it was at monotonic time `at` (fetch, list and notifyHook body)."""
    event = task.tl.at(at)
    status, base = event.status, media_base(task, config)
    done = status == SUCCESS
    started, finished = task.tl.started(at), task.tl.finished(at)
    prompt = task.prompt
    if task.result == DESCRIBE:
        prompt = "\n\n".join(task.suggestions) if done else ""
    obj: dict[str, Any] = {
        "id": task.id,
        "action": task.action,
        "customId": task.custom_id,
        "botType": task.bot_type,
        "prompt": prompt,
        "promptEn": prompt,
        "description": task.description,
        "state": task.state,
        "mode": task.mode,
        "submitTime": state.wall_ms(task.tl.created),
        "startTime": state.wall_ms(started) if started is not None else 0,
        "finishTime": state.wall_ms(finished) if finished is not None else 0,
        "imageUrl": _image_url(task, base, status, event.progress),
        "videoUrl": "",
        "videoUrls": None,
        "status": status,
        "progress": f"{event.progress}%",
        "failReason": FAIL_REASON if status == FAILURE else "",
        "buttons": buttons_for(task) if done else [],
        "maskBase64": task.mask_base64,
        "properties": {"finalPrompt": prompt, "finalZhPrompt": ""},
    }
    if done and task.result == GRID and config.mj_image_urls:
        obj["imageUrls"] = split_urls(task, base)
    if done and task.result == VIDEO:
        urls = video_urls(task, base)
        obj["videoUrl"], obj["videoUrls"] = urls[0]["url"], urls
    return obj


# -- submit envelopes ---------------------------------------------------------------


def submit_body(code: int, description: str, result: Any, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "description": description, "result": result, "properties": properties or {}}


def accepted(task_id: str, queued: int = 0) -> dict[str, Any]:
    """Code 1, or 22 with numberOfQueues when the job waits behind others."""
    if queued:
        props = {**INSTANCE, "numberOfQueues": queued}
        return submit_body(22, f"In queue, there are {queued} tasks ahead", task_id, props)
    return submit_body(1, "Submit success", task_id, dict(INSTANCE))


def upstream_fail(code: int, description: str, properties: dict[str, Any] | None = None) -> JSONResponse:
    """A proxy business error: HTTP 200, `code` != 1 (codes 4, 23, 24)."""
    return JSONResponse(submit_body(code, description, None, properties))


def relay_error(description: str, code: int = 4, status: int = 400) -> JSONResponse:
    """A relay-side (new-api) error: `{description, type: "upstream_error", code}`."""
    headers = {"Retry-After": "1"} if status == 429 else None
    return JSONResponse({"description": description, "type": "upstream_error", "code": code}, status, headers=headers)


def invalid_url(method: str, path: str) -> JSONResponse:
    """new-api's answer to a route it does not have."""
    body = {"error": {"message": f"Invalid URL ({method} {path})", "type": "invalid_request_error"}}
    return JSONResponse(body, status_code=404)


def guard_error(name: str, message: str, status: int | None = None) -> JSONResponse:
    """Errors raised by `Simulator.guard` (auth, injected rate limit / 5xx) in MJ shapes."""
    if name == "auth":
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=401)
    if name == "rate_limit":
        return relay_error("rate limit: channel or group saturated", code=30, status=429)
    http = status or 500
    return relay_error(f"fail_to_fetch_midjourney status_code: {http}", code=5, status=http)
