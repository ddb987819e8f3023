"""Shared lifecycle for the Midjourney and Suno fakes.

A task's life is a list of timed `Event`s (status + progress) computed from a
few numbers (`Timeline`): queue phases, an optional `MODAL` park that lasts
until `/mj/submit/modal` sets `resume_at`, progress steps while
`IN_PROGRESS`, then `SUCCESS` or `FAILURE`. Nothing is scheduled: the status at
any instant is the last event whose time has come (injected monotonic clock).
`HookCursor` remembers which events were already called back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# new-api / midjourney-proxy / Suno-API task status enum (providers.md §2.7, §3.4).
NOT_START, SUBMITTED, QUEUED, MODAL = "NOT_START", "SUBMITTED", "QUEUED", "MODAL"
IN_PROGRESS, SUCCESS, FAILURE = "IN_PROGRESS", "SUCCESS", "FAILURE"
FINAL = (SUCCESS, FAILURE)

_DIRECTIVE = re.compile(r"\[sim:([a-z0-9_]+)(?:=([^\]]*))?\]")


def directives(*texts: object) -> dict[str, str]:
    """`[sim:name]` / `[sim:name=value]` markers found in the given texts (first wins)."""
    out: dict[str, str] = {}
    for text in texts:
        if isinstance(text, str):
            for name, value in _DIRECTIVE.findall(text):
                out.setdefault(name, value)
    return out


def directive_seconds(found: dict[str, str], name: str) -> float | None:
    """Non-negative float value of a directive such as `[sim:run=7.5]`, else None."""
    if name not in found:
        return None
    try:
        return max(0.0, float(found[name]))
    except ValueError:
        return None


def strip_directives(text: str) -> str:
    return " ".join(_DIRECTIVE.sub(" ", text).split())


@dataclass(frozen=True)
class Event:
    """One status/progress change at monotonic time `at`."""

    at: float
    status: str
    progress: int

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass
class Timeline:
    """Numbers that define a task's events.

    queue_phases: statuses that share the queue time evenly (e.g. SUBMITTED,
    or NOT_START then SUBMITTED, or SUBMITTED then QUEUED).
    steps: number of IN_PROGRESS progress events (0%, 25%, 50%, 75% for 4).
    modal_at: time the task parks in MODAL (None: never); it stays there until
    `resume_at` is set, then runs for run_s without queueing again.
    """

    created: float
    queue_s: float
    run_s: float
    will_fail: bool = False
    queue_phases: tuple[str, ...] = (SUBMITTED,)
    steps: int = 4
    modal_at: float | None = None
    resume_at: float | None = None

    def events(self) -> list[Event]:
        out: list[Event] = []
        queue_end = self.created + self.queue_s if self.modal_at is None else self.modal_at
        span = queue_end - self.created
        phases = self.queue_phases or (SUBMITTED,)
        for i, status in enumerate(phases):
            out.append(Event(self.created + span * i / len(phases), status, 0))
        if self.modal_at is not None:
            out.append(Event(self.modal_at, MODAL, 0))
            if self.resume_at is None:
                return out
            start = max(self.resume_at, self.modal_at)
        else:
            start = queue_end
        steps = max(1, self.steps)
        for k in range(steps):
            out.append(Event(start + self.run_s * k / steps, IN_PROGRESS, 100 * k // steps))
        end = start + self.run_s
        if self.will_fail:
            out.append(Event(end, FAILURE, out[-1].progress))
        else:
            out.append(Event(end, SUCCESS, 100))
        return out

    def at(self, now: float) -> Event:
        """The event in force at `now` (the first one if `now` precedes creation)."""
        events = self.events()
        current = events[0]
        for event in events:
            if event.at <= now:
                current = event
            else:
                break
        return current

    def first(self, status: str) -> float | None:
        """Time the task first entered `status` (None if it never does)."""
        return next((e.at for e in self.events() if e.status == status), None)

    def started(self, now: float) -> float | None:
        at = self.first(IN_PROGRESS)
        return at if at is not None and at <= now else None

    def finished(self, now: float) -> float | None:
        last = self.events()[-1]
        return last.at if last.final and last.at <= now else None


@dataclass
class HookCursor:
    """Callback bookkeeping of one task: URL, events already handled, held-back events."""

    url: str | None
    sent: int = 0  # events (after the creation event) already sent, dropped or held
    held: list[Event] = field(default_factory=list)
    done: bool = False  # final event handled and nothing held back
