"""Enqueueing follow-up work: task names, queues, and the Dispatcher seam.

Messages carry ids and a version (a fencing token), never data or secrets. Services call a
Dispatcher only after their transaction has committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from providers.registry import ADAPTERS

SUBMIT, POLL, DOWNLOAD, NOTIFY, TICK = "k4u.submit", "k4u.poll", "k4u.download", "k4u.notify", "k4u.tick"
CANCEL = "k4u.cancel"  # the relay-side cancel of a cancelled job's task: one short relay call, beside the submits
# The submit of a one-shot family (capabilities.oneshot): a synchronous call held up to its family's
# request timeout, on its own queue and thread pool (`k4u worker --role oneshot`), one job a message.
ONESHOT = "k4u.oneshot"
MAINTAIN = "k4u.maintain"  # the beat's VACUUM (ANALYZE) of PostgreSQL tables that need it
CLEAN_STORE = "k4u.clean_store"  # the beat's removal of what writers killed mid-write left in the store
log = logging.getLogger("k4u.dispatch")

QUEUES = {
    SUBMIT: "submit",
    ONESHOT: "oneshot",
    CANCEL: "submit",
    POLL: "poll",
    DOWNLOAD: "download",
    NOTIFY: "notify",
    TICK: "sweep",
    MAINTAIN: "sweep",
    CLEAN_STORE: "sweep",
}

# Downloads sent together (a poll's successes, a tick's claim) share a message, this many at most:
# the download worker runs a message's jobs side by side (store_many), so one slow source delays
# none of the others, and the broker, the worker's consumer and the task events count one message.
DOWNLOAD_MESSAGE_MAX = 8
# Queued jobs per submit message when many go out at once (a batch's items at a tick, the API's
# gathered POSTs): a message's submits run one after another, each on its own claim.
SUBMIT_MESSAGE_MAX = 8
# The API process gathers its submits this long before sending them (GatheringDispatcher).
SUBMIT_LINGER_S = 0.02
GATHER_MAX = 10_000  # submits gathered at most; later ones are sent by the request itself
# Tasks whose message may carry a list of [job_id, version] instead of one job.
MANY = frozenset({SUBMIT, DOWNLOAD})


# What a committed change asks to run next: (task, args), or a Followup that carries a priority.
Followups = list[tuple[str, tuple[Any, ...]]]


def submit_task(provider: str) -> str:
    """The task that submits a job of this provider: ONESHOT for a one-shot family, else SUBMIT."""
    adapter = ADAPTERS.get(provider)
    return ONESHOT if adapter is not None and adapter.capabilities.oneshot else SUBMIT


class Dispatcher(Protocol):
    def send(self, task: str, *args: Any, priority: int | None = None) -> None: ...

    def send_many(self, task: str, items: Sequence[tuple[Any, ...]], priority: int | None = None) -> None:
        """Two or more calls of a task in MANY with the same priority, as one message (send_all groups them)."""
        ...

    def backlog(self, task: str) -> int | None:
        """Messages waiting in the task's queue, or None when the broker cannot say."""
        ...


class CeleryDispatcher:
    def __init__(self, app: Any) -> None:
        self._app = app

    def send(self, task: str, *args: Any, priority: int | None = None) -> None:
        # Redis emulates priorities with sub-queues (0 is served first); kombu's default steps are 0, 3, 6, 9.
        self._app.send_task(task, args=list(args), queue=QUEUES[task], priority=priority)

    def send_many(self, task: str, items: Sequence[tuple[Any, ...]], priority: int | None = None) -> None:
        self.send(task, [list(args) for args in items], priority=priority)

    def backlog(self, task: str) -> int | None:
        # kombu's queue_declare answers (name, message count, consumers); on Redis the count sums the
        # priority sub-queues. Not passive: a queue nobody has sent to yet is simply empty.
        try:
            with self._app.connection_or_acquire() as conn:
                return int(conn.default_channel.queue_declare(queue=QUEUES[task], passive=False).message_count)
        except Exception as exc:
            log.warning("could not read the backlog of queue %s (%s)", QUEUES[task], type(exc).__name__)
            return None


