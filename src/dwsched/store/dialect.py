"""The few statements (and choices) that differ between SQLite and PostgreSQL.

Every other store module asks here rather than comparing dialect names itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def is_sqlite(dialect: sa.Dialect) -> bool:
    """SQLite: a file in this process, one writer at a time, statements without a network
    round trip (so short reads may be served inline, and connections are kept per thread)."""
    return dialect.name == "sqlite"


def insert_on_conflict(dialect: sa.Dialect, table: sa.Table) -> Any:
    """An INSERT into `table` that can say what a key conflict does (its
    `on_conflict_do_nothing` / `on_conflict_do_update`, and `excluded`)."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring_conflicts(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that skips rows whose key exists already."""
    return insert_on_conflict(conn.dialect, table).on_conflict_do_nothing()


def among(
    conn: sa.Connection, column: sa.ColumnElement[Any], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """`column IN values`. PostgreSQL: `column = ANY(one array parameter)`, so that a list
    of hundreds of ids is one bound value, not hundreds for the statement to render and the
    driver to parse (a day's generation sends thousands of such lists)."""
    if conn.dialect.name == "postgresql":
        array = postgresql.ARRAY(column.type)
        return column == sa.any_(sa.bindparam(None, list(values), type_=array))
    return column.in_(list(values))


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert these rows (each with the same keys, column names) in `conn`'s transaction.

    PostgreSQL: one COPY, several times faster than a pipelined executemany for the
    thousands of rows a day's generation writes. SQLite: an executemany, in process.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(sa.insert(table), list(rows))
        return
    names = list(rows[0])
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])
    finally:
        cursor.close()


# The advisory locks' keys (PostgreSQL), one per thing serialised.
MIGRATION_LOCK = 7346201
CLAIM_LOCK = 7346202
LINKS_LOCK = 7346203  # deployments that change the dependency graph (store.links)


def advisory_lock(conn: sa.Connection, key: int) -> None:
    """Serialise the transactions that take lock `key`, until this one ends (PostgreSQL: a
    transaction-level advisory lock; SQLite's write lock serialises every write
    transaction already)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")


def lock_for_migration(conn: sa.Connection) -> None:
    """Serialise concurrent migrations (several processes starting at once)."""
    advisory_lock(conn, MIGRATION_LOCK)


def try_lock_row(conn: sa.Connection, table: sa.Table, row_id: int) -> bool:
    """lock_row unless another transaction holds the row: then False at once, without
    waiting (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: True, its write lock is held)."""
    if conn.dialect.name != "postgresql":
        return True
    query = sa.select(table.c.id).where(table.c.id == row_id)
    return conn.execute(query.with_for_update(skip_locked=True)).first() is not None


def lock_row(conn: sa.Connection, table: sa.Table, row_id: int) -> None:
    """Make the other transactions that lock this row of `table` wait until this one ends
    (PostgreSQL: SELECT ... FOR UPDATE; SQLite's write lock does this already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(table.c.id).where(table.c.id == row_id).with_for_update())


def skipping_locked(
    conn: sa.Connection, query: sa.Select[Any], of: sa.Table | None = None
) -> sa.Select[Any]:
    """`query` locking the rows it reads (of `of` only, when it joins others) and passing
    over those another transaction has locked (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite:
    one writer at a time, no row locks)."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query


def new_ids(
    conn: sa.Connection, table: sa.Table, count: int, below: int | None = None
) -> list[int]:
    """`count` new ids of `table` (its own autoincrementing `id`), inside a write
    transaction. PostgreSQL: from the table's sequence (not contiguous when sessions
    interleave). SQLite: past the largest id ever used (sqlite_sequence) and the largest
    present (`below`: the largest present below it; ids written above it by an import do
    not count); the write lock keeps others out until commit."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        values = conn.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            f"FROM generate_series(1, {int(count)})"
        ).scalars()
        return sorted(int(v) for v in values)
    used = sqlite_sequence(conn, table)
    top = sa.select(sa.func.max(table.c.id))
    if below is not None:
        top = top.where(table.c.id < below)
    present = conn.execute(top).scalar()
    first = max(int(used or 0), int(present or 0)) + 1
    return list(range(first, first + count))


