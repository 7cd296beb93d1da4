"""Ids the engine hands out: table keys (allocated in bulk inside a write transaction),
named counters (WorkflowTaskInstanceIds), and moving both past ids an import wrote."""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.store.schema import id_counters, workflow_instances as wi


def allocate_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    """`count` new ids of `table` (its own key), inside a write transaction.

    SQLite: past the largest id ever used (sqlite_sequence) and the largest present; the
    write lock keeps others out until commit. PostgreSQL: the table's sequence (ids need
    not be contiguous: concurrent sessions interleave).
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        values = conn.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            f"FROM generate_series(1, {int(count)})"
        ).scalars()
        return sorted(int(v) for v in values)
    used = conn.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
    ).scalar()
    present = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
    first = max(int(used or 0), int(present or 0)) + 1
    return list(range(first, first + count))


def next_counter(conn: sa.Connection, name: str, count: int) -> int:
    """The first of `count` values of a named counter (write transaction; the row is
    updated first, so concurrent PostgreSQL sessions queue on it)."""
    c = id_counters.c
    bumped = conn.execute(
        sa.update(id_counters)
        .where(c.name == name)
        .values(next_value=c.next_value + count)
        .returning(c.next_value)
    ).scalar()
    if bumped is None:
        conn.execute(sa.insert(id_counters).values(name=name, next_value=1 + count))
        return 1
    return int(bumped) - count


def advance_ids(conn: sa.Connection, top_instance_id: int, top_task_instance_id: int) -> None:
    """Keep the engine's ids past ids written explicitly (an import), in the importing
    transaction: the instance ids it allocates (and so the UnifiedWorkflowInstanceIds of the
    instances it makes) past `top_instance_id`, its WorkflowTaskInstanceIds past
    `top_task_instance_id`. Never moves a counter back."""
    if top_instance_id > 0:
        _advance_sequence(conn, wi, top_instance_id)
    if top_task_instance_id > 0:
        _advance_counter(conn, "workflow_task_instance", top_task_instance_id)


def _advance_sequence(conn: sa.Connection, table: sa.Table, top: int) -> None:
    if conn.dialect.name == "postgresql":
        sequence = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')"
        ).scalar_one()
        # A sequence has no compare-and-set: it is read, then set only forward. (A session
        # that took values across `top` between the two would see them handed out again;
        # imported ids ahead of the engine's are far ahead, not among its next few.)
        last = conn.exec_driver_sql(f"SELECT last_value FROM {sequence}").scalar_one()
        if top > int(last):
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


def _advance_counter(conn: sa.Connection, name: str, top: int) -> None:
    c = id_counters.c
    moved = conn.execute(
        sa.update(id_counters).where(c.name == name, c.next_value <= top).values(next_value=top + 1)
    ).rowcount
    if not moved and conn.execute(sa.select(c.name).where(c.name == name)).first() is None:
        # No counter yet: writers of a first counter row hold the write lock (SQLite) or
        # would conflict on its key (PostgreSQL), as next_counter's insert does.
        conn.execute(sa.insert(id_counters).values(name=name, next_value=top + 1))
