"""Reading a video task's status in any of the relay's shapes (providers.md §2.5-2.7, §5, §6, §10.6).

One reader serves both formats, because relays mix them: the OpenAI video object (`/v1/videos`),
the unified query body (`/v1/video/query`) and the new-api `{code, message, data}` envelope.
- Status: every synonym the relays use maps to one state; Veo's intermediate states
  (`video_generation_completed`, `video_upsampling`...) keep the job running; an unknown value keeps
  polling and is logged once per process.
- Progress: chosen by field, never by value: `progress` is a percent (int 0-100 or a string like
  "45" / "45%"), `detail.pending_info.progress_pct` a 0-1 fraction.
- Result URL: `video_url`, `result_url`, `url` or `metadata.url`; success needs one (unified) or
  the relay's content route (OpenAI format).
- Failure reason: a plain-string `error`, `error.message`, `fail_reason`, `detail.failure_reason`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import OutputRef, ProviderStatus, State
from providers.wire import object_at, str_or_none

log = logging.getLogger("k4u.providers.video")

_SYNONYMS: dict[State, tuple[str, ...]] = {
    State.QUEUED: ("", "queued", "pending", "submitted", "preparing", "unknown", "not_start", "in_queue"),
    State.RUNNING: (
        "in_progress",
        "processing",
        "running",
        "generating",
        "image_downloading",
        "video_generating",
        "video_generation_completed",
        "video_upsampling",
        "video_upsampling_completed",
        "upsampling",
    ),
    State.SUCCEEDED: ("completed", "success", "succeeded", "finished", "succeed", "complete"),
    State.FAILED: ("failed", "failure", "error", "video_generation_failed", "video_upsampling_failed"),
    State.CANCELLED: ("cancelled", "canceled"),
}
STATUS_MAP: dict[str, State] = {raw: state for state, raws in _SYNONYMS.items() for raw in raws}
_logged_unknown: set[str] = set()


def normalize_status(raw: object) -> State:
    """The state of a relay status string; UNKNOWN (keep polling) for a value nobody documents."""
    value = str(raw if raw is not None else "").strip().lower()
    state = STATUS_MAP.get(value)
    if state is None:
        if value not in _logged_unknown and len(_logged_unknown) < 1000:
            _logged_unknown.add(value)
            log.warning("unknown video status %r: polling on", value[:80])
        return State.UNKNOWN
    return state


def unwrap(data: Any) -> Mapping[str, Any]:
    """The task object inside the new-api envelope `{code, message, data}` or as it is."""
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("video answer is not a JSON object")
    inner = data.get("data")
    if isinstance(inner, Mapping) and "status" not in data and ("status" in inner or "task_id" in inner or "id" in inner):
        return inner
    return data


def task_id_of(d: Mapping[str, Any]) -> str | None:
    return str_or_none(d.get("id")) or str_or_none(d.get("task_id"))


def percent(raw: object) -> int | None:
    """A percent field: 45, 45.5, "45", "45%"."""
    try:
        value = float(raw.strip().rstrip("%")) if isinstance(raw, str) else float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    except ValueError:
        return None
    if value is None or not math.isfinite(value):
        return None
    return max(0, min(100, int(value)))


def fraction(raw: object) -> int | None:
    """A 0-1 fraction field (progress_pct) as a percent."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    return max(0, min(100, int(raw * 100)))


def metadata_of(d: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` as an object: Veo sends one, Sora a JSON string."""
    raw = d.get("metadata")
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except ValueError:
            return {"raw": raw[:2000]}
    return dict(raw) if isinstance(raw, Mapping) else {}


def failure_reason(d: Mapping[str, Any]) -> str | None:
    err = d.get("error")
    if isinstance(err, str) and err.strip():
        return err.strip()
    if isinstance(err, Mapping) and err.get("message"):
        return str(err["message"])
    if d.get("fail_reason"):
        return str(d["fail_reason"])
    detail = d.get("detail")
    if isinstance(detail, Mapping):
        for key in ("failure_reason", "fail_reason", "error", "reason"):
            value = detail.get(key)
            if isinstance(value, Mapping) and value.get("message"):
                return str(value["message"])
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def result_url(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str | None:
    for value in (d.get("video_url"), d.get("result_url"), d.get("url"), meta.get("url")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _expires(d: Mapping[str, Any]) -> datetime | None:
    raw = d.get("expires_at")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw < 1e11:
        return None
    return datetime.fromtimestamp(raw, UTC)


def _progress(d: Mapping[str, Any]) -> int | None:
    pending = object_at(object_at(d, "detail"), "pending_info")
    found = [p for p in (percent(d.get("progress")), fraction(pending.get("progress_pct"))) if p is not None]
    return max(found) if found else None


_RESULT_FIELDS = ("model", "seconds", "size", "duration", "enhanced_prompt", "remixed_from_video_id", "usage", "status_update_time")


def read_status(data: Any, *, content_path: str | None) -> ProviderStatus:
    """One video task. `content_path` is the relay's content route for this task (OpenAI format),
    used when the answer carries no direct URL; None for the unified format, whose success needs a URL."""
    d = unwrap(data)
    task_id = task_id_of(d)
    raw_status = d.get("status")
    state = normalize_status(raw_status)
    meta = metadata_of(d)
    url = result_url(d, meta)
    result: dict[str, Any] = {k: d[k] for k in _RESULT_FIELDS if d.get(k) not in (None, "", [], {})}
    if meta:
        result["metadata"] = meta
    error: str | None = None
    if state is State.SUCCEEDED or (state is State.QUEUED and raw_status in (None, "") and url):
        # unified: success is keyed on the URL; without one it comes with a later answer
        state = State.RUNNING if url is None and content_path is None else State.SUCCEEDED
    elif state in (State.FAILED, State.CANCELLED):
        error = failure_reason(d) or f"the relay reported {str(raw_status)[:60]!r}"
    outputs = []
    if state is State.SUCCEEDED:
        ref = url or content_path
        assert ref is not None
        outputs = [OutputRef(ref, "video", meta={"source": "video_url" if url else "content"})]
    inner = object_at(object_at(d, "detail"), "pending_info")
    note = str_or_none(inner.get("status")) if inner else None
    return ProviderStatus(
        task_id=task_id,
        state=state,
        progress=100 if state is State.SUCCEEDED else _progress(d),
        outputs=outputs,
        result_data=result,
        error_code="provider_failed" if state is State.FAILED else None,
        error_message=error,
        expires_at=_expires(d),
        detail=f"relay: {str(raw_status)[:40]}, upstream: {note[:40]}" if note and note != raw_status else None,
    )
