"""Engine and session factory for SQLite (default) and PostgreSQL, and Alembic migrations."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, event, inspect
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
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
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)



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
