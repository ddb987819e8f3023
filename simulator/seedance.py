"""Seedance (Doubao video) tasks (providers-next.md §4.2): store, ids, lifecycle and answer bodies.

Lifecycle, a pure function of the injected clock: `queued` for queue_s, `running` (or
`processing`, the gateways' word: `[sim:processing]`) for run_s, then `succeeded`, `failed`
(`[sim:fail]`) or `expired` (`[sim:expired]`: the task outlived `execution_expires_after` in the
queue). A DELETE while queued makes it `cancelled`; a DELETE of a finished task deletes its record
(Ark's rule); a running task cannot be cancelled. Ids look like `cgt-20250629201507-n6k56`.

Results are signed-looking URLs under `/_sim/media/seedance/` carrying `X-Tos-Date` and
`X-Tos-Expires` (86400 by default, `[sim:expire=S]`); the media answers 404 from then on. The
video is `content.video_url`; `content.last_frame_url` too when the request asked
`return_last_frame`. Answers are raw Ark bodies, or new-api's envelope `{code, message, data:{task_id,
status, progress, data:<native>}}` when `seedance_envelope` is on or the prompt says
`[sim:envelope]` (`[sim:shape=dto]`: the envelope without the native task, the URL in `result_url`).
Only tasks of the last 7 days are listed by the batch query.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.timeline import directive_seconds, directives

QUEUED, RUNNING, SUCCEEDED, FAILED, EXPIRED, CANCELLED = "queued", "running", "succeeded", "failed", "expired", "cancelled"
DEFAULT_EXPIRE_S = 86400.0
LIST_WINDOW_S = 7 * 86400.0
FAIL_ERROR = {
    "code": "OutputVideoSensitiveContentDetected",
    "message": "The request failed because the output video may contain sensitive information. (simulated)",
}
EXPIRED_ERROR = {"code": "TaskExpired", "message": "the task was not run before execution_expires_after (simulated)"}
# new-api's task enum for the envelope's DTO
_DTO_STATUS = {QUEUED: "SUBMITTED", RUNNING: "IN_PROGRESS", SUCCEEDED: "SUCCESS", FAILED: "FAILURE", EXPIRED: "FAILURE", CANCELLED: "FAILURE"}
_ID_CHARS = string.ascii_lowercase + string.digits
MODELS = (
    "doubao-seedance-1-0-pro-250528",
    "doubao-seedance-1-0-pro-fast-251015",
    "doubao-seedance-1-0-lite-t2v-250428",
    "doubao-seedance-1-0-lite-i2v-250428",
    "doubao-seedance-1-5-pro-251215",
    "doubao-seedance-2-0-260128",
    "doubao-seedance-2-0-fast-260128",
)


@dataclass
class Plan:
    fail: bool = False
    expired: bool = False
    reject: bool = False
    processing: bool = False
    envelope: bool = False
    dto_only: bool = False
    queue_s: float | None = None
    run_s: float | None = None
    expire_s: float = DEFAULT_EXPIRE_S


def plan_of(prompt: str) -> Plan:
    found = directives(prompt)
    expire = directive_seconds(found, "expire")
    return Plan(
        fail="fail" in found,
        expired="expired" in found,
        reject="reject" in found,
        processing="processing" in found,
        envelope="envelope" in found or found.get("shape") == "dto",
        dto_only=found.get("shape") == "dto",
        queue_s=directive_seconds(found, "queue"),
        run_s=directive_seconds(found, "run"),
        expire_s=DEFAULT_EXPIRE_S if expire is None else expire,
    )


@dataclass
class SeedanceTask:
    id: str
    model: str
    prompt: str
    created: float  # monotonic
    queue_s: float
    run_s: float
    plan: Plan
    body: dict[str, Any]
    public_base: str
    cancelled_at: float | None = None
    deleted: bool = False
    polls: int = 0
    callback_url: str | None = field(default=None)
    notified: list[str] = field(default_factory=list)  # status words called back so far

    @property
    def finished(self) -> float:
        return self.created + self.queue_s + self.run_s

    def phase_at(self, now: float) -> str:
        if self.cancelled_at is not None:
            return CANCELLED
        if now < self.created + self.queue_s:
            return QUEUED
        if self.plan.expired:
            return EXPIRED
        if now < self.finished:
            return RUNNING
        return FAILED if self.plan.fail else SUCCEEDED

    def word_at(self, now: float) -> str:
        phase = self.phase_at(now)
        return "processing" if phase == RUNNING and self.plan.processing else phase

    def media_gone(self, now: float) -> bool:
        return now >= self.finished + self.plan.expire_s

    @property
    def duration(self) -> int:
        d = self.body.get("duration")
        return d if isinstance(d, int) and not isinstance(d, bool) else 5


class SeedanceStore:
    def __init__(self) -> None:
        self.tasks: dict[str, SeedanceTask] = {}

    def new_id(self, wall_s: float) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(wall_s))
        while True:
            candidate = f"cgt-{stamp}-" + "".join(secrets.choice(_ID_CHARS) for _ in range(5))
            if candidate not in self.tasks:
                return candidate

    def listed(self, now: float, ids: list[str], status: str | None, model: str | None) -> list[SeedanceTask]:
        """What the batch query lists: the last 7 days' tasks, newest first, by the filters given."""
        out = [t for t in reversed(self.tasks.values()) if not t.deleted and now - t.created <= LIST_WINDOW_S]
        if ids:
            wanted = set(ids)
            out = [t for t in out if t.id in wanted]
        if status:
            out = [t for t in out if t.word_at(now) == status]
        if model:
            out = [t for t in out if t.model == model]
        return out

    def rows(self, now: float, wall_ms: Any) -> list[dict[str, Any]]:
        return [
            {
                "family": "seedance",
                "task_id": t.id,
                "model": t.model,
                "status": t.word_at(now),
                "created_at": wall_ms(t.created),
                "polls": t.polls,
                "deleted": t.deleted,
                "callback_url": t.callback_url,
                "callbacks_notified": list(t.notified),
                "content": t.body.get("content"),
                "request": {k: v for k, v in t.body.items() if k != "content"},
            }
            for t in self.tasks.values()
        ]


