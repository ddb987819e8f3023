"""A finished job's notification: the Delivery row with its webhook-id and exact signed body.

The body is fixed when the job finishes (what the receiver sees is what the job was then);
`workers.services.notify` delivers it, `workers.deliveries` leases it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlmodel import Session, select

from models.schemas import JobPublic, Notification
from models.status import JobStatus
from models.tables import Asset, Delivery, Job
from workers.dispatch import NOTIFY, Followups
from workers.settings import Settings

EVENT_OF = {JobStatus.SUCCEEDED: "job.succeeded", JobStatus.FAILED: "job.failed", JobStatus.CANCELLED: "job.cancelled"}


def queue_notification(session: Session, job: Job, *, settings: Settings, now: datetime) -> Followups:
    """Insert the Delivery for the job's terminal event; the exact body is fixed here."""
    if not job.callback_url:
        return []
    assets = list(session.exec(select(Asset).where(Asset.job_id == job.id)).all())
    delivery = notification_delivery(job, assets, settings=settings, now=now, next_at=now + timedelta(seconds=settings.lease_s))
    session.add(delivery)
    session.flush()
    return [(NOTIFY, (delivery.id, 0))]


def notification_delivery(job: Job, assets: list[Asset], *, settings: Settings, now: datetime, next_at: datetime) -> Delivery:
    """The Delivery (webhook-id and exact body) of a finished job that has a callback_url."""
    assert job.callback_url
    event = EVENT_OF[job.status]
    note = Notification(type=event, timestamp=now, data=JobPublic.from_rows(job, assets, settings.public_url or ""))
    body = json.dumps(note.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    suffix = "" if job.attempt <= 1 else f"_a{job.attempt}"  # a retried job notifies its new attempt's outcome too
    return Delivery(
        id=f"msg_{job.id}_{event.split('.')[1]}{suffix}",
        job_id=job.id,
        event=event,
        job_attempt=job.attempt,
        url=job.callback_url,
        payload=body,
        next_at=next_at,
        created_at=now,
    )
