"""Workflows as far as instances need them (the engine extends this)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dwsched.store.schema import workflows
from dwsched.store.statements import Compiled, run_many


@lru_cache(maxsize=8)
def _insert_missing(dialect: sa.Dialect) -> Compiled:
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    values: dict[str, Any] = {c.name: sa.bindparam(c.name) for c in workflows.columns}
    return Compiled(insert(workflows).values(values).on_conflict_do_nothing(), dialect)


def ensure_workflows(
    conn: sa.Connection, known: Iterable[tuple[int, int, str, str]], now_ms: int
) -> None:
    """Record (id, project_id, name, owner) for workflows not yet known; keep existing ones."""
    first: dict[int, tuple[Any, ...]] = {}
    for wid, pid, name, owner in known:
        first.setdefault(wid, (wid, pid, name, owner, now_ms, now_ms))
    if not first:
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        run_many(cursor, _insert_missing(conn.dialect), list(first.values()), workflows)
    finally:
        cursor.close()
