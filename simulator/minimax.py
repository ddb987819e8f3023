"""MiniMax video and async TTS tasks (providers-next.md §4.6): store, lifecycle and answer bodies.

Routes are in `simulator.minimax_routes`. Lifecycle, a pure function of the injected clock:
video `Queueing` (first half of `queue_s`), `Preparing` (second half), `Processing` for `run_s`,
then `Success` or `Fail`; TTS `Processing` throughout, then `Success`, `Failed` or `Expired`. The
task's `file_id` is resolvable by `files/retrieve` only once the task succeeded (TTS names its
file_id at submit already). Each retrieve mints a download URL signed until `expire_s` later
(default 9 h, OSS-style `?Expires=<unix>&Signature=…`), served by `/_sim/media/minimax/...` with
403 once expired.

Answers are native (`envelope` native) or new-api's task DTO (`envelope` newapi:
`{code, message, data: {task_id, status: SUCCESS…, data: <native + file once done>}}`).

Prompt (TTS: text) directives `[sim:...]`: `busy[=N]` (the first N submits of this prompt answer
1002, later ones are taken), `code=C` (every submit answers base_resp C: 1004, 1008, 1026, 2013,
2049...), `fail[=C]` (the task fails; its base_resp carries C, default 1027; `fail=0` no reason),
`expired` (TTS ends `Expired`), `query_busy=N` (the first N status queries answer 1002 without a
status), `expire=S` (download URLs live S s), `run=S`, `queue=S`, `shape=dto_bare` (the DTO
without the file: the client must call files/retrieve itself).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.media import MEDIA_SHA256, MP3_BYTES, MP4_BYTES
from simulator.timeline import directive_seconds, directives

VIDEO, TTS = "video", "tts"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
DEFAULT_EXPIRE_S = 9 * 3600.0
MESSAGES = {
    1000: "unknown error",
    1002: "rate limit exceeded, please retry later",
    1004: "authentication failed, please check your api key",
    1008: "insufficient balance",
    1026: "input new_sensitive: the prompt contains sensitive content (simulated)",
    1027: "output new_sensitive: the generated video was flagged (simulated)",
    2013: "invalid params, please check the request (simulated)",
    2049: "invalid api key",
}
NEWAPI_STATUS = {QUEUED: "QUEUED", RUNNING: "IN_PROGRESS", DONE: "SUCCESS", FAILED: "FAILURE"}


def ok() -> dict[str, Any]:
    return {"status_code": 0, "status_msg": "success"}


def error(code: int, message: str | None = None) -> dict[str, Any]:
    return {"status_code": code, "status_msg": message or MESSAGES.get(code, f"error {code}")}


def _int(found: dict[str, str], name: str, default: int | None = None) -> int | None:
    try:
        return int(found[name]) if found.get(name) else default
    except ValueError:
        return default


@dataclass
class Plan:
    busy: int = 0
    code: int | None = None
    fail: int | None = None  # the failure's base_resp code (0: none)
    expired: bool = False
    query_busy: int = 0
    expire_s: float = DEFAULT_EXPIRE_S
    queue_s: float | None = None
    run_s: float | None = None
    bare_dto: bool = False


def plan_of(text: str) -> Plan:
    found = directives(text)
    expire = directive_seconds(found, "expire")
    return Plan(
        busy=(_int(found, "busy", 1) or 0) if "busy" in found else 0,
        code=_int(found, "code"),
        fail=_int(found, "fail", 1027) if "fail" in found else None,
        expired="expired" in found,
        query_busy=(_int(found, "query_busy", 1) or 0) if "query_busy" in found else 0,
        expire_s=DEFAULT_EXPIRE_S if expire is None else expire,
        queue_s=directive_seconds(found, "queue"),
        run_s=directive_seconds(found, "run"),
        bare_dto=found.get("shape") == "dto_bare",
    )


@dataclass
class MinimaxTask:
    """One simulated task (times on the monotonic clock)."""

    id: str
    kind: str  # VIDEO | TTS
    model: str
    text: str  # the prompt or the TTS text
    created: float
    queue_s: float
    run_s: float
    plan: Plan
    public_base: str
    file_id: int
    width: int = 1366
    height: int = 768
    polls: int = 0
    retrieves: int = 0

    @property
    def finished(self) -> float:
        return self.created + self.queue_s + self.run_s

    def phase_at(self, now: float) -> str:
        if now < self.created + self.queue_s:
            return QUEUED
        if now < self.finished:
            return RUNNING
        return FAILED if self.plan.fail is not None or self.plan.expired else DONE

    def word_at(self, now: float) -> str:
        phase = self.phase_at(now)
        if self.kind == TTS:
            return {QUEUED: "Processing", RUNNING: "Processing", DONE: "Success"}.get(phase) or ("Expired" if self.plan.expired else "Failed")
        if phase == QUEUED:
            return "Queueing" if now < self.created + self.queue_s / 2 else "Preparing"
        return {RUNNING: "Processing", DONE: "Success", FAILED: "Fail"}[phase]

    @property
    def ext(self) -> str:
        return "mp4" if self.kind == VIDEO else "mp3"

    @property
    def content(self) -> bytes:
        return MP4_BYTES if self.kind == VIDEO else MP3_BYTES

    def query(self, now: float) -> dict[str, Any]:
        """The native status query answer."""
        phase = self.phase_at(now)
        code = self.plan.fail if phase == FAILED else None
        body: dict[str, Any] = {
            "task_id": self.id,
            "status": self.word_at(now),
            "file_id": str(self.file_id) if phase == DONE or self.kind == TTS else "",
            "base_resp": error(code) if code else ok(),
        }
        if self.kind == VIDEO and phase == DONE:
            body |= {"video_width": self.width, "video_height": self.height}
        return body

    def file(self, now_wall: int, base: str) -> dict[str, Any]:
        """The files/retrieve `file` object, with a download URL signed until expire_s from now."""
        expires = now_wall + int(self.plan.expire_s)
        url = f"{base}/_sim/media/minimax/{self.file_id}.{self.ext}?Expires={expires}&OSSAccessKeyId=LTAIsim&Signature=sim{self.retrieves}"
        return {
            "file_id": self.file_id,
            "bytes": len(self.content),
            "created_at": now_wall,
            "filename": f"output.{self.ext}",
            "purpose": "video_generation" if self.kind == VIDEO else "t2a_async",
            "download_url": url,
        }

    def dto(self, now: float, native: dict[str, Any], file: dict[str, Any] | None) -> dict[str, Any]:
        """new-api's task DTO around the native answer (the file inside once done, unless dto_bare)."""
        phase = self.phase_at(now)
        inner = native | ({"file": file} if file is not None else {})
        return {
            "code": "success",
            "message": "",
            "data": {
                "task_id": self.id,
                "action": "generate" if self.kind == VIDEO else "t2a_async",
                "status": NEWAPI_STATUS[phase],
                "fail_reason": native["base_resp"]["status_msg"] if phase == FAILED else "",
                "progress": {QUEUED: "10%", RUNNING: "50%"}.get(phase, "100%"),
                "data": inner,
            },
        }


