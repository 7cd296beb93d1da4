"""Workflows as far as instances need them (the engine extends this)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from dwsched.store.dialect import insert_ignoring_conflicts
from dwsched.store.schema import workflows


def ensure_workflows(
    conn: sa.Connection, known: Iterable[tuple[int, int, str, str]], now_ms: int
) -> None:
    """Record (id, project_id, name, owner) for workflows not yet known; keep existing ones."""
    rows = [
        {
            "id": wid,
            "project_id": pid,
            "name": name,
            "owner": owner,
            "create_time": now_ms,
            "modify_time": now_ms,
        }
        for wid, pid, name, owner in known
    ]
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, workflows), rows)
