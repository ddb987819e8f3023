"""The Celery app: queues, routes, reliability settings and the beat schedule.

Configured explicitly from Settings by whoever starts it (`k4u worker`, `k4u beat`,
`k4u flower`, `create_app`); nothing reads the environment at import. Tasks are
idempotent under the DB's fencing, so acks_late is on for all of them; redelivery loops are
stopped by DB attempt counters, not by the broker.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import after_setup_logger
from kombu.entity import Queue  # where kombu defines it: its package root re-exports lazily, invisible to mypy

from workers.dispatch import CLEAN_STORE, MAINTAIN, QUEUES, TICK
from workers.logs import quiet_http_clients
from workers.settings import Settings

app = Celery("k4u", include=["tasks.jobs"])


def _quiet_http_clients(**_: Any) -> None:
    """Celery has set up a worker's or the beat's logging (root at --loglevel): httpx's request
    lines, full URLs with their query strings, stay out of it."""
    quiet_http_clients()


after_setup_logger.connect(_quiet_http_clients, weak=False)


def configure(celery: Celery, settings: Settings) -> Celery:
    if not settings.redis_url:
        from models.errors import ConfigError

        raise ConfigError("K4U_REDIS_URL is not set (or start everything with `k4u dev`, which bundles Redis)")
    celery.conf.update(
        broker_url=settings.redis_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=settings.celery_sent_events,
        worker_hijack_root_logger=False,
        task_queues=[Queue(q) for q in sorted(set(QUEUES.values()))],
        task_routes={name: {"queue": q} for name, q in QUEUES.items()},
        task_default_queue="sweep",
        beat_schedule={
            "k4u-tick": {"task": TICK, "schedule": settings.beat_interval_s, "options": {"queue": "sweep", "expires": 30}},
            "k4u-maintain": {"task": MAINTAIN, "schedule": settings.vacuum_interval_s, "options": {"queue": "sweep", "expires": settings.vacuum_interval_s}},
            "k4u-clean-store": {
                "task": CLEAN_STORE,
                "schedule": settings.storage_leftover_grace_s / 4,
                "options": {"queue": "sweep", "expires": settings.storage_leftover_grace_s / 4},
            },
        },
        timezone="UTC",
    )
    return celery
