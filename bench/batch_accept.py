"""How long POST /v1/batches takes to accept 10,000 jobs, on SQLite and PostgreSQL.

Runs the API in this process under uvicorn on a loopback port (a recording dispatcher stands in
for the broker: accepting a batch sends no message), posts a pre-encoded body of N Kling
text2video items (each with an idempotency_key, metadata and a callback_url) and prints the wall
time from the first byte sent to the 202 read, per run and the median, with the CPU time this
process spent meanwhile (API and client: the figure to read when other work shares the cores). Each run uses a fresh
database: a SQLite file in a temp dir, and a throw-away PostgreSQL database created through
--pg-admin-url (dropped afterwards). The target is under 3 s for 10,000 items on 2 cores.

    .venv/bin/python bench/batch_accept.py
    .venv/bin/python bench/batch_accept.py --items 10000 --runs 3 --only sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.main import create_app  # noqa: E402
from bench.stack import pg_database  # noqa: E402
from cli.procs import free_port  # noqa: E402
from workers.db import get_engine, migrate  # noqa: E402
from workers.dispatch import RecordingDispatcher  # noqa: E402
from workers.settings import Settings  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=10_000, help="jobs per batch (default 10000)")
    p.add_argument("--runs", type=int, default=3, help="batches posted per database, each on a fresh database (default 3)")
    p.add_argument("--only", choices=["sqlite", "postgres"], help="one database only")
    p.add_argument("--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres", help="where to create the throw-away PostgreSQL database")
    return p.parse_args()


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    port = free_port()
    app = create_app(settings, dispatcher=RecordingDispatcher())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="k4u-bench-") as tmp:
        url = f"sqlite:///{tmp}/k4u.db"
        try:
            yield url
        finally:
            get_engine(url).dispose()


def body(n: int) -> bytes:
    tag = secrets.token_hex(4)
    jobs = [
        {
            "provider": "kling",
            "operation": "text2video",
            "input": {"prompt": f"a red fox in snow, take {i}", "duration": "5"},
            "idempotency_key": f"bench-{tag}-{i}",
            "metadata": {"row": i},
            "callback_url": f"http://127.0.0.1:9/hook/{i}",
        }
        for i in range(n)
    ]
    return json.dumps({"jobs": jobs, "callback_url": "http://127.0.0.1:9/batch", "metadata": {"bench": tag}}).encode()


def one_run(url: str, n: int) -> tuple[float, float]:
    migrate(url)
    with tempfile.TemporaryDirectory(prefix="k4u-bench-objects-") as objects:
        settings = Settings(database_url=url, storage_url=f"file://{objects}", allow_private_urls=True, base_url="http://127.0.0.1:9")
        payload = body(n)
        with serve(settings) as api, httpx.Client(base_url=api, timeout=120) as client:
            started, cpu = time.perf_counter(), time.process_time()
            r = client.post("/v1/batches", content=payload, headers={"content-type": "application/json"})
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            if r.status_code != 202 or len(r.json()["job_ids"]) != n:
                raise SystemExit(f"unexpected answer {r.status_code}: {r.text[:500]}")
    return seconds, cpu


def main() -> int:
    args = parse_args()
    kinds = [args.only] if args.only else ["sqlite", "postgres"]
    print(f"POST /v1/batches with {args.items} items ({len(body(args.items)) / 1e6:.1f} MB body), {args.runs} run(s) per database")
    for kind in kinds:
        figures = []
        for _ in range(args.runs):
            with sqlite_database() if kind == "sqlite" else pg_database(args.pg_admin_url.replace("+psycopg", ""), label="batch") as url:
                figures.append(one_run(url, args.items))
        runs = ", ".join(f"{s:.2f}" for s, _ in figures)
        cpu = statistics.median(c for _, c in figures)
        print(
            f"{kind}: median {statistics.median(s for s, _ in figures):.2f} s to accept {args.items} jobs "
            f"(runs: {runs}; median CPU of this process {cpu:.2f} s; load average {os.getloadavg()[0]:.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
