"""Task registry, counters and the Kling task lifecycle as pure functions of time.

Midjourney and Suno tasks live in `SimState.mj` / `SimState.suno`
(`simulator.mj`, `simulator.suno`); their lifecycle is `simulator.timeline`.
Sora / Veo / Grok video tasks live in `SimState.video` (`simulator.video`), Vidu tasks in
`SimState.vidu` (`simulator.vidu`), Replicate
predictions in `SimState.replicate` (`simulator.replicate`), fal requests in `SimState.fal`
(`simulator.fal`; its webhook signing key `SimState.fal_key` survives resets), MiniMax tasks in
`SimState.minimax` (`simulator.minimax`).

A task is `submitted` for `queue_s` seconds, then `processing` for `run_s`
seconds, then `succeed` (or `failed` when the prompt asked for it). Nothing is
scheduled: every view is computed from the (injected, monotonic) clock.
"""

from __future__ import annotations

import random
import re
import secrets
import string
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.chaos import Dice, PaidLedger, lengthen
from simulator.config import Faults, SimConfig
from simulator.fal import FalSigningKey, FalStore
from simulator.minimax import MinimaxStore
from simulator.mj import MjStore
from simulator.oneshot import OneShotStore
from simulator.replicate import Prediction, ReplicateStore, output_at
from simulator.seedance import SeedanceStore
from simulator.suno import SunoStore
from simulator.video import VideoStore
from simulator.vidu import ViduStore

SUBMITTED, PROCESSING, SUCCEED, FAILED = "submitted", "processing", "succeed", "failed"
FINAL_STATUSES = (SUCCEED, FAILED)
FAIL_MESSAGE = "risk control: content rejected"

# Kind (URL segment after /kling/v1/) -> new-api style action name.
KINDS: dict[str, str] = {
    "videos/text2video": "textGenerate",
    "videos/image2video": "generate",
    "images/generations": "imageGenerate",
    # providers-next.md §4.1 (simulator.kling_extras checks their bodies)
    "videos/omni-video": "omniVideo",
    "videos/multi-image2video": "multiImage2video",
    "videos/video-extend": "videoExtend",
    "videos/effects": "effects",
    "videos/motion-control": "motionControl",
    "videos/avatar/image2video": "avatarImage2video",
    "videos/advanced-lip-sync": "advancedLipSync",
    "audio/video-to-audio": "videoToAudio",
    "audio/text-to-audio": "textToAudio",
    "images/multi-image2image": "multiImage2image",
    "images/kolors-virtual-try-on": "virtualTryOn",
}
IMAGE_KINDS_WITH_N = ("images/generations", "images/multi-image2image")

_DIRECTIVE = re.compile(r"\[sim:([a-z_]+)(?:=([^\]]*))?\]")
_ALNUM = string.ascii_letters + string.digits


@dataclass
class Directives:
    """Per-task behaviour requested through `[sim:...]` markers in the prompt."""

    fail: bool = False
    reject: bool = False
    queue_s: float | None = None
    run_s: float | None = None
    busy: int = 0  # answer Kling code 1303 ("later") to the first N creates with this prompt
    expire: bool = False  # result links that answer 403 (expired)


