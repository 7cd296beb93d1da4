"""Generation: the instances of deployed cycle workflows, and instances made on request.

Workflow instances are written through `instances.insert_encoded`, like imported ones (so
partitions and their counts stay right), with one task instance per deployed node, NotRun.
Making a task instance is not a status transition: no event is recorded for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.execution import Recurrence
from dwsched.domain.flowspec import TriggerType, WorkflowKind
from dwsched.domain.generation import ScheduledWorkflow
from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.parameters import format_assignments
from dwsched.domain.schedule import Cycle, Trigger
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.store import definitions, dependencies, instances
from dwsched.store.bulk import RowBuilder
from dwsched.store.dialect import among, bulk_insert
from dwsched.store.ids import allocate_ids, next_counter
from dwsched.store.schema import (
    scheduled_cycles,
    task_instances as ti,
    workflow_instances as wi,
    workflows,
)

_encode = msgspec.json.Encoder().encode
_ids = msgspec.json.Decoder(list[int]).decode


def scheduled_workflows(conn: sa.Connection) -> list[ScheduledWorkflow]:
    """Deployed cycle workflows with a cron: those the scheduler makes instances for."""
    w = workflows.c
    ids = conn.execute(
        sa.select(w.id).where(
            w.definition_id.is_not(None),
            w.kind == WorkflowKind.CYCLE.value,
            w.trigger_type == TriggerType.SCHEDULER.value,
        )
    ).scalars()
    found = definitions.workflows_by_ids(conn, [int(i) for i in ids])
    return [
        ScheduledWorkflow(
            workflow,
            None if first is None else day_from_key(first),
            None if through is None else day_from_key(through),
        )
        for workflow, first, through in found
    ]


def set_first_run_day(conn: sa.Connection, days: Mapping[int, date]) -> None:
    """Each workflow's first run date (workflow id -> date)."""
    _set_day(conn, workflows.c.first_run_day, days)


def mark_generated(conn: sa.Connection, days: Mapping[int, date]) -> None:
    """Each workflow's last run date made (workflow id -> date)."""
    _set_day(conn, workflows.c.generated_through, days)


def _set_day(conn: sa.Connection, column: sa.Column[Any], days: Mapping[int, date]) -> None:
    """One UPDATE per date and chunk of workflows: a day's generation sets one date for
    thousands of workflows."""
    by_day: dict[int, list[int]] = {}
    for workflow_id, d in days.items():
        by_day.setdefault(day_key(d), []).append(workflow_id)
    for key, ids in sorted(by_day.items()):
        ids.sort()
        for start in range(0, len(ids), 500):
            conn.execute(
                sa.update(workflows)
                .where(among(conn, workflows.c.id, ids[start : start + 500]))
                .values({column.name: key})
            )


def make_instances(
    conn: sa.Connection,
    workflow: DeployedWorkflow,
    cycles: Sequence[Cycle],
    kind: InstanceType,
    now_ms: int,
) -> list[int]:
    """One workflow instance per cycle not made already, each with its task instances
    (NotRun); the ids of those made."""
    return make_instances_many(conn, [(workflow, cycles)], kind, now_ms).get(workflow.id, [])


def make_instances_many(
    conn: sa.Connection,
    items: Sequence[tuple[DeployedWorkflow, Sequence[Cycle]]],
    kind: InstanceType,
    now_ms: int,
) -> dict[int, list[int]]:
    """make_instances for many workflows at once: ids, rows and keys are written in a few
    statements for the lot (a day's generation for thousands of workflows)."""
    made = _made_cycles(conn, items)
    todo = [
        NewInstance(w, c, kind, w.spec.name, w.env_type, _parameters(w))
        for w, cycles in items
        for c in cycles
        if (w.id, c.trigger_time) not in made
    ]
    if not todo:
        return {}
    instance_ids, _ = insert_instances(conn, todo, now_ms)
    bulk_insert(
        conn,
        scheduled_cycles,
        [
            {
                "workflow_id": new.workflow.id,
                "trigger_time": new.cycle.trigger_time,
                "workflow_instance_id": instance_ids[n],
            }
            for n, new in enumerate(todo)
        ],
    )
    made_ids: dict[int, list[int]] = {}
    for n, new in enumerate(todo):
        made_ids.setdefault(new.workflow.id, []).append(instance_ids[n])
    return made_ids


