"""Sora / Veo / Grok video tasks (providers.md §5, §6, §10.6): store, ids and lifecycle.

Two relay APIs share the store. *unified* = `POST /v1/video/create` + `GET /v1/video/query?id=`
(passthrough "unified video" format); *openai* = `POST /v1/videos` + `GET /v1/videos/{id}`
(+ `/content`, `/remix`; new-api's OpenAI video object). Bodies are built in
`simulator.video_views`, routes in `simulator.video_routes`.

Lifecycle, a pure function of the injected clock: a task is in phase `queued` for `queue_s`,
`running` for `run_s`, then `done` (or `failed`). The status *word* each API shows per phase:

* unified sora: `pending` (inner `detail.pending_info.status` = `queued`), then for the first
  quarter of the run the top level still says `pending` while the inner status says
  `processing` (the disagreement of the JUSU sample), then `processing`, then `completed`.
* unified grok: `queued` -> `processing` -> `completed`.
* unified veo: `pending` -> `image_downloading` -> `video_generating` ->
  `video_generation_completed` [-> `video_upsampling` -> `video_upsampling_completed` when
  `enable_upsample` is true] -> `completed` (run time split evenly; `video_url` only at `completed`).
* openai: `queued` -> `in_progress` -> `completed`.
* failure words: `failed` (sora, grok, openai) / `video_generation_failed` (veo) by default;
  `[sim:fail=WORD]` picks another one the family knows (`cancelled`, `error`, `failed`,
  `video_upsampling_failed`, ...).

Ids: unified sora `sora-2:task_01k…` (model prefix + ULID-like 26 chars, as in the OCTO sample),
unified veo alternates `veo3.1-fast:task_01k…` (odd creates) and plain `task_01k…` (even),
unified grok `task_01k…`; openai `task_<32 alnum>` (new-api public id).

Prompt directives (`[sim:...]`): fail[=WORD], reject (submit 400), run=S, queue=S, blocked
(/content 403), content_502=N (first N /content calls 502), content_redirect (/content 302 to the
media URL), size=N (N deterministic bytes instead of the small MP4), expire=S (media 404 from S s
after completion; openai `expires_at` says so; default 86400), cut_at=K (every media request whose
range starts before K is cut at offset K, so only a resuming client finishes), no_range (media
ignores Range), synonyms (each poll shows the next synonym of the phase, see `SYNONYMS`),
shape=NAME (answer shape, see `simulator.video_views`).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from simulator.media import MEDIA_SHA256, MP4_BYTES, big_sha256
from simulator.timeline import directive_seconds, directives

UNIFIED, OPENAI = "unified", "openai"
SORA, VEO, GROK = "sora", "veo", "grok"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
DEFAULT_EXPIRE_S = 86400.0
FAIL_REASON = "video generation failed: the content violates the usage policy (simulated)"

UNIFIED_SHAPES = ("native", "plain", "data", "url", "error_string", "error_object", "fail_reason", "detail_reason")
OPENAI_SHAPES = ("content_only", "video_url")
# Failure placement of each family's native unified shape.
NATIVE_FAILURE = {SORA: "detail_reason", VEO: "error_string", GROK: "error_object"}
FAIL_WORDS = {
    SORA: ("failed", "cancelled", "error"),
    GROK: ("failed", "cancelled", "error"),
    VEO: ("video_generation_failed", "video_upsampling_failed", "failed", "error"),
    OPENAI: ("failed", "cancelled"),
}
# The synonym storm ([sim:synonyms]): poll k shows word k (mod len) of the phase. `warming_up`
# is documented nowhere; "" and "unknown" are what new-api shows for unparseable statuses.
SYNONYMS = {
    QUEUED: ("queued", "pending", "submitted", "preparing", "unknown", ""),
    RUNNING: ("in_progress", "processing", "running", "warming_up", "generating"),
    DONE: ("completed", "success", "succeeded", "finished"),
}
_ULID = "0123456789abcdefghjkmnpqrstvwxyz"
_ALNUM = string.ascii_letters + string.digits


def family_of(model: str) -> str | None:
    name = model.lower()
    for prefix, family in (("sora", SORA), ("veo", VEO), ("grok-video", GROK), ("grok", GROK)):
        if name.startswith(prefix):
            return family
    return None


@dataclass
class Plan:
    """What the prompt's `[sim:...]` directives ask of a video task."""

    fail_word: str | None = None
    reject: bool = False
    queue_s: float | None = None
    run_s: float | None = None
    blocked: bool = False
    content_502: int = 0
    redirect: bool = False
    size: int | None = None
    expire_s: float = DEFAULT_EXPIRE_S
    cut_at: int | None = None
    no_range: bool = False
    synonyms: bool = False
    shape: str | None = None


