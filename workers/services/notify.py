"""deliver_notification: POST a job's terminal event to its callback_url, signed per Standard
Webhooks. 2xx is success; anything else (3xx included: redirects are not followed) retries with
exponential backoff and jitter until notify_max_attempts. Every attempt is a DeliveryAttempt row.
The body and webhook-id are fixed when the Delivery is created, so retries and replays match."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlmodel import select

from models.errors import UnsafeURL
from models.tables import Delivery, DeliveryAttempt
from workers import signing
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import NOTIFY
from workers.netguard import check_url
from workers.services.schedule import backoff

log = logging.getLogger("k4u.notify")


def deliver_notification(rt: Runtime, delivery_id: str, version: int) -> str:
    s, now = rt.settings, rt.clock()
    with session_scope(rt.engine) as session:
        lease = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.version == version, Delivery.status == "pending")  # type: ignore[arg-type]
            .values(version=Delivery.version + 1, attempts=Delivery.attempts + 1, next_at=now + timedelta(seconds=s.lease_s))
        )
        if lease.rowcount != 1:  # type: ignore[attr-defined]
            return "stale"
        d = session.get(Delivery, delivery_id)
        assert d is not None
        session.refresh(d)
        url, body, attempt, new_version = d.url, d.payload.encode(), d.attempts, d.version

    status_code, error = None, None
    started = time.perf_counter()
    try:
        check_url(url, allow_private=s.allow_private_urls)
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
        headers = signing.headers(secret, delivery_id, int(time.time()), body)
        with httpx.Client(timeout=s.notify_timeout_s, follow_redirects=False, transport=rt.notify_transport) as client:
            status_code = client.post(url, content=body, headers=headers).status_code
    except UnsafeURL as exc:
        error = exc.message
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}"
    ms = int((time.perf_counter() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    now = rt.clock()
    with session_scope(rt.engine) as session:
        session.add(DeliveryAttempt(delivery_id=delivery_id, attempt=attempt, status_code=status_code, error=error, duration_ms=ms, at=now))
        values: dict[str, object]
        if ok:
            values = {"status": "delivered", "delivered_at": now, "next_at": None, "last_error": None}
        else:
            last = error or f"HTTP {status_code}"
            give_up = attempt >= s.notify_max_attempts or status_code == 410
            delay = backoff(attempt, s.notify_backoff_s, 24 * 3600.0)
            values = {"status": "failed" if give_up else "pending", "last_error": last,
                      "next_at": None if give_up else now + timedelta(seconds=delay)}
        session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.version == new_version).values(**values))  # type: ignore[arg-type]
    if not ok:
        log.warning("notification %s attempt %d failed: %s", delivery_id, attempt, error or f"HTTP {status_code}")
    return "delivered" if ok else "retry"


def replay_notifications(rt: Runtime, job_id: str) -> list[str]:
    """Send a job's notifications again (same webhook-id and body, so receivers can dedupe):
    every delivery that is not pending gets a fresh schedule. Returns the delivery ids queued."""
    now = rt.clock()
    queued: list[tuple[str, int]] = []
    with session_scope(rt.engine) as session:
        rows = session.exec(select(Delivery.id, Delivery.version).where(Delivery.job_id == job_id, Delivery.status != "pending")).all()
        for delivery_id, version in rows:
            res = session.execute(
                update(Delivery).where(Delivery.id == delivery_id, Delivery.version == version)  # type: ignore[arg-type]
                .values(status="pending", attempts=0, next_at=now + timedelta(seconds=rt.settings.lease_s), version=version + 1)
            )
            if res.rowcount == 1:  # type: ignore[attr-defined]
                queued.append((delivery_id, version + 1))
    for delivery_id, version in queued:
        rt.dispatcher.send(NOTIFY, delivery_id, version)
    return [d for d, _ in queued]
