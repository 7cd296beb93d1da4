"""Aggregates the web console shows: instance counts by status over several BizDates, the
latest instances of each workflow. Each reads only the partitions (workspace-days) asked
for, through the (partition, status) and (partition, workflow) indexes. And what a metrics
scrape reads (`state_gauges`): the same counts over every workspace's latest BizDates, and
the task instances waiting for or holding a resource group's slot, through the status
indexes; none of it grows with the history the database holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.gauges import StateGauges
from dwsched.domain.models import EnvType, Status
from dwsched.domain.transitions import RUNNING_VALUES
from dwsched.store.resource_groups import slot_limits
from dwsched.store.schema import partitions, projects, task_instances, workflow_instances


def _partitions(
    conn: sa.Connection, project_id: int, env: EnvType, days: Sequence[date]
) -> dict[int, date]:
    p = partitions.c
    rows = conn.execute(
        sa.select(p.id, p.biz_day).where(
            p.project_id == project_id,
            p.env_type == env.value,
            p.biz_day.in_([day_key(d) for d in days]),
        )
    )
    return {int(r.id): day_from_key(int(r.biz_day)) for r in rows}


def _instance_counts(conn: sa.Connection, first: date, last: date) -> dict[tuple[date, str], int]:
    """(BizDate, status) -> instances over every workspace and environment, for the
    BizDates from `first` to `last`: the partitions are found by the (project, env, day)
    key, one range per workspace and environment, and counted on the (partition, status)
    index."""
    p, wi = partitions.c, workflow_instances.c
    rows = conn.execute(
        sa.select(p.id, p.biz_day).where(
            p.project_id.in_(sa.select(projects.c.id).scalar_subquery()),
            p.env_type.in_([e.value for e in EnvType]),
            p.biz_day.between(day_key(first), day_key(last)),
        )
    )
    parts = {int(r.id): day_from_key(int(r.biz_day)) for r in rows}
    found: dict[tuple[date, str], int] = {}
    if not parts:
        return found
    counted = conn.execute(
        sa.select(wi.partition_id, wi.status, sa.func.count())
        .where(wi.partition_id.in_(list(parts)))
        .group_by(wi.partition_id, wi.status)
    )
    for partition_id, status, count in counted:
        key = (parts[int(partition_id)], str(status))
        found[key] = found.get(key, 0) + int(count)
    return found


def _tasks_by_group(conn: sa.Connection, statuses: list[str]) -> dict[str, int]:
    """Resource group -> task instances in these statuses (the status index's slices)."""
    ti = task_instances.c
    rows = conn.execute(
        sa.select(ti.resource_group, sa.func.count())
        .where(ti.status.in_(statuses))
        .group_by(ti.resource_group)
    )
    return {str(g): int(n) for g, n in rows}


def state_gauges(conn: sa.Connection, first: date, last: date) -> StateGauges:
    """The database's state a metrics scrape shows (domain.gauges)."""
    return StateGauges(
        instances=_instance_counts(conn, first, last),
        waiting=_tasks_by_group(conn, [Status.WAIT_RESOURCE.value]),
        running=_tasks_by_group(conn, list(RUNNING_VALUES)),
        slots=slot_limits(conn),
    )


class Summaries:
    """Aggregates the console shows (`Tx.summaries`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def status_counts(
        self, project_id: int, env: EnvType, days: Sequence[date]
    ) -> dict[date, dict[str, int]]:
        """BizDate -> status -> number of instances, for the given days (absent days: {})."""
        wi = workflow_instances.c
        found: dict[date, dict[str, int]] = {day: {} for day in days}
        parts = _partitions(self.conn, project_id, env, days)
        if not parts:
            return found
        rows = self.conn.execute(
            sa.select(wi.partition_id, wi.status, sa.func.count())
            .where(wi.partition_id.in_(list(parts)))
            .group_by(wi.partition_id, wi.status)
        )
        for partition_id, status, count in rows:
            found[parts[int(partition_id)]][str(status)] = int(count)
        return found

    def latest_by_workflow(
        self,
        project_id: int,
        env: EnvType,
        days: Sequence[date],
        workflow_ids: Sequence[int],
        per_workflow: int,
        before_ms: int,
    ) -> dict[int, list[tuple[int, date, str, int]]]:
        """Workflow id -> its newest instances due by `before_ms` (id, BizDate, status,
        trigger time), newest first, at most `per_workflow` each, among the given days; only
        the given workflows' instances are read (the (partition, workflow) index)."""
        wi = workflow_instances.c
        parts = _partitions(self.conn, project_id, env, days)
        found: dict[int, list[tuple[int, date, str, int]]] = {}
        if not parts or not workflow_ids:
            return found
        rows = self.conn.execute(
            sa.select(wi.id, wi.partition_id, wi.workflow_id, wi.status, wi.trigger_time)
            .where(
                wi.partition_id.in_(list(parts)),
                wi.workflow_id.in_(list(workflow_ids)),
                wi.trigger_time <= before_ms,
            )
            .order_by(wi.trigger_time.desc(), wi.id.desc())
        )
        for r in rows:
            mine = found.setdefault(int(r.workflow_id), [])
            if len(mine) < per_workflow:
                mine.append(
                    (int(r.id), parts[int(r.partition_id)], str(r.status), int(r.trigger_time))
                )
        return found
