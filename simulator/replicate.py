"""Replicate predictions through the relay (providers.md §8): store, ids and lifecycle.

Routes are in `simulator.replicate_routes`, bodies in `simulator.replicate_views`, signed webhook
delivery in `simulator.signed_hooks`. Everything here is a pure function of the injected clock.

Lifecycle: `starting` for `queue_s`, `processing` for `run_s`, then `succeeded` (or `failed` with
`[sim:fail]`). `[sim:abort]`: `starting` until the queue time ends, then `aborted` (a deadline hit
before start: never started). A cancel before the end makes it `canceled` from that instant (a
cancel after the end changes nothing). While processing, `logs` grows: "Using seed: 42" then a
tqdm-style progress line at 0 %, 25 %, 50 % and 75 % of the run ("45%|####5     | 12/28"), the
100 % line at success (a traceback at failure); from half-way the `output` is partial (the first
item of a list). `metrics.predict_time` (float seconds) once final.

Outputs (`[sim:output=url|list|json|data]`, default `list`): one URL string, a list of
`input.num_outputs` (1..4) URL strings, model JSON `{"images"|"videos": [{"url"}], "seed", "text"}`,
or a list with one `data:` URI. URLs are absolute on the simulator (`/_sim/media/rep/{id}_{i}.png`,
`.mp4` when the model name contains "video"), fetched without a key. `[sim:expire=S]` (default
3600, Replicate's ~1 h): S seconds after the end the prediction shows `data_removed: true`,
`output: null`, and its media answer 404. `[sim:run=S]`, `[sim:queue=S]` set the phase lengths.

Webhooks (when `webhook` was given): events `start` (run begins), `logs` (each new progress line),
`output` (the partial output appears), `completed` (final, including canceled / aborted), kept by
`webhook_events_filter` (default all four); each body is the prediction as it was at that instant.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.media import MP4_BYTES, PNG_BYTES
from simulator.timeline import directive_seconds, directives, strip_directives

STARTING, PROCESSING, SUCCEEDED, FAILED = "starting", "processing", "succeeded", "failed"
CANCELED, ABORTED = "canceled", "aborted"
FINAL = (SUCCEEDED, FAILED, CANCELED, ABORTED)
EVENTS = ("start", "output", "logs", "completed")
OUTPUT_KINDS = ("url", "list", "json", "data")
DEFAULT_EXPIRE_S = 3600.0
STEPS = 28
LOG_MARKS = (0.0, 0.25, 0.5, 0.75)  # run fractions at which a progress line is printed
OUTPUT_MARK = 0.5  # run fraction at which the partial output appears
MAX_OUTPUTS = 4
SEED = 42
FAIL_ERROR = "CUDA out of memory. Tried to allocate 2.00 GiB (simulated failure)"
_ID_CHARS = string.ascii_lowercase + string.digits


@dataclass
class Plan:
    """What the prompt's `[sim:...]` directives ask of a prediction."""

    fail: bool = False
    abort: bool = False
    queue_s: float | None = None
    run_s: float | None = None
    output: str = "list"
    expire_s: float = DEFAULT_EXPIRE_S


def plan_of(prompt: str) -> Plan:
    found = directives(prompt)
    expire = directive_seconds(found, "expire")
    return Plan(
        fail="fail" in found,
        abort="abort" in found,
        queue_s=directive_seconds(found, "queue"),
        run_s=directive_seconds(found, "run"),
        output=found["output"] if found.get("output") in OUTPUT_KINDS else "list",
        expire_s=DEFAULT_EXPIRE_S if expire is None else expire,
    )


@dataclass(frozen=True)
class HookEvent:
    at: float
    event: str  # one of EVENTS


