"""Task instances read back: the partitioned listing, lookups by id, neighbours.

A listing stays inside one (project, env, BizDate) partition (`ix_ti_part_id`): its count and
its page each filter the partition's rows. A TaskName filter is matched in Python on the
casefolded name (every script, on both databases: SQLite's lower() folds only ASCII), over
the partition's rows that pass the other filters, already in the listing's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.errors import RunNotFound, TaskInstanceNotFound
from dwsched.domain.flowspec import DependencyType, NodeSpec
from dwsched.domain.models import EnvType, InstanceType
from dwsched.domain.queries import SortField, SortKey
from dwsched.domain.task_instances import (
    TaskInstance,
    TaskInstancePage,
    TaskInstanceQuery,
    TimeRange,
)
from dwsched.store import dependencies
from dwsched.store.attempts import attempt_log
from dwsched.store.projects import project_timezone
from dwsched.store.schema import partitions, task_attempts, task_instances as ti, workflows

SORT_COLUMNS: dict[SortField, sa.Column[Any]] = {
    SortField.ID: ti.c.id,
    SortField.TRIGGER_TIME: ti.c.trigger_time,
    SortField.STARTED_TIME: ti.c.started_time,
    SortField.FINISHED_TIME: ti.c.finished_time,
    SortField.CREATE_TIME: ti.c.create_time,
}
IN_CHUNK = 500
_node = msgspec.json.Decoder(NodeSpec).decode
_ids = msgspec.json.Decoder(list[int]).decode


def partition_id(conn: sa.Connection, project_id: int, env: EnvType, biz_day: int) -> int | None:
    """The id of the (project, env, yyyymmdd) partition, None when it holds nothing yet."""
    p = partitions.c
    found = conn.execute(
        sa.select(p.id).where(
            p.project_id == project_id, p.env_type == env.value, p.biz_day == biz_day
        )
    ).scalar()
    return None if found is None else int(found)


def _range(column: sa.Column[Any], r: TimeRange) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if r.start is not None:
        where.append(column >= r.start)
    if r.end is not None:
        where.append(column <= r.end)
    return where


def _conditions(partition: int, q: TaskInstanceQuery) -> list[sa.ColumnElement[bool]]:
    c = ti.c
    where: list[sa.ColumnElement[bool]] = [c.partition_id == partition]
    equal: list[tuple[sa.Column[Any], Any]] = [
        (c.id, q.id),
        (c.task_id, q.task_id),
        (c.type, q.task_type),
        (c.owner, q.owner),
        (c.resource_group, q.resource_group),
        (c.status, q.status),
        (c.trigger_type, None if q.trigger_type is None else q.trigger_type.value),
        (
            c.trigger_recurrence,
            None if q.trigger_recurrence is None else q.trigger_recurrence.value,
        ),
        (c.workflow_id, q.workflow_id),
        (c.workflow_instance_id, q.workflow_instance_id),
        (
            c.workflow_instance_type,
            None if q.workflow_instance_type is None else q.workflow_instance_type.value,
        ),
        (c.unified_workflow_instance_id, q.unified_workflow_instance_id),
    ]
    where.extend(column == value for column, value in equal if value is not None)
    if q.ids is not None:
        where.append(c.id.in_(q.ids))
    if q.task_ids is not None:
        where.append(c.task_id.in_(q.task_ids))
    where.extend(_range(c.started_time, q.started))
    where.extend(_range(c.finished_time, q.finished))
    where.extend(_range(c.create_time, q.created))
    return where


def _order(sort: Sequence[SortKey]) -> list[sa.ColumnElement[Any]]:
    """The listing order: each key (a nullable key's unset rows last, both ways), then the
    id in the first key's direction (as ListWorkflowInstances orders)."""
    order: list[sa.ColumnElement[Any]] = []
    for key in sort:
        column = SORT_COLUMNS[key.field]
        if key.field.nullable:
            order.append(sa.case((column.is_(None), 1), else_=0).asc())
        order.append(column.desc() if key.descending else column.asc())
    if sort[-1].field is not SortField.ID:
        order.append(ti.c.id.desc() if sort[0].descending else ti.c.id.asc())
    return order


def _selected() -> sa.Select[Any]:
    """Every task_instances column and the workflow's name."""
    return sa.select(ti, workflows.c.name.label("workflow_name")).select_from(
        ti.outerjoin(workflows, workflows.c.id == ti.c.workflow_id)
    )


def task_instances_page(
    conn: sa.Connection, partition: int, q: TaskInstanceQuery
) -> TaskInstancePage:
    """One page of the query's task instances inside `partition`, and how many match."""
    where = _conditions(partition, q)
    order = _order(q.sort)
    start, size = q.page.offset, q.page.size
    if q.id is not None:
        return _history(conn, where, q)
    if q.task_name:
        wanted = q.task_name.casefold()
        ranked = conn.execute(sa.select(ti.c.id, ti.c.name).where(*where).order_by(*order))
        ids = [int(i) for i, name in ranked if wanted in name.casefold()]
        chosen = ids[start : start + size]
        by_id = task_instances_by_ids(conn, chosen)
        return TaskInstancePage(len(ids), tuple(by_id[i] for i in chosen))
    total = int(conn.execute(sa.select(sa.func.count()).select_from(ti).where(*where)).scalar_one())
    if total <= start:
        return TaskInstancePage(total, ())
    rows = conn.execute(_selected().where(*where).order_by(*order).limit(size).offset(start))
    return TaskInstancePage(total, tuple(_task_instance(r) for r in rows))


def _history(
    conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], q: TaskInstanceQuery
) -> TaskInstancePage:
    """`Id` given: the rerun history of that task instance, one item per attempt (its
    RunNumber, Status and times), oldest first; the instance itself before any attempt."""
    row = conn.execute(_selected().where(*where)).first()
    if row is None or (q.task_name and q.task_name.casefold() not in row.name.casefold()):
        return TaskInstancePage(0, ())
    current = _task_instance(row)
    a = task_attempts.c
    attempts = conn.execute(
        sa.select(a.run_number, a.status, a.started_time, a.finished_time)
        .where(a.task_instance_id == current.id)
        .order_by(a.run_number)
    ).all()
    items = [
        replace(
            current,
            run_number=r.run_number,
            status=current.status if r.run_number == current.run_number else r.status,
            started_time=r.started_time,
            finished_time=r.finished_time,
        )
        for r in attempts
    ] or [current]
    start, size = q.page.offset, q.page.size
    return TaskInstancePage(len(items), tuple(items[start : start + size]))


