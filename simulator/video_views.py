"""Response bodies of the video routes: pure functions of (task, time, base URL).

Unified shapes (`[sim:shape=NAME]`; default `native`), submit answer / query answer:

* `native`: the family's own shape. sora §5.1: `{id, object, model, status, progress:"45",
  created_at, size, status_update_time, detail{id, input, status, pending_info{status,
  progress_pct, n_frames}, generations[]}, video_url, metadata:"<JSON string>"}`; veo §6.1:
  `{id, status, status_update_time, enhanced_prompt}` / the same + `progress:"45%"`, `video_url`,
  `detail`, `metadata:{...}`; grok §10.6: `{task_id, status, status_update_time}` / `{id, task_id,
  model, status, progress, video_url, created_at, status_update_time}`. Failure reason:
  sora `detail.failure_reason`, veo `error` (string), grok `error{code,message}`.
* `plain`: `{id, status, status_update_time}` / `{id, status, progress, video_url,
  status_update_time, error:"<reason>"}`.
* `data` (new-api generic DTO §2.5, what the K4U client reads): `{code:"success", message:"",
  data:{task_id, status}}` / `data:{task_id, status: QUEUED|IN_PROGRESS|SUCCESS|FAILURE,
  progress:"45%", result_url, fail_reason}` (`result_url` omitted until there is one).
* `url` (the flat §2.5 shape): `{task_id, status, status_update_time}` / `{task_id, status:
  queued|processing|succeeded|failed, url, format, metadata, error}`.
* `error_string`, `error_object`, `fail_reason`, `detail_reason`: the native shape with the
  failure reason put as `error:"..."`, `error:{code,message}`, `fail_reason:"..."` or
  `detail.failure_reason` (a `detail` object is added where the family has none).

OpenAI shapes: `content_only` (default; no URL, the client must use `/content`, like new-api's
Sora adaptor) and `video_url` (a direct `video_url` and `metadata.url`, as some relays give).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from simulator.timeline import strip_directives
from simulator.video import DONE, FAIL_REASON, FAILED, GROK, NATIVE_FAILURE, QUEUED, RUNNING, SORA, VEO, VideoTask

if TYPE_CHECKING:
    from simulator.state import SimState

NEWAPI_WORDS = {QUEUED: "QUEUED", RUNNING: "IN_PROGRESS", DONE: "SUCCESS", FAILED: "FAILURE"}
FLAT_WORDS = {QUEUED: "queued", RUNNING: "processing", DONE: "succeeded", FAILED: "failed"}
FPS = 30


def media_url(task: VideoTask, base: str) -> str:
    return f"{base}/_sim/media/video/{task.media_key}.mp4"


def _result_url(task: VideoTask, now: float, base: str) -> str | None:
    return media_url(task, base) if task.phase_at(now) == DONE else None


def _enhanced(task: VideoTask) -> str:
    clean = strip_directives(task.prompt)
    return f"{clean}, cinematic lighting, highly detailed" if task.params.get("enhance_prompt") else clean


def _n_frames(task: VideoTask) -> int:
    try:
        return int(float(task.params.get("duration") or task.params.get("seconds") or 10) * FPS)
    except (TypeError, ValueError):
        return 10 * FPS


def _detail(task: VideoTask, state: SimState, now: float, base: str, inner: str) -> dict[str, Any]:
    url = _result_url(task, now, base)
    upstream = task.id.split(":", 1)[-1]
    generations = [] if url is None else [{"id": "gen_" + upstream[5:], "url": url, "n_frames": _n_frames(task), "task_id": upstream}]
    return {
        "id": upstream,
        "input": {k: v for k, v in task.params.items() if k != "images"} | {"prompt": task.prompt},
        "status": inner,
        "pending_info": {
            "status": inner,
            "progress_pct": round(task.progress_at(now) / 100, 2),
            "n_frames": _n_frames(task),
            "queue_position": 1 if task.phase_at(now) == QUEUED else None,
        },
        "generations": generations,
    }


def _native_query(task: VideoTask, state: SimState, now: float, base: str) -> dict[str, Any]:
    word, inner = task.word_at(now)
    progress = task.progress_at(now)
    url = _result_url(task, now, base)
    updated = state.wall_ms(task.changed_at(now))
    if task.family == SORA:
        return {
            "id": task.id,
            "object": "video",
            "model": task.model,
            "status": word,
            "progress": str(progress),
            "created_at": state.wall_s(task.created),
            "size": task.params.get("size") or "small",
            "status_update_time": updated,
            "detail": _detail(task, state, now, base, inner),
            "video_url": url,
            "metadata": json.dumps({k: task.params.get(k) for k in ("orientation", "duration")}),
        }
    if task.family == VEO:
        return {
            "id": task.id,
            "status": word,
            "progress": f"{progress}%",
            "video_url": url,
            "enhanced_prompt": _enhanced(task),
            "status_update_time": updated,
            "detail": _detail(task, state, now, base, inner),
            "metadata": {k: task.params.get(k) for k in ("aspect_ratio", "enable_upsample", "enhance_prompt")},
        }
    return {
        "id": task.id,
        "task_id": task.id,
        "model": task.model,
        "status": word,
        "progress": str(progress),
        "video_url": url,
        "created_at": state.wall_s(task.created),
        "status_update_time": updated,
    }


def _place_failure(body: dict[str, Any], placement: str, task: VideoTask, state: SimState, now: float, base: str) -> None:
    if placement == "error_string":
        body["error"] = FAIL_REASON
    elif placement == "error_object":
        body["error"] = {"code": "generation_failed", "message": FAIL_REASON}
    elif placement == "fail_reason":
        body["fail_reason"] = FAIL_REASON
    else:
        detail = body.setdefault("detail", _detail(task, state, now, base, task.word_at(now)[1]))
        detail["failure_reason"] = FAIL_REASON


def unified_query(task: VideoTask, state: SimState, now: float, base: str) -> dict[str, Any]:
    """The `GET /v1/video/query` answer at `now`."""
    phase, shape = task.phase_at(now), task.shape
    url = _result_url(task, now, base)
    reason = FAIL_REASON if phase == FAILED else None
    if shape == "data":
        status = task.word_at(now)[0] if task.plan.synonyms and phase != FAILED else NEWAPI_WORDS[phase]
        data: dict[str, Any] = {
            "task_id": task.id,
            "status": status,
            "progress": f"{task.progress_at(now)}%",
            "fail_reason": reason or "",
            "submit_time": state.wall_s(task.created),
        }
        if url:
            data["result_url"] = url
        return {"code": "success", "message": "", "data": data}
    if shape == "url":
        status = task.word_at(now)[0] if task.plan.synonyms and phase != FAILED else FLAT_WORDS[phase]
        return {"task_id": task.id, "status": status, "url": url, "format": "mp4", "metadata": {}, "error": reason}
    if shape == "plain":
        word = task.word_at(now)[0]
        return {
            "id": task.id,
            "status": word,
            "progress": str(task.progress_at(now)),
            "video_url": url,
            "status_update_time": state.wall_ms(task.changed_at(now)),
            "error": reason,
        }
    body = _native_query(task, state, now, base)
    if reason:
        placement = NATIVE_FAILURE[task.family] if shape == "native" else shape
        _place_failure(body, placement, task, state, now, base)
    return body


def unified_submit(task: VideoTask, state: SimState, now: float, base: str) -> dict[str, Any]:
    """The `POST /v1/video/create` answer."""
    word = task.word_at(now)[0]
    updated = state.wall_ms(task.created)
    if task.shape == "data":
        return {"code": "success", "message": "", "data": {"task_id": task.id, "status": word}}
    if task.shape == "url" or (task.shape != "plain" and task.family == GROK):
        return {"task_id": task.id, "status": word, "status_update_time": updated}
    if task.shape == "plain":
        return {"id": task.id, "status": word, "status_update_time": updated}
    if task.family == VEO:
        return {"id": task.id, "status": word, "status_update_time": updated, "enhanced_prompt": _enhanced(task)}
    body = _native_query(task, state, now, base)
    body.pop("video_url", None)
    body.pop("metadata", None)
    return body


def openai_object(task: VideoTask, state: SimState, now: float, base: str) -> dict[str, Any]:
    """The new-api / OpenAI video object (`POST /v1/videos`, `GET /v1/videos/{id}`, remix)."""
    phase = task.phase_at(now)
    word = task.word_at(now)[0]
    done = phase == DONE
    body: dict[str, Any] = {
        "id": task.id,
        "task_id": task.id,
        "object": "video",
        "model": task.model,
        "status": word,
        "progress": task.progress_at(now),
        "created_at": state.wall_s(task.created),
        "completed_at": state.wall_s(task.finished) if done else None,
        "expires_at": state.wall_s(task.expires_at()) if done else None,
        "seconds": str(task.params.get("seconds") or "4"),
        "size": str(task.params.get("size") or "720x1280"),
        "remixed_from_video_id": task.remixed_from,
        "error": {"code": "generation_failed", "message": FAIL_REASON} if phase == FAILED else None,
    }
    if task.shape == "video_url":
        url = media_url(task, base) if done else None
        body["video_url"] = url
        body["metadata"] = {"url": url} if url else {}
    return body
