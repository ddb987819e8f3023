"""maintain: the beat's VACUUM (ANALYZE) of our PostgreSQL tables when their dead rows or their
changes since the last ANALYZE pile up.

Every poll round of a running job rewrites its row twice (the claim, then the answer), and
`next_at` is indexed, so no update is HOT: each leaves a dead row and an index entry behind. Left
alone they make every index scan walk the history (a due claim read 21,456 entries of ix_job_due
for 810 due jobs at 20,000 in flight), and statistics taken when the table was small make the
planner pick a scan of every running job. PostgreSQL's autovacuum does this job where it is on;
where it is off (this kind of machine ships with `autovacuum = off`), or lags behind a burst, this
step does it: a table is vacuumed once its dead rows pass K4U_VACUUM_DEAD_ROWS and a tenth of its
live rows, analyzed once as many rows changed since its last ANALYZE. A session advisory lock keeps
two workers from vacuuming at once. SQLite needs none of it (nothing is done there).

clean_store: the beat's removal of what a worker killed mid-write (SIGKILL, OOM) left in the store,
temp files (local) and unfinished multipart uploads (S3), once K4U_STORAGE_LEFTOVER_GRACE_S has
passed since their last write; that grace is longer than a download attempt may last, so a write
still going on is never touched. It also removes the uploads past K4U_UPLOAD_TTL_S that no job
still waiting to be submitted references (their stored object once no other upload shares it).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import text
from sqlmodel import SQLModel

from workers.context import Runtime
from workers.db import autocommit, is_postgres
from workers.uploads import expire_uploads

log = logging.getLogger("k4u.maintain")

_LOCK = 0x6B34752D6D61  # pg_try_advisory_lock key of this step ("k4u-ma")
_STATS = text(
    "SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = ANY(:tables)"
)


def maintain(rt: Runtime) -> dict[str, str]:
    """Vacuum or analyze the tables that need it; table -> what was done ("vacuum" or "analyze")."""
    if not is_postgres(rt.engine):
        return {}
    floor = rt.settings.vacuum_dead_rows
    done: dict[str, str] = {}
    with autocommit(rt.engine).connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK}).scalar():
            return {}  # another worker is at it
        try:
            tables = sorted(SQLModel.metadata.tables)
            for name, live, dead, changed in conn.execute(_STATS, {"tables": tables}).all():
                threshold = max(floor, live // 10)
                what = "vacuum" if dead > threshold else "analyze" if changed > threshold else None
                if what is None:
                    continue
                started = time.perf_counter()
                # The name comes from our own metadata (matched by pg_stat_user_tables), never from input.
                conn.execute(text(f'VACUUM (ANALYZE) "{name}"' if what == "vacuum" else f'ANALYZE "{name}"'))
                done[name] = what
                log.info(
                    "%s of %s (%d live rows, %d dead, %d changed since the last analyze) took %.0f ms",
                    what,
                    name,
                    live,
                    dead,
                    changed,
                    (time.perf_counter() - started) * 1000,
                )
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
    return done


def clean_store(rt: Runtime) -> int:
    """Remove the store's leftovers of interrupted writes older than K4U_STORAGE_LEFTOVER_GRACE_S, and
    the uploads past K4U_UPLOAD_TTL_S that no waiting job needs (workers.uploads); how many in all."""
    removed = rt.store.remove_leftovers(rt.clock() - timedelta(seconds=rt.settings.storage_leftover_grace_s))
    if removed:
        log.info("removed %d leftovers of interrupted writes from the store", removed)
    return removed + expire_uploads(rt)
