"""Reading Suno relay answers: tasks (native or new-api DTO, providers.md §7.2, §2.5), clips, errors.

Pure functions over decoded JSON; the adapter in `providers.suno` decides which to call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from providers.base import OutputRef, ProviderStatus, State
from providers.wire import parse_progress, str_or_none

# Refusal codes (or messages) that mean "not now" rather than "never".
LATER = re.compile(r"rate[\s_-]?limit|busy|time[\s_-]?out|timed out|queue|429|too[\s_-]?many|concurren|overload", re.I)
_TASK_STATE = {
    "": State.QUEUED,
    "NOT_START": State.QUEUED,
    "SUBMITTED": State.QUEUED,
    "QUEUED": State.QUEUED,
    "IN_PROGRESS": State.RUNNING,
    "UNKNOWN": State.RUNNING,
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
    "FAIL": State.FAILED,
}
CLIP_DONE = frozenset({"complete", "completed", "success", "succeeded"})
CLIP_ERROR = frozenset({"error", "failed", "failure"})


def parse_task(t: Mapping[str, Any]) -> ProviderStatus:
    """One task, native or new-api DTO, of either action."""
    task_id = str_or_none(t.get("task_id"))
    state = _TASK_STATE.get(str(t.get("status") or "").upper(), State.UNKNOWN)
    raw = t.get("data")
    if isinstance(raw, Mapping) and "text" not in raw:  # an upstream object nested in the DTO's `data`
        raw = raw.get("data", raw.get("clips"))
    action = str(t.get("action") or "").upper()
    if action == "LYRICS" or (not action and _looks_like_lyrics(raw)):
        return _lyrics(task_id, state, t, raw)
    return _music(task_id, state, t, raw)


def _music(task_id: str | None, state: State, t: Mapping[str, Any], raw: Any) -> ProviderStatus:
    clips = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
    result: dict[str, Any] = {"clips": [_summary(c) for c in clips]} if clips else {}
    progress = parse_progress(t.get("progress"))
    if state not in (State.SUCCEEDED, State.FAILED):
        return ProviderStatus(task_id, state, progress, result_data=result)
    done = [c for c in clips if _clip_status(c) in CLIP_DONE]
    pending = [c for c in clips if _clip_status(c) not in CLIP_DONE | CLIP_ERROR]
    if state is State.SUCCEEDED and pending:  # streaming URLs are temporary: wait for `complete`
        return ProviderStatus(task_id, State.RUNNING, progress, result_data=result)
    if done:
        outputs = [o for c in done for o in _outputs(c)]
        failed = [str(c.get("id") or "") for c in clips if _clip_status(c) not in CLIP_DONE]
        return ProviderStatus(task_id, State.SUCCEEDED, 100, outputs, result | ({"failed_clips": failed} if failed else {}))
    errors = [f"{c.get('id')}: {_meta(c)['error_message']}" for c in clips if _meta(c).get("error_message")]
    fallback = "the task succeeded without a complete clip" if state is State.SUCCEEDED else "the provider reported a failure"
    return ProviderStatus(
        task_id,
        State.FAILED,
        progress,
        result_data=result,
        error_code="provider_failed",
        error_message="; ".join(errors) or str(t.get("fail_reason") or "") or fallback,
    )


def _lyrics(task_id: str | None, state: State, t: Mapping[str, Any], raw: Any) -> ProviderStatus:
    item = raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], Mapping) else raw
    item = item if isinstance(item, Mapping) else {}
    reason = str(t.get("fail_reason") or "")
    if state is State.SUCCEEDED:
        text = item.get("text")
        if isinstance(text, str) and str(item.get("status") or "").lower() not in CLIP_ERROR:
            return ProviderStatus(task_id, State.SUCCEEDED, 100, result_data={"title": str(item.get("title") or ""), "text": text})
        state, reason = State.FAILED, reason or "the task succeeded without lyrics"
    if state is State.FAILED:
        return ProviderStatus(task_id, State.FAILED, error_code="provider_failed", error_message=reason or "the provider reported a failure")
    return ProviderStatus(task_id, state, parse_progress(t.get("progress")))


def _outputs(c: Mapping[str, Any]) -> list[OutputRef]:
    """Audio, cover, video of one complete clip, in that order, tagged with the clip."""
    tag = {"clip_id": str(c.get("id") or ""), "title": str(c.get("title") or "")}
    urls = (("audio", "audio", c.get("audio_url")), ("image", "cover", c.get("image_large_url") or c.get("image_url")), ("video", "video", c.get("video_url")))
    return [OutputRef(str(url), kind, meta=tag | {"role": role}) for kind, role, url in urls if url]


def _summary(c: Mapping[str, Any]) -> dict[str, Any]:
    """What the job says about one clip, whatever became of it."""
    meta = _meta(c)
    out: dict[str, Any] = {"id": str(c.get("id") or ""), "title": str(c.get("title") or ""), "status": _clip_status(c)}
    extra = {
        "duration": meta.get("duration", c.get("duration")),
        "tags": meta.get("tags") or c.get("tags"),
        "model_name": c.get("model_name"),
        "error_message": meta.get("error_message"),
        "error_type": meta.get("error_type"),
    }
    return out | {k: v for k, v in extra.items() if v not in (None, "")}


def _meta(c: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = c.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _clip_status(c: Mapping[str, Any]) -> str:
    return str(c.get("status") or "").lower()


def _looks_like_lyrics(raw: Any) -> bool:
    item = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
    return isinstance(item, Mapping) and "text" in item and "audio_url" not in item


def unknown(message: str) -> ProviderStatus:
    return ProviderStatus(None, State.UNKNOWN, error_message=message or None)


def code_of(data: Any) -> str:
    """The business code: `code` (new-api / Suno-API) or the OpenAI-style error's type."""
    if not isinstance(data, dict):
        return ""
    if data.get("code") not in (None, ""):
        code = str(data["code"]).strip()
        return "success" if code.lower() == "success" else code
    err = data.get("error")
    if isinstance(err, dict):
        return str(err.get("code") or err.get("type") or "error")
    return ""
