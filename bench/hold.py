"""Hold N jobs in flight on `k4u dev` defaults (PostgreSQL + Redis) and watch what it costs.

Starts a fresh PostgreSQL database, a private redis-server, the simulator with relay tasks that run
for `--run-s` (default an hour) and `k4u dev` with its defaults, then creates the jobs through
`POST /v1/batches` (10,000 per request) in a mix of families (default: Midjourney and Suno, the
batch-polling families, plus some Kling, polled one task per request). The tick submits them as
fast as the engine goes (printed every 15 s); once all are running, or after `--ramp-timeout-s`,
for `--hold-s`, every `--window-s` it prints:

- jobs per status (from the database), and the number the relay holds;
- per process kind, the RSS now and its peak in the window (flat memory = the same figures window
  after window);
- per family, relay poll requests in the window and poll rounds per running job (poll_count from
  the database) beside what the poll schedule allows (the mean over a 2 % sample of the running
  jobs of window / `workers.services.schedule.poll_interval` at the job's age): the relay must see
  no more than that;
- CPU seconds in the window per process kind (the `k4u dev` tree, its PostgreSQL backends, the
  simulator) and per poll round.

    .venv/bin/python bench/hold.py                                   # 100,000 jobs, 10 min held
    .venv/bin/python bench/hold.py --jobs 20000 --hold-s 300 --window-s 30
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import ProcSampler, bench_stack, pg_database, private_redis
from sustained import cpu_snapshot

from providers.registry import get_adapter
from workers.services.schedule import poll_interval
from workers.settings import Settings

BATCH_MAX = 10_000
POLL_PATHS = {"midjourney": ("/mj/task/list-by-condition", "/fetch"), "suno": ("/suno/fetch",), "kling": ("/kling/v1/videos/text2video/",)}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=100_000, help="jobs to hold in flight (default 100000)")
    p.add_argument("--mix", default="midjourney=0.45,suno=0.45,kling=0.10", help="share of each family")
    p.add_argument("--run-s", type=float, default=3600.0, help="how long each relay task runs (default 3600)")
    p.add_argument("--hold-s", type=float, default=600.0, help="seconds to watch once all are submitted (default 600)")
    p.add_argument("--window-s", type=float, default=60.0, help="seconds per reported window (default 60)")
    p.add_argument("--ramp-timeout-s", type=float, default=3600.0, help="start the hold windows after this long even if jobs are still queued (default 3600)")
    p.add_argument("--concurrency", type=int, default=4, help="engine worker processes (`k4u dev --concurrency`)")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return p.parse_args()


def job_body(provider: str, i: int, run: str) -> dict[str, Any]:
    # Unique prompts: the simulator answers a repeated Midjourney prompt with the earlier task (code 21).
    if provider == "midjourney":
        return {"provider": provider, "operation": "imagine", "input": {"prompt": f"hold {run} {i}: a lighthouse at dawn"}}
    if provider == "suno":
        return {"provider": provider, "operation": "music", "input": {"gpt_description_prompt": f"hold {run} {i}: lofi rain"}}
    return {"provider": provider, "operation": "text2video", "input": {"prompt": f"hold {run} {i}: a fox in snow"}}


def plan(args: argparse.Namespace) -> list[str]:
    shares = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    total = sum(shares.values())
    counts = {k: int(args.jobs * v / total) for k, v in shares.items()}
    counts[next(iter(counts))] += args.jobs - sum(counts.values())
    mixed = [p for p, n in counts.items() for _ in range(n)]
    random.Random(7).shuffle(mixed)  # every batch a mix, so every family is running when the hold begins
    return mixed


def db_counts(conn: psycopg.Connection) -> tuple[Counter[str], dict[str, tuple[int, int, list[float]]]]:
    """Jobs per status; per provider of running jobs: (count, sum of poll_count, ages in seconds)."""
    status = Counter(dict(conn.execute("SELECT status, count(*) FROM job GROUP BY status")))
    running: dict[str, tuple[int, int, list[float]]] = {}
    for provider, n, polls in conn.execute("SELECT provider, count(*), coalesce(sum(poll_count), 0) FROM job WHERE status = 'running' GROUP BY provider"):
        ages = [
            float(a)
            for (a,) in conn.execute(
                "SELECT extract(epoch FROM now() - submitted_at) FROM job TABLESAMPLE SYSTEM (2) "
                "WHERE status = 'running' AND provider = %s AND submitted_at IS NOT NULL",
                (provider,),
            )
        ]
        running[provider] = (int(n), int(polls), ages)
    return status, running


def allowed_rounds(provider: str, ages: list[float], window_s: float, settings: Settings) -> float:
    """Poll rounds per job the schedule allows over the window: the mean over the sampled jobs of
    window / interval at the job's age (young jobs are polled more often than old ones)."""
    if not ages:
        return 0.0
    expected = settings.poll_expected_s or get_adapter(provider).capabilities.expected_s
    min_s = settings.poll_min_interval_s or max(2.0, expected / 20)
    return statistics.mean(window_s / poll_interval(age, expected, min_s, settings.poll_max_interval_s) for age in ages)


def _is_poll(provider: str, marks: tuple[str, ...], method: str, path: str) -> bool:
    """Whether a simulator route (method, path template) is one of this family's status queries."""
    if provider == "kling":
        return method == "GET" and path.startswith(marks[0])
    if provider == "midjourney":
        return path.startswith(marks[0]) or (method == "GET" and path.startswith("/mj") and path.endswith(marks[1]))
    return provider == "suno" and path.startswith(marks[0])


