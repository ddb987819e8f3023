"""Chaos benchmark: Kling, Midjourney and Suno jobs through `k4u dev` on PostgreSQL + Redis
against the simulator, while workers are SIGKILLed, Redis restarts and the relay misbehaves.

Starts a fresh PostgreSQL database (dropped at the end), its own redis-server on a free loopback
port, `k4u simulator` (seeded faults: relay 5xx, 429 with a day-long Retry-After, creates processed
then answered 502, tasks named with 300-character ids, media downloads cut mid-stream, duplicate
and out-of-order callbacks), a notification receiver (the
first delivery for some jobs is answered 500/409/404) and `k4u dev`. During the run it SIGKILLs a
Celery worker process every few seconds and restarts Redis twice. Prints % terminal, outcomes,
sha256 mismatches, paid relay tasks per job, notifications per job and event, wall time, and
whether each target was met. Exits 0 once the figures are printed (1 only if the bench broke).

    .venv/bin/python bench/chaos.py --jobs 60       # shake-out, about a minute
    .venv/bin/python bench/chaos.py                 # 1,000 jobs
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_parts import Database, Receiver, RedisServer, TreeWatch, spawn, stop
from chaos_report import Figures, print_report
from stack import ROOT, TERMINAL, list_jobs, ts

from cli.procs import free_port, k4u_cmd, wait_http

TOKEN = "chaos-bench-token"
SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()  # fresh per run
FAMILY = {"kling": "kling", "midjourney": "mj", "suno": "suno"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=1000, help="jobs, spread over Kling, Midjourney and Suno (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulator's faults, the receiver and the kills")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every job to be terminal")
    p.add_argument("--concurrency", type=int, default=4, help="engine worker processes (`k4u dev --concurrency`)")
    p.add_argument("--run-s", type=float, default=3.0, help="simulated generation time (default 3)")
    p.add_argument("--error-5xx-rate", type=float, default=0.10, help="relay requests answered 5xx, not processed")
    p.add_argument("--rate-limit-rate", type=float, default=0.05, help="relay requests answered 429")
    p.add_argument("--retry-after", default="86400", help="the Retry-After of those 429s (default a day; honoured up to 10 min)")
    p.add_argument(
        "--long-task-id-rate", type=float, default=0.02, help="creates whose task (made and paid) gets a 300-character id: its job fails invalid_relay_answer"
    )
    p.add_argument(
        "--job-deadline-s", type=float, default=180.0, help="K4U_JOB_DEADLINE_S: short, so that jobs a 429 sent away are collected in the stretch before it"
    )
    p.add_argument("--accept-502-rate", type=float, default=0.10, help="creates processed, then answered 502")
    p.add_argument("--media-cut-rate", type=float, default=0.20, help="media downloads cut mid-stream")
    p.add_argument("--notify-fail-rate", type=float, default=0.05, help="jobs whose first notification gets 500/409/404")
    p.add_argument("--callback-duplicates", type=int, default=1, help="extra copies of each relay callback")
    p.add_argument("--kill-every", type=float, default=5.0, help="seconds between worker SIGKILLs (0 = none)")
    p.add_argument("--redis-restarts", type=int, default=2)
    p.add_argument("--redis-down-s", type=float, default=2.0, help="how long Redis stays down per restart")
    p.add_argument(
        "--no-revive", dest="revive", action="store_false", help="end the run when k4u dev exits (default: start it again, as a process manager would)"
    )
    p.add_argument("--settle", type=float, default=90.0, help="seconds to wait for notifications after the last job")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, stored files)")
    return p.parse_args()


def job_body(i: int, batch_id: str, hook: str) -> dict[str, Any]:
    marker = f"chaos-{i:06d}"
    kind = i % 4
    if kind == 0:
        provider, op, inp = "kling", "text2video", {"prompt": f"{marker} a red fox in snow", "duration": "5"}
    elif kind == 1:
        provider, op, inp = "kling", "image", {"prompt": f"{marker} a paper boat"}
    elif kind == 2:
        provider, op, inp = "midjourney", "imagine", {"prompt": f"{marker} a lighthouse at dawn"}
    else:
        provider, op, inp = "suno", "music", {"gpt_description_prompt": f"{marker} lofi beat for rain"}
    return {"provider": provider, "operation": op, "input": inp, "batch_id": batch_id, "callback_url": f"{hook}/hook/{marker}", "idempotency_key": marker}


def create_jobs(client: httpx.Client, n: int, batch_id: str, hook: str, halt: threading.Event) -> dict[int, str]:
    """POST every job; a 5xx or a dropped connection (Redis may be restarting) is retried with the
    same idempotency key for up to a minute. `halt` abandons the rest."""

    def one(i: int) -> tuple[int, str]:
        deadline = time.monotonic() + 60
        while not halt.is_set():
            try:
                r = client.post("/v1/jobs", json=job_body(i, batch_id, hook))
                if r.status_code < 500:
                    return i, str(r.raise_for_status().json()["id"])
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {i} could not be created")
            time.sleep(1.0)
        raise RuntimeError("job creation stopped")

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, range(n)))


class Dev:
    """`k4u dev` as a child; `revive()` starts it again after it exited, as a process manager
    (systemd, compose `restart:`) would. Every process seen in its tree is killed by `stop()`."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, api_url: str) -> None:
        self.cmd, self.env, self.log, self.api_url = cmd, env, log, api_url
        self.restarts = 0
        self.old: list[TreeWatch] = []
        self.start()

    def start(self) -> None:
        # SIGTERM when the bench dies: `k4u dev` then stops its own children.
        self.proc = spawn(self.cmd, self.log, self.env, ROOT, death_signal=signal.SIGTERM)
        self.watch = TreeWatch(self.proc.pid)
        wait_http(f"{self.api_url}/healthz", 120, self.proc)
        self.watch.refresh()

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def revive(self) -> None:
        self.old.append(self.watch)
        left = sum(w.kill_leftovers() for w in self.old)
        if left:
            print(f"killed {left} processes left over from the exited k4u dev", flush=True)
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        self.watch.refresh()
        stop(self.proc, 40)
        left = sum(w.kill_leftovers() for w in (*self.old, self.watch))
        if left:
            print(f"killed {left} processes of the k4u dev tree left after it stopped")