class MinimaxStore:
    """All MiniMax tasks by id and by file id, plus the per-prompt submit counters behind `busy`."""

    def __init__(self) -> None:
        self.tasks: dict[str, MinimaxTask] = {}
        self.by_file: dict[int, MinimaxTask] = {}
        self.busy_seen: Counter[str] = Counter()

    def new_ids(self) -> tuple[str, int]:
        while True:
            task_id, file_id = str(random.randint(10**17, 10**18 - 1)), random.randint(10**14, 10**15 - 1)
            if task_id not in self.tasks and file_id not in self.by_file:
                return task_id, file_id

    def add(self, task: MinimaxTask) -> MinimaxTask:
        self.tasks[task.id] = task
        self.by_file[task.file_id] = task
        return task

    def rows(self, now: float, wall_ms: Callable[[float], int]) -> list[dict[str, Any]]:
        return [
            {
                "family": "minimax",
                "task_id": t.id,
                "kind": t.kind,
                "model": t.model,
                "status": t.word_at(now),
                "file_id": t.file_id,
                "created_at": wall_ms(t.created),
                "content_size": len(t.content),
                "content_sha256": MEDIA_SHA256[t.ext],
                "polls": t.polls,
                "retrieves": t.retrieves,
                "callback_url": None,
                "callbacks_notified": [],
            }
            for t in self.tasks.values()
        ]


@dataclass
class Check:
    """What a submit body asks, or why MiniMax refuses it (2013)."""

    model: str = ""
    text: str = ""
    problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_video(body: dict[str, Any]) -> Check:
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or not model:
        return Check(problem="invalid params, model is required")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2000):
        return Check(problem="invalid params, prompt must be a string of at most 2000 characters")
    if not prompt and not body.get("first_frame_image"):
        return Check(problem="invalid params, prompt is required")
    duration, resolution = body.get("duration", 6), body.get("resolution")
    if duration not in (6, 10):
        return Check(problem="invalid params, duration must be 6 or 10")
    if resolution == "1080P" and duration != 6:
        return Check(problem="invalid params, 1080P supports 6s only")
    if model.endswith("-Fast") and not body.get("first_frame_image"):
        return Check(problem=f"invalid params, {model} needs first_frame_image")
    return Check(model=model, text=prompt or "")


def check_tts(body: dict[str, Any]) -> Check:
    model, text, voice = body.get("model"), body.get("text"), body.get("voice_setting")
    if not isinstance(model, str) or not model.startswith("speech-"):
        return Check(problem="invalid params, model is required")
    if (text is None) == (body.get("text_file_id") is None):
        return Check(problem="invalid params, one of text or text_file_id is required")
    if text is not None and (not isinstance(text, str) or not 0 < len(text) <= 50000):
        return Check(problem="invalid params, text must be 1-50000 characters")
    if not isinstance(voice, dict) or not voice.get("voice_id"):
        return Check(problem="invalid params, voice_setting.voice_id is required")
    return Check(model=model, text=text or f"file {body.get('text_file_id')}")
