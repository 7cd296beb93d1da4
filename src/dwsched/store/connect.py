"""Engines per database URL, with the settings each dialect needs.

SQLite: WAL, foreign keys, a busy timeout, and `BEGIN IMMEDIATE` for write transactions
so that two writers queue on the lock instead of failing halfway. PostgreSQL: psycopg 3
with SQLAlchemy's pool.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from dwsched.domain.errors import InvalidArgument
from dwsched.store.statements import BUSY_TIMEOUT_MS

WRITE = "dwsched_write"


def normalise_url(url: str) -> URL:
    """`postgresql://` means psycopg 3; `sqlite:///file` the standard driver."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidArgument("--db", f"The database URL {url!r} is not a URL.") from exc
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite+pysqlite")
    raise InvalidArgument(
        "--db", f"The database URL {url!r} is neither sqlite:///FILE nor postgresql://..."
    )


def create_engine(url: str) -> sa.Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_size=10, max_overflow=20, pool_recycle=1800)


def _set_wal(cursor: Any) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without waiting out the
    busy timeout, when another connection is switching the same new file: retry a while."""
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: URL) -> sa.Engine:
    if url.database in (None, "", ":memory:"):
        raise InvalidArgument("--db", "An in-memory SQLite database is not supported; name a file.")
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=8
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, explicitly
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
