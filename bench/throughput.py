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
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.procs import Supervisor, free_port, k4u_cmd, wait_http  # noqa: E402

TERMINAL = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "submitting", "running", "downloading")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=200, help="text2video jobs to submit (default 200)")
    p.add_argument("--concurrency", type=int, default=4, help="worker processes, passed to `k4u dev --concurrency` (default 4)")
    p.add_argument("--database-url", help="K4U_DATABASE_URL override (default: SQLite in the temp dir)")
    p.add_argument("--redis-url", help="K4U_REDIS_URL override (default: unset, `k4u dev` bundles Redis)")
    p.add_argument("--callbacks", action="store_true", help="set K4U_PUBLIC_URL so the simulator's callbacks are used")
    p.add_argument("--run-s", type=float, default=2.0, help="simulated generation time per task (default 2.0)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all jobs to be terminal (default 600)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, files, logs) even on success")
    return p.parse_args()


def tree_rss_kib(root_pid: int) -> int:
    """Sum of VmRSS over root_pid and all its descendants (psutil if present, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None  # type: ignore[assignment]
    if psutil is not None:
        try:
            root = psutil.Process(root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss // 1024
            except psutil.Error:
                pass
        return total
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


def list_status(client: httpx.Client, status: str, batch_id: str) -> list[dict]:  # type: ignore[type-arg]
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


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="k4u-bench-"))
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")}
    env.update({
        "K4U_BASE_URL": sim_url, "K4U_API_KEY": "sk-bench", "K4U_ALLOW_PRIVATE_URLS": "true",
        "K4U_POLL_EXPECTED_S": "2", "K4U_POLL_MIN_INTERVAL_S": "0.5", "K4U_BEAT_INTERVAL_S": "0.5",
        "K4U_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/k4u.db",
        "K4U_STORAGE_URL": f"file://{tmp}/objects", "K4U_DATA_DIR": str(tmp),
    })
    if args.redis_url:
        env["K4U_REDIS_URL"] = args.redis_url
    if args.callbacks:
        env["K4U_PUBLIC_URL"] = api_url
    batch_id = f"bench-{uuid.uuid4().hex[:12]}"
    sup = Supervisor()
    sup.install_signals()
    sampler: RssSampler | None = None
    dev_log = tmp / "dev.log"
    ok = False
    try:
        with open(tmp / "simulator.log", "ab") as sim_log, open(dev_log, "ab") as log:
            sim = subprocess.Popen(k4u_cmd("simulator", "--port", str(sim_port)), env=env, cwd=ROOT,
                                   stdout=sim_log, stderr=subprocess.STDOUT, start_new_session=True)
            sup.adopt("simulator", sim)
            wait_http(f"{sim_url}/_sim/health", 30, sim)
            httpx.post(f"{sim_url}/_sim/config", json={"queue_s": 0.3, "run_s": args.run_s}).raise_for_status()
            dev = subprocess.Popen(k4u_cmd("dev", "--port", str(api_port), "--concurrency", str(args.concurrency)), env=env,
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            sup.adopt("dev", dev)
        wait_http(f"{api_url}/healthz", 120, dev)
        sampler = RssSampler(dev.pid)
        sampler.start()
        print(f"stack: simulator {sim_url}, api {api_url}, data {tmp}, callbacks {'on' if args.callbacks else 'off'}")
        ok = run(args, api_url, sim_url, batch_id)
    except KeyboardInterrupt:
        print("interrupted")
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}")
    finally:
        if sampler is not None:
            sampler.done.set()
            print(f"peak RSS of the k4u dev process tree (api+worker+beat+redis): {sampler.peak_kib / 1024:.0f} MiB")
        sup.stop()
    log_lines = dev_log.read_text(errors="replace").splitlines() if dev_log.exists() else []
    count = {w: sum(bool(re.search(rf"[ :]{w}[ /]", ln)) for ln in log_lines) for w in ("ERROR", "WARNING")}
    print(f"dev log: {count['ERROR']} ERROR lines, {count['WARNING']} WARNING lines, "
          f"{sum(ln.startswith('Traceback') for ln in log_lines)} tracebacks")
    if not ok:
        tail = log_lines[-60:]
        print(f"--- last {len(tail)} lines of {dev_log} (kept for inspection) ---", *tail, sep="\n")
        return 1
    if args.keep:
        print(f"kept {tmp}")
        return 0
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run(args: argparse.Namespace, api_url: str, sim_url: str, batch_id: str) -> bool:
    n = args.jobs
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(base_url=api_url, timeout=30, limits=limits) as client:

        def submit(i: int) -> str:
            body = {"provider": "kling", "operation": "text2video", "batch_id": batch_id,
                    "input": {"prompt": f"bench clip {i}: a red fox running through fresh snow", "duration": "5"}}
            return str(client.post("/v1/jobs", json=body).raise_for_status().json()["id"])

        t0 = time.time()
        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(submit, range(n)))
        submit_s = time.time() - t0
        done: dict[str, dict] = {}  # type: ignore[type-arg]
        deadline = time.monotonic() + args.timeout
        while True:
            for status in TERMINAL:
                done.update((j["id"], j) for j in list_status(client, status, batch_id) if j["id"] in ids)
            if len(done) >= n or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        stuck = {s: len(list_status(client, s, batch_id)) for s in ACTIVE} if len(done) < n else {}
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

    print(f"jobs: {n} (worker concurrency {args.concurrency}, simulated run {args.run_s:g} s, "
          f"db {'override' if args.database_url else 'sqlite'}, redis {'override' if args.redis_url else 'bundled'})")
    print(f"submit: {n} requests in {submit_s:.2f} s ({n / submit_s:.1f} req/s)")
    if finished:
        wall = max(finished) - t0
        print(f"wall: first submit -> last job terminal: {wall:.2f} s")
        print(f"throughput: {len(finished) / wall:.2f} jobs/s end to end")
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        print(f"latency p50/p95/max (created_at -> finished_at): {statistics.median(lat):.2f}/{p95:.2f}/{lat[-1]:.2f} s")
    print(f"succeeded/failed: {succeeded}/{failed}" + (f" (not terminal after {args.timeout:g} s: {n - len(jobs)} {stuck})" if stuck else ""))
    for j in [j for j in jobs if j["status"] != "succeeded"][:10]:
        print(f"  {j['id']} {j['status']}: {j.get('error')}")
    print(f"relay requests per job: submits {submits / n:.2f}, polls {polls / n:.2f} (from /_sim/stats)")
    print(f"relay: creates {stats['creates']}, callbacks sent {stats['callbacks_sent']} (failed {stats['callbacks_failed']}), "
          f"media downloads {stats['media_downloads']}, requests {reqs}")
    print(f"assets: {len(assets)}")
    print(f"sha256 mismatches: {mismatches}")
    return succeeded == n and mismatches == 0


if __name__ == "__main__":
    sys.exit(main())
