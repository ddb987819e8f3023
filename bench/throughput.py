"""End-to-end throughput benchmark for Key4U Jobs against the built-in relay simulator.

Starts `k4u simulator` and `k4u dev` (API + worker + beat, bundled Redis unless --redis-url)
on free loopback ports with a throw-away data dir, submits N Kling text2video jobs through
`POST /v1/jobs` from a pool of 8 threads, then watches them through the list endpoint
(`GET /v1/jobs?status=...&batch_id=...&limit=500`, cursor paging) until all are terminal
or --timeout passes. Prints plain-text figures, one per line; exits 1 if any job did not
succeed or any stored file's sha256 differs from the simulator's bytes.

    .venv/bin/python bench/throughput.py --jobs 200
    .venv/bin/python bench/throughput.py --jobs 50 --callbacks
    .venv/bin/python bench/throughput.py --database-url postgresql+psycopg://u:p@localhost/k4u
    .venv/bin/python bench/throughput.py --sustained            # 5,000 jobs on PostgreSQL + Redis, and raw Celery
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import ACTIVE, TERMINAL, bench_stack, list_jobs, ts


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=None, help="text2video jobs to submit (default 200; 5000 with --sustained)")
    p.add_argument("--concurrency", type=int, default=4, help="worker processes, passed to `k4u dev --concurrency` (default 4)")
    p.add_argument("--database-url", help="K4U_DATABASE_URL override (default: SQLite in the temp dir)")
    p.add_argument("--redis-url", help="K4U_REDIS_URL override (default: unset, `k4u dev` bundles Redis)")
    p.add_argument("--callbacks", action="store_true", help="set K4U_PUBLIC_URL so the simulator's callbacks are used")
    p.add_argument("--run-s", type=float, default=2.0, help="simulated generation time per task (default 2.0)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for all jobs to be terminal (default 600; 2400 with --sustained)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, files, logs) even on success")
    sus = p.add_argument_group(
        "sustained mode (bench/sustained.py): PostgreSQL + Redis, relay tasks that finish at once, and a raw Celery chain benchmark in the same run"
    )
    sus.add_argument("--sustained", action="store_true", help="run the sustained mode instead")
    sus.add_argument("--clients", type=int, default=16, help="concurrent POST /v1/jobs clients (default 16)")
    sus.add_argument("--chains", type=int, default=2000, help="4-task no-op Celery chains per variant (default 2000)")
    sus.add_argument("--chain-runs", type=int, default=3, help="timed runs of the chain with engine settings, before and after the jobs (default 3)")
    sus.add_argument("--defaults", action="store_true", help="keep the k4u dev poll/beat defaults (default: fast polling as above)")
    sus.add_argument("--profile", action="store_true", help="sample the stack with py-spy while the jobs run (slows it down)")
    sus.add_argument("--profile-gil", action="store_true", help="with --profile: only samples holding the GIL (Python CPU, not waits)")
    sus.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second (default 50)")
    sus.add_argument("--profile-top", type=int, default=25, help="frames to print per process kind (default 25)")
    sus.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    args.jobs = args.jobs or (5000 if args.sustained else 200)
    args.timeout = args.timeout or (2400.0 if args.sustained else 600.0)
    return args


def main() -> int:
    args = parse_args()
    if args.sustained:
        from sustained import run_sustained

        return run_sustained(args)
    env = {"K4U_POLL_EXPECTED_S": "2", "K4U_POLL_MIN_INTERVAL_S": "0.5", "K4U_BEAT_INTERVAL_S": "0.5"}
    if args.database_url:
        env["K4U_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["K4U_REDIS_URL"] = args.redis_url
    if args.callbacks:
        env["K4U_PUBLIC_URL"] = "{api_url}"
    batch_id = f"bench-{uuid.uuid4().hex[:12]}"
    ok = False
    try:
        with bench_stack(env=env, sim_config={"queue_s": 0.3, "run_s": args.run_s}, concurrency=args.concurrency, keep=args.keep, label="throughput") as stack:
            print(f"stack: simulator {stack.sim_url}, api {stack.api_url}, data {stack.tmp}, callbacks {'on' if args.callbacks else 'off'}")
            try:
                ok = stack.ok = run(args, stack.api_url, stack.sim_url, batch_id)
            finally:
                print(f"peak RSS of the k4u dev process tree (api+worker+beat+redis): {stack.sampler.peak_kib / 1024:.0f} MiB")
    except KeyboardInterrupt:
        print("interrupted")
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}")
    return 0 if ok else 1


def run(args: argparse.Namespace, api_url: str, sim_url: str, batch_id: str) -> bool:
    n = args.jobs
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(base_url=api_url, timeout=30, limits=limits) as client:

        def submit(i: int) -> str:
            body = {
                "provider": "kling",
                "operation": "text2video",
                "batch_id": batch_id,
                "input": {"prompt": f"bench clip {i}: a red fox running through fresh snow", "duration": "5"},
            }
            return str(client.post("/v1/jobs", json=body).raise_for_status().json()["id"])

        t0 = time.time()
        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(submit, range(n)))
        submit_s = time.time() - t0
        done: dict[str, dict] = {}  # type: ignore[type-arg]
        deadline = time.monotonic() + args.timeout
        while True:
            for status in TERMINAL:
                done.update((j["id"], j) for j in list_jobs(client, status, batch_id) if j["id"] in ids)
            if len(done) >= n or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        stuck = {s: len(list_jobs(client, s, batch_id)) for s in ACTIVE} if len(done) < n else {}
    stats = httpx.get(f"{sim_url}/_sim/stats", timeout=10).json()
    want = httpx.get(f"{sim_url}/_sim/media-sha256", timeout=10).json()["mp4"]

    jobs = list(done.values())
    succeeded = sum(j["status"] == "succeeded" for j in jobs)
    failed = len(jobs) - succeeded
    finished = [ts(j["finished_at"]) for j in jobs if j.get("finished_at")]
    lat = sorted(ts(j["finished_at"]) - ts(j["created_at"]) for j in jobs if j.get("finished_at"))
    assets = [a for j in jobs for a in j["assets"]]
    mismatches = sum(a["sha256"] != want for a in assets) + sum(j["status"] == "succeeded" and not j["assets"] for j in jobs)
    reqs: dict[str, int] = stats["requests"]
    submits = sum(c for k, c in reqs.items() if k.startswith("POST /kling/"))
    polls = sum(c for k, c in reqs.items() if k.startswith("GET /kling/"))

    print(
        f"jobs: {n} (worker concurrency {args.concurrency}, simulated run {args.run_s:g} s, "
        f"db {'override' if args.database_url else 'sqlite'}, redis {'override' if args.redis_url else 'bundled'})"
    )
    print(f"submit: {n} requests in {submit_s:.2f} s ({n / submit_s:.1f} req/s)")
    if finished:
        wall = max(finished) - t0
        print(f"wall: first submit -> last job terminal: {wall:.2f} s")
        print(f"throughput: {len(finished) / wall:.2f} jobs/s end to end")
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        print(f"latency p50/p95/max (created_at -> finished_at): {statistics.median(lat):.2f}/{p95:.2f}/{lat[-1]:.2f} s")
    print(f"succeeded/failed: {succeeded}/{failed}" + (f" (not terminal after {args.timeout:g} s: {n - len(jobs)} {stuck})" if stuck else ""))
    for j in [j for j in jobs if j["status"] != "succeeded"][:10]:
        print(f"  {j['id']} {j['status']}: {j.get('error')}")
    print(f"relay requests per job: submits {submits / n:.2f}, polls {polls / n:.2f} (from /_sim/stats)")
    print(
        f"relay: creates {stats['creates']}, callbacks sent {stats['callbacks_sent']} (failed {stats['callbacks_failed']}), "
        f"media downloads {stats['media_downloads']}, requests {reqs}"
    )
    print(f"assets: {len(assets)}")
    print(f"sha256 mismatches: {mismatches}")
    return succeeded == n and mismatches == 0


if __name__ == "__main__":
    sys.exit(main())
