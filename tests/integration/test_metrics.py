"""Relay metrics on a real Redis: added up in the process, written in one pipeline per flush; and
the API's /metrics, behind K4U_METRICS_TOKEN when it is set."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import redis

from api.main import create_app
from tests.conftest import make_settings
from tests.servers import serve
from workers.dispatch import RecordingDispatcher
from workers.metrics import RelayMetrics


class CountingRedis:
    """The real client, counting the pipelines it executes."""

    def __init__(self, client: redis.Redis) -> None:
        self.client, self.pipelines = client, 0

    def pipeline(self):  # type: ignore[no-untyped-def]
        self.pipelines += 1
        return self.client.pipeline()

    def hgetall(self, key: str):  # type: ignore[no-untyped-def]
        return self.client.hgetall(key)


def _families(metrics: RelayMetrics) -> dict[str, object]:
    return {f.name: f for f in metrics.collect()}  # type: ignore[attr-defined]


def test_observations_are_written_together_and_read_back_exactly(redis_url: str) -> None:
    client = CountingRedis(redis.Redis.from_url(redis_url))
    metrics = RelayMetrics(client, prefix=f"test-{uuid.uuid4().hex}", flush_s=0.2)
    for _ in range(50):
        metrics.observe("POST", "kling.submit", 200, 0.07)
    metrics.observe("GET", "kling.poll", 503, 3.0)
    metrics.observe("GET", "/odd/path", 200, 0.01)  # no provider call label: counted as other.<method>
    assert client.pipelines == 0  # nothing written per request
    deadline = time.monotonic() + 5
    while not client.hgetall(f"{metrics._count}") and time.monotonic() < deadline:
        time.sleep(0.05)
    fams = _families(metrics)
    assert client.pipelines == 1  # the timer wrote all 52 in one pipeline
    counts = {(s.labels["provider"], s.labels["call"], s.labels["status"]): s.value for s in fams["k4u_relay_requests"].samples}  # type: ignore[attr-defined]
    assert counts == {("kling", "submit", "200"): 50, ("kling", "poll", "503"): 1, ("other", "GET", "200"): 1}
    hist = {
        (s.labels["call"], s.labels.get("le")): s.value
        for s in fams["k4u_relay_request_seconds"].samples  # type: ignore[attr-defined]
        if s.name.endswith("_bucket")
    }
    assert hist[("submit", "0.05")] == 0 and hist[("submit", "0.1")] == 50 and hist[("poll", "2.5")] == 0 and hist[("poll", "5.0")] == 1
    sums = {s.labels["call"]: s.value for s in fams["k4u_relay_request_seconds"].samples if s.name.endswith("_sum")}  # type: ignore[attr-defined]
    assert abs(sums["submit"] - 3.5) < 1e-9
    metrics.observe("POST", "kling.submit", 200, 0.07)
    metrics.flush()  # at exit: written at once, and the timer then finds nothing left
    time.sleep(0.4)
    assert client.pipelines == 2
    counts = {(s.labels["call"], s.labels["status"]): s.value for s in _families(metrics)["k4u_relay_requests"].samples}  # type: ignore[attr-defined]
    assert counts[("submit", "200")] == 51


def test_a_redis_outage_loses_the_counts_but_never_raises() -> None:
    metrics = RelayMetrics(redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2), flush_s=60)
    metrics.observe("POST", "kling.submit", 200, 0.1)
    metrics.flush()  # nobody listens on port 9


def test_metrics_need_the_metrics_token_when_one_is_set(db_url: str, tmp_path: Path) -> None:
    token = "metrics-5b0d2e7a9c"
    settings = make_settings(db_url, "http://127.0.0.1:9", tmp_path, api_tokens="tok-api-3f1c", metrics_token=token)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer tok-api-3f1c"}, {"Authorization": f"Basic {token}"}):
            r = httpx.get(f"{url}/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (headers, r.text)
            assert "k4u_jobs" not in r.text
        r = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "k4u_jobs" in r.text


def test_metrics_are_open_without_a_metrics_token(db_url: str, tmp_path: Path) -> None:
    with serve(create_app(make_settings(db_url, "http://127.0.0.1:9", tmp_path, api_tokens="tok-api-3f1c"), dispatcher=RecordingDispatcher())) as url:
        r = httpx.get(f"{url}/metrics")
        assert r.status_code == 200 and "k4u_jobs" in r.text
