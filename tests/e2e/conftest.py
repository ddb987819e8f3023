"""The stack as separate processes: the simulator, the API, a Celery worker and beat (or
`k4u dev` as a whole), on real Redis and a real database, started and stopped per test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import procs
from cli.procs import free_port
from tests.conftest import SIM_KEY

WEBHOOK_SECRET = "whsec_ZfUyTg5gSBswdDJt94lKEl5sQYBWuo7n"
TOKEN = "e2e-token"


@dataclass
class Stack:
    api: str
    sim: str
    env: dict[str, str]
    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "cli", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.tmp)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(name)
            self.procs.pop(name, None)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    def sim_admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = httpx.post(f"{self.sim}{path}", json=body) if body is not None else httpx.get(f"{self.sim}{path}")
        r.raise_for_status()
        return r.json()

    def wait_job(self, job_id: str, timeout_s: float = 60.0, until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        done = until or (lambda j: j["status"] in ("succeeded", "failed", "cancelled"))
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while True:
                job = c.get(f"/v1/jobs/{job_id}").raise_for_status().json()
                if done(job):
                    return job  # type: ignore[no-any-return]
                if time.monotonic() > deadline:
                    logs = {p.name: p.read_text()[-3000:] for p in self.tmp.glob("*.log")}
                    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s}s\n{logs}")
                time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in self.tmp.glob("*.log"))


def wait_http(url: str, proc: subprocess.Popen[bytes], tmp: Path, timeout_s: float = 60.0) -> None:
    """cli.procs.wait_http, failing the test with the tails of the processes' logs."""
    try:
        procs.wait_http(url, timeout_s, proc)
    except RuntimeError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(p.read_text()[-3000:] for p in tmp.glob("*.log"))) from None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def e2e_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/k4u.db"
    from sqlalchemy import text

    from tests.conftest import TABLES
    from workers.db import get_engine

    url = request.getfixturevalue("pg_url")
    with get_engine(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    return url


@pytest.fixture
def stack_factory(tmp_path: Path, redis_url: str, e2e_db: str) -> Iterator[Callable[..., Stack]]:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    stacks: list[Stack] = []

    def make(*, public: bool = False, dev: bool = False, sim_args: tuple[str, ...] = (), **env: str) -> Stack:
        sim_port, api_port = free_port(), free_port()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")}
        base_env.update(
            {
                "K4U_DATABASE_URL": e2e_db,
                "K4U_REDIS_URL": redis_url,
                "K4U_STORAGE_URL": f"file://{tmp_path}/objects",
                "K4U_BASE_URL": f"http://127.0.0.1:{sim_port}",
                "K4U_API_KEY": SIM_KEY,
                "K4U_ALLOW_PRIVATE_URLS": "true",
                "K4U_API_TOKENS": TOKEN,
                "K4U_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "K4U_POLL_EXPECTED_S": "2",
                "K4U_POLL_MIN_INTERVAL_S": "0.5",
                "K4U_BEAT_INTERVAL_S": "0.5",
                "K4U_DATA_DIR": str(tmp_path / "data"),
                "K4U_WORKER_CONCURRENCY": "2",
                "K4U_NOTIFY_BACKOFF_S": "0.5",
            }
        )
        if public:
            base_env["K4U_PUBLIC_URL"] = f"http://127.0.0.1:{api_port}"
        base_env.update(env)
        stack = Stack(api=f"http://127.0.0.1:{api_port}", sim=f"http://127.0.0.1:{sim_port}", env=base_env, tmp=tmp_path)
        stacks.append(stack)
        sim = stack.start("simulator", "simulator", "--port", str(sim_port), *sim_args)
        wait_http(f"{stack.sim}/_sim/health", sim, tmp_path)
        stack.sim_admin("/_sim/config", {"queue_s": 0.3, "run_s": 1.5})
        if dev:
            api = stack.start("dev", "dev", "--port", str(api_port))
        else:
            api = stack.start("api", "api", "--port", str(api_port))
            wait_http(f"{stack.api}/healthz", api, tmp_path)
            stack.start("worker", "worker", "--name", f"w1-{api_port}@%h")
            stack.start("beat", "beat")
        wait_http(f"{stack.api}/healthz", api, tmp_path)
        return stack

    yield make
    for s in stacks:
        s.stop_all()
