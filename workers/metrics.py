"""Cross-process metrics in Redis, exposed by the API at /metrics in Prometheus text.

Workers record relay requests (count and latency histogram by provider call and status);
the API's collector reads them back, plus job counts by provider and status from the DB.
Redis is already shared by every process, so no multiprocess directory is needed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

log = logging.getLogger("k4u.metrics")

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RelayMetrics:
    """Relay request counts and latencies, added up in the process and written to Redis at most
    every `flush_s` (one pipeline for everything observed meanwhile, from a timer thread), not one
    write per request. A process that dies loses at most that much of its counts."""

    def __init__(self, redis: object, prefix: str = "k4u", flush_s: float = 0.5) -> None:
        self._r = redis
        self._count = f"{prefix}:m:relay_count"
        self._hist = f"{prefix}:m:relay_hist"
        self._sum = f"{prefix}:m:relay_sum"
        self._flush_s = flush_s
        self._lock = threading.Lock()
        self._incr: Counter[tuple[str, str]] = Counter()  # (hash, field) -> increment
        self._sums: defaultdict[str, float] = defaultdict(float)
        self._timer: threading.Timer | None = None

    def observe(self, method: str, label: str, status: int, seconds: float) -> None:
        """Record one relay request (the Relay's observer hook). Metrics never break a job."""
        call = label if "." in label else f"other.{method}"
        with self._lock:
            self._incr[(self._count, f"{call}|{status}")] += 1
            self._sums[call] += seconds
            for le in BUCKETS:
                if seconds <= le:
                    self._incr[(self._hist, f"{call}|{le}")] += 1
            self._incr[(self._hist, f"{call}|+Inf")] += 1
            if self._timer is None:
                self._timer = threading.Timer(self._flush_s, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Write what was observed since the last flush (also at exit)."""
        with self._lock:
            incr, sums, self._incr, self._sums, self._timer = self._incr, self._sums, Counter(), defaultdict(float), None
        if not incr:
            return
        try:
            pipe = self._r.pipeline()  # type: ignore[attr-defined]
            for (key, field), n in incr.items():
                pipe.hincrby(key, field, n)
            for call, seconds in sums.items():
                pipe.hincrbyfloat(self._sum, call, seconds)
            pipe.execute()
        except Exception as exc:
            log.debug("metrics write failed: %s", type(exc).__name__)

    def collect(self) -> Iterator[Metric]:
        counts = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in self._r.hgetall(self._count).items()}  # type: ignore[attr-defined]
        c = CounterMetricFamily("k4u_relay_requests", "Requests sent to the relay", labels=["provider", "call", "status"])
        for field, n in sorted(counts.items()):
            call, status = field.rsplit("|", 1)
            provider, _, name = call.partition(".")
            c.add_metric([provider, name, status], n)
        yield c
        hist = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in self._r.hgetall(self._hist).items()}  # type: ignore[attr-defined]
        sums = {k.decode() if isinstance(k, bytes) else k: float(v) for k, v in self._r.hgetall(self._sum).items()}  # type: ignore[attr-defined]
        h = HistogramMetricFamily("k4u_relay_request_seconds", "Relay request latency", labels=["provider", "call"])
        for call in sorted(sums):
            provider, _, name = call.partition(".")
            buckets = [(str(le), hist.get(f"{call}|{le}", 0)) for le in BUCKETS] + [("+Inf", hist.get(f"{call}|+Inf", 0))]
            h.add_metric([provider, name], buckets, sums[call])
        yield h


class JobsCollector:
    def __init__(self, counts: Callable[[], list[tuple[str, str, int]]], relay: RelayMetrics | None) -> None:
        self._counts = counts
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("k4u_jobs", "Jobs by provider and status", labels=["provider", "status"])
        for provider, status, n in self._counts():
            g.add_metric([provider, status], n)
        yield g
        if self._relay is not None:
            try:
                yield from self._relay.collect()
            except Exception as exc:
                log.warning("relay metrics unavailable: %s", type(exc).__name__)
