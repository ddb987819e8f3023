"""Vidu tasks (providers-next.md §4.7): store, lifecycle, bodies and callbacks.

Lifecycle, a pure function of the injected clock: `created` for the first tenth of `queue_s`, then
`queueing` for the rest of it, `processing` for `run_s`, then `success` (or `failed` with an
`err_code`). The query body
(`GET {prefix}/tasks/{id}/creations`) is `{id, state, err_code, credits, payload, creations[]}`
with `payload` echoed as the create sent it; a callback is the same body, POSTed to the task's
`callback_url` at each of `processing`, `success` / `failed` (never `created` / `queueing`) by
`simulator.callbacks`.

Result URLs expire an hour after the task finished (`expire_s`, default 3600): the media route
answers 403 (an expired signed link) from then on, and each URL carries its `?expires=` time.

Prompt directives (`[sim:...]`): fail[=ERR_CODE] (the task fails; default `TaskPredictionFailed`),
reject (submit 400 with Vidu's error body), queue=S, run=S, expire=S, state=WORD (the
`processing` phase shows WORD instead: an undocumented state word), no_callback (the relay drops
this task's callbacks), envelope (queries answer in new-api's `{code, message, data}` envelope).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.media import MEDIA_SHA256
from simulator.timeline import directive_seconds, directives

CREATED, QUEUEING, PROCESSING, SUCCESS, FAILED = "created", "queueing", "processing", "success", "failed"
FINAL = (SUCCESS, FAILED)
DEFAULT_EXPIRE_S = 3600.0
DEFAULT_ERR = "TaskPredictionFailed"
ROUTES = ("text2video", "img2video", "start-end2video", "reference2video", "reference2image")
PREFIXES = ("/ent/v2", "/vidu/ent/v2")
MODELS = ("viduq3-pro", "viduq3-turbo", "viduq2", "viduq1", "vidu2.0")
DURATIONS = {"viduq3-pro": range(1, 17), "viduq3-turbo": range(1, 17), "viduq2": range(1, 11), "viduq1": (5,), "vidu2.0": (4, 8)}
IMAGES = {"text2video": (0, 0), "img2video": (1, 1), "start-end2video": (2, 2), "reference2video": (1, 7), "reference2image": (1, 7)}
CREDITS_PER_SECOND = 4
MAX_PROMPT = 2000
MAX_PAYLOAD = 1024 * 1024


@dataclass
class Plan:
    err_code: str | None = None
    reject: bool = False
    queue_s: float | None = None
    run_s: float | None = None
    expire_s: float = DEFAULT_EXPIRE_S
    state_word: str | None = None
    no_callback: bool = False
    envelope: bool = False


def plan_of(prompt: str) -> Plan:
    found = directives(prompt)
    plan = Plan(reject="reject" in found, no_callback="no_callback" in found, envelope="envelope" in found)
    if "fail" in found:
        plan.err_code = found["fail"] or DEFAULT_ERR
    plan.queue_s, plan.run_s = directive_seconds(found, "queue"), directive_seconds(found, "run")
    expire = directive_seconds(found, "expire")
    plan.expire_s = DEFAULT_EXPIRE_S if expire is None else expire
    plan.state_word = found.get("state") or None
    return plan


def check_body(route: str, body: dict[str, Any]) -> str | None:
    """Vidu's own refusals of a create body (the message of a 400), or None."""
    model, prompt, images = body.get("model"), body.get("prompt"), body.get("images", [])
    if model not in MODELS:
        return f"model must be one of {', '.join(MODELS)}"
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT):
        return f"prompt must be a string of at most {MAX_PROMPT} characters"
    if route in ("text2video", "reference2video", "reference2image") and not (prompt or "").strip():
        return "prompt is required"
    if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
        return "images must be an array of URLs or data URIs"
    low, high = IMAGES[route]
    if not low <= len(images) <= high:
        return f"{route} takes {low}-{high} images, got {len(images)}" if low != high else f"{route} takes {low} image(s), got {len(images)}"
    duration = body.get("duration")
    if duration is not None and (isinstance(duration, bool) or duration not in DURATIONS[model]):
        return f"duration {duration} is not supported by {model}"
    if body.get("audio") is True and not model.startswith("viduq3"):
        return f"audio is not supported by {model}"
    payload = body.get("payload")
    if payload is not None and (not isinstance(payload, str) or len(payload.encode()) > MAX_PAYLOAD):
        return "payload must be a string of at most 1 MiB"
    callback = body.get("callback_url")
    if callback is not None and (not isinstance(callback, str) or not callback.startswith(("http://", "https://"))):
        return "callback_url must be an http(s) URL"
    return None


