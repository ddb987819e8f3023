"""Delivery leases: compare-and-swap on notification rows, beside jobs.py's for jobs.

A delivery's `version` is its fencing token: the sweep claims due ones (bumping it), an attempt
takes the lease it was sent with, and only the holder of the current version records the outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from models.status import DeliveryStatus
from models.tables import Delivery
from workers.db import in_claim, rowcount


def claim_due(session: Session, *, now: datetime, lease_s: float, limit: int) -> list[tuple[str, int]]:
    sub = (
        select(col(Delivery.id))
        .where(col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.next_at) <= now)
        .order_by(col(Delivery.next_at))
        .limit(limit)
    )
    stmt = (
        update(Delivery)
        .where(in_claim(session, col(Delivery.id), sub), col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.next_at) <= now)
        .values(next_at=now + timedelta(seconds=lease_s), version=col(Delivery.version) + 1)
        .returning(col(Delivery.id), col(Delivery.version))
        .execution_options(synchronize_session=False)
    )
    return [(r[0], r[1]) for r in session.execute(stmt).all()]


def take(session: Session, delivery_id: str, version: int, *, now: datetime, lease_s: float) -> Delivery | None:
    """Start an attempt of a pending delivery sent with `version`: the delivery (its new version
    is the lease), or None when someone else holds it or it is no longer pending."""
    lease = session.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.version) == version, col(Delivery.status) == DeliveryStatus.PENDING)
        .values(version=col(Delivery.version) + 1, attempts=col(Delivery.attempts) + 1, next_at=now + timedelta(seconds=lease_s))
    )
    if rowcount(lease) != 1:
        return None
    d = session.get(Delivery, delivery_id)
    assert d is not None
    session.refresh(d)
    return d


def settle(session: Session, delivery_id: str, lease: int, **values: Any) -> bool:
    """Record an attempt's outcome if the lease still holds."""
    res = session.execute(update(Delivery).where(col(Delivery.id) == delivery_id, col(Delivery.version) == lease).values(**values))
    return rowcount(res) == 1


def reopen(session: Session, delivery_id: str, version: int, *, now: datetime, lease_s: float) -> bool:
    """A finished delivery scheduled again (a replay): same webhook-id and body, attempts from 0."""
    res = session.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.version) == version)
        .values(status=DeliveryStatus.PENDING, attempts=0, next_at=now + timedelta(seconds=lease_s), version=version + 1)
    )
    return rowcount(res) == 1
