"""Shared fixtures: scrubbed environment, real databases (SQLite and PostgreSQL), real Redis,
the simulator on loopback, a fake clock shared by the engine and the simulator, and a
synchronous driver that runs the engine's messages without a broker (service tests)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from models.schemas import JobCreate, JobPublic
from models.tables import Asset, Job
from simulator import SimConfig, create_app as create_sim
from tests.servers import serve
from tests.services import postgres_database, redis_server
from workers import dispatch
from workers.context import Runtime, build_runtime
from workers.db import get_engine, migrate, session_scope
from workers.dispatch import RecordingDispatcher
from workers.services.create import create_job
from workers.services.download import store_outputs
from workers.services.notify import deliver_notification
from workers.services.poll import poll_jobs
from workers.services.provider_cancel import cancel_at_provider
from workers.services.submit import submit_job
from workers.services.sweep import tick
from workers.settings import Settings, get_settings
from workers.storage.local import LocalStore

TABLES = ("delivery_attempt", "delivery", "job_event", "asset", "job_dependency", "job", "batch", "upload")
SIM_KEY = "sk-test-relay-key-0123456789"


@pytest.fixture(autouse=True)
def _scrub_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if (name.startswith("K4U_") and not name.startswith("K4U_TEST_")) or name == "FLOWER_BASIC_AUTH":
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/k4u.db"
        migrate(url)
        yield url
        get_engine(url).dispose()
        return
    url = request.getfixturevalue("pg_url")
    with get_engine(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    yield url


class FakeClock:
    """One time line for the engine (aware datetimes) and the simulator (monotonic seconds)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.origin = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=self.t - 1000.0)

    def monotonic(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Sim:
    url: str
    app: Any

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = httpx.post(f"{self.url}{path}", json=body or {}) if body is not None else httpx.get(f"{self.url}{path}")
        r.raise_for_status()
        return r.json()

    def stats(self) -> dict[str, Any]:
        return self.admin("/_sim/stats")  # type: ignore[no-any-return]

    def sha256(self) -> dict[str, str]:
        return self.admin("/_sim/media-sha256")  # type: ignore[no-any-return]


@pytest.fixture(params=["native", "newapi"])
def envelope(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Sim]:
    app = create_sim(SimConfig(envelope="native", clock=clock.monotonic, queue_s=1.0, run_s=5.0, callbacks_enabled=False))
    with serve(app) as url:
        yield Sim(url, app)


def make_settings(db_url: str, sim_url: str, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "base_url": sim_url,
        "api_key": SIM_KEY,
        "storage_url": f"file://{tmp_path}/objects",
        "allow_private_urls": True,
        "webhook_secret": "whsec_" + "ZfUyTg5gSBswdDJt94lKEl5sQYBWuo7n",
        "lease_s": 60.0,
        "poll_expected_s": 5.0,
        "poll_min_interval_s": 1.0,
        "data_dir": str(tmp_path),
    }
    values.update(extra)
    return Settings(**values)


class Driver:
    """Runs what the engine enqueues, synchronously, in order: Celery without the broker."""

    HANDLERS: ClassVar[dict[str, Callable[..., Any]]] = {
        dispatch.SUBMIT: submit_job,
        dispatch.ONESHOT: submit_job,
        dispatch.POLL: poll_jobs,
        dispatch.DOWNLOAD: store_outputs,
        dispatch.NOTIFY: deliver_notification,
        dispatch.CANCEL: cancel_at_provider,
    }

    def __init__(self, rt: Runtime, recorder: RecordingDispatcher, clock: FakeClock) -> None:
        self.rt, self.recorder, self.clock = rt, recorder, clock
        self.results: list[tuple[str, Any]] = []

    def drain(self) -> None:
        while self.recorder.sent:
            task, args = self.recorder.sent.pop(0)
            self.results.append((task, self.HANDLERS[task](self.rt, *args)))

    def tick(self) -> dict[str, int]:
        counts = tick(self.rt)
        self.drain()
        return counts

    def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Advance time in steps, ticking the sweep and running everything it sends."""
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.tick()

    def create(self, provider: str, operation: str, inp: dict[str, Any], **body: Any) -> str:
        """POST /v1/jobs as the service does it, then run what it enqueued; the new job's id."""
        job, created = create_job(self.rt, JobCreate(provider=provider, operation=operation, input=inp, **body))
        assert created
        self.drain()
        return job.id

    def public(self, job_id: str) -> dict[str, Any]:
        """The job as the API shows it (assets included)."""
        with session_scope(self.rt.engine) as s:
            assets = list(s.exec(select(Asset).where(Asset.job_id == job_id)).all())
        return JobPublic.from_rows(self.job(job_id), assets, "").model_dump(mode="json")

    def job(self, job_id: str) -> Job:
        with session_scope(self.rt.engine) as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job


@pytest.fixture
def engine_factory(db_url: str, sim: Sim, clock: FakeClock, tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    made: list[Runtime] = []

    def make(relay_transport: httpx.BaseTransport | None = None, **extra: Any) -> Driver:
        """A driver on these settings; `relay_transport` stands in for the network to the relay (faults)."""
        settings = make_settings(db_url, sim.url, tmp_path, **extra)
        recorder = RecordingDispatcher()
        rt = build_runtime(settings, recorder, relay_transport=relay_transport, store=LocalStore(str(tmp_path / "objects")))
        rt.clock = clock.now
        made.append(rt)
        return Driver(rt, recorder, clock)

    yield make
    for rt in made:
        rt.close()
