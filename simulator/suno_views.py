"""Bodies of the Suno routes (Suno-API "Plato" format, providers.md §7): the task object as it
is at a moment (fetch body and notify_hook payload), its clips, and the `{code, message, data}`
envelope. The task model is `simulator.suno`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from simulator.suno import CLIP_DURATION_S, CLIP_FAIL, FAIL_REASON, MAJOR_VERSION, MUSIC, SunoClip, SunoTask
from simulator.timeline import FAILURE, IN_PROGRESS, QUEUED, SUCCESS

if TYPE_CHECKING:
    from simulator.config import SimConfig
    from simulator.state import SimState


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clip_view(task: SunoTask, clip: SunoClip, state: SimState, at: float, base: str) -> dict[str, Any]:
    status = task.tl.at(at).status
    clip_status = {IN_PROGRESS: "streaming", QUEUED: "queued", FAILURE: "error"}.get(status, "submitted")
    if status == SUCCESS:
        clip_status = "error" if clip.fails else "complete"
    complete, error = clip_status == "complete", clip_status == "error"
    audio = ""
    if clip_status == "streaming":
        audio = f"{base}/_sim/media/stream/{clip.id}.mp3"
    elif complete:
        audio = f"{base}/_sim/media/{clip.id}.mp3"
    image = f"{base}/_sim/media/{clip.id}.jpeg" if clip_status in ("streaming", "complete") else ""
    metadata: dict[str, Any] = {
        "tags": clip.tags,
        "negative_tags": task.negative_tags,
        "prompt": clip.lyrics,
        "gpt_description_prompt": task.gpt_description_prompt,
        "type": "gen",
        "stream": True,
        "duration": CLIP_DURATION_S if complete else None,
        "error_type": None,
        "error_message": None,
    }
    if task.continue_clip_id:
        metadata.update(task="extend", continue_clip_id=task.continue_clip_id, continue_at=task.continue_at)
    if error:
        metadata["error_type"] = "moderation" if status == FAILURE else "generation_failed"
        metadata["error_message"] = FAIL_REASON if status == FAILURE else CLIP_FAIL
    return {
        "id": clip.id,
        "title": clip.title,
        "status": clip_status,
        "audio_url": audio,
        "video_url": f"{base}/_sim/media/{clip.id}.mp4" if complete else "",
        "image_url": image,
        "image_large_url": image.replace(".jpeg", "_large.jpeg") if image else "",
        "is_video_pending": not complete and not error,
        "model_name": task.mv,
        "major_model_version": MAJOR_VERSION.get(task.mv, "v3"),
        "created_at": _iso(state.wall_s(task.tl.created)),
        "metadata": metadata,
    }


def task_view(task: SunoTask, state: SimState, at: float, config: SimConfig) -> dict[str, Any]:
    """The Suno-API task object at monotonic time `at` (fetch body and notify_hook payload)."""
    event = task.tl.at(at)
    base = (config.public_base or task.public_base).rstrip("/")
    started, finished = task.tl.started(at), task.tl.finished(at)
    data: Any
    if task.action == MUSIC:
        data = [clip_view(task, clip, state, at, base) for clip in task.clips]
    elif event.status == SUCCESS:
        data = {"id": task.id, "text": task.lyrics, "title": task.title, "status": "complete"}
    else:
        data = None
    return {
        "task_id": task.id,
        "notify_hook": task.hook.url or "",
        "action": task.action,
        "status": event.status,
        "fail_reason": FAIL_REASON if event.status == FAILURE else "",
        "submit_time": state.wall_s(task.tl.created),
        "start_time": state.wall_s(started) if started is not None else 0,
        "finish_time": state.wall_s(finished) if finished is not None else 0,
        "progress": f"{event.progress}%",
        "data": data,
    }


def ok(data: Any) -> dict[str, Any]:
    return {"code": "success", "message": "", "data": data}


def fail(message: str, code: str = "fail", status: int = 200) -> JSONResponse:
    """Suno error envelope; business errors come with HTTP 200."""
    return JSONResponse({"code": code, "message": message, "data": None}, status_code=status)


def guard_error(name: str, message: str, status: int | None = None) -> JSONResponse:
    """Errors raised by `Simulator.guard` in new-api task shapes (providers.md §2.4)."""
    if name == "auth":
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=401)
    if name == "rate_limit":
        body = {"code": "rate_limit_exceeded", "message": message, "data": None}
        return JSONResponse(body, status_code=429, headers={"Retry-After": "1"})
    return fail(message, "fail_to_fetch_task", status or 500)