def sqlite_sequence(conn: sa.Connection, table: sa.Table) -> int | None:
    """The largest id SQLite's AUTOINCREMENT recorded for `table` (0 before a first row);
    None on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return None
    found = conn.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
    ).scalar()
    return int(found or 0)


def restore_sqlite_sequence(conn: sa.Connection, table: sa.Table, value: int) -> None:
    """Set SQLite's AUTOINCREMENT record of `table` back to `value` (in a write transaction),
    after rows written with explicit ids moved it past a range it must stay below; nothing
    on PostgreSQL, whose sequences explicit ids do not move."""
    if conn.dialect.name == "postgresql":
        return
    conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (value, table.name))


def lock_against_writers(conn: sa.Connection, table: sa.Table) -> None:
    """Make other writers of `table` wait until this transaction ends, readers not.
    (A SQLite write transaction excludes every other writer already.)"""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE")


def skip_commit_flush(cursor: Any, dialect: sa.Dialect) -> None:
    """This transaction's commit does not wait for its log to reach the disk (PostgreSQL's
    `synchronous_commit` off): a crash may lose it, the database stays consistent. SQLite
    commits as it is configured (connect.py)."""
    if dialect.name == "postgresql":
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def advance_sequence(conn: sa.Connection, table: sa.Table, top: int) -> None:
    """Keep the ids `table` allocates itself (its autoincrementing `id`) past `top`, inside
    a write transaction: after an id, or an id another column will take, was written
    explicitly (an import). Never moves the sequence back."""
    if conn.dialect.name == "postgresql":
        sequence = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')"
        ).scalar_one()
        # A sequence has no compare-and-set: it is read, then set only forward. (A session
        # that took values across `top` between the two would see them handed out again;
        # imported ids ahead of the engine's are far ahead, not among its next few.)
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one()
        following = int(last) + 1 if called else int(last)
        if top >= following:
            conn.exec_driver_sql("SELECT setval(%s, %s)", (sequence, top))
        return
    # AUTOINCREMENT already keeps sqlite_sequence past every id inserted; a top taken from
    # other columns (UnifiedWorkflowInstanceId) moves it further. The write lock is held.
    moved = conn.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?", (top, table.name, top)
    ).rowcount
    if not moved:
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM sqlite_sequence WHERE name = ?)",
            (table.name, top, table.name),
        )


def transaction_id(conn: sa.Connection) -> sa.ColumnElement[int] | None:
    """This transaction's id, as a number that grows with the transactions' start
    (PostgreSQL: pg_current_xact_id); None on SQLite, where one writer at a time commits
    in the order it writes."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.cast(sa.func.pg_current_xact_id(), sa.Text), sa.BigInteger)
    return None


# The lowest transaction id in progress in this database: of the snapshot's in-progress
# ids (xid8), those of sessions on this database (their 32-bit xid is the low half);
# none: the snapshot's xmax. Sessions whose rows this role may not see make it fall back
# to the cluster's lowest (their transactions might be this database's).
_HORIZON = """
WITH s AS (SELECT pg_current_snapshot() AS snap),
here AS (
  SELECT backend_xid::text::bigint AS xid, query FROM pg_stat_activity
  WHERE datname = current_database()
)
SELECT
  (SELECT pg_snapshot_xmin(snap)::text::bigint FROM s),
  (SELECT min(x::text::bigint) FROM s, pg_snapshot_xip(snap) AS x
    WHERE mod(x::text::bigint, 4294967296) IN (SELECT xid FROM here WHERE xid IS NOT NULL)),
  (SELECT pg_snapshot_xmax(snap)::text::bigint FROM s),
  (SELECT count(*) FROM here WHERE query = '<insufficient privilege>')
"""


def settled_horizon(conn: sa.Connection) -> int | None:
    """The lowest transaction id still in progress that may write this database
    (PostgreSQL: every transaction below it has committed or rolled back, so rows they
    wrote can no longer appear); None on SQLite (nothing written is ever in progress for a
    reader). Transactions of the cluster's other databases (another application's, another
    dwsched's) do not hold it back."""
    if conn.dialect.name == "postgresql":
        # pg_stat_activity is read once per transaction and kept; the snapshot is not: a
        # second call would see new writers in the snapshot but not in a stale activity.
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        cluster, here, top, hidden = conn.exec_driver_sql(_HORIZON).one()
        if hidden:
            return int(cluster)
        return int(here if here is not None else top)
    return None


def one_of(dialect: sa.Dialect, column: str, ids: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
    """The DBAPI condition "`column` is one of `ids`" and its parameters, the list bound as
    one parameter (one statement text whatever its length): json_each on SQLite, ANY on
    PostgreSQL."""
    if dialect.name == "sqlite":
        return f"{column} IN (SELECT value FROM json_each(?))", (_ids.encode(list(ids)).decode(),)
    return f"{column} = ANY(%s)", (list(ids),)


_ids = msgspec.json.Encoder()


def upstreams_succeeded(dialect: sa.Dialect) -> sa.ColumnElement[bool]:
    """True for a row of `task_instances` whose every upstream (the ids of its `upstream`
    JSON list, in its workflow instance or elsewhere) is Success; an id no row has counts as
    met, as planning counts it."""
    if dialect.name == "postgresql":
        ids = (
            "SELECT CAST(j.value AS BIGINT) AS id "
            "FROM jsonb_array_elements_text(CAST(task_instances.upstream AS jsonb)) AS j(value)"
        )
    else:
        ids = "SELECT j.value AS id FROM json_each(task_instances.upstream) AS j"
    return sa.literal_column(
        "(task_instances.upstream = '[]' OR NOT EXISTS ("
        f"SELECT 1 FROM ({ids}) AS up JOIN task_instances AS above ON above.id = up.id "
        "WHERE above.status <> 'Success'))",
        sa.Boolean,
    )