def relay_polls(requests: dict[str, int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for key, n in requests.items():
        method, _, path = key.partition(" ")
        for provider, marks in POLL_PATHS.items():
            if _is_poll(provider, marks, method, path):
                out[provider] += n
    return out


def rss_now(sampler: ProcSampler) -> dict[str, float]:
    by: dict[str, float] = {}
    for label, kib in sampler.peak.values():
        by[label] = by.get(label, 0.0) + kib / 1024
    return by


def main() -> int:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    tmp = Path(tempfile.mkdtemp(prefix="k4u-hold-"))
    run = uuid.uuid4().hex[:6]
    providers = plan(args)
    try:
        with pg_database(args.pg_admin_url, label="hold") as db_url, private_redis(tmp / "redis") as redis_url:
            env = {"K4U_DATABASE_URL": db_url, "K4U_REDIS_URL": redis_url}
            settings = Settings(database_url=db_url, redis_url=redis_url)  # the defaults k4u dev runs with
            with (
                bench_stack(env=env, sim_config={"queue_s": 1.0, "run_s": args.run_s}, concurrency=args.concurrency, label="hold") as stack,
                psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn,
            ):
                print(
                    f"k4u dev defaults on PostgreSQL {db_url.rsplit('/', 1)[1]} + redis {redis_url}; "
                    f"{Counter(providers)} jobs, relay tasks of {args.run_s:.0f} s",
                    flush=True,
                )
                client = httpx.Client(base_url=stack.api_url, timeout=120)
                t0 = time.monotonic()
                for start in range(0, len(providers), BATCH_MAX):
                    items = [job_body(p, start + i, run) for i, p in enumerate(providers[start : start + BATCH_MAX])]
                    t = time.monotonic()
                    r = client.post("/v1/batches", json={"jobs": items})
                    r.raise_for_status()
                    print(f"  batch of {len(items)} accepted in {time.monotonic() - t:.2f} s", flush=True)
                print(f"created {len(providers)} jobs in {time.monotonic() - t0:.1f} s; submitting (the tick sends them as the engine goes)")
                while True:
                    status, _ = db_counts(conn)
                    tasks = stack.sim("/_sim/stats")["tasks"]
                    print(f"  t+{time.monotonic() - t0:5.0f} s: {dict(status)}; relay holds {tasks} tasks", flush=True)
                    if status.get("queued", 0) + status.get("submitting", 0) == 0:
                        break
                    if time.monotonic() - t0 > args.ramp_timeout_s:
                        print(
                            f"not all submitted after --ramp-timeout-s {args.ramp_timeout_s:.0f}: holding what is there, "
                            "the rest still queued (the engine submits as it goes)"
                        )
                        break
                    time.sleep(15)
                print(f"{status.get('running', 0)} running after {time.monotonic() - t0:.0f} s; holding {args.hold_s:.0f} s")
                stack.ok = True
                held_until = time.monotonic() + args.hold_s
                before_req = Counter(stack.sim("/_sim/stats")["requests"])
                _, before_run = db_counts(conn)
                markers = {"postgres backends": db_url.rsplit("/", 1)[1], "simulator (bench's relay)": f"simulator --port {stack.sim_url.rsplit(':', 1)[1]}"}
                before_cpu = cpu_snapshot(stack.sampler.pid, markers)
                window = 0
                while time.monotonic() < held_until:
                    window += 1
                    sampler = ProcSampler(stack.sampler.pid, every_s=2.0)
                    sampler.start()
                    time.sleep(args.window_s)
                    sampler.done.set()
                    sampler.join(10)
                    now_sampler = ProcSampler(stack.sampler.pid)
                    now_sampler.sample()
                    req = Counter(stack.sim("/_sim/stats")["requests"])
                    status, running = db_counts(conn)
                    polls = relay_polls(dict(req - before_req))
                    print(f"window {window} ({datetime.now(UTC):%H:%M:%S}): {dict(status)}")
                    peak, now = rss_now(sampler), rss_now(now_sampler)
                    print("  RSS MiB now / window peak: " + ", ".join(f"{k} {now.get(k, 0):.0f}/{v:.0f}" for k, v in sorted(peak.items())))
                    for provider, (n, poll_sum, ages) in sorted(running.items()):
                        rounds = (poll_sum - before_run.get(provider, (0, 0, []))[1]) / max(1, n)
                        allowed = allowed_rounds(provider, ages, args.window_s, settings)
                        print(
                            f"  {provider}: {n} running, median age {statistics.median(ages) if ages else 0:.0f} s; relay poll requests "
                            f"{polls.get(provider, 0)} ({polls.get(provider, 0) / args.window_s:.1f}/s, "
                            f"{polls.get(provider, 0) / max(1, n):.4f} per job); poll rounds per job {rounds:.2f}, "
                            f"the schedule allows {allowed:.2f}"
                        )
                    cpu = cpu_snapshot(stack.sampler.pid, markers)
                    per: Counter[str] = Counter()
                    for pid, (kind, c) in cpu.items():
                        per[kind] += c - before_cpu.get(pid, (kind, 0.0))[1]
                    rounds_all = sum(poll_sum - before_run.get(p, (0, 0, []))[1] for p, (_, poll_sum, _) in running.items())
                    total = sum(per.values())
                    print(
                        f"  CPU {total:.1f} s in the window ({total / args.window_s:.2f} cores), {1000 * total / max(1, rounds_all):.2f} ms per "
                        f"poll round ({rounds_all} rounds): " + ", ".join(f"{k} {v:.1f}" for k, v in per.most_common() if v >= 0.05)
                    )
                    before_req, before_run, before_cpu = req, running, cpu
    except KeyboardInterrupt:
        print("interrupted: processes stopped, database dropped")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
