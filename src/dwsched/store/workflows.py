"""Deployed workflows: read (`Tx.workflows`; their SQL is definitions.py's, which deploys
them), and recorded by name for imported instances."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from dwsched.domain.flowspec import TriggerType
from dwsched.domain.generation import ScheduledWorkflow
from dwsched.domain.models import EnvType
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.store import links
from dwsched.store.definitions import workflow_by_id, workflows_page
from dwsched.store.dialect import insert_on_conflict
from dwsched.store.generation import scheduled_workflows
from dwsched.store.projects import project_by_id
from dwsched.store.schema import workflows
from dwsched.store.statements import Compiled

_NAMED = ("id", "project_id", "name", "owner", "create_time", "modify_time")


@lru_cache(maxsize=8)
def _insert_missing(dialect: sa.Dialect) -> Compiled:
    """A workflow known only by name (from imported instances): the other columns keep
    their defaults."""
    values: dict[str, Any] = {name: sa.bindparam(name) for name in _NAMED}
    insert = insert_on_conflict(dialect, workflows).values(values).on_conflict_do_nothing()
    return Compiled(insert, dialect)


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
        compiled = _insert_missing(conn.dialect)
        rows = list(first.values())
        if compiled.positions is None:
            cursor.executemany(compiled.sql, [dict(zip(_NAMED, r, strict=True)) for r in rows])
        else:
            if compiled.positions != _NAMED:
                raise RuntimeError("workflow insert parameters are not in _NAMED order")
            cursor.executemany(compiled.sql, rows)
    finally:
        cursor.close()


class Workflows:
    """Deployed workflows (`Tx.workflows`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def get(self, workflow_id: int) -> DeployedWorkflow:
        """WorkflowNotFound when there is none."""
        return workflow_by_id(self.conn, workflow_id)

    def dependencies(self, workflow_id: int) -> list[tuple[str, str, int]]:
        """The workflow's dependencies on other workflows' nodes: (type, output named,
        upstream task id), as deployed (store.links)."""
        return links.external_of(self.conn, workflow_id)

    def scheduled(self) -> list[ScheduledWorkflow]:
        """The deployed cycle workflows with a cron (those the scheduler makes instances
        for), with the run dates made of each."""
        return scheduled_workflows(self.conn)

    def page(
        self,
        project_id: int,
        env_type: EnvType,
        ids: Sequence[int] | None,
        name: str | None,
        owner: str | None,
        trigger_type: TriggerType | None,
        order: tuple[str, bool],
        offset: int,
        limit: int,
    ) -> tuple[int, list[DeployedWorkflow]]:
        """A page of the workspace's workflows and their count (ProjectNotFound)."""
        project_by_id(self.conn, project_id)
        return workflows_page(
            self.conn, project_id, env_type, ids, name, owner, trigger_type, order, offset, limit
        )