def task_instances_by_ids(conn: sa.Connection, ids: Sequence[int]) -> dict[int, TaskInstance]:
    """The task instances among `ids` that exist, by id."""
    found: dict[int, TaskInstance] = {}
    for begin in range(0, len(ids), IN_CHUNK):
        chunk = list(ids[begin : begin + IN_CHUNK])
        for row in conn.execute(_selected().where(ti.c.id.in_(chunk))):
            found[row.id] = _task_instance(row)
    return found


def task_instance_by_id(conn: sa.Connection, task_instance_id: int) -> TaskInstance:
    """The task instance, or TaskInstanceNotFound."""
    row = conn.execute(_selected().where(ti.c.id == task_instance_id)).first()
    if row is None:
        raise TaskInstanceNotFound(task_instance_id)
    return _task_instance(row)


def downstream_ids(conn: sa.Connection, found: TaskInstance) -> list[int]:
    """The ids of the task instances of the same workflow instance that name `found` as an
    upstream, ascending."""
    rows = conn.execute(
        sa.select(ti.c.id, ti.c.upstream).where(
            ti.c.workflow_instance_id == found.workflow_instance_id
        )
    )
    return sorted(int(i) for i, text in rows if found.id in _ids(text))


def run_number_of(conn: sa.Connection, task_instance_id: int) -> int:
    """The instance's latest attempt number (0 before the first), or TaskInstanceNotFound."""
    found = conn.execute(sa.select(ti.c.run_number).where(ti.c.id == task_instance_id)).scalar()
    if found is None:
        raise TaskInstanceNotFound(task_instance_id)
    return int(found)