@dataclass(frozen=True, slots=True)
class NewInstance:
    """A workflow instance to write, with one task instance per node of its workflow."""

    workflow: DeployedWorkflow
    cycle: Cycle
    kind: InstanceType
    name: str
    env_type: EnvType
    parameters: str  # the workflow's k=v parameters
    tags: Sequence[tuple[str, str]] = ()
    group: object = None  # instances of one group share a UnifiedWorkflowInstanceId
    chosen: frozenset[int] | None = None  # task ids that run (others SkipUnchoose); all
    task_parameters: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    # names among `parameters` whose values the run request supplied (data, never code)
    supplied: frozenset[str] = frozenset()
    priority: int | None = None
    resource_group: str | None = None
    trigger_type: str = TriggerType.SCHEDULER.value
    run_now: bool = False  # tasks do not wait for the cycle's time (RunPolicy.Immediately)
    user: str = ""
    cross_cycle: bool = True  # wait for previous cycles (a backfill run newest first: no)


def insert_instances(
    conn: sa.Connection, todo: Sequence[NewInstance], now_ms: int
) -> tuple[list[int], list[int]]:
    """Write the instances (in a few statements); (their ids, their
    WorkflowTaskInstanceIds), in the order of `todo`."""
    instance_ids = allocate_ids(conn, wi, len(todo))
    first_task_id = next_counter(conn, "workflow_task_instance", len(todo))
    unified: dict[object, int] = {}
    for n, new in enumerate(todo):
        if new.group is not None:
            unified.setdefault(new.group, instance_ids[n])
    builder = RowBuilder()
    for n, new in enumerate(todo):
        spec = new.workflow.spec
        user = new.user or spec.owner
        builder.add(
            instance_ids[n],
            new.workflow.project_id,
            new.env_type.value,
            day_key(new.cycle.biz_day),
            new.kind.value,
            Status.NOT_RUN.value,
            new.workflow.id,
            first_task_id + n,
            instance_ids[n] if new.group is None else unified[new.group],
            new.name,
            spec.owner,
            user,
            user,
            new.cycle.trigger_time,
            None,
            None,
            now_ms,
            now_ms,
            new.parameters,
            list(new.tags),
        )
    batch = builder.take()
    instances.insert_encoded(conn, batch)
    partition = instances.partition_ids(conn, set(batch.rows))
    count = sum(len(new.workflow.tasks) for new in todo)
    task_ids = iter(allocate_ids(conn, ti, count))
    rows: list[dict[str, Any]] = []
    made: list[dependencies.Batch] = []
    for n, new in enumerate(todo):
        key = (new.workflow.project_id, new.env_type.value, day_key(new.cycle.biz_day))
        own = [next(task_ids) for _ in new.workflow.tasks]
        unified_id = instance_ids[n] if new.group is None else unified[new.group]
        rows += _task_rows(new, instance_ids[n], unified_id, own, partition[key], now_ms)
        made.append(_batch(new, own))
    edges = dependencies.resolve(conn, made)
    if edges:
        elsewhere: dict[int, list[int]] = {}
        for e in edges:
            elsewhere.setdefault(e.task_instance_id, []).append(e.upstream_id)
        for row in rows:
            if row["id"] in elsewhere:
                ups = [*_ids(row["upstream"]), *sorted(elsewhere[row["id"]])]
                row["upstream"] = _encode(ups).decode()
    bulk_insert(conn, ti, rows)
    dependencies.insert(conn, edges)
    # Instances made earlier that wait for these (their upstream was made after them).
    dependencies.attach(conn, dependencies.resolve_later(conn, made))
    return instance_ids, [first_task_id + n for n in range(len(todo))]


