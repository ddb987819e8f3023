"""Midjourney answers: the submit envelope, task objects (fetch, list-by-condition, notifyHook)
and the seed query, normalized into our wire types. Pure: no I/O, no clock.

- Submit envelope `{code, description, result, properties}` (providers.md §3.1). HTTP 200 with
  a code other than 1/21/22 is a rejection (§2.4, §3.2); 21 names an existing task that may
  already be finished or parked in MODAL; `result` is a list for upload-discord-images.
- Relay-side errors are HTTP 400 `{description, type: "upstream_error", code}`; code 30
  arrives as HTTP 429 (§2.4).
- Task object fields and the status enum: §3.3, §3.4; results (grid `imageUrl`, split
  `imageUrls`, `videoUrls`, describe text in `properties.finalPrompt`): §3.5, §10.10.
  new-api trims `properties` to finalPrompt/finalZhPrompt and has no `imageUrls` (§3.3).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, OutputRef, ProviderStatus, Rejected, State, Submitted
from providers.rejections import submit_rejection
from providers.wire import error_message, is_not_found, json_or_none, parse_progress, str_or_none

_STATE = {
    "": State.QUEUED,
    "NOT_START": State.QUEUED,
    "SUBMITTED": State.QUEUED,
    "MODAL": State.RUNNING,
    "IN_PROGRESS": State.RUNNING,
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
    "CANCEL": State.CANCELLED,
}
# Submit codes that are a "no" (§3.2): (our code, retryable). 24 and unlisted codes are built below.
_REJECT = {
    3: ("mj_no_account", True),
    4: ("mj_bad_request", False),
    5: ("mj_unknown", True),
    23: ("mj_queue_full", True),
    25: ("mj_insufficient_balance", False),
    30: ("rate_limited", True),
}
# Where the grid image of a finished task stands, by its action (§3.5: UPSCALE yields one image).
_IMAGE_ROLE = {"UPSCALE": "single", "VIDEO": "cover", "DESCRIBE": "source", "UPLOAD": "upload"}
_TEXT_ONLY = frozenset({"DESCRIBE", "UPLOAD", "SHORTEN"})  # may succeed without any media URL
# On success, overwrite what a MODAL poll merged into job.result earlier (apply.py merges dicts).
_DONE = {"awaiting_input": False, "status": "SUCCESS"}
_KEYCAP = re.compile(r"^\s*(?:\d\ufe0f?\u20e3|\d+[.)])\s*")  # "1️⃣ " / "1. " before a describe suggestion


def parse_submit(resp: HttpResponse) -> Submitted | Rejected:
    """Submitted(task id[, immediate status]) or Rejected; ProviderProtocolError when unreadable."""
    data = json_or_none(resp) if resp.status >= 300 else resp.json()
    message = error_message(data)
    if resp.status >= 300:
        rejected = submit_rejection(resp, message)
        code = _code(data)
        if resp.status not in (401, 403) and not rejected.retryable and code in _REJECT and _REJECT[code][1]:
            return _reject_code(code, data, message)  # e.g. a saturated channel (30) sent as HTTP 400
        return rejected
    if not isinstance(data, dict):
        raise ProviderProtocolError("submit answer is not a JSON object")
    code = _code(data)
    if code is None:
        raise ProviderProtocolError("submit answer carries no code")
    if code not in (1, 21, 22):
        return _reject_code(code, data, message)
    result = data.get("result")
    if isinstance(result, list) and code == 1:
        return _uploaded(result)
    task_id = str_or_none(result)
    if task_id is None:
        raise ProviderProtocolError(f"submit code {code} without a task id in result")
    return Submitted(task_id, _existing(task_id, data) if code == 21 else None)


def _reject_code(code: int, data: Any, message: str) -> Rejected:
    props = _props(data)
    if code == 24:
        word = props.get("bannedWord")
        text = f"banned prompt: contains '{word}'" if word else f"banned prompt: {message or 'rejected by the filter'}"
        if props.get("promptEn"):
            text += f" (prompt as sent: {str(props['promptEn'])[:300]})"
        return Rejected("mj_banned_prompt", text, False)
    ours, retryable = _REJECT.get(code, (f"mj_{code}", False))
    return Rejected(ours, message or f"Midjourney code {code}", retryable)


def _uploaded(result: list[Any]) -> Submitted:
    """upload-discord-images answers the URLs at once (§3.1): a task that is already done."""
    urls = [str(u) for u in result if isinstance(u, str) and u]
    if not urls:
        raise ProviderProtocolError("upload answered code 1 without any URL")
    task_id = "upload-" + hashlib.sha256("\n".join(urls).encode()).hexdigest()[:16]
    outputs = [OutputRef(u, "image", meta={"role": "upload", "index": i}) for i, u in enumerate(urls)]
    return Submitted(task_id, ProviderStatus(task_id, State.SUCCEEDED, 100, outputs, {"urls": urls}))


def _existing(task_id: str, data: Mapping[str, Any]) -> ProviderStatus | None:
    """Code 21: the task already exists; it may be finished or parked awaiting input (§3.2).

    A finished one is taken over by id only: its code-21 answer carries the image but no buttons,
    and the first poll returns the whole task, so the job can still chain the next action."""
    props = _props(data)
    status = str(props.get("status") or "").upper()
    description = str(data.get("description") or "").lower()
    if status == "MODAL" or any(w in description for w in ("modal", "waiting", "等待")):
        return ProviderStatus(task_id, State.RUNNING, result_data={"awaiting_input": True, "status": "MODAL", "mj_task_id": task_id})
    return None


def parse_poll(resp: HttpResponse) -> list[ProviderStatus]:
    """A list-by-condition array or one fetched task; unknown ids are simply absent (§3.3)."""
    if resp.status >= 300:
        data = json_or_none(resp)
        if resp.status == 404 or (resp.status == 400 and is_not_found(data)):
            return [ProviderStatus(None, State.UNKNOWN, error_message=error_message(data) or "task not found")]
        raise ProviderProtocolError(f"HTTP {resp.status} on query: {error_message(data)[:200]}")
    data = resp.json()
    if data is None:
        return []  # midjourney-proxy answers an unknown id with an empty body
    if isinstance(data, list):
        if not all(isinstance(t, Mapping) for t in data):
            raise ProviderProtocolError("list-by-condition answer holds a non-object")
        return [parse_task(t) for t in data]
    if isinstance(data, Mapping):
        if "id" in data or "status" in data:
            return [parse_task(data)]
        if is_not_found(data):
            return [ProviderStatus(None, State.UNKNOWN, error_message=error_message(data))]
    raise ProviderProtocolError(f"unrecognised Midjourney query answer: {error_message(data)[:200]}")


def parse_callback(body: bytes) -> ProviderStatus:
    """A notifyHook body is the task object, as fetched (§3.6)."""
    data = HttpResponse(200, {}, body).json()
    if not isinstance(data, Mapping) or not ("id" in data or "status" in data):
        raise ProviderProtocolError("callback body is not a Midjourney task object")
    return parse_task(data)


def parse_task(d: Mapping[str, Any]) -> ProviderStatus:
    """One task object (§3.3) -> ProviderStatus; `state` echoes our job id."""
    raw = str(d.get("status") or "").upper()
    state = _STATE.get(raw, State.UNKNOWN)
    action = str(d.get("action") or "").upper()
    task_id, ext = str_or_none(d.get("id")), str_or_none(d.get("state"))
    reason = str(d.get("failReason") or "") or None
    if state is State.SUCCEEDED:
        outputs = _outputs(d, action)
        if not outputs and action not in _TEXT_ONLY:
            return ProviderStatus(task_id, State.FAILED, error_code="provider_failed", error_message="task succeeded without any result URL", external_id=ext)
        result_data = _result_data(d, action) | _DONE
        return ProviderStatus(task_id, state, 100, outputs, result_data, external_id=ext)
    if state is State.FAILED:
        return ProviderStatus(task_id, state, error_code="provider_failed", error_message=reason or "the task failed", external_id=ext)
    if state is State.CANCELLED:
        return ProviderStatus(task_id, state, error_message=reason, external_id=ext)
    progress = parse_progress(d.get("progress"))
    if raw == "MODAL":
        result_data = _result_data(d, action) | {"awaiting_input": True, "status": "MODAL"}
    else:  # the IN_PROGRESS imageUrl is a low-res preview (§3.5): never an output
        result_data = _result_data(d, action) if d.get("buttons") else {}
    return ProviderStatus(task_id, state, progress, result_data=result_data, external_id=ext)


def _outputs(d: Mapping[str, Any], action: str) -> list[OutputRef]:
    """Videos first (asset 0 of a video job is a video), then the grid, then split images."""
    out: list[OutputRef] = []
    seen: set[str] = set()

    def add(item: object, kind: str, meta: dict[str, Any]) -> None:
        url = item.get("url") if isinstance(item, Mapping) else item
        if isinstance(url, str) and url and url not in seen:
            seen.add(url)
            out.append(OutputRef(url, kind, meta=meta))

    for i, v in enumerate(_list(d.get("videoUrls"))):
        add(v, "video", {"index": i})
    if not out:
        add(d.get("videoUrl"), "video", {"index": 0})
    add(d.get("imageUrl"), "image", {"role": _IMAGE_ROLE.get(action, "grid")})
    for i, img in enumerate(_list(d.get("imageUrls"))):
        add(img, "image", {"role": "split", "index": i})
    return out


def _result_data(d: Mapping[str, Any], action: str) -> dict[str, Any]:
    """What a workflow needs to chain the next call from the job JSON alone; keys with values only."""
    rd: dict[str, Any] = {}
    buttons = [dict(b) for b in d.get("buttons") or [] if isinstance(b, Mapping)]
    if buttons:
        rd["buttons"] = buttons
    for key in ("action", "prompt", "promptEn", "description"):
        if d.get(key):
            rd[key] = d[key]
    final = _props(d).get("finalPrompt") or d.get("finalPrompt")
    if final:
        rd["finalPrompt"] = final
    if action == "DESCRIBE":
        prompts = describe_prompts(str(final or d.get("prompt") or ""))
        if prompts:
            rd["prompts"] = prompts
    if d.get("id"):
        rd["mj_task_id"] = str(d["id"])
    return rd


def describe_prompts(text: str) -> list[str]:
    """The suggestions of a describe result, one per non-blank line, without "1️⃣ " marks."""
    return [s for s in (_KEYCAP.sub("", line).strip() for line in text.splitlines()) if s]


def parse_seed(resp: HttpResponse) -> str | None:
    """The seed from `{code: 1, result: "<seed>"}`; None when the relay has none (§3.3)."""
    if resp.status >= 300:
        return None
    data = json_or_none(resp)
    if not isinstance(data, Mapping) or _code(data) != 1:
        return None
    return str_or_none(data.get("result"))


def _code(data: Any) -> int | None:
    raw = data.get("code") if isinstance(data, Mapping) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    return None


def _list(v: object) -> list[Any]:
    return v if isinstance(v, list) else []


def _props(data: Any) -> Mapping[str, Any]:
    props = data.get("properties") if isinstance(data, Mapping) else None
    return props if isinstance(props, Mapping) else {}
