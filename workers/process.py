"""The worker process's runtime, built on first use after fork (one relay client per process)."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

import redis
from celery.signals import worker_process_shutdown, worker_shutdown

from workers.celery_app import app
from workers.context import Runtime, build_runtime
from workers.dispatch import CeleryDispatcher
from workers.metrics import RelayMetrics
from workers.settings import get_settings

_runtime: tuple[int, Runtime] | None = None
_lock = threading.Lock()  # the download and notify workers run tasks on a thread pool


def runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None or _runtime[0] != os.getpid():
            settings = get_settings()
            metrics = RelayMetrics(redis.Redis.from_url(settings.redis_url)) if settings.redis_url else None
            if metrics is not None:
                _metrics.append((os.getpid(), metrics))
            _runtime = (os.getpid(), build_runtime(settings, CeleryDispatcher(app), observe=metrics.observe if metrics else None))
        return _runtime[1]


# (pid, metrics): this process's are flushed when it stops (their counts wait up to half a second
# for the timer); a forked child's list still names its parent's, which only the parent flushes.
_metrics: list[tuple[int, RelayMetrics]] = []


def _flush_metrics(**_: Any) -> None:
    for pid, m in _metrics:
        if pid == os.getpid():
            m.flush()


worker_process_shutdown.connect(_flush_metrics, weak=False)
worker_shutdown.connect(_flush_metrics, weak=False)
atexit.register(_flush_metrics)
