"""The k4u command: help texts, bad settings named at start, db upgrade."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def k4u(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")}
    return subprocess.run([sys.executable, "-m", "cli", *args], env=base | (env or {}), capture_output=True, text=True, timeout=60, cwd=cwd)


def test_help_lists_the_commands() -> None:
    out = k4u("--help").stdout
    for cmd in ("dev", "api", "worker", "beat", "flower", "simulator", "demo", "db"):
        assert cmd in out


def test_bad_setting_is_named_at_start(tmp_path: Path) -> None:
    r = k4u("db", "upgrade", env={"K4U_DATABASE_URL": "mysql://nope"}, cwd=tmp_path)
    assert r.returncode == 2 and "K4U_DATABASE_URL" in r.stderr


def test_api_without_broker_says_what_is_missing(tmp_path: Path) -> None:
    r = k4u("api", env={"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert r.returncode == 2 and "K4U_REDIS_URL" in r.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    r = k4u("db", "upgrade", env={"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import sqlite3

    tables = {row[0] for row in sqlite3.connect(tmp_path / "x.db").execute("select name from sqlite_master where type='table'")}
    assert {"job", "asset", "job_event", "delivery", "delivery_attempt", "alembic_version"} <= tables
