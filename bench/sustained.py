"""`bench/throughput.py --sustained`: many Kling jobs whose relay tasks finish at once, through
`k4u dev` on PostgreSQL + Redis, and in the same run the raw throughput of a 4-task Celery chain
of no-op tasks on the same broker with the same pool size.

The stack gets a fresh PostgreSQL database and its own redis-server (both removed at the end).
Every process of `k4u dev` loads `bench/sqlcount/sitecustomize.py`, which counts the SQL it
sends; `--profile` also samples the stack with py-spy while the jobs run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
from stack import TERMINAL, ProcSampler, bench_stack, list_jobs, percentile, pg_database, private_redis, proc_label, spawn_child, ts

BENCH = Path(__file__).resolve().parent


def run_sustained(args: argparse.Namespace) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    tmp = Path(tempfile.mkdtemp(prefix="k4u-sustained-"))
    ok = False
    try:
        with pg_database(args.pg_admin_url, label="sustained") as db_url, private_redis(tmp / "redis") as redis_url:
            sql_dir = tmp / "sqlcount"
            sql_dir.mkdir()
            env = {
                "K4U_DATABASE_URL": db_url,
                "K4U_REDIS_URL": redis_url,
                "K4U_BENCH_SQLCOUNT_DIR": str(sql_dir),
                "PYTHONPATH": os.pathsep.join([str(BENCH / "sqlcount"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            }
            if not args.defaults:
                env |= {"K4U_POLL_EXPECTED_S": "2", "K4U_POLL_MIN_INTERVAL_S": "0.5", "K4U_BEAT_INTERVAL_S": "0.5"}
            print(
                f"stack: PostgreSQL {db_url.rsplit('/', 1)[1]}, redis {redis_url}, engine concurrency {args.concurrency}, "
                f"poll/beat {'k4u dev defaults' if args.defaults else 'fast (expected 2 s, min 0.5 s, beat 0.5 s)'}",
                flush=True,
            )
            with bench_stack(env=env, sim_config={"queue_s": 0.0, "run_s": 0.0}, concurrency=args.concurrency, keep=args.keep, label="sustained") as stack:
                stack.redis_url = redis_url
                # The raw chain before and after the jobs: this machine's speed drifts over minutes,
                # and the ratio is only as good as the two figures it divides.
                before = chain_phase(args, redis_url, tmp, (True,), "before the jobs")
                procs = ProcSampler(stack.sampler.pid)
                procs.start()
                try:
                    ok = stack.ok = jobs_phase(args, stack, db_url, sql_dir, procs)
                finally:
                    procs.done.set()
                    print("peak RSS per process (during the jobs phase):")
                    for line in procs.report():
                        print(f"  {line}")
                after = chain_phase(args, redis_url, tmp, (True, False), "after the jobs")
                if stack.jobs_per_s:
                    # The chain's own figure moves by tens of percent from one run to the next on a
                    # shared machine: the ratio is given against each run and against their median.
                    raw = before[True] + after[True]
                    each = ", ".join(f"{stack.jobs_per_s / c:.2f}" for c in raw)
                    print(
                        f"ratio: end-to-end {stack.jobs_per_s:.1f} jobs/s / raw chains (engine settings) "
                        f"{', '.join(f'{c:.1f}' for c in before[True])} before and {', '.join(f'{c:.1f}' for c in after[True])} after "
                        f"= {each}; against their median {statistics.median(raw):.1f} chains/s: "
                        f"{stack.jobs_per_s / statistics.median(raw):.2f} (target 0.50)"
                    )
    except KeyboardInterrupt:
        print("interrupted: processes stopped, database dropped")
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def cpu_snapshot(root_pid: int, markers: dict[str, str]) -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds so far) for the `k4u dev` tree and for any process whose command
    line holds one of `markers` (kind -> text: the simulator's port, our PostgreSQL database's
    backends, our redis-server)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, grew = {root_pid}, True
    while grew:
        new = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= new
        grew = bool(new)
    out: dict[int, tuple[str, float]] = {}
    for pid, (ppid, cpu) in stats.items():
        if pid == os.getpid():
            out[pid] = ("bench (its clients)", cpu)
            continue
        if pid in tree:
            kind = proc_label(pid)
            out[pid] = (kind + " pool" if pid != root_pid and proc_label(ppid) == kind else kind, cpu)
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for kind, marker in markers.items():
            if marker in cmd:
                out[pid] = (kind, cpu)
    return out


def cpu_report(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], jobs: int, wall_s: float) -> None:
    per: Counter[str] = Counter()
    for pid, (kind, cpu) in after.items():
        per[kind] += cpu - before.get(pid, (kind, 0.0))[1]
    total = sum(per.values())
    print(f"CPU during the jobs phase ({wall_s:.0f} s, {os.cpu_count()} cores): {total:.1f} s = {1000 * total / jobs:.1f} ms per job")
    for kind, cpu in per.most_common():
        print(f"  {kind}: {cpu:.1f} s = {1000 * cpu / jobs:.1f} ms per job ({100 * cpu / max(total, 1e-9):.0f}%)")


def pg_xacts(db_url: str) -> int:
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    admin = db_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def sql_counts(sql_dir: Path) -> dict[str, Counter[str]]:
    """label -> counts summed over the processes with that label (pool children included)."""
    out: dict[str, Counter[str]] = {}
    for f in sql_dir.glob("*.json"):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        out.setdefault(data["label"], Counter()).update(data["counts"])
    return out


def jobs_phase(args: argparse.Namespace, stack: Any, db_url: str, sql_dir: Path, procs: ProcSampler) -> bool:
    n, batch_id = args.jobs, f"sustained-{uuid.uuid4().hex[:10]}"
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    time.sleep(3.0)  # let the stack settle: its idle ticks are not part of the per-job counts
    before, xacts_before = sql_counts(sql_dir), pg_xacts(db_url)
    stats_before = stack.sim("/_sim/stats")["requests"]
    markers = {
        "simulator (bench's relay)": f"simulator --port {stack.sim_url.rsplit(':', 1)[1]}",
        "postgres backends": db_url.rsplit("/", 1)[1],
        "redis-server": f":{redis_port(stack)}",
    }
    cpu_before, cpu_t0 = cpu_snapshot(procs.root_pid, markers), time.time()
    spy = start_profile(args, procs.root_pid, stack.tmp) if args.profile else None
    with httpx.Client(base_url=stack.api_url, timeout=60, limits=limits) as client:

        def submit(i: int) -> tuple[str, float]:
            body = {
                "provider": "kling",
                "operation": "text2video",
                "batch_id": batch_id,
                "input": {"prompt": f"sustained clip {i}: a red fox running through fresh snow", "duration": "5"},
            }
            t = time.perf_counter()
            job_id = str(client.post("/v1/jobs", json=body).raise_for_status().json()["id"])
            return job_id, time.perf_counter() - t

        t0 = time.time()
        with ThreadPoolExecutor(args.clients) as pool:
            posted = list(pool.map(submit, range(n)))
        accept_s = time.time() - t0
        ids = {p[0] for p in posted}
        print(
            f"accepted: {n} jobs in {accept_s:.1f} s = {n / accept_s:.1f} accepted/s from {args.clients} clients "
            f"(POST p50 {statistics.median(p[1] for p in posted) * 1000:.0f} ms)",
            flush=True,
        )
        # Progress from one COUNT in the database every 2 s (a list request per status would bill
        # the API for re-reading every finished job each time); the jobs are read through the API once.
        deadline = time.monotonic() + args.timeout
        with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            terminal = 0
            while terminal < n and time.monotonic() < deadline:
                time.sleep(2.0)
                row = conn.execute("SELECT count(*) FROM job WHERE batch_id = %s AND status = ANY(%s)", (batch_id, list(TERMINAL))).fetchone()
                terminal = int(row[0]) if row else 0
                print(f"  t+{time.time() - t0:5.0f} s: {terminal}/{n} terminal", flush=True)
    cpu_after, cpu_wall = cpu_snapshot(procs.root_pid, markers), time.time() - cpu_t0
    with httpx.Client(base_url=stack.api_url, timeout=60, limits=limits) as client:
        done: dict[str, dict[str, Any]] = {}
        for status in TERMINAL:
            done.update((j["id"], j) for j in list_jobs(client, status, batch_id) if j["id"] in ids)
    cpu_report(cpu_before, cpu_after, n, cpu_wall)
    if spy is not None:
        stop_profile(spy, stack.tmp, args.profile_top)
    time.sleep(2.5)  # one more dump of the SQL counts
    after, xacts_after = sql_counts(sql_dir), pg_xacts(db_url)
    reqs = Counter(stack.sim("/_sim/stats")["requests"])
    reqs.subtract(Counter(stats_before))

    jobs = list(done.values())
    succeeded = sum(j["status"] == "succeeded" for j in jobs)
    finished = [ts(j["finished_at"]) for j in jobs if j.get("finished_at")]
    lat = sorted(ts(j["finished_at"]) - ts(j["created_at"]) for j in jobs if j.get("finished_at"))
    print(f"succeeded {succeeded}/{n}" + (f", not terminal after {args.timeout:g} s: {n - len(jobs)}" if len(jobs) < n else ""))
    if finished:
        wall = max(finished) - t0
        stack.jobs_per_s = len(finished) / wall
        print(f"end to end: {len(finished)} jobs in {wall:.1f} s = {stack.jobs_per_s:.1f} jobs/s (first POST -> last finished_at)")
        print(f"latency created_at -> finished_at: p50 {statistics.median(lat):.1f} s, p99 {percentile(lat, 0.99):.1f} s, max {lat[-1]:.1f} s")
    kling = {k: v for k, v in reqs.items() if v and "/kling/" in k}
    print(f"relay requests per job: {sum(kling.values()) / n:.2f} ({', '.join(f'{k} {v / n:.2f}' for k, v in sorted(kling.items()))})")
    print(f"database transactions per job (pg_stat_database): {(xacts_after - xacts_before) / n:.1f}")
    print("SQL per job by process kind (statements, commits, pings of connections that sat idle):")
    total = 0.0
    for label in sorted(after):
        delta = after[label].copy()
        delta.subtract(before.get(label, Counter()))
        per = {k: v / n for k, v in delta.items() if v > 0}
        if not per:
            continue
        rtt = sum(per.values())
        total += rtt
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:9])
        print(f"  {label or '?'}: {rtt:.1f} round trips/job ({top})")
    print(f"  all processes: {total:.1f} round trips/job (statements + commits/rollbacks + pings; BEGIN is sent with the first statement)")
    return succeeded == n


def redis_port(stack: Any) -> str:
    return str(stack.redis_url.rsplit(":", 1)[1].split("/")[0])


def start_profile(args: argparse.Namespace, pid: int, tmp: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = tmp / "profile.txt"
    print(f"profiling with py-spy ({spy}) into {out}", flush=True)
    return spawn_child(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            str(args.profile_rate),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            *(["--gil"] if args.profile_gil else []),
        ],
        tmp / "py-spy.log",
    )


def stop_profile(spy: subprocess.Popen[bytes], tmp: Path, top: int) -> None:
    import signal

    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()
    print_profile(tmp / "profile.txt", top)
    if (tmp / "profile.txt").exists():
        kept = Path(tempfile.gettempdir()) / "k4u-sustained-profile.txt"
        shutil.copy(tmp / "profile.txt", kept)
        print(f"raw profile (collapsed stacks) kept in {kept}")


AREAS = (
    ("sqlalchemy/", "SQLAlchemy"),
    ("psycopg", "psycopg (PostgreSQL driver)"),
    ("sqlmodel/", "SQLAlchemy"),
    ("httpx/", "HTTP client"),
    ("httpcore/", "HTTP client"),
    ("h11/", "HTTP client"),
    ("kombu/", "Celery/kombu/redis"),
    ("celery/", "Celery/kombu/redis"),
    ("billiard/", "Celery/kombu/redis"),
    ("redis/", "Celery/kombu/redis"),
    ("limits/", "limits"),
    ("pydantic", "pydantic"),
    ("logging/", "logging"),
    ("fastapi/", "ASGI (FastAPI/Starlette/uvicorn)"),
    ("starlette/", "ASGI (FastAPI/Starlette/uvicorn)"),
    ("uvicorn/", "ASGI (FastAPI/Starlette/uvicorn)"),
    ("anyio/", "ASGI (FastAPI/Starlette/uvicorn)"),
    ("json/", "json"),
    ("alembic/", "alembic"),
)


def area_of(frames: list[str]) -> str:
    """The library (or our code) that the innermost recognisable frame of a sample belongs to."""
    for frame in reversed(frames):
        for fragment, area in AREAS:
            if fragment in frame:
                return area
        if any(f"/{pkg}/" in frame for pkg in ("workers", "providers", "api", "models", "tasks", "simulator")):
            return "our code"
    return "other (interpreter, stdlib)"


def print_profile(path: Path, top: int) -> None:
    """Collapsed stacks ("[process ...;]frame;frame N") -> per process kind: samples by library
    (innermost recognisable frame), and the frames with the most inclusive samples, leaving out
    the ones on (nearly) every stack."""
    if not path.exists():
        print("profile: py-spy wrote nothing (see py-spy.log)")
        return
    per_proc: Counter[str] = Counter()
    incl: dict[str, Counter[str]] = {}
    areas: dict[str, Counter[str]] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        heads = [i for i, f in enumerate(frames) if f.startswith("process ")]
        kind = proc_kind(frames[heads[-1]]) if heads else "process"
        frames = [f for f in frames[heads[-1] + 1 if heads else 0 :] if not f.startswith("thread (")]
        per_proc[kind] += int(count)
        areas.setdefault(kind, Counter())[area_of(frames)] += int(count)
        for name in dict.fromkeys(frame_name(f) for f in frames):
            incl.setdefault(kind, Counter())[name] += int(count)
    print("profile (py-spy samples of busy threads; per process kind: share by library, then the frames with most inclusive samples):")
    for kind, total in per_proc.most_common():
        print(f"  {kind}: {total} samples; " + ", ".join(f"{a} {100 * c / total:.0f}%" for a, c in areas[kind].most_common()))
        shown = 0
        for name, c in incl[kind].most_common():
            if c > 0.9 * total:
                continue
            print(f"      {100 * c / total:5.1f}%  {name}")
            shown += 1
            if shown >= top:
                break


def frame_name(frame: str) -> str:
    """'send (httpx/_client.py:123)' -> 'send (httpx/_client.py)': a function, whatever the line."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{func} ({'/'.join(path.split('/')[-2:])})" if where else func