def due_callbacks(store: SeedanceStore, now: float, base: Any, wall_s: Any) -> list[tuple[SeedanceTask, str, dict[str, Any]]]:
    """(task, status word, body) of each task whose status word changed since its last callback
    (the creation's `queued` is not sent): Ark POSTs the task object, as its GET answers it, to
    the request's `callback_url`. Marks them as notified."""
    out = []
    for task in store.tasks.values():
        if not task.callback_url or task.deleted:
            continue
        word = task.word_at(now)
        last = task.notified[-1] if task.notified else QUEUED
        if word != last:
            task.notified.append(word)
            out.append((task, word, native(task, now, base(task), wall_s)))
    return out


def media_urls(task: SeedanceTask, base: str, wall_s: float) -> dict[str, str]:
    """The signed-looking result URLs of a finished task (X-Tos-Date is its finish time)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall_s))
    query = f"X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Date={stamp}&X-Tos-Expires={int(task.plan.expire_s)}&X-Tos-Signature=sim{task.id[-5:]}"
    urls = {"video_url": f"{base}/_sim/media/seedance/{task.id}.mp4?{query}"}
    if task.body.get("return_last_frame") is True:
        urls["last_frame_url"] = f"{base}/_sim/media/seedance/{task.id}_last.png?{query}"
    return urls


def native(task: SeedanceTask, now: float, base: str, wall_s: Any) -> dict[str, Any]:
    """The task as Ark's GET answers it."""
    phase = task.phase_at(now)
    body = task.body
    out: dict[str, Any] = {
        "id": task.id,
        "model": task.model,
        "status": task.word_at(now),
        "error": None,
        "created_at": wall_s(task.created),
        "updated_at": wall_s(min(now, task.finished)),
        "service_tier": body.get("service_tier") or "default",
        "execution_expires_after": body.get("execution_expires_after") or 172800,
    }
    if phase == SUCCEEDED:
        tokens = 21780 * task.duration
        out |= {
            "content": media_urls(task, base, wall_s(task.finished)),
            "usage": {"completion_tokens": tokens, "total_tokens": tokens},
            "seed": body.get("seed") if isinstance(body.get("seed"), int) and body["seed"] >= 0 else 58944,
            "resolution": body.get("resolution") or "720p",
            "ratio": body.get("ratio") or "16:9",
            "duration": task.duration,
            "framespersecond": 24,
            "generate_audio": bool(body.get("generate_audio")),
        }
    elif phase == FAILED:
        out["error"] = dict(FAIL_ERROR)
    elif phase == EXPIRED:
        out["error"] = dict(EXPIRED_ERROR)
    return out


def envelope(task: SeedanceTask, now: float, base: str, wall_s: Any) -> dict[str, Any]:
    """new-api's envelope around the task (or, `[sim:shape=dto]`, its DTO alone)."""
    inner = native(task, now, base, wall_s)
    phase = task.phase_at(now)
    progress = {QUEUED: 0, RUNNING: 50}.get(phase, 100)
    dto: dict[str, Any] = {"task_id": task.id, "action": "generate", "status": _DTO_STATUS[phase], "progress": f"{progress}%"}
    if inner.get("error"):
        dto["fail_reason"] = inner["error"]["message"]
    if task.plan.dto_only:
        if phase == SUCCEEDED:
            dto["result_url"] = inner["content"]["video_url"]
    else:
        dto["data"] = inner
    return {"code": "success", "message": "", "data": dto}