def _int(found: dict[str, str], name: str) -> int | None:
    try:
        return max(0, int(found[name])) if name in found else None
    except ValueError:
        return None


def plan_of(prompt: str, family_key: str) -> Plan:
    """Read the directives; `family_key` is sora/veo/grok for unified tasks, `openai` otherwise."""
    found = directives(prompt)
    plan = Plan(
        reject="reject" in found, blocked="blocked" in found, redirect="content_redirect" in found, no_range="no_range" in found, synonyms="synonyms" in found
    )
    if "fail" in found:
        words = FAIL_WORDS[family_key]
        plan.fail_word = found["fail"] if found["fail"] in words else words[0]
    plan.queue_s, plan.run_s = directive_seconds(found, "queue"), directive_seconds(found, "run")
    plan.content_502 = _int(found, "content_502") or 0
    plan.size, plan.cut_at = _int(found, "size"), _int(found, "cut_at")
    expire = directive_seconds(found, "expire")
    plan.expire_s = DEFAULT_EXPIRE_S if expire is None else expire
    shapes = OPENAI_SHAPES if family_key == OPENAI else UNIFIED_SHAPES
    plan.shape = found.get("shape") if found.get("shape") in shapes else None
    return plan


@dataclass
class VideoTask:
    """One simulated video task (times on the monotonic clock)."""

    id: str
    api: str  # UNIFIED | OPENAI
    family: str  # SORA | VEO | GROK
    model: str
    prompt: str
    created: float
    queue_s: float
    run_s: float
    plan: Plan
    public_base: str
    params: dict[str, Any] = field(default_factory=dict)  # request fields echoed back (size, seconds, ...)
    remixed_from: str | None = None
    input_reference: dict[str, Any] | None = None  # {kind, sha256, size, ...} of what arrived
    inputs_sha256: dict[str, str] = field(default_factory=dict)  # "images.<i>" -> sha256 of the image fetched (unified)
    polls: int = 0  # status queries answered (drives the synonym storm)
    content_calls: int = 0  # /content requests that reached the 502 check

    @property
    def shape(self) -> str:
        default = "content_only" if self.api == OPENAI else "native"
        return self.plan.shape or default

    @property
    def started(self) -> float:
        return self.created + self.queue_s

    @property
    def finished(self) -> float:
        return self.created + self.queue_s + self.run_s

    @property
    def media_key(self) -> str:
        """File-name-safe form of the id, for `/_sim/media/video/{key}.mp4`."""
        return self.id.replace(":", "--")

    @property
    def upsample(self) -> bool:
        return self.params.get("enable_upsample") is True

    def phase_at(self, now: float) -> str:
        if now < self.started:
            return QUEUED
        if now < self.finished:
            return RUNNING
        return FAILED if self.plan.fail_word else DONE

    def progress_at(self, now: float) -> int:
        """0 while queued, linear 0..99 while running, 100 when done (a failure keeps its last value)."""
        phase = self.phase_at(now)
        if phase == QUEUED:
            return 0
        if phase == DONE:
            return 100
        elapsed = min(now, self.finished) - self.started
        return min(99, int(99 * elapsed / self.run_s)) if self.run_s else 99

    def run_fraction(self, now: float) -> float:
        return 0.0 if not self.run_s else max(0.0, min(1.0, (now - self.started) / self.run_s))

    def veo_steps(self) -> tuple[str, ...]:
        steps = ("image_downloading", "video_generating", "video_generation_completed")
        return steps + (("video_upsampling", "video_upsampling_completed") if self.upsample else ())

    def word_at(self, now: float) -> tuple[str, str]:
        """(top-level status word, inner `detail.pending_info.status`) at `now`, for this API."""
        phase = self.phase_at(now)
        if phase == FAILED:
            word = self.plan.fail_word or "failed"
            return word, word
        if self.plan.synonyms:
            words = SYNONYMS[phase]
            return words[self.polls % len(words)], words[self.polls % len(words)]
        if self.api == OPENAI:
            word = {QUEUED: "queued", RUNNING: "in_progress", DONE: "completed"}[phase]
            return word, word
        if phase == DONE:
            return "completed", "completed"
        if self.family == VEO:
            if phase == QUEUED:
                return "pending", "pending"
            steps = self.veo_steps()
            step = steps[min(len(steps) - 1, int(self.run_fraction(now) * len(steps)))]
            return step, step
        if self.family == GROK:
            return ("queued", "queued") if phase == QUEUED else ("processing", "processing")
        if phase == QUEUED:
            return "pending", "queued"
        return ("pending" if self.run_fraction(now) < 0.25 else "processing"), "processing"

    def changed_at(self, now: float) -> float:
        """Monotonic time of the last phase change at or before `now`."""
        phase = self.phase_at(now)
        return {QUEUED: self.created, RUNNING: self.started}.get(phase, self.finished)

    def expires_at(self) -> float:
        return self.finished + self.plan.expire_s

    def media_gone(self, now: float) -> bool:
        return self.phase_at(now) == DONE and now >= self.expires_at()

    # -- content ----------------------------------------------------------------
    @property
    def content_size(self) -> int:
        return len(MP4_BYTES) if self.plan.size is None else self.plan.size

    def content_sha256(self) -> str:
        return MEDIA_SHA256["mp4"] if self.plan.size is None else _big_sha256(self.plan.size)


