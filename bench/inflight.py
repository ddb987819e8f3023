"""In-flight scale benchmark: how the beat tick's queries cost as the running jobs pile up.

On a fresh PostgreSQL database (dropped at the end, Ctrl-C included) it loads N running jobs per
level (default 1k, 10k, 100k; COPY) with `next_at` spread over the next hour and a fixed number
due, plus as many finished jobs with their delivered notifications, then times the engine's own
queries many times at a fixed `now`, each in a transaction that is rolled back so every
repetition sees the same rows: `claim_due` for RUNNING per provider and for QUEUED, SUBMITTING
and DOWNLOADING, `expired_deadlines` (and the ORDER BY deadline_at form proposed with migration
0005), `fail_expired_downloads`, `deliveries.claim_due`, the write of one batch poll's answer about
100 still-running jobs (`reschedule_running`, beside the executemany it replaced), and the whole
`tick()` (committed, then the claimed rows are made due again). It prints p50/p99 per query and level, and
`EXPLAIN (ANALYZE, BUFFERS)` of the exact SQL each call sent.

    .venv/bin/python bench/inflight.py
    .venv/bin/python bench/inflight.py --levels 1000,10000 --reps 100
    .venv/bin/python bench/inflight.py --drop-index ix_job_deadline     # the plans without that index
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from stack import percentile, pg_database

from models.status import JobStatus
from models.tables import Job, utcnow
from providers.registry import ADAPTERS
from workers import deliveries, jobs
from workers.db import get_engine, migrate
from workers.dispatch import RecordingDispatcher
from workers.services import sweep
from workers.services.download import fail_expired_downloads
from workers.settings import Settings

MIX = (("kling", "text2video", 0.6), ("midjourney", "imagine", 0.2), ("suno", "music", 0.2))
JOB_COLS = (
    "id",
    "provider",
    "operation",
    "status",
    "version",
    "progress",
    "provider_task_id",
    "input",
    "metadata",
    "callback_token",
    "submit_state",
    "submit_attempts",
    "submit_resends",
    "attempt",
    "download_attempts",
    "poll_count",
    "provider_cancel_attempts",
    "created_at",
    "updated_at",
    "submitted_at",
    "finished_at",
    "next_at",
    "deadline_at",
)
DELIVERY_COLS = ("id", "job_id", "event", "job_attempt", "url", "payload", "status", "version", "attempts", "next_at", "created_at", "delivered_at")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", default="1000,10000,100000", help="running jobs per level (default 1000,10000,100000)")
    p.add_argument("--due", type=int, default=200, help="running jobs due at `now` at every level (default 200)")
    p.add_argument("--finished-ratio", type=float, default=1.0, help="finished jobs per running job (default 1)")
    p.add_argument("--reps", type=int, default=200, help="timed calls per query and level (default 200)")
    p.add_argument("--ticks", type=int, default=30, help="timed whole tick() calls per level (default 30)")
    p.add_argument("--drop-index", action="append", default=[], help="drop this index after migrating (compare plans)")
    p.add_argument("--plans", choices=("last", "all", "none"), default="last", help="full EXPLAIN output for which level")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def load(url: str, n_running: int, args: argparse.Namespace, now: datetime, rng: random.Random) -> None:
    """TRUNCATE, then COPY n_running running jobs (`args.due` of them due), finished jobs with a
    delivered notification each, and a few pending notifications due at `now`."""
    import psycopg

    n_done = int(n_running * args.finished_ratio)
    due = set(rng.sample(range(n_running), min(args.due, n_running)))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("TRUNCATE job, job_event, asset, delivery, delivery_attempt")
        with conn.cursor() as cur, cur.copy(f"COPY job ({', '.join(JOB_COLS)}) FROM STDIN") as cp:
            for i in range(n_running + n_done):
                provider, op = pick(rng)
                running = i < n_running
                created = now - timedelta(seconds=rng.uniform(0, 3600 if running else 86400))
                next_at = (now - timedelta(seconds=rng.uniform(0, 5)) if i in due else now + timedelta(seconds=rng.uniform(1, 3600))) if running else None
                # Deadlines are in the future for running jobs (nothing to expire: the query must
                # prove it) and in the past for finished ones, as deadline_at is never cleared.
                deadline = now + timedelta(seconds=rng.uniform(600, 7200)) if running else created + timedelta(seconds=3600)
                cp.write_row(
                    (
                        f"job_{i:012x}{rng.getrandbits(64):016x}",
                        provider,
                        op,
                        "running" if running else "succeeded",
                        3,
                        50 if running else 100,
                        f"task-{i}",
                        json.dumps({"prompt": f"bench {i}"}),
                        "{}",
                        f"tok{i}",
                        "accepted",
                        1,
                        0,
                        1,
                        0 if running else 1,
                        rng.randint(0, 60),
                        0,
                        created,
                        created,
                        created,
                        None if running else created + timedelta(seconds=300),
                        next_at,
                        deadline,
                    )
                )
        rows = conn.execute("SELECT id, created_at FROM job WHERE status = 'succeeded'").fetchall()
        with conn.cursor() as cur, cur.copy(f"COPY delivery ({', '.join(DELIVERY_COLS)}) FROM STDIN") as cp:
            for k, (job_id, created) in enumerate(rows):
                pending = k < 20
                cp.write_row(
                    (
                        f"msg_{job_id}_succeeded",
                        job_id,
                        "job.succeeded",
                        1,
                        "https://hooks.example/x",
                        "{}",
                        "pending" if pending else "delivered",
                        1,
                        1,
                        now - timedelta(seconds=1) if pending else None,
                        created,
                        None if pending else created,
                    )
                )
        conn.execute("VACUUM ANALYZE job")
        conn.execute("VACUUM ANALYZE delivery")


def pick(rng: random.Random) -> tuple[str, str]:
    x = rng.random()
    for provider, op, share in MIX:
        if x < share:
            return provider, op
        x -= share
    return MIX[0][0], MIX[0][1]


class Capture:
    """Records the SQL the engine sends, to EXPLAIN exactly that."""

    def __init__(self, engine: Engine) -> None:
        self.on, self.sent = False, []  # type: ignore[var-annotated]
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool) -> None:
        if self.on and not statement.lstrip().upper().startswith("SELECT 1"):
            self.sent.append((statement, params))


def queries(s: Settings, now: datetime, polled: list[str]) -> dict[str, Callable[[Session], Any]]:
    """The tick's queries, and the write of one batch poll's answer about `polled` (still running)."""
    lim, lease = s.poll_batch_limit, s.lease_s
    out: dict[str, Callable[[Session], Any]] = {
        f"claim_due running {name}": (lambda ss, name=name: jobs.claim_due(ss, JobStatus.RUNNING, now=now, lease_s=lease, limit=lim, provider=name))
        for name in ADAPTERS
    }
    for st in (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.DOWNLOADING):
        out[f"claim_due {st.value}"] = lambda ss, st=st: jobs.claim_due(ss, st, now=now, lease_s=lease, limit=lim)
    out["due_providers running"] = lambda ss: jobs.due_providers(ss, JobStatus.RUNNING, now)
    out["expired_deadlines"] = lambda ss: jobs.expired_deadlines(ss, now, sweep._DEADLINED, lim)
    out["expired_deadlines ORDER BY (new)"] = lambda ss: expired_by_deadline(ss, now, lim)
    out["fail_expired_downloads"] = lambda ss: fail_expired_downloads(ss, settings=s, now=now, limit=lim)
    out["claim_due_deliveries"] = lambda ss: deliveries.claim_due(ss, now=now, lease_s=lease, limit=lim)
    later = [jobs.Reschedule(job_id, 60, now + timedelta(seconds=30)) for job_id in polled]
    out[f"reschedule_running {len(polled)}"] = lambda ss: jobs.reschedule_running(ss, later, now) or later
    out[f"reschedule {len(polled)} executemany"] = lambda ss: (
        ss.execute(
            jobs._RESCHEDULE,
            [  # the form before unnest(), to compare
                {"b_id": r.job_id, "b_progress": r.progress, "b_next_at": r.next_at, "b_now": now} for r in later
            ],
        )
        and later
    )
    return out


def expired_by_deadline(session: Session, now: datetime, limit: int) -> Any:
    """The proposed form of `jobs.expired_deadlines`: the same filter, ordered by deadline_at, so
    PostgreSQL walks the partial index ix_job_deadline (migration 0005) and stops at `now`."""
    return session.scalars(
        select(Job)
        .where(Job.status.in_([s.value for s in sweep._DEADLINED]), Job.deadline_at <= now)  # type: ignore[attr-defined]
        .order_by(Job.deadline_at)
        .limit(limit)
    ).all()  # type: ignore[arg-type]


def time_queries(engine: Engine, cap: Capture, s: Settings, now: datetime, reps: int) -> dict[str, tuple[list[float], int, list[Any]]]:
    """name -> (sorted ms per call, rows returned, the statements it sent)."""
    out = {}
    with Session(engine) as ss:  # the jobs of one batch poll (Midjourney's chunk): running, not due
        polled = list(ss.scalars(select(Job.id).where(Job.provider == "midjourney", Job.status == "running").limit(100)))
    for name, fn in queries(s, now, polled).items():
        ms: list[float] = []
        rows = 0
        for r in range(reps + 5):  # the first 5 warm the pool, the plan cache and the buffers
            with Session(engine) as ss:
                cap.on, cap.sent = r == 0, []
                t0 = time.perf_counter()
                got = fn(ss)
                elapsed = (time.perf_counter() - t0) * 1000
                cap.on = False
                if r == 0:
                    statements = list(cap.sent)
                ss.rollback()
            if r >= 5:
                ms.append(elapsed)
                rows = len(got)
        out[name] = (sorted(ms), rows, statements)
    return out


def time_ticks(engine: Engine, s: Settings, now: datetime, n: int) -> tuple[list[float], dict[str, int]]:
    """Whole tick() calls (committed); after each, the claimed rows are made due again."""
    rec = RecordingDispatcher()
    rt = SimpleNamespace(settings=s, clock=lambda: now, engine=engine, dispatcher=rec, batch_off_until={})
    ms, counts = [], {}
    for _ in range(n):
        rec.sent.clear()
        t0 = time.perf_counter()
        counts = sweep.tick(rt)  # type: ignore[arg-type]
        ms.append((time.perf_counter() - t0) * 1000)
        with engine.begin() as conn:  # back to due, outside the timing
            back = {"at": now - timedelta(seconds=1), "lease": now + timedelta(seconds=s.lease_s)}  # claims set next_at = now + lease
            conn.execute(text("UPDATE job SET next_at = :at WHERE status = 'running' AND next_at = :lease"), back)
            conn.execute(text("UPDATE delivery SET next_at = :at WHERE status = 'pending' AND next_at = :lease"), back)
    counts["messages"] = len(rec.sent)
    return sorted(ms), counts


def explain(engine: Engine, statements: list[Any]) -> list[str]:
    lines = []
    with engine.connect() as conn:
        trans = conn.begin()
        for stmt, params in statements:
            if isinstance(params, list | tuple) and params and isinstance(params[0], dict):
                params = params[0]  # an executemany: the plan of one of its rows
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {stmt}", params).scalars().all()
            lines += plan
        trans.rollback()
    return lines


def plan_summary(lines: list[str]) -> str:
    """The scan nodes of a plan, e.g. 'Index Scan using ix_job_due; Seq Scan on job'."""
    nodes = []
    for ln in lines:
        body = ln.strip().removeprefix("->").strip()
        if "Scan" in body.split("(")[0]:
            nodes.append(body.split("  (")[0])
    buffers = [ln.strip() for ln in lines if ln.strip().startswith("Buffers:")]
    return "; ".join(dict.fromkeys(nodes)) + (f" [{buffers[0]}]" if buffers else "")


def _rss_mib() -> tuple[float, float]:
    """VmRSS and VmHWM of this process (it runs the ticks): flat across levels means the tick's
    memory does not grow with the jobs in flight."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> int:
    args = parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]

    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    rng = random.Random(args.seed)
    settings = Settings(_env_file=None, database_url="sqlite://")  # type: ignore[call-arg]
    print(
        f"tick settings: poll_batch_limit {settings.poll_batch_limit}, lease {settings.lease_s:g} s, "
        f"beat interval {settings.beat_interval_s:g} s (the `k4u dev` defaults)"
    )
    try:
        with pg_database(args.pg_admin_url, label="inflight") as url:
            migrate(url)
            engine = get_engine(url)
            with engine.begin() as conn:
                for name in args.drop_index:
                    conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
                    print(f"dropped index {name}")
            cap = Capture(engine)
            summary: dict[str, dict[int, str]] = {}
            for level in levels:
                now = utcnow()
                t0 = time.perf_counter()
                load(url, level, args, now, rng)
                print(
                    f"\n== {level:,} running jobs ({args.due} due), {int(level * args.finished_ratio):,} finished: "
                    f"loaded in {time.perf_counter() - t0:.1f} s =="
                )
                timed = time_queries(engine, cap, settings, now, args.reps)
                for name, (ms, rows, statements) in timed.items():
                    plan = explain(engine, statements)
                    summary.setdefault(name, {})[level] = f"p50 {statistics.median(ms):.2f} / p99 {percentile(ms, 0.99):.2f} ms"
                    print(f"{name:32s} rows {rows:5d}  p50 {statistics.median(ms):7.2f} ms  p99 {percentile(ms, 0.99):7.2f} ms  | {plan_summary(plan)}")
                    if args.plans == "all" or (args.plans == "last" and level == levels[-1]):
                        print("\n".join(f"      {ln}" for ln in plan))
                with contextlib.suppress(OSError):  # peak RSS from here on: the ticks' own (the load above is not the tick's)
                    Path("/proc/self/clear_refs").write_text("5")
                rss_before = _rss_mib()[0]
                ms, counts = time_ticks(engine, settings, now, args.ticks)
                summary.setdefault("whole tick()", {})[level] = f"p50 {statistics.median(ms):.1f} / p99 {percentile(ms, 0.99):.1f} ms"
                print(f"{'whole tick()':32s} p50 {statistics.median(ms):7.1f} ms  p99 {percentile(ms, 0.99):7.1f} ms  (last: {counts})")
                rss = _rss_mib()
                summary.setdefault("RSS before ticks / peak (MiB)", {})[level] = f"{rss_before:.0f} / {rss[1]:.0f} (+{rss[1] - rss_before:.1f})"
                print(f"{'RSS of the ticks':32s} {rss_before:.0f} MiB before, peak {rss[1]:.0f} MiB while ticking, {rss[0]:.0f} MiB after")
            print("\n== summary: p50 / p99 per level ==")
            print(f"{'query':32s}" + "".join(f"{f'{lv:,} running':>28s}" for lv in levels))
            for name, per in summary.items():
                print(f"{name:32s}" + "".join(f"{per.get(lv, '-'):>28s}" for lv in levels))
            engine.dispose()
    except KeyboardInterrupt:
        print("interrupted: database dropped")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