def _batch(new: NewInstance, task_instance_ids: Sequence[int]) -> dependencies.Batch:
    """What store.dependencies needs of an instance being made."""
    t = new.workflow.spec.trigger
    return dependencies.Batch(
        workflow_id=new.workflow.id,
        trigger=None if t.cron is None else Trigger(t.cron, t.timezone, t.start_ms, t.end_ms),
        trigger_time=new.cycle.trigger_time,
        run_date=new.cycle.run_date,
        kind=new.kind,
        chosen=new.chosen,
        task_instances={task.id: task_instance_ids[k] for k, task in enumerate(new.workflow.tasks)},
        nodes={task.id: task.node for task in new.workflow.tasks},
        cross_cycle=new.cross_cycle,
    )


def _made_cycles(
    conn: sa.Connection, items: Sequence[tuple[DeployedWorkflow, Sequence[Cycle]]]
) -> set[tuple[int, int]]:
    """(workflow id, trigger time) of the cycles among `items` that have instances."""
    made: set[tuple[int, int]] = set()
    ids = [w.id for w, cycles in items if cycles]
    lowest = min((c.trigger_time for _, cycles in items for c in cycles), default=0)
    highest = max((c.trigger_time for _, cycles in items for c in cycles), default=0)
    sc = scheduled_cycles.c
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(sc.workflow_id, sc.trigger_time).where(
                among(conn, sc.workflow_id, ids[start : start + 500]),
                sc.trigger_time.between(lowest, highest),
            )
        )
        made.update((int(w), int(t)) for w, t in rows)
    return made


def _parameters(workflow: DeployedWorkflow) -> str:
    return format_assignments(workflow.spec.parameters)


def _task_rows(
    new: NewInstance,
    instance_id: int,
    unified_id: int,
    task_ids: Sequence[int],
    partition_id: int,
    now_ms: int,
) -> list[dict[str, Any]]:
    workflow, cycle = new.workflow, new.cycle
    ids = {t.node.id: task_ids[k] for k, t in enumerate(workflow.tasks)}
    recurrence = Recurrence(cycle.kind.value)
    trigger_time = min(cycle.trigger_time, now_ms) if new.run_now else cycle.trigger_time
    rows = []
    for k, task in enumerate(workflow.tasks):
        node = task.node
        own = recurrence
        if own is Recurrence.NORMAL and new.chosen is not None and task.id not in new.chosen:
            own = Recurrence.SKIP_UNCHOOSE
        if own is Recurrence.NORMAL:
            own = node.recurrence
        override = new.task_parameters.get(task.id) or {}
        declared = dict(node.parameters)  # a node's own parameter hides the workflow's
        supplied = {*override, *(n for n in new.supplied if n not in declared)}
        node = replace(
            node,
            parameters=tuple({**declared, **override}.items()),
            supplied=tuple(sorted(supplied)),
        )
        if new.priority is not None or new.resource_group:
            node = replace(
                node,
                priority=node.priority if new.priority is None else new.priority,
                resource_group=new.resource_group or node.resource_group,
            )
        upstream = [ids[u.node_id] for u in node.upstream if u.node_id in ids and u.same_cycle]
        rows.append(
            {
                "id": task_ids[k],
                "workflow_instance_id": instance_id,
                "partition_id": partition_id,
                "project_id": workflow.project_id,
                "env_type": new.env_type.value,
                "biz_day": day_key(cycle.biz_day),
                "workflow_id": workflow.id,
                "task_id": task.id,
                "unified_workflow_instance_id": unified_id,
                "workflow_instance_type": new.kind.value,
                "trigger_type": new.trigger_type,
                "trigger_recurrence": own.value,
                "position": k,
                "upstream": _encode(upstream).decode(),
                "name": node.name,
                "type": node.command,
                "owner": task.owner,
                "status": Status.NOT_RUN.value,
                "period_number": cycle.period_number,
                "trigger_time": trigger_time,
                "priority": node.priority,
                "resource_group": node.resource_group,
                "spec": _encode(node).decode(),
                "parameters": new.parameters,
                "run_number": 0,
                "started_time": None,
                "finished_time": None,
                "waiting_trigger_time": None,
                "waiting_resource_time": None,
                "next_try_at": None,
                "worker": None,
                "pid": None,
                "process": None,
                "heartbeat_at": None,
                "create_time": now_ms,
                "modify_time": now_ms,
            }
        )
    return rows
