"""Provider callbacks: Kling `callback_url`, Midjourney `notifyHook`, Suno `notify_hook`, Vidu `callback_url`, Seedance `callback_url`.

A background loop (started by the app's lifespan) wakes every
`callback_interval_s`, asks `collect_due` which changes happened since the
last look, and POSTs a task object for each one with httpx: Kling's native
task object (not enveloped, upstream numeric task_id) on status changes, the
full Midjourney task object on every status *or progress* change, the Suno
task object likewise (only when `suno_notify_enabled`), the Vidu query body at
`processing` and at its end (`simulator.vidu.due`), the Seedance task object on every status
change. Delivery failures are
logged and otherwise ignored, like a real provider that does not retry.
Replicate and fal webhooks are signed and retried: `simulator.signed_hooks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from simulator import mj_views, seedance, signed_hooks, suno_views, vidu
from simulator.state import PROCESSING, SimState
from simulator.timeline import Event, HookCursor, Timeline
from simulator.views import native_task

log = logging.getLogger("simulator.callbacks")
_LOG_LIMIT = 1000


@dataclass
class Delivery:
    task_id: str
    status: str
    url: str
    body: dict[str, Any]


def collect_due(state: SimState) -> list[list[Delivery]]:
    """Due callbacks, one ordered list per task; marks them as notified.

    Honours callbacks_enabled (disabled -> dropped), callback_reorder (the
    'processing' notice is held back and sent after the final one) and
    callback_duplicates (each notice repeated that many extra times).
    """
    config, now = state.config, state.now()
    batches: list[list[Delivery]] = []
    for task in state.tasks.values():
        if not task.callback_url:
            continue
        new = [e for e in task.events_until(now) if e not in task.notified]
        task.notified.extend(new)
        if not config.callbacks_enabled:
            state.callbacks_dropped += len(new) + len(task.held)
            task.held.clear()
            continue
        send: list[str] = []
        for event in new:
            if event == PROCESSING and config.callback_reorder:
                task.held.append(event)
            else:
                send.append(event)
        if task.held and (task.final_status in send or not config.callback_reorder):
            send = send + task.held if config.callback_reorder else task.held + send
            task.held.clear()
        base = config.public_base or task.public_base
        batch = [
            Delivery(task.task_id, event, task.callback_url, native_task(task, state, task.changed_at(event), base))
            for event in send
            for _ in range(1 + config.callback_duplicates)
        ]
        if batch:
            batches.append(batch)
    return batches + _timeline_batches(state) + _vidu_batches(state) + _seedance_batches(state)


def _vidu_batches(state: SimState) -> list[list[Delivery]]:
    """Due Vidu callbacks (the query body at each of processing, success / failed), one list per task."""
    config, now, batches = state.config, state.now(), []
    for task in state.vidu.tasks.values():
        if not task.callback_url:
            continue
        new = [e for e in task.events_until(now) if e not in task.notified]
        task.notified.extend(new)
        if not config.callbacks_enabled or task.plan.no_callback:  # [sim:no_callback]: the relay drops them
            state.callbacks_dropped += len(new)
            continue
        base, expiry = (config.public_base or task.public_base).rstrip("/"), state.wall_s(task.expires_at())
        batch = [
            Delivery(task.id, event, task.callback_url, vidu.query_body(task, task.changed_at(event), base, expiry))
            for event in new
            for _ in range(1 + config.callback_duplicates)
        ]
        if batch:
            batches.append(batch)
    return batches


def _seedance_batches(state: SimState) -> list[list[Delivery]]:
    """Due Seedance callbacks: the task object on each status change (callbacks_enabled and
    callback_duplicates apply)."""
    config = state.config
    due = seedance.due_callbacks(state.seedance, state.now(), lambda t: (config.public_base or t.public_base).rstrip("/"), state.wall_s)
    if not config.callbacks_enabled:
        state.callbacks_dropped += len(due)
        return []
    return [[Delivery(t.id, word, t.callback_url or "", body) for _ in range(1 + config.callback_duplicates)] for t, word, body in due]


def _timeline_batches(state: SimState) -> list[list[Delivery]]:
    """Due Midjourney / Suno callbacks (one ordered list per task)."""
    config, batches = state.config, []
    families: list[tuple[Any, Callable[..., dict[str, Any]], bool]] = [
        (state.mj.tasks, mj_views.task_view, False),
        (state.suno.tasks, suno_views.task_view, not config.suno_notify_enabled),
    ]
    for tasks, view, silent in families:
        for task in tasks.values():
            if task.hook.url and not task.hook.done:
                body = functools.partial(view, task, state, config=config)
                batches.append(_timeline_due(state, task.id, task.tl, task.hook, body, silent=silent))
    return [b for b in batches if b]


def _timeline_due(
    state: SimState,
    task_id: str,
    tl: Timeline,
    cursor: HookCursor,
    body: Callable[[float], dict[str, Any]],
    silent: bool = False,
) -> list[Delivery]:
    """New events of one task since the last look, as deliveries.

    The creation event is never sent. silent: consume the events without
    sending or counting them (a relay that drops the hook). callbacks_enabled,
    callback_reorder (non-final events held back until after the final one)
    and callback_duplicates apply as for Kling.
    """
    config = state.config
    due = [e for e in tl.events()[1:] if e.at <= state.now()]
    new, cursor.sent = due[cursor.sent :], len(due)
    if any(e.final for e in new):
        cursor.done = True
    if silent:
        return []
    if not config.callbacks_enabled:
        state.callbacks_dropped += len(new) + len(cursor.held)
        cursor.held.clear()
        return []
    send: list[Event] = []
    for event in new:
        if config.callback_reorder and not event.final:
            cursor.held.append(event)
        else:
            send.append(event)
    if cursor.held and (any(e.final for e in send) or not config.callback_reorder):
        send = send + cursor.held if config.callback_reorder else cursor.held + send
        cursor.held.clear()
    assert cursor.url is not None
    return [Delivery(task_id, f"{event.status}:{event.progress}%", cursor.url, body(event.at)) for event in send for _ in range(1 + config.callback_duplicates)]


class CallbackDispatcher:
    """Sends due callbacks; `run()` is the periodic background loop."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._inflight: set[asyncio.Task[None]] = set()

    async def dispatch_once(self, wait: bool = True) -> int:
        """Collect and send due callbacks. Returns how many POSTs were started."""
        batches = collect_due(self.state)
        signed = signed_hooks.collect_due(self.state)
        if not batches and not signed:
            return 0
        job = asyncio.ensure_future(self._send_batches(batches, signed))
        if wait:
            await job
        else:
            self._inflight.add(job)
            job.add_done_callback(self._inflight.discard)
        return sum(len(b) for b in batches) + sum(len(b) for b in signed)

    async def _send_batches(self, batches: list[list[Delivery]], signed: list[list[signed_hooks.SignedDelivery]]) -> None:
        config = self.state.config
        async with httpx.AsyncClient(transport=config.callback_transport, timeout=config.callback_timeout_s) as client:
            await asyncio.gather(
                *(self._send_ordered(client, batch) for batch in batches),
                *(self._send_signed(client, batch) for batch in signed),
            )

    async def _send_signed(self, client: httpx.AsyncClient, batch: list[signed_hooks.SignedDelivery]) -> None:
        for delivery in batch:
            await signed_hooks.post(client, delivery, self.state)

    async def _send_ordered(self, client: httpx.AsyncClient, batch: list[Delivery]) -> None:
        for delivery in batch:
            await self._post(client, delivery)

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        entry: dict[str, Any] = {"task_id": delivery.task_id, "status": delivery.status, "url": delivery.url}
        try:
            response = await client.post(delivery.url, json=delivery.body)
            entry["http_status"] = response.status_code
            entry["ok"] = response.is_success
        except Exception as exc:  # delivery problems are the receiver's
            entry["ok"] = False
            entry["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("callback to %s for task %s failed: %s", signed_hooks.host_of(delivery.url), delivery.task_id, exc)
        self.state.callbacks_sent += 1
        if not entry["ok"]:
            self.state.callbacks_failed += 1
        self.state.callback_log.append(entry)
        del self.state.callback_log[:-_LOG_LIMIT]

    async def run(self) -> None:
        """Background loop: look for due callbacks every callback_interval_s."""
        while True:
            try:
                await self.dispatch_once(wait=False)
            except Exception:
                log.exception("callback loop iteration failed")
            await asyncio.sleep(max(0.01, self.state.config.callback_interval_s))

    async def aclose(self) -> None:
        for job in list(self._inflight):
            job.cancel()
        for job in list(self._inflight):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