def _task_instance(r: sa.Row[Any]) -> TaskInstance:
    return TaskInstance(
        id=r.id,
        project_id=r.project_id,
        env_type=EnvType(r.env_type),
        biz_day=day_from_key(r.biz_day),
        workflow_id=r.workflow_id,
        workflow_name=r.workflow_name or "",
        workflow_instance_id=r.workflow_instance_id,
        workflow_instance_type=InstanceType(r.workflow_instance_type),
        unified_workflow_instance_id=r.unified_workflow_instance_id,
        task_id=r.task_id,
        upstream=tuple(sorted(set(_ids(r.upstream)))),
        name=r.name,
        type=r.type,
        owner=r.owner,
        status=r.status,
        trigger_type=r.trigger_type,
        trigger_recurrence=r.trigger_recurrence,
        period_number=r.period_number,
        trigger_time=r.trigger_time,
        priority=r.priority,
        resource_group=r.resource_group,
        node=_node(r.spec),
        run_number=r.run_number,
        started_time=r.started_time,
        finished_time=r.finished_time,
        waiting_trigger_time=r.waiting_trigger_time,
        waiting_resource_time=r.waiting_resource_time,
        worker=r.worker,
        pid=r.pid,
        create_time=r.create_time,
        modify_time=r.modify_time,
        operation_type=r.operation_type,
        suspended=bool(r.suspended),
    )


class TaskInstances:
    """Task instances as the API reads them (`Tx.task_instances`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def get(self, task_instance_id: int) -> TaskInstance:
        """TaskInstanceNotFound when there is none."""
        return task_instance_by_id(self.conn, task_instance_id)

    def page(self, query: TaskInstanceQuery) -> tuple[str, TaskInstancePage]:
        """The project's time zone and one page of its task instances of the query's
        BizDate, taken in that zone (ProjectNotFound if there is no such workspace)."""
        tz = project_timezone(self.conn, query.project_id)
        day = day_key(query.biz_day(tz))
        found = partition_id(self.conn, query.project_id, query.env_type, day)
        if found is None:
            return tz, TaskInstancePage(0, ())
        return tz, task_instances_page(self.conn, found, query)

    def log(self, task_instance_id: int, run_number: int | None) -> str:
        """The log of attempt `run_number`, by default the latest.

        An instance that has not run yet answers an empty log for its run 1 (the RunNumber
        it shows). TaskInstanceNotFound for no such instance; NotFound for a run it has not
        had.
        """
        latest = run_number_of(self.conn, task_instance_id)
        wanted = latest if run_number is None else run_number
        if latest == 0 and wanted <= 1:
            return ""
        log = attempt_log(self.conn, task_instance_id, wanted)
        if log is None:
            runs = f"its runs are 1 to {latest}" if latest else "it has not run yet"
            raise RunNotFound(f"The task instance {task_instance_id} has no run {wanted}: {runs}.")
        return log

    def neighbours(
        self,
        task_instance_id: int,
        upstream: bool,
        offset: int,
        limit: int,
        readable: frozenset[int] | None = None,
    ) -> tuple[str, int, list[tuple[TaskInstance, DependencyType]]]:
        """The project's time zone, how many direct upstreams (or downstreams) the task
        instance has, in its workflow instance and outside it (other workflows, other
        cycles: store.dependencies), and those from `offset` by id ascending, each with its
        dependency type. Those of workspaces not in `readable` (None: all) are left out."""
        found = task_instance_by_id(self.conn, task_instance_id)
        tz = project_timezone(self.conn, found.project_id)
        elsewhere = dependencies.types_of(self.conn, task_instance_id, upstream)
        own = list(found.upstream) if upstream else downstream_ids(self.conn, found)
        ids = sorted({*own, *elsewhere})
        if readable is not None and elsewhere:
            hidden = _projects_of(self.conn, sorted(elsewhere))
            ids = [i for i in ids if hidden.get(i, found.project_id) in readable]
        chosen = ids[offset : offset + limit]
        by_id = task_instances_by_ids(self.conn, chosen)
        normal = DependencyType.NORMAL.value
        return (
            tz,
            len(ids),
            [(by_id[i], DependencyType(elsewhere.get(i, normal))) for i in chosen if i in by_id],
        )


def _projects_of(conn: sa.Connection, ids: Sequence[int]) -> dict[int, int]:
    rows = conn.execute(sa.select(ti.c.id, ti.c.project_id).where(ti.c.id.in_(list(ids))))
    return {int(i): int(p) for i, p in rows}