class Chaos:
    """Worker kills on a timer and Redis restarts at progress thresholds; driven from the main
    thread (children must be forked there, see chaos_parts.spawn)."""

    def __init__(self, args: argparse.Namespace, dev: Dev, redis: RedisServer) -> None:
        self.args, self.dev, self.redis = args, dev, redis
        self.rng = random.Random(args.seed)
        self.kills = 0
        self.no_target = 0
        self.next_kill = time.monotonic() + args.kill_every
        self.log: list[str] = []

    def step(self, t0: float, terminal: int, total: int) -> None:
        now = time.monotonic()
        if self.args.kill_every > 0 and now >= self.next_kill:
            self.next_kill = now + self.args.kill_every
            pool = self.dev.watch.worker_processes()
            if pool:
                pid = self.rng.choice(pool)
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass
            else:
                self.no_target += 1
        done = self.redis.restarts
        if done < self.args.redis_restarts and terminal >= total * (done + 1) / (self.args.redis_restarts + 1):
            self.log.append(f"t+{time.time() - t0:.0f}s: Redis restarted ({terminal}/{total} jobs terminal)")
            print(self.log[-1], flush=True)
            self.redis.restart(self.args.redis_down_s)


def watch_jobs(args: argparse.Namespace, client: httpx.Client, batch_id: str, chaos: Chaos, n: int, t0: float, creating: Future[dict[int, str]]) -> float:
    """Run the chaos (from the first create on) until every job is terminal or the timeout
    passes; an exited `k4u dev` is started again (or ends the run with --no-revive). Returns the
    wall time."""
    deadline, last_count, finished = time.monotonic() + args.timeout, 0.0, 0
    while time.monotonic() < deadline:
        if chaos.dev.exited():
            chaos.log.append(
                f"t+{time.time() - t0:.0f}s: k4u dev exited with {chaos.dev.proc.returncode} "
                f"({finished}/{n} jobs terminal)" + ("; started again" if args.revive else "")
            )
            print(chaos.log[-1], flush=True)
            if not args.revive:
                break
            chaos.dev.revive()
        if creating.done() and creating.exception() is not None:
            break
        if time.monotonic() - last_count > 3:
            last_count = time.monotonic()
            try:
                finished = sum(len(list_jobs(client, s, batch_id)) for s in TERMINAL)
            except httpx.HTTPError as exc:
                print(f"  (listing failed: {exc})", flush=True)
            print(f"t+{time.time() - t0:5.0f}s: {finished}/{n} terminal, {chaos.kills} worker kills", flush=True)
            if finished >= n:
                break
        chaos.step(t0, finished, n)
        time.sleep(0.5)
    return time.time() - t0


def settle(args: argparse.Namespace, receiver: Receiver, jobs: list[dict[str, Any]]) -> None:
    """Wait until every terminal job's notification was acknowledged (2xx), or --settle passes."""
    want = {j["id"] for j in jobs if j["status"] in TERMINAL}
    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline:
        acked = {d.job_id for d in list(receiver.deliveries) if 200 <= d.status < 300}
        if want <= acked:
            return
        time.sleep(1.0)


