"""Ids the engine hands out: table keys (allocated in bulk inside a write transaction),
named counters (WorkflowTaskInstanceIds), and moving both past ids an import wrote."""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.store.dialect import advance_sequence, new_ids
from dwsched.store.schema import id_counters, workflow_instances as wi


def allocate_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    """`count` new ids of `table` (its own key), inside a write transaction
    (store.dialect.new_ids)."""
    return new_ids(conn, table, count)


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
        advance_sequence(conn, wi, top_instance_id)
    if top_task_instance_id > 0:
        _advance_counter(conn, "workflow_task_instance", top_task_instance_id)


def _advance_counter(conn: sa.Connection, name: str, top: int) -> None:
    c = id_counters.c
    moved = conn.execute(
        sa.update(id_counters).where(c.name == name, c.next_value <= top).values(next_value=top + 1)
    ).rowcount
    if not moved and conn.execute(sa.select(c.name).where(c.name == name)).first() is None:
        # No counter yet: writers of a first counter row hold the write lock (SQLite) or
        # would conflict on its key (PostgreSQL), as next_counter's insert does.
        conn.execute(sa.insert(id_counters).values(name=name, next_value=top + 1))
