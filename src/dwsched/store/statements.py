"""Hot paths: Core statements compiled once per dialect, run on the DBAPI cursor.

SQLAlchemy builds and compiles every statement here, but only once per statement shape;
a request then pays only for binding values and the driver's round trip. Cold paths use
SQLAlchemy's Connection as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import StoreBusy
from dwsched.store.dialect import is_sqlite

BUSY_TIMEOUT_MS = 30_000


class Compiled:
    """One statement in the dialect's own SQL text, with how to order its parameters."""

    __slots__ = ("fixed", "positions", "sql")

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        # Literals inside the statement (e.g. CASE ... THEN 1) compile to anonymous parameters.
        self.fixed = {k: v for k, v in compiled.params.items() if v is not None}
        positions = getattr(compiled, "positiontup", None)
        self.positions: tuple[str, ...] | None = (
            tuple(positions) if dialect.paramstyle == "qmark" and positions is not None else None
        )

    def bind(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        if self.fixed:
            values = {**self.fixed, **values}
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


def run(cursor: Any, compiled: Compiled, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    cursor.execute(compiled.sql, compiled.bind(values))
    return list(cursor.fetchall())


class HotConnections:
    """DBAPI connections for the hot paths (every request's key, nonce and listing).

    On SQLite, one connection per thread (and per patience: `wait` false has a zero busy
    timeout), kept open: a pool checkout costs as much as the short statements it serves.
    On PostgreSQL, the database's pool.
    """

    def __init__(self, database: sa.Engine) -> None:
        self.database = database
        self.sqlite = is_sqlite(database.dialect)
        self.busy = database.dialect.loaded_dbapi.OperationalError
        self._local = threading.local()
        self._kept: list[Any] = []
        self._lock = threading.Lock()

    def get(self, wait: bool) -> Any:
        if not self.sqlite:
            return self.database.raw_connection()
        name = "patient" if wait else "impatient"
        connection = getattr(self._local, name, None)
        if connection is None:
            proxied = self.database.raw_connection()
            proxied.detach()  # ours for the thread's life, outside the pool's count
            connection = proxied.dbapi_connection
            if connection is None:
                raise RuntimeError("the pool gave a closed connection")
            if not wait:
                connection.execute("PRAGMA busy_timeout=0")
            with self._lock:
                self._kept.append(connection)
            setattr(self._local, name, connection)
        return connection

    def release(self, connection: Any) -> None:
        if not self.sqlite:
            connection.close()  # back to the pool

    def close(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, []
        for connection in kept:
            connection.close()


@contextmanager
def raw_transaction(
    hot: HotConnections, write: bool, wait: bool = True, snapshot: bool = True
) -> Iterator[Any]:
    """A DBAPI cursor inside one transaction.

    SQLite connections run in driver autocommit mode (see connect.py), so the transaction is
    begun here: `BEGIN IMMEDIATE` for writes. psycopg begins one implicitly. With `wait`
    false, a SQLite write that would queue behind another writer raises StoreBusy at once.
    `snapshot` false, for a read of one statement: no explicit transaction at all.
    """
    connection = hot.get(wait)
    sqlite = hot.sqlite
    try:
        cursor = connection.cursor()
        if sqlite and (write or snapshot):
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        elif not sqlite and not write and snapshot:
            # One snapshot for a count and its page (READ COMMITTED gives each its own).
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield cursor
        except BaseException:
            if not sqlite:
                connection.rollback()
            elif connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        if not sqlite:
            connection.commit()
        elif write or snapshot:
            cursor.execute("COMMIT")
        cursor.close()
    except hot.busy as exc:
        if sqlite and connection.in_transaction:
            connection.execute("ROLLBACK")
        if sqlite and "locked" in str(exc):
            raise StoreBusy("The database is busy with a long write; try again.") from exc
        raise
    finally:
        hot.release(connection)