@dataclass
class Prediction:
    """One simulated prediction (times on the monotonic clock)."""

    id: str
    model: str  # "owner/name"
    version: str
    input: dict[str, Any]
    created: float
    queue_s: float
    run_s: float
    plan: Plan
    public_base: str
    webhook: str | None = None
    events_filter: tuple[str, ...] = EVENTS
    canceled_at: float | None = None
    cancel_calls: int = 0
    polls: int = 0
    hooks_sent: list[str] = field(default_factory=list)  # events already handed to the dispatcher

    @property
    def prompt(self) -> str:
        value = self.input.get("prompt")
        return value if isinstance(value, str) else ""

    @property
    def started(self) -> float:
        return self.created + self.queue_s

    @property
    def natural_end(self) -> float:
        """When it ends if nobody cancels it: queue end for an aborted one, else run end."""
        return self.started if self.plan.abort else self.started + self.run_s

    @property
    def end(self) -> float:
        if self.canceled_at is not None and self.canceled_at < self.natural_end:
            return self.canceled_at
        return self.natural_end

    @property
    def media_ext(self) -> str:
        return "mp4" if "video" in self.model.lower() else "png"

    @property
    def n_outputs(self) -> int:
        n = self.input.get("num_outputs", 1)
        return max(1, min(MAX_OUTPUTS, n)) if isinstance(n, int) and not isinstance(n, bool) else 1

    def final_status(self) -> str:
        if self.canceled_at is not None and self.canceled_at < self.natural_end:
            return CANCELED
        if self.plan.abort:
            return ABORTED
        return FAILED if self.plan.fail else SUCCEEDED

    def status_at(self, now: float) -> str:
        if now >= self.end:
            return self.final_status()
        return STARTING if now < self.started else PROCESSING

    def ran(self, now: float) -> bool:
        """Whether the run had begun by `now` (so `started_at` is set)."""
        return now >= self.started and self.started < self.end

    def cancel(self, now: float) -> None:
        """A cancel call: only a prediction not yet final is affected."""
        self.cancel_calls += 1
        if self.canceled_at is None and now < self.end:
            self.canceled_at = now

    def predict_time(self) -> float:
        return round(max(0.0, self.end - self.started), 3) if self.ran(self.end) else 0.0

    def expired(self, now: float) -> bool:
        return self.status_at(now) in FINAL and now >= self.end + self.plan.expire_s

    # -- logs and partial output ---------------------------------------------------
    def _mark_at(self, fraction: float) -> float:
        return self.started + self.run_s * fraction

    def _marks_until(self, now: float) -> list[float]:
        """Progress marks printed by `now` (never after the end, never for an aborted run)."""
        if self.plan.abort:
            return []
        return [m for m in LOG_MARKS if self._mark_at(m) <= now and self._mark_at(m) < self.end]

    def logs_at(self, now: float) -> str:
        marks = self._marks_until(now)
        if not marks:
            return ""
        lines = [f"Using seed: {SEED}"] + [_progress_line(m) for m in marks]
        status = self.status_at(now)
        if status == SUCCEEDED:
            lines.append(_progress_line(1.0))
        elif status == FAILED:
            lines += ["Traceback (most recent call last):", f"RuntimeError: {FAIL_ERROR}"]
        return "\n".join(lines) + "\n"

    def partial_from(self) -> float | None:
        """When a partial output first shows (None if the run never gets that far)."""
        at = self._mark_at(OUTPUT_MARK)
        return at if not self.plan.abort and at < self.end else None

    def visible_outputs(self, now: float) -> int:
        """How many output items are visible at `now` (0: output is null)."""
        status = self.status_at(now)
        if self.expired(now) or status in (FAILED, ABORTED):
            return 0
        if status == SUCCEEDED:
            return self.n_outputs
        partial = self.partial_from()
        return 1 if partial is not None and now >= partial else 0

    # -- webhooks --------------------------------------------------------------------
    def hook_events(self) -> list[HookEvent]:
        """Every webhook event of this prediction as known now, in time order, filtered."""
        out: list[HookEvent] = []
        if self.ran(self.end):
            out.append(HookEvent(self.started, "start"))
        marks = [HookEvent(self._mark_at(m), "logs") for m in self._marks_until(self.end)]
        partial = self.partial_from()
        if partial is not None:
            marks.append(HookEvent(partial, "output"))
        out += sorted(marks, key=lambda e: e.at)
        out.append(HookEvent(self.end, "completed"))
        return [e for e in out if e.event in self.events_filter]


def _progress_line(fraction: float) -> str:
    step = int(STEPS * fraction)
    filled = int(10 * fraction)
    bar = ("#" * filled).ljust(10)
    return f"{int(100 * fraction):3d}%|{bar}| {step}/{STEPS} [00:0{int(4 * fraction)}<00:04, 6.50it/s]"


def media_url(p: Prediction, base: str, i: int) -> str:
    return f"{base}/_sim/media/rep/{p.id}_{i}.{p.media_ext}"


def _data_uri(p: Prediction) -> str:
    mime, data = ("video/mp4", MP4_BYTES) if p.media_ext == "mp4" else ("image/png", PNG_BYTES)
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def output_at(p: Prediction, now: float, base: str) -> Any:
    """The `output` field at `now` in the plan's shape (None when there is nothing to show)."""
    count = p.visible_outputs(now)
    if count == 0:
        return None
    urls = [media_url(p, base, i) for i in range(count)]
    kind = p.plan.output
    if kind == "url":
        return urls[0]
    if kind == "data":
        return [_data_uri(p)]
    if kind == "json":
        key = "videos" if p.media_ext == "mp4" else "images"
        return {key: [{"url": u} for u in urls], "seed": SEED, "text": strip_directives(p.prompt)}
    return urls


class ReplicateStore:
    """All predictions by id."""

    def __init__(self) -> None:
        self.predictions: dict[str, Prediction] = {}

    def new_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(_ID_CHARS) for _ in range(26))
            if candidate not in self.predictions:
                return candidate

    def add(self, prediction: Prediction) -> Prediction:
        self.predictions[prediction.id] = prediction
        return prediction

    def rows(self, now: float, wall_ms: Callable[[float], int], output: Callable[[Prediction, float], Any]) -> list[dict[str, Any]]:
        """`/_sim/tasks` rows; `output(prediction, now)` renders the current output."""
        return [
            {
                "family": "replicate",
                "task_id": p.id,
                "model": p.model,
                "version": p.version,
                "status": p.status_at(now),
                "output": output(p, now),
                "data_removed": p.expired(now),
                "cancel_calls": p.cancel_calls,
                "polls": p.polls,
                "created_at": wall_ms(p.created),
                "callback_url": p.webhook,
                "callbacks_notified": list(p.hooks_sent),
            }
            for p in self.predictions.values()
        ]
