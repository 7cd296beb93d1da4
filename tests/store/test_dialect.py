"""store.dialect on SQLite and PostgreSQL: the id sequence of a table with an
autoincrementing key, as imports move it and new ids are taken from it."""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.store import Store
from dwsched.store.dialect import advance_sequence, lock_row, new_ids, skipping_locked
from dwsched.store.schema import workflow_instances


def test_new_ids_follow_the_sequence_and_explicit_ids_move_it_only_forward(
    store: Store,
) -> None:
    with store.write() as tx:
        assert new_ids(tx.conn, workflow_instances, 0) == []
        first = new_ids(tx.conn, workflow_instances, 3)
    assert first == sorted(first) and len(set(first)) == 3
    with store.write() as tx:
        advance_sequence(tx.conn, workflow_instances, 5000)
        ahead = new_ids(tx.conn, workflow_instances, 1)[0]
    assert ahead > 5000
    with store.write() as tx:
        advance_sequence(tx.conn, workflow_instances, 10)  # behind: nothing moves back
        assert new_ids(tx.conn, workflow_instances, 1)[0] > 5000


def test_row_locks_and_skip_locked_read_as_plain_selects(store: Store) -> None:
    with store.write() as tx:
        lock_row(tx.conn, workflow_instances, 1)  # no such row: nothing to wait for
        query = skipping_locked(tx.conn, sa.select(workflow_instances.c.id).limit(1))
        assert tx.conn.execute(query).first() is None