@dataclass
class ViduTask:
    id: str
    route: str
    prefix: str
    model: str
    prompt: str
    body: dict[str, Any]
    created: float
    queue_s: float
    run_s: float
    plan: Plan
    public_base: str
    callback_url: str | None = None
    notified: list[str] = field(default_factory=list)  # states already called back (or dropped)
    polls: int = 0

    @property
    def payload(self) -> str:
        return str(self.body.get("payload") or "")

    @property
    def image_result(self) -> bool:
        return self.route == "reference2image"

    @property
    def started(self) -> float:
        return self.created + self.queue_s

    @property
    def finished(self) -> float:
        return self.created + self.queue_s + self.run_s

    @property
    def final(self) -> str:
        return FAILED if self.plan.err_code else SUCCESS

    def state_at(self, now: float) -> str:
        if now < self.created + self.queue_s / 10:
            return CREATED
        if now < self.started:
            return QUEUEING
        if now < self.finished:
            return PROCESSING
        return self.final

    def changed_at(self, state: str) -> float:
        return {CREATED: self.created, QUEUEING: self.created + self.queue_s / 10, PROCESSING: self.started}.get(state, self.finished)

    def events_until(self, now: float) -> list[str]:
        """The states a callback announces (processing, then the final one) reached by `now`."""
        return [s for s in (PROCESSING, self.final) if now >= self.changed_at(s)]

    def expires_at(self) -> float:
        return self.finished + self.plan.expire_s

    def media_gone(self, now: float) -> bool:
        return self.state_at(now) == SUCCESS and now >= self.expires_at()

    @property
    def credits(self) -> int:
        duration = self.body.get("duration")
        seconds = duration if isinstance(duration, int) and not isinstance(duration, bool) else 5
        return CREDITS_PER_SECOND * (1 if self.image_result else seconds)


class ViduStore:
    def __init__(self) -> None:
        self.tasks: dict[str, ViduTask] = {}

    def new_id(self) -> str:
        while True:
            candidate = str(800_000_000_000_000_000 + secrets.randbelow(99_999_999_999_999_999))
            if candidate not in self.tasks:
                return candidate

    def add(self, task: ViduTask) -> ViduTask:
        self.tasks[task.id] = task
        return task

    def rows(self, now: float, wall_ms: Any) -> list[dict[str, Any]]:
        return [
            {
                "family": "vidu",
                "task_id": t.id,
                "route": t.route,
                "prefix": t.prefix,
                "model": t.model,
                "status": t.state_at(now),
                "payload": t.payload,
                "created_at": wall_ms(t.created),
                "callback_url": t.callback_url,
                "callbacks_notified": list(t.notified),
                "credits": t.credits,
                "content_sha256": MEDIA_SHA256["png" if t.image_result else "mp4"],
                "cover_sha256": None if t.image_result else MEDIA_SHA256["jpg"],
            }
            for t in self.tasks.values()
        ]


def media_urls(task: ViduTask, base: str, wall_s: int) -> dict[str, str]:
    expires = f"?expires={wall_s}"
    if task.image_result:
        return {"url": f"{base}/_sim/media/vidu/{task.id}_0.png{expires}"}
    return {"url": f"{base}/_sim/media/vidu/{task.id}.mp4{expires}", "cover_url": f"{base}/_sim/media/vidu/{task.id}_cover.jpeg{expires}"}


def submit_view(task: ViduTask, wall: float) -> dict[str, Any]:
    """The create answer: the task as taken, `state: created`."""
    echoed = {k: v for k, v in task.body.items() if k not in ("callback_url",)}
    return {"task_id": task.id, "state": CREATED, **echoed, "credits": task.credits, "created_at": _iso(wall)}


def query_view(task: ViduTask, now: float, base: str, wall_expiry_s: int) -> dict[str, Any]:
    """`GET {prefix}/tasks/{id}/creations` at `now`, and the body of a callback."""
    state = task.state_at(now)
    shown = task.plan.state_word if state == PROCESSING and task.plan.state_word else state
    body: dict[str, Any] = {"id": task.id, "state": shown, "err_code": "", "credits": task.credits, "payload": task.payload, "creations": []}
    if state == SUCCESS:
        body["creations"] = [{"id": f"{task.id}01", **media_urls(task, base, wall_expiry_s)}]
    if state == FAILED:
        body["err_code"] = task.plan.err_code
    return body


def envelope(body: dict[str, Any]) -> dict[str, Any]:
    return {"code": "success", "message": "", "data": body}


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    """Vidu's error shape."""
    return {"code": status, "reason": reason, "message": message, "metadata": {}}


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(wall))


def query_body(task: ViduTask, at: float, base: str, expiry_wall_s: int) -> dict[str, Any]:
    """The query answer at `at` (in new-api's envelope under `[sim:envelope]`), also a callback's body."""
    body = query_view(task, at, base, expiry_wall_s)
    return envelope(body) if task.plan.envelope else body
