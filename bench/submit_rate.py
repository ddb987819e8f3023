"""Single-submission rate: one `k4u api` process on PostgreSQL, many concurrent clients posting
valid Kling jobs to `POST /v1/jobs` for a while; prints accepted/s and p50/p99 latency.

Starts a fresh PostgreSQL database and its own redis-server (the API enqueues each submission;
no worker runs, so the messages just wait in Redis), then `k4u api` on a free loopback port, all
removed at the end (Ctrl-C included; children die with the bench). The API process loads
`bench/sqlcount/sitecustomize.py`, so the SQL per request is counted; `--profile` samples it
with py-spy while the clients run and prints where its time goes.

    .venv/bin/python bench/submit_rate.py
    .venv/bin/python bench/submit_rate.py --clients 16 --duration 20 --profile
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import percentile, pg_database, private_redis, spawn_child
from sustained import print_profile, sql_counts

from cli.procs import free_port, k4u_cmd, wait_http

BENCH = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16, help="concurrent clients, one connection each (default 16)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of measured load (default 20)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (default 3)")
    p.add_argument("--profile", action="store_true", help="sample the API process with py-spy during the measured load")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second (default 100)")
    p.add_argument("--profile-top", type=int, default=40, help="frames to print (default 40)")
    p.add_argument("--profile-gil", action="store_true", help="sample only the thread holding the GIL: where the CPU goes")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (api.log, profile)")
    return p.parse_args()


class Load:
    """Client threads posting jobs back to back; records (finish time, seconds, status)."""

    def __init__(self, api_url: str, clients: int) -> None:
        self.api_url, self.stop = api_url, threading.Event()
        self.records: list[tuple[float, float, int]] = []
        self.errors: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(clients)]

    def client(self, k: int) -> None:
        with httpx.Client(base_url=self.api_url, timeout=60) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                body = {
                    "provider": "kling",
                    "operation": "text2video",
                    "input": {"prompt": f"client {k} clip {i}: a red fox running through fresh snow", "duration": "5"},
                }
                t = time.perf_counter()
                try:
                    status = http.post("/v1/jobs", json=body).status_code
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors[type(exc).__name__] += 1
                    continue
                done = time.perf_counter()
                with self.lock:
                    self.records.append((done, done - t, status))


def main() -> int:
    args = parse_args()

    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="k4u-submit-rate-"))
    ok = False
    try:
        with pg_database(args.pg_admin_url, label="submitrate") as db_url, private_redis(tmp / "redis") as redis_url:
            sql_dir = tmp / "sqlcount"
            sql_dir.mkdir()
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")} | {
                "K4U_DATABASE_URL": db_url,
                "K4U_REDIS_URL": redis_url,
                "K4U_STORAGE_URL": f"file://{tmp}/objects",
                "K4U_DATA_DIR": str(tmp),
                "K4U_BASE_URL": "http://127.0.0.1:9",
                "K4U_BENCH_SQLCOUNT_DIR": str(sql_dir),
                "PYTHONPATH": str(BENCH / "sqlcount"),
            }
            api = spawn_child(k4u_cmd("api", "--port", str(port)), tmp / "api.log", env)
            try:
                ok = run(args, f"http://127.0.0.1:{port}", api, tmp, sql_dir)
            finally:
                api.terminate()
                try:
                    api.wait(20)
                except subprocess.TimeoutExpired:
                    api.kill()
                    api.wait()
    except KeyboardInterrupt:
        print("interrupted: processes stopped, database dropped")
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}")
    finally:
        if args.keep or not ok:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def run(args: argparse.Namespace, api_url: str, api: subprocess.Popen[bytes], tmp: Path, sql_dir: Path) -> bool:
    wait_http(f"{api_url}/healthz", 120, api)
    print(
        f"k4u api pid {api.pid} at {api_url} on PostgreSQL, {args.clients} clients, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s measured; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    load = Load(api_url, args.clients)
    for t in load.threads:
        t.start()
    time.sleep(args.warmup)
    time.sleep(1.2)  # the SQL counts are dumped about once a second
    sql_before = sql_counts(sql_dir)
    cpu_before = api_cpu_s(api.pid), resource.getrusage(resource.RUSAGE_SELF)
    spy = None
    if args.profile:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        spy = spawn_child(
            [
                exe,
                "record",
                "--pid",
                str(api.pid),
                "--rate",
                str(args.profile_rate),
                "--format",
                "raw",
                "--output",
                str(tmp / "profile.txt"),
                "--nonblocking",
                *(["--gil"] if args.profile_gil else []),
            ],
            tmp / "py-spy.log",
        )
    t0 = time.perf_counter()
    time.sleep(args.duration)
    t1 = time.perf_counter()
    cpu_after = api_cpu_s(api.pid), resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(1.2)
    sql_after = sql_counts(sql_dir)
    load.stop.set()
    for t in load.threads:
        t.join(60)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)

    window = [r for r in load.records if t0 <= r[0] < t1]
    codes = Counter(r[2] for r in window)
    lat = sorted(r[1] * 1000 for r in window if r[2] == 202)
    accepted = codes.get(202, 0)
    print(f"accepted: {accepted} in {t1 - t0:.1f} s = {accepted / (t1 - t0):.1f} accepted/s (status codes {dict(codes)}, client errors {dict(load.errors)})")
    if lat:
        print(f"latency of accepted POSTs: p50 {statistics.median(lat):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, max {lat[-1]:.1f} ms")
    api_cpu = cpu_after[0] - cpu_before[0]
    bench_cpu = sum(getattr(cpu_after[1], f) - getattr(cpu_before[1], f) for f in ("ru_utime", "ru_stime"))
    if accepted:
        print(
            f"CPU: API process {api_cpu:.1f} s ({1000 * api_cpu / accepted:.2f} ms per job, {100 * api_cpu / (t1 - t0):.0f}% of a core); "
            f"the bench's clients {bench_cpu:.1f} s; load average now {os.getloadavg()[0]:.2f}"
        )
        counts = Counter()
        for label, c in sql_after.items():
            counts.update(c)
            counts.subtract(sql_before.get(label, Counter()))
        created = counts.get("INSERT job", 0) or accepted  # the counts' window is a little wider: one INSERT per job
        per = {k: v / created for k, v in counts.items() if v > 0}
        print(
            f"SQL per accepted job: {sum(per.values()):.1f} round trips ("
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
            + ")"
        )
    if spy is not None:
        print_profile(tmp / "profile.txt", args.profile_top)
    return accepted > 0


def api_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