@lru_cache(maxsize=64)
def _big_sha256(n_bytes: int) -> str:
    return big_sha256(n_bytes)


class VideoStore:
    """All video tasks by id, plus the counter behind the alternating Veo id format."""

    def __init__(self) -> None:
        self.tasks: dict[str, VideoTask] = {}
        self.veo_creates = 0

    def by_media_key(self, key: str) -> VideoTask | None:
        return self.tasks.get(key.replace("--", ":"))

    def new_unified_id(self, family: str, model: str) -> str:
        base = "task_01k" + "".join(secrets.choice(_ULID) for _ in range(23))
        if family == SORA:
            return f"{model}:{base}"
        if family == VEO:
            self.veo_creates += 1
            return f"{model}:{base}" if self.veo_creates % 2 == 1 else base
        return base

    def new_openai_id(self) -> str:
        while True:
            candidate = "task_" + "".join(secrets.choice(_ALNUM) for _ in range(32))
            if candidate not in self.tasks:
                return candidate

    def add(self, task: VideoTask) -> VideoTask:
        self.tasks[task.id] = task
        return task

    def rows(self, now: float, wall_ms: Callable[[float], int]) -> list[dict[str, Any]]:
        """`/_sim/tasks` rows: what a test compares a stored download and an upload against."""
        return [
            {
                "family": "video",
                "api": t.api,
                "provider": t.family,
                "task_id": t.id,
                "model": t.model,
                "status": t.phase_at(now),
                "progress": t.progress_at(now),
                "created_at": wall_ms(t.created),
                "expires_at": wall_ms(t.expires_at()) if t.phase_at(now) == DONE else None,
                "shape": t.shape,
                "remixed_from_video_id": t.remixed_from,
                "input_reference": t.input_reference,
                "inputs_sha256": t.inputs_sha256,
                "content_size": t.content_size,
                "content_sha256": t.content_sha256(),
                "polls": t.polls,
                "callback_url": None,
                "callbacks_notified": [],
            }
            for t in self.tasks.values()
        ]


def upload_record(data: bytes, filename: str | None, content_type: str | None) -> dict[str, Any]:
    """What the simulator keeps of an uploaded `input_reference` (proof the bytes arrived)."""
    return {"kind": "file", "filename": filename, "content_type": content_type, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def reference_record(value: str) -> dict[str, Any]:
    """What the simulator keeps of a string `input_reference` (URL or data URI)."""
    kind = "data_uri" if value.startswith("data:") else "url"
    return {"kind": kind, "size": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest(), "value": value if kind == "url" else value[:64]}
