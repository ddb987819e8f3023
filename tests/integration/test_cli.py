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


def test_api_on_a_public_address_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    env = {"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "K4U_REDIS_URL": "redis://127.0.0.1:1/0"}
    for cmd in (("api", "--host", "0.0.0.0"), ("api", "--host", "::"), ("dev", "--host", "0.0.0.0"), ("api", "--host", "10.1.2.3")):
        r = k4u(*cmd, env=env, cwd=tmp_path)
        assert r.returncode == 2, (cmd, r.stderr)
        assert "K4U_API_TOKENS" in r.stderr and "K4U_ALLOW_OPEN_API" in r.stderr, r.stderr
    assert not (tmp_path / "x.db").exists()  # refused before touching anything


def test_open_api_check_passes_on_loopback_with_tokens_or_when_allowed(tmp_path: Path) -> None:
    """Past the check, `k4u api` goes on to the next step: here a broker check that fails (exit 2
    naming K4U_REDIS_URL), or a port that is already taken."""
    base = {"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    cases = [
        (("api", "--host", "127.0.0.1"), {}),
        (("api", "--host", "localhost"), {}),
        (("api", "--host", "::1"), {}),
        (("api", "--host", "0.0.0.0"), {"K4U_API_TOKENS": "tok-7f3a9c"}),
        (("api", "--host", "0.0.0.0"), {"K4U_ALLOW_OPEN_API": "true"}),
    ]
    for cmd, extra in cases:
        r = k4u(*cmd, env=base | extra, cwd=tmp_path)
        assert r.returncode == 2 and "K4U_REDIS_URL" in r.stderr and "K4U_ALLOW_OPEN_API" not in r.stderr, (cmd, extra, r.stderr)


def test_placeholder_token_stops_the_api_naming_the_variable(tmp_path: Path) -> None:
    r = k4u("api", env={"K4U_API_TOKENS": "change-this-token"}, cwd=tmp_path)
    assert r.returncode == 2 and "K4U_API_TOKENS" in r.stderr and "placeholder" in r.stderr


def test_worker_role_is_checked_and_documented(tmp_path: Path) -> None:
    r = k4u("worker", "--role", "everything", env={"K4U_REDIS_URL": "redis://127.0.0.1:1/0"}, cwd=tmp_path)
    assert r.returncode == 2 and "--role" in r.stderr
    out = " ".join(k4u("dev", "--help").stdout.split())
    for word in ("K4U_DOWNLOAD_CONCURRENCY", "K4U_NOTIFY_CONCURRENCY", "own queue"):
        assert word in out, out


def test_flower_on_a_public_address_without_basic_auth_refuses_to_start(tmp_path: Path) -> None:
    """Flower can revoke and kill tasks: on a non-loopback address it needs its login (refused before the broker check)."""
    for address in ("0.0.0.0", "::", "10.1.2.3"):
        r = k4u("flower", "--address", address, env={"FLOWER_BASIC_AUTH": ""}, cwd=tmp_path)
        assert r.returncode == 2, (address, r.stderr)
        assert "FLOWER_BASIC_AUTH" in r.stderr and "K4U_REDIS_URL" not in r.stderr, r.stderr


def test_flower_basic_auth_is_checked_and_lets_a_public_address_through(tmp_path: Path) -> None:
    """Past the check, `k4u flower` goes on to the broker check, which fails here (exit 2 naming K4U_REDIS_URL)."""
    for auth in ("ops", "ops:", ":pw-7f3a9c", "admin:changeme"):
        r = k4u("flower", "--address", "0.0.0.0", env={"FLOWER_BASIC_AUTH": auth}, cwd=tmp_path)
        assert r.returncode == 2 and "FLOWER_BASIC_AUTH" in r.stderr and "K4U_REDIS_URL" not in r.stderr, (auth, r.stderr)
        assert "pw-7f3a9c" not in r.stderr  # never echoed
    for address, auth in (("127.0.0.1", ""), ("::1", ""), ("0.0.0.0", "ops:pw-7f3a9c"), ("0.0.0.0", "ops:pw-7f3a9c,ci:pw-81d2e0")):
        r = k4u("flower", "--address", address, env={"FLOWER_BASIC_AUTH": auth}, cwd=tmp_path)
        assert r.returncode == 2 and "K4U_REDIS_URL" in r.stderr and "FLOWER_BASIC_AUTH" not in r.stderr, (address, auth, r.stderr)