def proc_kind(head: str) -> str:
    for key in ("--role engine", "--role download", "--role notify", " beat", " api", " dev", "noop_chain"):
        if key in head:
            return key.strip().replace("--role ", "worker ")
    return head[:60]


# -- the raw Celery chain ------------------------------------------------------------------------
def chain_phase(args: argparse.Namespace, redis_url: str, tmp: Path, configs: tuple[bool, ...], when: str) -> dict[bool, list[float]]:
    """N chains of 4 no-op tasks through a prefork worker of the same size on the same Redis (its
    own db number and queue), with the engine's settings (True) and/or Celery's defaults (False),
    timed `--chain-runs` times in a row on one worker. Returns chains/s of each run per config."""
    rates: dict[bool, list[float]] = {}
    import redis
    from celery import chain

    broker = redis_url.rsplit("/", 1)[0] + "/7"
    sys.path.insert(0, str(BENCH))
    for engine_config in configs:
        key = f"noop:done:{uuid.uuid4().hex[:8]}"
        env = dict(os.environ) | {
            "NOOP_BROKER_URL": broker,
            "NOOP_DONE_KEY": key,
            "NOOP_ENGINE_CONFIG": "1" if engine_config else "0",
            "PYTHONPATH": str(BENCH),
        }
        os.environ.update({k: env[k] for k in ("NOOP_BROKER_URL", "NOOP_DONE_KEY", "NOOP_ENGINE_CONFIG")})
        import importlib

        import noop_chain

        noop_chain = importlib.reload(noop_chain)
        worker = spawn_child(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "noop_chain",
                "worker",
                "-Q",
                "noop_chain",
                "-c",
                str(args.concurrency),
                "-P",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
            ]
            + (["-E"] if engine_config else []),
            tmp / "noop_chain.log",
            env,
        )
        r = redis.Redis.from_url(broker)
        what = "engine settings (acks_late, prefetch 1, task events)" if engine_config else "Celery defaults"
        try:
            warm = 20
            for i in range(warm):
                chain(noop_chain.step.si(i), noop_chain.step.s(), noop_chain.step.s(), noop_chain.last.s()).apply_async()
            wait_counter(r, key, warm, worker)
            runs = args.chain_runs if engine_config else 1
            for run in range(runs):
                r.delete(key)
                markers = {"redis-server": f":{redis_url.rsplit(':', 1)[1].split('/')[0]}"}
                cpu_before = cpu_snapshot(worker.pid, markers)
                t0 = time.perf_counter()
                for i in range(args.chains):
                    chain(noop_chain.step.si(i), noop_chain.step.s(), noop_chain.step.s(), noop_chain.last.s()).apply_async()
                sent_s = time.perf_counter() - t0
                wait_counter(r, key, args.chains, worker)
                wall = time.perf_counter() - t0
                rates.setdefault(engine_config, []).append(args.chains / wall)
                cpu_after = cpu_snapshot(worker.pid, markers)
                cpu = sum(c - cpu_before.get(pid, (k, 0.0))[1] for pid, (k, c) in cpu_after.items())
                print(
                    f"raw Celery {when}, {what}{f', run {run + 1}/{runs}' if runs > 1 else ''}: {args.chains} chains of 4 no-op "
                    f"tasks in {wall:.1f} s = {args.chains / wall:.1f} chains/s ({4 * args.chains / wall:.0f} tasks/s; sending took "
                    f"{sent_s:.1f} s), prefork x{args.concurrency}; CPU {1000 * cpu / args.chains:.1f} ms per chain "
                    f"(worker, its pool, redis-server, the sender)",
                    flush=True,
                )
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait()
            r.flushdb()
    return rates


def wait_counter(r: Any, key: str, want: int, worker: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while int(r.get(key) or 0) < want:
        if worker.poll() is not None:
            raise RuntimeError("the no-op Celery worker exited (see noop_chain.log)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {int(r.get(key) or 0)}/{want} chains finished in {timeout_s:.0f} s")
        time.sleep(0.02)
