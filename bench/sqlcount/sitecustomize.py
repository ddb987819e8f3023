"""Bench-only: count the SQL a process sends, when K4U_BENCH_SQLCOUNT_DIR is set.

`bench/throughput.py --sustained` puts this directory on PYTHONPATH of `k4u dev`, so every
process of the stack (API, workers and their pool children, beat) loads it at start. Counts per
statement verb, plus transactions (commits, rollbacks) and the pings `workers.db` sends before
reusing a connection that sat idle (its counter `pings_sent`), are written to `<dir>/<pid>.json` about once a second by a thread
started in the process that executes (so after a prefork fork too). Nothing is ever sent anywhere.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

_DIR = os.environ.get("K4U_BENCH_SQLCOUNT_DIR")


def _install(out_dir: str) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    counts: dict[str, int] = {}
    lock = threading.Lock()
    owner = {"pid": 0}

    def dump_forever(pid: int) -> None:
        label = " ".join(a for a in sys.argv[1:4] if not a.startswith("/"))
        while True:
            time.sleep(1.0)
            with lock:
                data = {"pid": pid, "label": label, "counts": dict(counts)}
            db = sys.modules.get("workers.db")
            if db is not None and getattr(db, "pings_sent", 0):
                data["counts"]["ping (idle connection)"] = db.pings_sent
            tmp = os.path.join(out_dir, f".{pid}.tmp")
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, os.path.join(out_dir, f"{pid}.json"))

    def bump(key: str) -> None:
        pid = os.getpid()
        with lock:
            if owner["pid"] != pid:  # first use in this process (or a forked child): fresh counts
                owner["pid"] = pid
                counts.clear()
                threading.Thread(target=dump_forever, args=(pid,), daemon=True).start()
            counts[key] = counts.get(key, 0) + 1

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        words = statement.split(None, 3)
        verb = words[0].upper() if words else "?"
        table = ""
        if verb == "SELECT" and " FROM " in statement:
            table = statement.split(" FROM ", 1)[1].split(None, 1)[0]
        elif verb in ("UPDATE", "INSERT") and len(words) > 2:
            table = words[1] if verb == "UPDATE" else words[2]
        bump(f"{verb} {table}".strip())

    @event.listens_for(Engine, "commit")
    def _commit(_conn):  # type: ignore[no-untyped-def]
        bump("COMMIT")

    @event.listens_for(Engine, "rollback")
    def _rollback(conn):  # type: ignore[no-untyped-def]
        info = getattr(conn.connection.driver_connection, "info", None)  # psycopg: the server's transaction status
        if info is not None and int(info.transaction_status) == 0:  # IDLE (autocommit): psycopg sends nothing
            return
        bump("ROLLBACK")

    @event.listens_for(Pool, "connect")
    def _connect(_dbapi_conn, _record):  # type: ignore[no-untyped-def]
        bump("new connection")


if _DIR:
    _install(_DIR)
