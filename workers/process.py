"""The worker process's runtime, built on first use after fork (one relay client per process)."""

from __future__ import annotations

import os
import threading

import redis

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
            _runtime = (os.getpid(), build_runtime(settings, CeleryDispatcher(app), observe=metrics.observe if metrics else None))
        return _runtime[1]
