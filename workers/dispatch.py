"""Enqueueing follow-up work: task names, queues, and the Dispatcher seam.

Messages carry ids and a version (a fencing token), never data or secrets. Services call a
Dispatcher only after their transaction has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

SUBMIT, POLL, DOWNLOAD, NOTIFY, TICK = "k4u.submit", "k4u.poll", "k4u.download", "k4u.notify", "k4u.tick"
CANCEL = "k4u.cancel"  # the relay-side cancel of a cancelled job's task: one short relay call, beside the submits
log = logging.getLogger("k4u.dispatch")

QUEUES = {SUBMIT: "submit", CANCEL: "submit", POLL: "poll", DOWNLOAD: "download", NOTIFY: "notify", TICK: "sweep"}


# What a committed change asks to run next: (task, args), or a Followup that carries a priority.
Followups = list[tuple[str, tuple[Any, ...]]]


class Dispatcher(Protocol):
    def send(self, task: str, *args: Any, priority: int | None = None) -> None: ...

    def backlog(self, task: str) -> int | None:
        """Messages waiting in the task's queue, or None when the broker cannot say."""
        ...


class CeleryDispatcher:
    def __init__(self, app: Any) -> None:
        self._app = app

    def send(self, task: str, *args: Any, priority: int | None = None) -> None:
        # Redis emulates priorities with sub-queues (0 is served first); kombu's default steps are 0, 3, 6, 9.
        self._app.send_task(task, args=list(args), queue=QUEUES[task], priority=priority)

    def backlog(self, task: str) -> int | None:
        # kombu's queue_declare answers (name, message count, consumers); on Redis the count sums the
        # priority sub-queues. Not passive: a queue nobody has sent to yet is simply empty.
        try:
            with self._app.connection_or_acquire() as conn:
                return int(conn.default_channel.queue_declare(queue=QUEUES[task], passive=False).message_count)
        except Exception as exc:  # noqa: BLE001 - unknown: the tick claims as if the queue were empty
            log.warning("could not read the backlog of queue %s (%s)", QUEUES[task], type(exc).__name__)
            return None


class RecordingDispatcher:
    """Keeps what would have been sent; for service tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self.priorities: list[int | None] = []

    def send(self, task: str, *args: Any, priority: int | None = None) -> None:
        self.sent.append((task, args))
        self.priorities.append(priority)

    def of(self, task: str) -> list[tuple[Any, ...]]:
        return [a for t, a in self.sent if t == task]

    def backlog(self, task: str) -> int | None:
        """The recorded messages not yet taken (a driver pops what it runs) for the task's queue."""
        return sum(QUEUES[t] == QUEUES[task] for t, _ in self.sent)


class Followup(tuple):  # type: ignore[type-arg]
    """A (task, args) pair that also carries a broker priority (0 is served first)."""

    priority: int | None

    def __new__(cls, task: str, args: tuple[Any, ...], priority: int | None = None) -> Followup:
        item = super().__new__(cls, (task, args))
        item.priority = priority
        return item


def send_all(dispatcher: Dispatcher, followups: Sequence[tuple[Any, ...]]) -> int:
    """Send follow-ups of a committed change. A failing send (broker down) is logged, not raised:
    the change carries a `next_at`, so the beat's sweep re-derives the work from the database.
    Returns how many could not be sent (a caller may make that work due at once)."""
    failed = 0
    for item in followups:
        task, args = item
        try:
            priority = getattr(item, "priority", None)
            if priority is None:
                dispatcher.send(task, *args)
            else:
                dispatcher.send(task, *args, priority=priority)
        except Exception as exc:  # noqa: BLE001 - the committed change stands; the sweep carries it out
            failed += 1
            log.warning("could not enqueue %s (%s); the sweep will pick it up", task, type(exc).__name__)
    return failed
