"""Aggregates the web console shows: instance counts by status over several BizDates, the
latest instances of each workflow. Each reads only the partitions (workspace-days) asked
for, through the (partition, status) and (partition, workflow) indexes. And what a metrics
scrape reads (`state_gauges`): the same counts over every workspace's latest BizDates, and
the task instances waiting for or holding a resource group's slot, through the status
indexes; none of it grows with the history the database holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.execution import Recurrence
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


def _dry_run(instance_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """True for a workflow instance that has task instances and none of them runs
    (TriggerRecurrence other than Normal: SkipCycle, RealtimeDeprecated, SkipUnchoose,
    ConditionUnchoose, Skip, Pause). An instance loaded by `dwsched import` has no task
    instances: nothing says it was a dry run. Two probes of the (workflow instance,
    position) index; the second reads task rows only until it meets one that runs."""
    ti = task_instances.c
    has_tasks = sa.exists().where(ti.workflow_instance_id == instance_id)
    runs = sa.exists().where(
        ti.workflow_instance_id == instance_id,
        ti.trigger_recurrence == Recurrence.NORMAL.value,
    )
    return sa.and_(has_tasks, ~runs)


def _with_tasks(conn: sa.Connection, partition_ids: Sequence[int]) -> list[int]:
    """The partitions among these holding any task instance (one probe each): a day of
    imported instances only has none, and its instances need no probe at all."""
    p, ti = partitions.c, task_instances.c
    rows = conn.execute(
        sa.select(p.id).where(
            p.id.in_(list(partition_ids)),
            sa.exists().where(ti.partition_id == p.id),
        )
    )
    return [int(r.id) for r in rows]


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


@dataclass(frozen=True, slots=True)
class Latest:
    """One of a workflow's latest instances."""

    id: int
    biz_day: date
    status: str
    trigger_time: int
    dry_run: bool  # every task instance a dry run


@dataclass(slots=True)
class Recent:
    """A workflow's instances of the last days: the newest, and counts of all of them."""

    latest: list[Latest]
    counts: dict[str, int]  # status -> instances
    dry_run_successes: int  # of counts["Success"], the dry runs


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

    def dry_run_successes(
        self, project_id: int, env: EnvType, days: Sequence[date]
    ) -> dict[date, int]:
        """BizDate -> how many of its Success instances were dry runs (every task instance
        a dry run: they succeeded without running anything), for the given days. Reads
        the Success slice of the (partition, status) index of the days that hold task
        instances, and each of those instances' own task instances."""
        wi = workflow_instances.c
        found = dict.fromkeys(days, 0)
        parts = _partitions(self.conn, project_id, env, days)
        engine_made = _with_tasks(self.conn, list(parts)) if parts else []
        if not engine_made:
            return found
        rows = self.conn.execute(
            sa.select(wi.partition_id, sa.func.count())
            .where(
                wi.partition_id.in_(engine_made),
                wi.status == Status.SUCCESS.value,
                _dry_run(wi.id),
            )
            .group_by(wi.partition_id)
        )
        for partition_id, count in rows:
            found[parts[int(partition_id)]] = int(count)
        return found

    def dry_runs(
        self, project_id: int, env: EnvType, day: date, instance_ids: Sequence[int]
    ) -> set[int]:
        """Those of these instances of one workspace-day (a page of a listing) whose task
        instances are all dry runs, whatever their status: one query for the page, on the
        instances' own task instances."""
        wi = workflow_instances.c
        parts = _partitions(self.conn, project_id, env, [day])
        if not parts or not instance_ids:
            return set()
        rows = self.conn.execute(
            sa.select(wi.id).where(
                wi.partition_id.in_(list(parts)),
                wi.id.in_(list(instance_ids)),
                _dry_run(wi.id),
            )
        )
        return {int(r.id) for r in rows}

    def recent_by_workflow(
        self,
        project_id: int,
        env: EnvType,
        days: Sequence[date],
        workflow_ids: Sequence[int],
        per_workflow: int,
        before_ms: int,
    ) -> dict[int, Recent]:
        """Workflow id -> its instances due by `before_ms` among the given days: the newest
        `per_workflow` (newest first), how many in each status, and how many of the
        successes were dry runs. Only the given workflows' instances are read (the
        (partition, workflow) index), each with whether it was a dry run, in one query."""
        wi = workflow_instances.c
        parts = _partitions(self.conn, project_id, env, days)
        found: dict[int, Recent] = {}
        if not parts or not workflow_ids:
            return found
        engine_made = _with_tasks(self.conn, list(parts))
        dry = (
            sa.and_(wi.partition_id.in_(engine_made), _dry_run(wi.id))
            if engine_made
            else sa.false()
        )
        rows = self.conn.execute(
            sa.select(
                wi.id,
                wi.partition_id,
                wi.workflow_id,
                wi.status,
                wi.trigger_time,
                sa.case((dry, 1), else_=0).label("dry_run"),
            )
            .where(
                wi.partition_id.in_(list(parts)),
                wi.workflow_id.in_(list(workflow_ids)),
                wi.trigger_time <= before_ms,
            )
            .order_by(wi.trigger_time.desc(), wi.id.desc())
        )
        for r in rows:
            mine = found.setdefault(int(r.workflow_id), Recent([], {}, 0))
            status, dry_run = str(r.status), bool(r.dry_run)
            mine.counts[status] = mine.counts.get(status, 0) + 1
            if dry_run and status == Status.SUCCESS.value:
                mine.dry_run_successes += 1
            if len(mine.latest) < per_workflow:
                mine.latest.append(
                    Latest(
                        int(r.id), parts[int(r.partition_id)], status, int(r.trigger_time), dry_run
                    )
                )
        return found
