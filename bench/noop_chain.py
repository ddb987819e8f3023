"""Bench-only Celery app: a chain of no-op tasks on the stack's broker, to measure what Celery
alone can carry (`bench/throughput.py --sustained` starts a worker of it beside `k4u dev`).

NOOP_BROKER_URL names the broker; NOOP_ENGINE_CONFIG=1 mirrors the engine's reliability
settings (acks_late, prefetch 1, worker task events, task-sent events as K4U_CELERY_SENT_EVENTS
says); NOOP_DONE_KEY is the Redis counter the last
task of each chain increments.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("noop_chain")
app.conf.update(
    broker_url=os.environ.get("NOOP_BROKER_URL", "redis://127.0.0.1:6379/15"),
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    result_backend=None,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue="noop_chain",
    worker_hijack_root_logger=False,
)
if os.environ.get("NOOP_ENGINE_CONFIG") == "1":
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=os.environ.get("K4U_CELERY_SENT_EVENTS", "false").lower() in ("1", "true", "yes", "on"),
        broker_transport_options={"visibility_timeout": 3600},
    )
_counter: list[redis.Redis] = []


@app.task(name="noop.step")
def step(i: int) -> int:
    return i


@app.task(name="noop.last")
def last(i: int) -> int:
    if not _counter:
        _counter.append(redis.Redis.from_url(app.conf.broker_url))
    _counter[0].incr(os.environ.get("NOOP_DONE_KEY", "noop:done"))
    return i