def video_id_of(task_id: str) -> str:
    """The Kling video id (task_result.videos[].id) of a video task."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kling-video:{task_id}"))


def parse_directives(prompt: str) -> Directives:
    """Read `[sim:fail]`, `[sim:reject]`, `[sim:run=7.5]`, `[sim:queue=1]`, `[sim:busy=1]`, `[sim:expire]`."""
    out = Directives()
    for name, value in _DIRECTIVE.findall(prompt or ""):
        if name == "fail":
            out.fail = True
        elif name == "reject":
            out.reject = True
        elif name == "expire":
            out.expire = True
        elif name == "busy":
            out.busy = int(value) if value.isdigit() else 1
        elif name in ("run", "queue"):
            try:
                seconds = max(0.0, float(value))
            except ValueError:
                continue
            if name == "run":
                out.run_s = seconds
            else:
                out.queue_s = seconds
    return out


@dataclass
class Task:
    """One simulated generation task (times are on the monotonic clock)."""

    db_id: int
    task_id: str  # upstream Kling id (numeric string)
    relay_id: str  # new-api public id "task_<32 alnum>"
    kind: str  # key of KINDS
    model: str
    prompt: str
    external_task_id: str
    callback_url: str | None
    created: float
    queue_s: float
    run_s: float
    will_fail: bool
    n: int = 1
    duration: str = "5"
    public_base: str = ""
    notified: list[str] = field(default_factory=list)  # statuses already called back
    held: list[str] = field(default_factory=list)  # reordered, not yet sent
    inputs_sha256: dict[str, str] = field(default_factory=dict)  # input field -> sha256 of the bytes fetched (simulator.inputs)

    @property
    def started(self) -> float:
        return self.created + self.queue_s

    @property
    def finished(self) -> float:
        return self.created + self.queue_s + self.run_s

    @property
    def final_status(self) -> str:
        return FAILED if self.will_fail else SUCCEED

    @property
    def is_image(self) -> bool:
        return self.kind.startswith("images/")

    def status_at(self, now: float) -> str:
        if now < self.started:
            return SUBMITTED
        if now < self.finished:
            return PROCESSING
        return self.final_status

    def changed_at(self, status: str) -> float:
        """Monotonic time at which the task entered `status`."""
        return {SUBMITTED: self.created, PROCESSING: self.started}.get(status, self.finished)

    def progress_at(self, now: float) -> int:
        """0 while queued, linear 0..99 while processing, 100 when final."""
        status = self.status_at(now)
        if status == SUBMITTED:
            return 0
        if status == PROCESSING:
            return min(99, int(99 * (now - self.started) / self.run_s)) if self.run_s else 99
        return 100

    def events_until(self, now: float) -> list[str]:
        """Status changes (after creation) that have happened by `now`."""
        return [s for s in (PROCESSING, self.final_status) if now >= self.changed_at(s)]


class SimState:
    """Everything the simulator remembers between requests."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.time_offset = 0.0  # moved forward by POST /_sim/advance
        # Wall-clock epoch matching clock()==0, so timestamps follow the fake clock.
        self._epoch = time.time() - config.clock()
        self.fal_key = FalSigningKey()  # published as a JWKS; a client fetches it once
        self.reset()

    def reset(self) -> None:
        self.tasks: dict[str, Task] = {}  # by upstream task_id, insertion ordered
        self.face_sessions: dict[str, dict[str, Any]] = {}  # identify-face sessions by session_id
        self.busy_seen: Counter[str] = Counter()  # creates answered 1303, by prompt
        self.faults = Faults()
        self.dice = Dice(self.config.fault_seed)
        self.paid = PaidLedger()
        self.requests: Counter[str] = Counter()
        self.creates = 0
        self.creates_by_family: Counter[str] = Counter()
        self.mj = MjStore()
        self.suno = SunoStore()
        self.video = VideoStore()
        self.vidu = ViduStore()
        self.oneshot = OneShotStore()
        self.replicate = ReplicateStore()
        self.fal = FalStore()
        self.minimax = MinimaxStore()
        self.seedance = SeedanceStore()
        self.auth_by_route: dict[str, Counter[str]] = {}  # simulator.auth_seen
        self.callbacks_sent = 0
        self.callbacks_failed = 0
        self.callbacks_dropped = 0
        self.callback_log: list[dict[str, Any]] = []
        self.media_downloads = 0
        self.auth_seen = False
        self.auth_failures = 0
        self._next_db_id = 1

    # -- time ---------------------------------------------------------------
    def now(self) -> float:
        return self.config.clock() + self.time_offset

    def wall_ms(self, mono: float) -> int:
        return round((self._epoch + mono) * 1000)

    def wall_s(self, mono: float) -> int:
        return int(self._epoch + mono)

    # -- tasks --------------------------------------------------------------
    def find(self, key: str, kind: str | None = None) -> Task | None:
        """Find by upstream id, relay `task_...` id or external_task_id."""
        task = self.tasks.get(key)
        if task is None:
            task = next(
                (t for t in self.tasks.values() if key in (t.relay_id, t.external_task_id) and key),
                None,
            )
        if task is not None and kind is not None and task.kind != kind:
            return None
        return task

    def video_task(self, video_id: str) -> Task | None:
        """The succeeded video task whose result has this Kling video id."""
        now = self.now()
        return next(
            (
                t
                for t in self.tasks.values()
                if not t.is_image and t.kind != "audio/text-to-audio" and t.status_at(now) == SUCCEED and video_id_of(t.task_id) == video_id
            ),
            None,
        )

    def create_task(self, kind: str, body: dict[str, Any], directives: Directives, public_base: str) -> Task:
        task_id, relay_id = self.task_ids(self._new_upstream_id(), "task_" + "".join(secrets.choice(_ALNUM) for _ in range(32)))
        n = body.get("n", 1)
        task = Task(
            db_id=self._next_db_id,
            task_id=task_id,
            relay_id=relay_id,
            kind=kind,
            model=str(body.get("model_name") or body.get("model") or "kling-v1"),
            prompt=str(body.get("prompt") or ""),
            external_task_id=str(body.get("external_task_id") or ""),
            callback_url=str(body["callback_url"]) if body.get("callback_url") else None,
            created=self.now(),
            queue_s=self.config.queue_s if directives.queue_s is None else directives.queue_s,
            run_s=self.config.run_s if directives.run_s is None else directives.run_s,
            will_fail=directives.fail,
            n=int(n) if kind in IMAGE_KINDS_WITH_N else 1,
            duration=str(body.get("duration") or "5"),
            public_base=public_base,
        )
        self._next_db_id += 1
        self.tasks[task_id] = task
        self.count_create("kling", task_id, kind, task.prompt, task.created, external_id=task.external_task_id)
        return task

    def count_create(self, family: str, task_id: str, kind: str, prompt: str, created: float, external_id: str | None = None, state: str | None = None) -> None:
        """Count a created (paid) task and add it to the paid ledger."""
        self.creates += 1
        self.creates_by_family[family] += 1
        self.paid.record(family, task_id, kind, prompt, self.wall_ms(created), external_id, state)

    def task_ids(self, *ids: str) -> tuple[str, ...]:
        """The ids of a task being created (Kling's upstream and relay ids, a Midjourney or Suno
        id) as made, or, for a `long_task_id_rate` share of creates, lengthened to LONG_TASK_ID."""
        if not self.dice.roll(self.config.long_task_id_rate):
            return ids
        self.paid.fired["long_task_id"] += 1
        return tuple(lengthen(i) for i in ids)

    def _new_upstream_id(self) -> str:
        while True:
            candidate = str(random.randint(700_000_000_000_000_000, 899_999_999_999_999_999))
            if candidate not in self.tasks:
                return candidate

    def task_rows(self) -> list[dict[str, Any]]:
        now = self.now()
        return (
            [
                {
                    "task_id": t.task_id,
                    "relay_id": t.relay_id,
                    "external_task_id": t.external_task_id,
                    "kind": t.kind,
                    "model": t.model,
                    "status": t.status_at(now),
                    "progress": t.progress_at(now),
                    "created_at": self.wall_ms(t.created),
                    "callback_url": t.callback_url,
                    "callbacks_notified": list(t.notified),
                    "inputs_sha256": dict(t.inputs_sha256),
                    "family": "kling",
                }
                for t in self.tasks.values()
            ]
            + self._timeline_rows(now)
            + self.video.rows(now, self.wall_ms)
            + self.vidu.rows(now, self.wall_ms)
            + self._rep_fal_rows(now)
            + self.minimax.rows(now, self.wall_ms)
            + self.seedance.rows(now, self.wall_ms)
        )

    def _rep_fal_rows(self, now: float) -> list[dict[str, Any]]:
        def output(p: Prediction, at: float) -> Any:
            return output_at(p, at, (self.config.public_base or p.public_base).rstrip("/"))

        return self.replicate.rows(now, self.wall_ms, output) + self.fal.rows(now, self.wall_ms)

    def _timeline_rows(self, now: float) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for family, items in (("mj", self.mj.tasks.values()), ("suno", self.suno.tasks.values())):
            for t in items:
                event = t.tl.at(now)
                rows.append(
                    {
                        "family": family,
                        "task_id": t.id,
                        "action": t.action,
                        "status": event.status,
                        "progress": event.progress,
                        "created_at": self.wall_ms(t.tl.created),
                        "callback_url": t.hook.url,
                        "callbacks_notified": t.hook.sent,
                        "inputs_sha256": dict(getattr(t, "inputs_sha256", {})),
                    }
                )
        return rows

    def polls(self) -> dict[str, int]:
        """Status-query requests per family and kind, summed from the request counters."""
        out: Counter[str] = Counter()
        for key, n in self.requests.items():
            method, _, path = key.partition(" ")
            if method == "GET" and path.startswith("/kling/") and path.endswith("/{id}"):
                out["kling_single"] += n
            elif method == "GET" and path.endswith("/mj/task/{id}/fetch"):
                out["mj_single"] += n
            elif method == "POST" and path.endswith("/mj/task/list-by-condition"):
                out["mj_batch"] += n
            elif method == "GET" and path == "/suno/fetch/{id}":
                out["suno_single"] += n
            elif method == "POST" and path == "/suno/fetch":
                out["suno_batch"] += n
            elif method == "GET" and path == "/v1/video/query":
                out["video_unified"] += n
            elif method == "GET" and path == "/v1/videos/{id}":
                out["video_openai"] += n
            elif method == "GET" and path == "/v1/video/generations/{id}":
                out["video_generations"] += n
            elif method == "GET" and path == "/replicate/v1/predictions/{id}":
                out["replicate"] += n
            elif method == "GET" and path == "/fal-ai/{app}/requests/{id}/status":
                out["fal"] += n
            elif method == "GET" and path.startswith("/minimax/v1/query/"):
                out["minimax"] += n
            elif method == "GET" and path.endswith("/tasks/{id}/creations"):
                out["vidu"] += n
            elif method == "GET" and path.endswith("/contents/generations/tasks"):
                out["seedance_batch"] += n
            elif method == "GET" and path.endswith("/contents/generations/tasks/{id}"):
                out["seedance_single"] += n
        return dict(out)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "creates": self.creates,
            "creates_by_family": dict(self.creates_by_family),
            "tasks": len(self.tasks)
            + len(self.mj.tasks)
            + len(self.suno.tasks)
            + len(self.video.tasks)
            + len(self.replicate.predictions)
            + len(self.fal.requests)
            + len(self.minimax.tasks)
            + len(self.vidu.tasks)
            + len(self.seedance.tasks),
            "tasks_by_family": {
                "kling": len(self.tasks),
                "mj": len(self.mj.tasks),
                "suno": len(self.suno.tasks),
                "video": len(self.video.tasks),
                "replicate": len(self.replicate.predictions),
                "fal": len(self.fal.requests),
                "minimax": len(self.minimax.tasks),
                "vidu": len(self.vidu.tasks),
                "seedance": len(self.seedance.tasks),
            },
            "polls": (polls := self.polls()),
            "poll_requests": sum(polls.values()),
            "mj_submit_codes": dict(self.mj.codes),
            "mj_uploads": self.mj.uploads,
            "suno_submit_codes": dict(self.suno.codes),
            "callbacks_sent": self.callbacks_sent,
            "callbacks_failed": self.callbacks_failed,
            "callbacks_dropped": self.callbacks_dropped,
            "media_downloads": self.media_downloads,
            "paid_tasks": len(self.paid.rows),
            "faults_fired": dict(self.paid.fired),
            "auth_seen": self.auth_seen,
            "auth_failures": self.auth_failures,
        }