def spread(due: int, workers: int, cap: int) -> int:
    """Jobs per message so that `due` jobs spread over the engine's `workers` processes, 1 to `cap`."""
    return max(1, min(cap, -(-due // max(1, workers))))


class GatheringDispatcher:
    """The API process's Dispatcher: a submit without a priority (POST /v1/jobs, a retry) goes to a
    background thread that sends what arrived within `linger_s` together: spread over the engine's
    `workers` processes while the submit queue is short, up to `cap` jobs to a message once it holds
    a message per process (the processes are busy: fewer, fuller messages cost the broker, the
    engine's consumer and the task events less). Everything else is sent at once by `inner`.

    The request does not wait for the broker. Its job is committed first, with next_at a lease
    ahead (K4U_LEASE_S): a submit that never goes out (the process killed before the thread sent it)
    is sent by the sweep then, and one the broker refused is handed to `on_failed`, which makes
    those jobs due at once. close() sends what is still gathered."""

    def __init__(
        self,
        inner: Dispatcher,
        *,
        workers: int,
        on_failed: Callable[[list[tuple[Any, ...]]], None],
        linger_s: float = SUBMIT_LINGER_S,
        cap: int = SUBMIT_MESSAGE_MAX,
    ) -> None:
        self.inner, self._workers, self._on_failed, self._linger_s, self._cap = inner, workers, on_failed, linger_s, cap
        self._cond = threading.Condition()
        self._pending: list[tuple[Any, ...]] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def send(self, task: str, *args: Any, priority: int | None = None) -> None:
        if task == SUBMIT and priority is None:
            with self._cond:
                # Past GATHER_MAX (a broker that hangs holds the thread up) a request sends its own,
                # as without gathering: memory stays bounded and the callers feel the backpressure.
                if not self._closed and len(self._pending) < GATHER_MAX:
                    self._pending.append(args)
                    self._start()
                    self._cond.notify()
                    return
        _send_one(self.inner, task, args, priority)

    def send_many(self, task: str, items: Sequence[tuple[Any, ...]], priority: int | None = None) -> None:
        self.inner.send_many(task, items, priority)

    def backlog(self, task: str) -> int | None:
        return self.inner.backlog(task)

    def close(self) -> None:
        """Stop gathering: what is gathered goes out now, later submits at once."""
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._cond.notify()
        if thread is not None:
            thread.join(timeout=30)
        self._flush(self._take())  # the thread never started, or did not end in time

    def _start(self) -> None:
        if self._thread is None:  # made on first use: after a fork, in the process that serves
            self._thread = threading.Thread(target=self._run, name="k4u-submit-gather", daemon=True)
            self._thread.start()

    def _take(self) -> list[tuple[Any, ...]]:
        with self._cond:
            taken, self._pending = self._pending, []
        return taken

    def _run(self) -> None:
        full = self._cap * self._workers
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                ends = time.monotonic() + self._linger_s
                while not self._closed and len(self._pending) < full and (left := ends - time.monotonic()) > 0:
                    self._cond.wait(left)
                closed = self._closed
            self._flush(self._take())
            if closed:
                return

    def _flush(self, items: list[tuple[Any, ...]]) -> None:
        if not items:
            return
        try:
            busy = len(items) > 1 and (self.inner.backlog(SUBMIT) or 0) >= self._workers
            size = self._cap if busy else spread(len(items), self._workers, self._cap)
            failed = unsent(self.inner, [(SUBMIT, args) for args in items], {SUBMIT: size})
            if failed:
                self._on_failed(failed)
        except Exception as exc:
            log.error("could not send %d gathered submit(s) (%s); the sweep will pick them up", len(items), type(exc).__name__)


class RecordingDispatcher:
    """Keeps what would have been sent; for service tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self.priorities: list[int | None] = []
        self.groups: list[tuple[str, int]] = []  # (task, items) per send_many call
        self._messages = 0

    def send(self, task: str, *args: Any, priority: int | None = None) -> None:
        self.sent.append(_Recorded((task, args), self._messages))
        self.priorities.append(priority)
        self._messages += 1

    def send_many(self, task: str, items: Sequence[tuple[Any, ...]], priority: int | None = None) -> None:
        """Recorded one call per item (a test driver runs each as its own step), the grouping in
        `groups`; the items count as one message in `backlog` until the last of them is taken."""
        self.groups.append((task, len(items)))
        self.sent += [_Recorded((task, args), self._messages) for args in items]
        self.priorities += [priority] * len(items)
        self._messages += 1

    def of(self, task: str) -> list[tuple[Any, ...]]:
        return [a for t, a in self.sent if t == task]

    def backlog(self, task: str) -> int | None:
        """The recorded messages not yet taken (a driver pops what it runs) for the task's queue."""
        return len({getattr(e, "message", id(e)) for e in self.sent if QUEUES[e[0]] == QUEUES[task]})


class _Recorded(tuple):  # type: ignore[type-arg]
    """A recorded (task, args), with the number of the message it went out in."""

    message: int

    def __new__(cls, item: tuple[str, tuple[Any, ...]], message: int) -> _Recorded:
        made = super().__new__(cls, item)
        made.message = message
        return made


class Followup(tuple):  # type: ignore[type-arg]
    """A (task, args) pair that also carries a broker priority (0 is served first)."""

    priority: int | None

    def __new__(cls, task: str, args: tuple[Any, ...], priority: int | None = None) -> Followup:
        item = super().__new__(cls, (task, args))
        item.priority = priority
        return item


def send_all(dispatcher: Dispatcher, followups: Sequence[tuple[Any, ...]], per_message: Mapping[str, int] | None = None) -> int:
    """Send follow-ups of a committed change. A failing send (broker down) is logged, not raised:
    the change carries a `next_at`, so the beat's sweep re-derives the work from the database.
    Calls of a task in `per_message` (default: downloads, DOWNLOAD_MESSAGE_MAX) that takes a list
    (MANY) with the same priority go out that many to a message (send_many); the rest one message
    each, in order.
    Returns how many could not be sent (a caller may make that work due at once)."""
    return len(unsent(dispatcher, followups, per_message))


def unsent(dispatcher: Dispatcher, followups: Sequence[tuple[Any, ...]], per_message: Mapping[str, int] | None = None) -> list[tuple[Any, ...]]:
    """send_all, answering with the args of each call that could not be sent."""
    sizes = {DOWNLOAD: DOWNLOAD_MESSAGE_MAX} if per_message is None else per_message
    failed: list[tuple[Any, ...]] = []
    grouped: dict[tuple[str, int | None], list[tuple[Any, ...]]] = {}
    singles: list[tuple[str, list[tuple[Any, ...]], int | None]] = []
    for item in followups:
        task, args = item
        priority = getattr(item, "priority", None)
        if task in MANY and sizes.get(task, 1) > 1:
            grouped.setdefault((task, priority), []).append(args)
        else:
            singles.append((task, [args], priority))
    for (task, priority), group in sorted(grouped.items(), key=lambda kv: (kv[0][0], 9 if kv[0][1] is None else kv[0][1])):
        size = sizes[task]
        singles += [(task, group[i : i + size], priority) for i in range(0, len(group), size)]
    for task, items, priority in singles:
        failed += _send_message(dispatcher, task, items, priority)
    return failed


def _send_message(dispatcher: Dispatcher, task: str, items: Sequence[tuple[Any, ...]], priority: int | None) -> Sequence[tuple[Any, ...]]:
    """One message: a call, or several of a task in MANY; the calls it carried if it failed."""
    try:
        if len(items) > 1:
            dispatcher.send_many(task, items, priority)
        else:
            _send_one(dispatcher, task, items[0], priority)
    except Exception as exc:
        log.warning("could not enqueue %s (%s); the sweep will pick it up", task, type(exc).__name__)
        return items
    return ()


def _send_one(dispatcher: Dispatcher, task: str, args: tuple[Any, ...], priority: int | None) -> None:
    """Dispatcher.send, naming a priority only when there is one."""
    if priority is None:
        dispatcher.send(task, *args)
    else:
        dispatcher.send(task, *args, priority=priority)
