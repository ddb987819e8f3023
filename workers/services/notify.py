"""deliver_notification: POST a job's terminal event to its callback_url, signed per Standard
Webhooks. 2xx is success; anything else (3xx included: redirects are not followed; n8n's early
404 and 409 too) retries with exponential backoff and jitter until notify_max_attempts; 410 gives
up. An attempt is bounded: K4U_NOTIFY_TIMEOUT_S of wall-clock time in all, however slowly the
receiver answers, and at most 64 KiB of its answer is read (the status code is what counts).
Every attempt is a DeliveryAttempt row. The body and webhook-id are fixed when the Delivery is
created, so retries and replays match."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx
from sqlalchemy import ColumnElement
from sqlmodel import col, select

from models.errors import UnsafeURL
from models.status import DeliveryStatus
from models.tables import Delivery, DeliveryAttempt
from workers import deliveries, signing
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import NOTIFY, send_all
from workers.netguard import GuardedTransport, check_url
from workers.outbound import CallDeadline, read_capped
from workers.outcomes import Outcome
from workers.services.schedule import backoff

log = logging.getLogger("k4u.notify")

ANSWER_READ_CAP = 64 * 1024


def deliver_notification(rt: Runtime, delivery_id: str, version: int) -> Outcome:
    s, now = rt.settings, rt.clock()
    with session_scope(rt.engine) as session:
        d = deliveries.take(session, delivery_id, version, now=now, lease_s=s.lease_s)
        if d is None:
            return Outcome.STALE
        url, body, attempt, new_version = d.url, d.payload.encode(), d.attempts, d.version

    started = time.perf_counter()
    secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
    status_code, error = _post(rt, url, body, signing.headers(secret, delivery_id, int(time.time()), body))
    ms = int((time.perf_counter() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    now = rt.clock()
    with session_scope(rt.engine) as session:
        session.add(DeliveryAttempt(delivery_id=delivery_id, attempt=attempt, status_code=status_code, error=error, duration_ms=ms, at=now))
        values: dict[str, object]
        if ok:
            values = {"status": DeliveryStatus.DELIVERED, "delivered_at": now, "next_at": None, "last_error": None}
        else:
            last = error or f"HTTP {status_code}"
            give_up = attempt >= s.notify_max_attempts or status_code == 410
            delay = backoff(attempt, s.notify_backoff_s, 24 * 3600.0)
            values = {
                "status": DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
                "last_error": last,
                "next_at": None if give_up else now + timedelta(seconds=delay),
            }
        deliveries.settle(session, delivery_id, new_version, **values)
    if not ok:
        log.warning("notification %s attempt %d failed: %s", delivery_id, attempt, error or f"HTTP {status_code}")
    return Outcome.DELIVERED if ok else Outcome.RETRY


def _post(rt: Runtime, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """One bounded POST: (status code, None) once the receiver's status line is in, or (None, why)."""
    s = rt.settings
    transport = rt.notify_transport
    if transport is None and not s.allow_private_urls:
        transport = GuardedTransport()  # connects only to the public address it checked
    status_code: int | None = None
    try:
        check_url(url, allow_private=s.allow_private_urls, resolve=False)
        with (
            CallDeadline(s.notify_timeout_s) as cut,
            httpx.Client(
                timeout=httpx.Timeout(s.notify_timeout_s, connect=min(s.notify_timeout_s, 10.0)),
                follow_redirects=False,
                transport=transport,
            ) as client,
        ):
            try:
                with client.stream("POST", url, content=body, headers=headers, extensions=cut.extensions) as r:
                    status_code = r.status_code
                    read_capped(r, ANSWER_READ_CAP)
            except httpx.HTTPError as exc:
                if status_code is not None:  # the answer's body broke off or was cut: its status stands
                    return status_code, None
                if cut.expired:
                    return None, f"no answer within K4U_NOTIFY_TIMEOUT_S ({s.notify_timeout_s:g} s)"
                return None, type(exc).__name__
    except UnsafeURL as exc:
        return None, exc.message
    except (httpx.InvalidURL, ValueError, OverflowError) as exc:  # a URL no client can use: recorded, retried, given up
        return None, f"invalid callback URL ({type(exc).__name__})"
    return status_code, None


def replay_notifications(rt: Runtime, job_id: str) -> list[str]:
    """Send a job's notifications again (same webhook-id and body, so receivers can dedupe):
    every delivery that is not pending gets a fresh schedule. Returns the delivery ids queued."""
    return _replay(rt, col(Delivery.job_id) == job_id)


def replay_batch_notifications(rt: Runtime, batch_id: str) -> list[str]:
    """replay_notifications for a batch's own notification (batch.completed)."""
    return _replay(rt, col(Delivery.batch_id) == batch_id)


def _replay(rt: Runtime, of: ColumnElement[bool]) -> list[str]:
    now = rt.clock()
    queued: list[tuple[str, int]] = []
    with session_scope(rt.engine) as session:
        rows = session.exec(select(Delivery.id, Delivery.version).where(of, Delivery.status != DeliveryStatus.PENDING)).all()
        for delivery_id, version in rows:
            if deliveries.reopen(session, delivery_id, version, now=now, lease_s=rt.settings.lease_s):
                queued.append((delivery_id, version + 1))
    # Broker down: the deliveries are pending with a next_at, so the beat's sweep sends them.
    send_all(rt.dispatcher, [(NOTIFY, q) for q in queued])
    return [d for d, _ in queued]
