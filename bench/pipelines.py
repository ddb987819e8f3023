"""Pipelines at scale: N three-step pipelines (3N jobs) in one POST /v1/batches, and how soon a parent's
success queues its child.

Each pipeline is Midjourney imagine -> Kling image2video on `k4u://items/<3i>/assets/0` -> Kling
video_to_audio on `k4u://items/<3i+1>/assets/0`. The API runs in this process under uvicorn on a
loopback port (a recording dispatcher stands in for the broker); the figures printed:

* accept: wall time from the first byte of the batch sent to the 202 read (target: under 5 s for
  10,000 pipelines, 30,000 jobs), and that every item reference became its job's `k4u://jobs/...`.
* queue latency: for `--finish` first steps (default: all of them, at most 2,000), a stored asset is
  recorded and the job is moved to succeeded through the engine's own finish (lifecycle.finish, as
  the download step does); the time from the start of that transaction to the moment its child is
  seen `queued` by another connection, p50/p99/max (target: p99 under 2 s). The child is queued in
  the parent's own transaction, so this is the commit's time.
* the tick's sweep: a crash that commits parents without their children's step is simulated for
  `--crash` parents (their children left waiting); one tick's settle of them is timed.

    .venv/bin/python bench/pipelines.py                       # 10,000 pipelines on SQLite and PostgreSQL
    .venv/bin/python bench/pipelines.py --pipelines 50 --only sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import col, func, select  # noqa: E402

from bench.batch_accept import serve, sqlite_database  # noqa: E402
from bench.stack import pg_database  # noqa: E402
from models.status import JobStatus  # noqa: E402
from models.tables import Asset, Job  # noqa: E402
from workers import jobs  # noqa: E402
from workers.db import get_engine, migrate, session_scope  # noqa: E402
from workers.services import pipelines  # noqa: E402
from workers.services.lifecycle import finish  # noqa: E402
from workers.settings import Settings  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipelines", type=int, default=10_000, help="three-step pipelines in the batch (default 10000: 30000 jobs)")
    p.add_argument("--finish", type=int, default=2_000, help="first steps finished to time their children's queueing (default 2000)")
    p.add_argument("--crash", type=int, default=200, help="first steps committed without their children's step, for the tick (default 200)")
    p.add_argument("--only", choices=["sqlite", "postgres"], help="one database only")
    p.add_argument("--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres", help="where to create the throw-away PostgreSQL database")
    return p.parse_args(argv)


def body(n: int) -> bytes:
    items: list[dict[str, object]] = []
    for i in range(n):
        items += [
            {"provider": "midjourney", "operation": "imagine", "input": {"prompt": f"a lighthouse at dawn, take {i}"}},
            {"provider": "kling", "operation": "image2video", "input": {"prompt": "the light turns", "image": f"k4u://items/{3 * i}/assets/0"}},
            {"provider": "kling", "operation": "video_to_audio", "input": {"video_url": f"k4u://items/{3 * i + 1}/assets/0", "bgm_prompt": "calm"}},
        ]
    return json.dumps({"jobs": items}).encode()


def _succeed(settings: Settings, job_id: str, *, hook: bool = True) -> None:
    """The first step's success as the engine records it: queued -> ... -> downloading, a stored asset,
    then lifecycle.finish (which queues the child in the same transaction unless `hook` is off)."""
    engine = get_engine(settings.database_url)
    now = jobs.utcnow()
    with session_scope(engine) as s:
        job = jobs.get_job(s, job_id)
        assert job is not None
        for status in (JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING):
            jobs.transition(s, job, status, reason="bench", now=now)
        s.add(
            Asset(
                job_id=job_id,
                index=0,
                kind="image",
                source_url="https://x.invalid/a.png",
                storage_key=f"jobs/{job_id}/0.png",
                content_type="image/png",
                size=1000,
                sha256="0" * 64,
                stored_at=now,
            )
        )
        s.flush()
        if hook:
            finish(s, job, JobStatus.SUCCEEDED, settings=settings, now=now, reason="bench: stored 1 asset(s)")
        else:
            jobs.transition(s, job, JobStatus.SUCCEEDED, reason="bench: stored 1 asset(s), children skipped (a crash)", now=now, finished_at=now, next_at=None)


def run(url: str, args: argparse.Namespace) -> dict[str, float]:
    migrate(url)
    n = args.pipelines
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="k4u-bench-objects-") as objects:
        settings = Settings(
            database_url=url,
            storage_url=f"file://{objects}",
            allow_private_urls=True,
            base_url="http://127.0.0.1:9",
            max_batch_jobs=max(10_000, 3 * n),
            max_body_bytes=max(1 << 20, 400 * n),
        )
        payload = body(n)
        with serve(settings) as api, httpx.Client(base_url=api, timeout=300) as client:
            started = time.perf_counter()
            r = client.post("/v1/batches", content=payload, headers={"content-type": "application/json"})
            out["accept_s"] = time.perf_counter() - started
            if r.status_code != 202 or len(r.json()["job_ids"]) != 3 * n:
                raise SystemExit(f"unexpected answer {r.status_code}: {r.text[:500]}")
            ids: list[str] = r.json()["job_ids"]
        engine = get_engine(url)
        with session_scope(engine) as s:
            counts = dict(s.execute(select(col(Job.status), func.count()).where(col(Job.batch_id) == r.json()["id"]).group_by(col(Job.status))).all())
            child = s.get(Job, ids[2])
            assert child is not None and child.input["video_url"] == f"k4u://jobs/{ids[1]}/assets/0", child.input
        if counts != {"queued": n, "waiting": 2 * n}:
            raise SystemExit(f"unexpected statuses after accept: {counts}")
        roots = ids[0::3]
        crashed = roots[: min(args.crash, n // 2)]
        timed = roots[len(crashed) : len(crashed) + min(args.finish, n - len(crashed))]
        lat: list[float] = []
        first = len(crashed)
        for k, root in enumerate(timed):
            kid = ids[3 * (first + k) + 1]
            t0 = time.perf_counter()
            _succeed(settings, root)
            with session_scope(engine) as s:  # another connection sees the child queued
                status = s.scalar(select(col(Job.status)).where(col(Job.id) == kid))
            lat.append(time.perf_counter() - t0)
            if status != JobStatus.QUEUED:
                raise SystemExit(f"child {kid} is {status} after its parent succeeded")
        if lat:
            q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [lat[0]] * 99
            out |= {"queue_p50_s": statistics.median(lat), "queue_p99_s": q[98], "queue_max_s": max(lat), "finished": len(lat)}
        for root in crashed:
            _succeed(settings, root, hook=False)
        if crashed:
            t0 = time.perf_counter()
            with session_scope(engine) as s:
                ready = pipelines.ready(s, len(crashed) + 10)
                pipelines.settle(s, ready, settings=settings, now=jobs.utcnow() + timedelta(seconds=1), finish=finish)
            out["tick_settle_s"], out["tick_settled"] = time.perf_counter() - t0, len(ready)
            if len(ready) != len(crashed):
                raise SystemExit(f"the tick found {len(ready)} children for {len(crashed)} crashed parents")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = [args.only] if args.only else ["sqlite", "postgres"]
    print(f"POST /v1/batches with {args.pipelines} three-step pipelines ({3 * args.pipelines} jobs, {len(body(args.pipelines)) / 1e6:.1f} MB body)")
    for kind in kinds:
        with sqlite_database() if kind == "sqlite" else pg_database(args.pg_admin_url.replace("+psycopg", ""), label="pipes") as url:
            f = run(url, args)
        line = f"{kind}: accepted in {f['accept_s']:.2f} s"
        if "finished" in f:
            line += f"; child queued after its parent's success: p50 {f['queue_p50_s'] * 1000:.1f} ms, p99 {f['queue_p99_s'] * 1000:.1f} ms, max {f['queue_max_s'] * 1000:.1f} ms over {int(f['finished'])} parents"
        if "tick_settled" in f:
            line += f"; the tick queued {int(f['tick_settled'])} children a crash left waiting in {f['tick_settle_s']:.2f} s"
        print(line + f" (load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
