"""Provider limits shared across workers: a submit rate in real Redis and an in-flight cap
counted in the database. Jobs over a limit wait in queued and still finish."""

from __future__ import annotations

import time

import pytest

from models.schemas import JobCreate
from tests.conftest import Sim
from workers.services.create import create_job


def make(d, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": f"clip {i}"}))[0].id for i in range(n)]
    d.drain()
    return ids


def statuses(d, ids: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.job(i).status for i in ids]


def test_submit_rate_is_shared_through_redis(engine_factory, sim: Sim, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    d = engine_factory(redis_url=redis_url, submit_rate_limits="kling=2/second")
    other_worker = engine_factory(redis_url=redis_url, submit_rate_limits="kling=2/second")
    ids = make(d, 3) + make(other_worker, 3)
    assert statuses(d, ids).count("running") == 2, "two workers, one limit"
    deadline = time.monotonic() + 20
    while statuses(d, ids).count("queued") and time.monotonic() < deadline:
        time.sleep(0.3)
        d.run_for(1)
    assert statuses(d, ids).count("queued") == 0
    d.run_for(15)
    assert statuses(d, ids) == ["succeeded"] * 6
    assert all(d.job(i).error_code is None for i in ids), "waiting for the limit is not an error"


def test_in_flight_cap_holds_jobs_in_queued(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(max_in_flight="kling=2")
    ids = make(d, 5)
    assert statuses(d, ids).count("running") == 2 and statuses(d, ids).count("queued") == 3
    most = 0
    for _ in range(40):
        d.run_for(1)
        most = max(most, sum(s in ("submitting", "running") for s in statuses(d, ids)))
    assert most <= 2
    assert statuses(d, ids) == ["succeeded"] * 5


@pytest.mark.parametrize(
    ("var", "value"),
    [("K4U_SUBMIT_RATE_LIMITS", "kling"), ("K4U_SUBMIT_RATE_LIMITS", "kling=fast"), ("K4U_MAX_IN_FLIGHT", "kling=many"), ("K4U_MAX_IN_FLIGHT", "*=0")],
)
def test_bad_limits_are_named_at_start(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    from models.errors import ConfigError
    from workers.settings import Settings

    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        Settings()
