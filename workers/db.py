"""Engine and session factory for SQLite (default) and PostgreSQL, and Alembic migrations."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Select, Table, event, inspect, select
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Mapped
from sqlmodel import Session, SQLModel, create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite gets WAL and a busy timeout for several processes."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            # Take the write lock at BEGIN so concurrent writers queue instead of failing mid-way.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


# A connection back from the pool within this many seconds of its last use is not pinged: under load
# that skips a round trip per transaction (pool_pre_ping pings every checkout), while one that sat
# idle (a PostgreSQL restart, a proxy's idle cut) is still tested before a statement can fail on it.
IDLE_PING_S = 2.0
pings_sent = 0  # pings this process has sent (read by bench/sqlcount)


def _reset_pings() -> None:
    global pings_sent
    pings_sent = 0


os.register_at_fork(after_in_child=_reset_pings)  # a prefork child counts its own


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping, for connections idle longer than IDLE_PING_S only (SQLAlchemy's documented
    "pessimistic disconnect handling" by checkout event: a DisconnectionError makes the pool drop the
    connection and check out a fresh one)."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, rec: Any) -> None:
        rec.info["k4u_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, rec: Any, _proxy: Any) -> None:
        since = rec.info.get("k4u_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return  # new (just connected), or used a moment ago
        global pings_sent
        pings_sent += 1
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection ({type(exc).__name__})") from None


def is_postgres(bind: Engine | Connection) -> bool:
    """Takes what Session.get_bind() returns (an Engine, or a Connection inside a test's transaction)."""
    return bind.dialect.name == "postgresql"


def rowcount(result: Result[Any]) -> int:
    """Rows matched by the UPDATE/DELETE that produced `result`: the compare-and-swap outcome.
    Session.execute is typed as returning Result, but for DML it is a CursorResult, which has it."""
    return cast(CursorResult[Any], result).rowcount


def table_of(model: type[SQLModel]) -> Table:
    """The Core Table behind a SQLModel table class, for bulk INSERTs (no per-row ORM work) and column
    metadata. SQLModel sets `__table__` without declaring it; the mapper's local_table is that object."""
    return cast(Table, inspect(model).local_table)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def autocommit_scope(engine: Engine) -> Iterator[Session]:
    """A session whose statements each commit on their own on PostgreSQL (autocommit: no BEGIN and
    COMMIT round trips; each statement sees committed data): for reads, and for a write that is one
    statement, atomic by itself. On SQLite a session_scope.
    """
    if not is_postgres(engine):
        with session_scope(engine) as session:
            yield session
        return
    with Session(autocommit(engine), expire_on_commit=False) as session:
        yield session


@functools.cache
def autocommit(engine: Engine) -> Engine:
    """The engine with AUTOCOMMIT isolation: one statement, one round trip (atomic by itself)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def in_claim(session: Session, key: Mapped[str], due: Select[Any]) -> ColumnElement[bool]:
    """`key IN (due)` for a claim's UPDATE, with the LIMIT of `due` holding. On PostgreSQL the rows
    are picked once, in a MATERIALIZED CTE with FOR UPDATE SKIP LOCKED: as a plain IN subquery the
    planner may run it again for each row the UPDATE visits, and since every row it updates stops
    being due, each run picks the next ones: a LIMIT of 1,000 claimed a whole batch of 10,000 jobs
    that share one next_at. SQLite runs an IN subquery once (and has one writer at a time)."""
    if not is_postgres(session.get_bind()):
        return key.in_(due.scalar_subquery())
    picked = due.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return key.in_(select(picked.c[0]))


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at url to the newest schema (alembic upgrade head)."""
    from alembic import command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