def all_jobs(client: httpx.Client, batch_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for status in (*TERMINAL, "queued", "submitting", "running", "downloading"):
        out += list_jobs(client, status, batch_id)
    return out


def run(args: argparse.Namespace, tmp: Path, cleanup: list[Any]) -> Figures:
    db = Database(args.pg_admin_url)
    cleanup.append(("database", db.drop))
    redis = RedisServer(free_port(), tmp / "redis")
    cleanup.append(("redis", redis.kill))
    redis.start()
    receiver = Receiver(args.notify_fail_rate, args.seed, SECRET)
    cleanup.append(("receiver", receiver.close))
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")} | {
        "K4U_BASE_URL": sim_url,
        "K4U_API_KEY": "sk-chaos",
        "K4U_ALLOW_PRIVATE_URLS": "true",
        "K4U_DATABASE_URL": db.url,
        "K4U_REDIS_URL": redis.url,
        "K4U_PUBLIC_URL": api_url,
        "K4U_STORAGE_URL": f"file://{tmp}/objects",
        "K4U_DATA_DIR": str(tmp / "data"),
        "K4U_API_TOKENS": TOKEN,
        "K4U_WEBHOOK_SECRET": SECRET,
        "K4U_POLL_EXPECTED_S": "3",
        "K4U_POLL_MIN_INTERVAL_S": "1",
        "K4U_POLL_MAX_INTERVAL_S": "5",
        "K4U_BEAT_INTERVAL_S": "1",
        "K4U_NOTIFY_BACKOFF_S": "1",
        "K4U_LEASE_S": "20",
        "K4U_JOB_DEADLINE_S": str(args.job_deadline_s),
    }
    sim = spawn(k4u_cmd("simulator", "--port", str(sim_port)), tmp / "simulator.log", env, ROOT)
    cleanup.append(("simulator", lambda: stop(sim)))
    wait_http(f"{sim_url}/_sim/health", 30, sim)
    httpx.post(
        f"{sim_url}/_sim/config",
        timeout=10,
        json={
            "queue_s": 0.5,
            "run_s": args.run_s,
            "callback_duplicates": args.callback_duplicates,
            "callback_reorder": True,
            "suno_notify_enabled": True,
            "fault_seed": args.seed,
            "error_5xx_rate": args.error_5xx_rate,
            "rate_limit_rate": args.rate_limit_rate,
            "retry_after": args.retry_after,
            "accept_502_rate": args.accept_502_rate,
            "long_task_id_rate": args.long_task_id_rate,
            "media_cut_rate": args.media_cut_rate,
        },
    ).raise_for_status()
    holder: list[Dev] = []
    cleanup.append(("k4u dev", lambda: holder and holder[0].stop()))
    dev_cmd = k4u_cmd("dev", "--port", str(api_port), "--concurrency", str(args.concurrency))
    holder.append(dev := Dev(dev_cmd, env, tmp / "dev.log", api_url))
    print(f"stack up: db {db.name}, redis {redis.url}, simulator {sim_url}, api {api_url}, receiver {receiver.url}, data {tmp}", flush=True)

    batch_id = f"chaos-{uuid.uuid4().hex[:10]}"
    chaos = Chaos(args, dev, redis)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(base_url=api_url, headers=headers, timeout=30, limits=limits) as client:
        t0 = time.time()
        stop_creating = threading.Event()
        with ThreadPoolExecutor(1) as creator:
            creating = creator.submit(create_jobs, client, args.jobs, batch_id, receiver.url, stop_creating)
            creating.add_done_callback(lambda fut: fut.exception() or print(f"created {len(fut.result())} jobs in {time.time() - t0:.1f} s", flush=True))
            try:
                wall = watch_jobs(args, client, batch_id, chaos, args.jobs, t0, creating)
            finally:
                stop_creating.set()
            ids = creating.result()
        jobs = all_jobs(client, batch_id)
        settle(args, receiver, jobs)
        jobs = all_jobs(client, batch_id)
        histories = {j["id"]: client.get(f"/v1/jobs/{j['id']}/events").json() for j in slowest(jobs, 3)}
    sim_get = lambda path: httpx.get(f"{sim_url}{path}", timeout=30).raise_for_status().json()  # noqa: E731
    return Figures(
        args=args,
        ids=ids,
        jobs=jobs,
        wall_s=wall,
        paid=sim_get("/_sim/paid")["paid"],
        stats=sim_get("/_sim/stats"),
        media_sha=sim_get("/_sim/media-sha256"),
        receiver=receiver,
        objects=tmp / "objects",
        dev_restarts=dev.restarts,
        kills=chaos.kills,
        kill_misses=chaos.no_target,
        redis_restarts=redis.restarts,
        chaos_log=chaos.log,
        dev_log=tmp / "dev.log",
        histories=histories,
    )


def slowest(jobs: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The k jobs that took longest (unfinished ones first)."""
    now = time.time()
    return sorted(jobs, key=lambda j: (ts(j["finished_at"]) if j.get("finished_at") else now) - ts(j["created_at"]))[-k:][::-1]


def main() -> int:
    args = parse_args()

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="k4u-chaos-"))
    cleanup: list[Any] = []
    code, keep = 0, args.keep
    try:
        figures = run(args, tmp, cleanup)
        keep = not print_report(figures) or keep
    except KeyboardInterrupt:
        print("interrupted: cleaning up")
        code, keep = 1, True
    except Exception as exc:  # the bench itself broke: say so, clean up, keep the logs
        print(f"bench error: {type(exc).__name__}: {exc}")
        code, keep = 1, True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, fn in reversed(cleanup):
            try:
                fn()
            except Exception as exc:
                print(f"cleanup of {name} failed: {type(exc).__name__}: {exc}")
        if keep:
            print(f"kept {tmp} (dev.log, simulator.log, redis/, objects/)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
