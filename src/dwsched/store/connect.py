"""Engines per database URL, with the settings each dialect needs.

SQLite: WAL, foreign keys, a busy timeout, and `BEGIN IMMEDIATE` for write transactions
so that two writers queue on the lock instead of failing halfway. PostgreSQL: psycopg 3
with SQLAlchemy's pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from dwsched.domain.errors import InvalidArgument
from dwsched.store.statements import BUSY_TIMEOUT_MS

WRITE = "dwsched_write"
log = logging.getLogger("dwsched.store")


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


def sqlite_file(url: str) -> str:
    """The file of a SQLite database URL; "" for another database."""
    try:
        parsed = normalise_url(url)
    except InvalidArgument:
        return ""
    return parsed.database or "" if parsed.get_backend_name() == "sqlite" else ""


def passwordless_postgresql(url: str) -> bool:
    """Whether `url` reaches PostgreSQL without a password (trust or peer authentication,
    or a password file): whoever can reach that server may then log in the same way."""
    try:
        parsed = normalise_url(url)
    except InvalidArgument:
        return False
    return parsed.get_backend_name() == "postgresql" and not parsed.password


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


def private_file(path: str) -> None:
    """Make the database file readable by its owner only (0600): created so when missing,
    tightened when group or others may read it, refused (InvalidArgument) when it belongs to
    another user. SQLite gives its -wal and -shm files the
    mode of the database. Tasks run as another user cannot then read it (docs/security.md)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = os.stat(path)
        if found.st_uid != os.geteuid():
            raise InvalidArgument(
                "--db",
                f"The database file {path} belongs to uid {found.st_uid}, not to this "
                f"process's user (uid {os.geteuid()}), who could read or change it; `chown` "
                "it to dwsched's user or use another file.",
            ) from None
        mode = found.st_mode
        if stat.S_IMODE(mode) & 0o077:
            try:
                os.chmod(path, 0o600)
            except PermissionError:
                log.warning("database_mode path=%s mode=%04o: others may read it", path, mode)
            else:
                log.warning(
                    "database_mode path=%s was %04o; made 0600 (owner only)",
                    path,
                    stat.S_IMODE(mode),
                )
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                if stat.S_IMODE(os.stat(path + suffix).st_mode) & 0o077:
                    os.chmod(path + suffix, 0o600)
    else:
        os.close(fd)


def _sqlite_engine(url: URL) -> sa.Engine:
    if url.database in (None, "", ":memory:"):
        raise InvalidArgument("--db", "An in-memory SQLite database is not supported; name a file.")
    with contextlib.suppress(FileNotFoundError):  # a missing directory: SQLite says so
        private_file(url.database)
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
