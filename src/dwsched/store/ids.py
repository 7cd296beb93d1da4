"""Ids the engine hands out: table keys (allocated in bulk inside a write transaction),
named counters (WorkflowTaskInstanceIds), and moving both past ids an import wrote."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from dwsched.store.dialect import (
    advance_sequence,
    new_ids,
    restore_sqlite_sequence,
    sqlite_sequence,
)
from dwsched.store.schema import id_counters, task_instances as ti, workflow_instances as wi

# Task instance ids are allocated from here up (migration 0014), workflow instance ids
# below: an id the engine hands out names an instance of one kind only.
TASK_INSTANCE_ID_BASE = 1_000_000_000


def allocate_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    """`count` new ids of `table` (its own key), inside a write transaction
    (store.dialect.new_ids); workflow instances' below TASK_INSTANCE_ID_BASE."""
    return new_ids(conn, table, count, TASK_INSTANCE_ID_BASE if table is wi else None)


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


def workflow_numbering(conn: sa.Connection) -> int | None:
    """Where SQLite's numbering of workflow instances stands (None on PostgreSQL): read
    before an import, for advance_ids."""
    return sqlite_sequence(conn, wi)


def advance_ids(
    conn: sa.Connection,
    top_instance_id: int,
    top_task_instance_id: int,
    top_high_id: int = 0,
    numbered: int | None = None,
) -> None:
    """Keep the engine's ids past ids written explicitly (an import), in the importing
    transaction: the instance ids it allocates (and so the UnifiedWorkflowInstanceIds of the
    instances it makes) past `top_instance_id`, its WorkflowTaskInstanceIds past
    `top_task_instance_id`, and its task instance ids past `top_high_id`, the largest
    imported id at or above TASK_INSTANCE_ID_BASE: the workflow instances' sequence never
    enters the task instances' range, and no later task instance takes an imported
    workflow instance's number. Never moves a counter back, but SQLite's record of the
    workflow instances' numbering, which followed ids written at or above the base, back to
    `numbered` (workflow_numbering before the import)."""
    if top_high_id > 0 and numbered is not None:
        restore_sqlite_sequence(conn, wi, numbered)
    if top_instance_id > 0:
        advance_sequence(conn, wi, top_instance_id)
    if top_high_id > 0:
        advance_sequence(conn, ti, top_high_id)
    if top_task_instance_id > 0:
        _advance_counter(conn, "workflow_task_instance", top_task_instance_id)


def task_instance_ids_among(conn: sa.Connection, ids: Sequence[int]) -> list[int]:
    """Those of `ids` (at or above TASK_INSTANCE_ID_BASE) that are task instances' ids."""
    high = [i for i in ids if i >= TASK_INSTANCE_ID_BASE]
    if not high:
        return []
    found = conn.execute(sa.select(ti.c.id).where(ti.c.id.in_(high)).order_by(ti.c.id))
    return [int(i) for i in found.scalars()]


def _advance_counter(conn: sa.Connection, name: str, top: int) -> None:
    c = id_counters.c
    moved = conn.execute(
        sa.update(id_counters).where(c.name == name, c.next_value <= top).values(next_value=top + 1)
    ).rowcount
    if not moved and conn.execute(sa.select(c.name).where(c.name == name)).first() is None:
        # No counter yet: writers of a first counter row hold the write lock (SQLite) or
        # would conflict on its key (PostgreSQL), as next_counter's insert does.
        conn.execute(sa.insert(id_counters).values(name=name, next_value=top + 1))
