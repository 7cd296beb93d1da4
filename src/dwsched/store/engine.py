"""The engine's storage: instances made from schedules, task instances and their attempts.

Workflow instances the engine makes are written through `instances.insert_encoded`, like
imported ones (so partitions and their counts stay right), with one task instance per
deployed node. Every change of a task instance's status recomputes its workflow instance's
Status, StartedTime, FinishedTime and ModifyTime in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.execution import (
    TRIGGER_NODE,
    Move,
    Recurrence,
    TaskState,
    plan,
    workflow_status,
)
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.schedule import Cycle
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.store import definitions, instances
from dwsched.store.bulk import RowBuilder
from dwsched.store.schema import (
    id_counters,
    operation_instances as oi,
    scheduled_cycles,
    task_attempts,
    task_instances as ti,
    workflow_instances as wi,
    workflows,
)

VIRTUAL_PER_CLAIM = 200
# operation_instances.state: the instance may run (no row: made by the scheduler).
RELEASED = "Released"
VIRTUAL_ENDED: Literal["virtual"] = "virtual"
RUNNING_STATES = (Status.RUNNING.value, Status.CHECKING.value, Status.CHECKING_CONDITION.value)
_node_decoder = msgspec.json.Decoder(NodeSpec)
_ids = msgspec.json.Decoder(list[int])
_encode = msgspec.json.Encoder().encode


def allocate_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    """`count` new ids of `table` (its own key), inside a write transaction.

    SQLite: past the largest id ever used (sqlite_sequence) and the largest present; the
    write lock keeps others out until commit. PostgreSQL: the table's sequence (ids need
    not be contiguous: concurrent sessions interleave).
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        values = conn.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            f"FROM generate_series(1, {int(count)})"
        ).scalars()
        return sorted(int(v) for v in values)
    used = conn.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
    ).scalar()
    present = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
    first = max(int(used or 0), int(present or 0)) + 1
    return list(range(first, first + count))


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
        _advance_sequence(conn, wi, top_instance_id)
    if top_task_instance_id > 0:
        _advance_counter(conn, "workflow_task_instance", top_task_instance_id)


def _advance_sequence(conn: sa.Connection, table: sa.Table, top: int) -> None:
    if conn.dialect.name == "postgresql":
        sequence = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')"
        ).scalar_one()
        # A sequence has no compare-and-set: it is read, then set only forward. (A session
        # that took values across `top` between the two would see them handed out again;
        # imported ids ahead of the engine's are far ahead, not among its next few.)
        last = conn.exec_driver_sql(f"SELECT last_value FROM {sequence}").scalar_one()
        if top > int(last):
            conn.exec_driver_sql("SELECT setval(%s, %s)", (sequence, top))
        return
    # AUTOINCREMENT already keeps sqlite_sequence past every id inserted; a top taken from
    # other columns (UnifiedWorkflowInstanceId) moves it further. The write lock is held.
    moved = conn.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?", (top, table.name, top)
    ).rowcount
    if not moved:
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM sqlite_sequence WHERE name = ?)",
            (table.name, top, table.name),
        )


def _advance_counter(conn: sa.Connection, name: str, top: int) -> None:
    c = id_counters.c
    moved = conn.execute(
        sa.update(id_counters).where(c.name == name, c.next_value <= top).values(next_value=top + 1)
    ).rowcount
    if not moved and conn.execute(sa.select(c.name).where(c.name == name)).first() is None:
        # No counter yet: writers of a first counter row hold the write lock (SQLite) or
        # would conflict on its key (PostgreSQL), as next_counter's insert does.
        conn.execute(sa.insert(id_counters).values(name=name, next_value=top + 1))


# Generation


@dataclass(frozen=True, slots=True)
class ScheduledWorkflow:
    workflow: DeployedWorkflow
    first_run_day: date | None
    generated_through: date | None


def scheduled_workflows(conn: sa.Connection) -> list[ScheduledWorkflow]:
    """Deployed cycle workflows with a cron: those the scheduler makes instances for."""
    w = workflows.c
    ids = conn.execute(
        sa.select(w.id).where(
            w.definition_id.is_not(None),
            w.kind == "CycleWorkflow",
            w.trigger_type == "Scheduler",
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


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """What the scheduler makes for one workflow: cycles per run date, in date order."""

    workflow: DeployedWorkflow
    run_days: Sequence[tuple[date, Sequence[Cycle]]]
    first_run_day: date | None


def set_first_run_day(conn: sa.Connection, workflow_id: int, day: date) -> None:
    conn.execute(
        sa.update(workflows).where(workflows.c.id == workflow_id).values(first_run_day=day_key(day))
    )


def mark_generated(conn: sa.Connection, workflow_id: int, day: date) -> None:
    conn.execute(
        sa.update(workflows)
        .where(workflows.c.id == workflow_id)
        .values(generated_through=day_key(day))
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
    conn.execute(
        sa.insert(scheduled_cycles),
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
    trigger_type: str = "Scheduler"
    run_now: bool = False  # tasks do not wait for the cycle's time (RunPolicy.Immediately)
    user: str = ""


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
    for n, new in enumerate(todo):
        key = (new.workflow.project_id, new.env_type.value, day_key(new.cycle.biz_day))
        own = [next(task_ids) for _ in new.workflow.tasks]
        unified_id = instance_ids[n] if new.group is None else unified[new.group]
        rows += _task_rows(new, instance_ids[n], unified_id, own, partition[key], now_ms)
    if rows:
        conn.execute(sa.insert(ti), rows)
    return instance_ids, [first_task_id + n for n in range(len(todo))]


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
                sc.workflow_id.in_(ids[start : start + 500]),
                sc.trigger_time.between(lowest, highest),
            )
        )
        made.update((int(w), int(t)) for w, t in rows)
    return made


def _parameters(workflow: DeployedWorkflow) -> str:
    return " ".join(f"{k}={v}" for k, v in workflow.spec.parameters)


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
        if own is Recurrence.NORMAL and node.recurrence.value != "Normal":
            own = Recurrence(node.recurrence.value)
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
        upstream = [
            ids[u.node_id] for u in node.upstream if u.node_id in ids and u.type.value == "Normal"
        ]
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


# Planning


def unfinished_instances(conn: sa.Connection, limit: int) -> dict[int, list[TaskState]]:
    """The task states of workflow instances the planner may move: with a task NotRun or
    WaitTime, in an instance not finished (one whose remaining tasks all wait below a
    failure is Failure, so it is left out: it can never move). Oldest trigger time first,
    at most `limit` instances."""
    ids = [
        int(i)
        for i in conn.execute(
            sa.select(ti.c.workflow_instance_id)
            .join(wi, wi.c.id == ti.c.workflow_instance_id)
            .where(
                ti.c.status.in_([Status.NOT_RUN.value, Status.WAIT_TIME.value]),
                ti.c.suspended.is_(False),
                wi.c.status.not_in([Status.SUCCESS.value, Status.FAILURE.value]),
                ~sa.exists().where(
                    oi.c.workflow_instance_id == ti.c.workflow_instance_id,
                    oi.c.state != RELEASED,
                ),
            )
            .group_by(ti.c.workflow_instance_id)
            .order_by(sa.func.min(ti.c.trigger_time))
            .limit(limit)
        ).scalars()
    ]
    return states_of(conn, ids)


def states_of(conn: sa.Connection, ids: Sequence[int]) -> dict[int, list[TaskState]]:
    """The task states of these workflow instances, upstream first."""
    if not ids:
        return {}
    found: dict[int, list[TaskState]] = {i: [] for i in ids}
    rows = conn.execute(
        sa.select(
            ti.c.id,
            ti.c.workflow_instance_id,
            ti.c.status,
            ti.c.upstream,
            ti.c.trigger_time,
            ti.c.trigger_recurrence,
            *STATE_EXTRA,
        )
        .where(ti.c.workflow_instance_id.in_(ids))
        .order_by(ti.c.workflow_instance_id, ti.c.position)
    )
    for r in rows:
        found[r.workflow_instance_id].append(_state(r))
    return found


STATE_EXTRA = (ti.c.suspended, ti.c.type, ti.c.triggered_at)


def _state(r: Any) -> TaskState:
    """A task_instances row (with id, status, upstream, trigger columns and STATE_EXTRA)
    as a TaskState."""
    return TaskState(
        r.id,
        Status(r.status),
        tuple(_ids.decode(r.upstream)),
        r.trigger_time,
        Recurrence(r.trigger_recurrence),
        bool(r.suspended),
        r.type == TRIGGER_NODE,
        r.triggered_at is not None,
    )


def apply_moves(conn: sa.Connection, moves: Iterable[Move]) -> None:
    for m in moves:
        values: dict[str, Any] = {"status": m.status.value, "modify_time": m.at}
        if m.status is Status.WAIT_TIME:
            values["waiting_trigger_time"] = m.at
        if m.status is Status.WAIT_RESOURCE:
            values["waiting_resource_time"] = m.at
        if m.dry_run:
            values |= {"started_time": m.at, "finished_time": m.at}
        conn.execute(
            sa.update(ti)
            .where(ti.c.id == m.task_instance_id, ti.c.status == m.since.value)
            .values(**values)
        )


def refresh_workflow_instances(conn: sa.Connection, ids: Iterable[int], now_ms: int) -> None:
    """Derive each workflow instance's Status and times from its task instances."""
    for instance_id in sorted(set(ids)):
        rows = conn.execute(
            sa.select(
                ti.c.id,
                ti.c.status,
                ti.c.upstream,
                ti.c.trigger_time,
                ti.c.trigger_recurrence,
                ti.c.started_time,
                ti.c.finished_time,
                *STATE_EXTRA,
            )
            .where(ti.c.workflow_instance_id == instance_id)
            .order_by(ti.c.position)
        ).all()
        if not rows:
            continue
        status = workflow_status([_state(r) for r in rows])
        started = [r.started_time for r in rows if r.started_time is not None]
        finished = [r.finished_time for r in rows if r.finished_time is not None]
        done = status in (Status.SUCCESS, Status.FAILURE)
        conn.execute(
            sa.update(wi)
            .where(wi.c.id == instance_id)
            .values(
                status=status.value,
                started_time=min(started) if started else None,
                finished_time=max(finished) if done and finished else None,
                modify_time=now_ms,
            )
        )


def lock_instance(conn: sa.Connection, instance_id: int) -> None:
    """Serialise the transactions that change one workflow instance's tasks (PostgreSQL:
    a row lock; under READ COMMITTED two of them would each derive the instance's status
    from a state without the other's change. SQLite's write lock does this already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(wi.c.id).where(wi.c.id == instance_id).with_for_update())


# Work: claiming, heartbeats, outcomes


@dataclass(frozen=True, slots=True)
class Claimed:
    """A task instance a worker now runs: attempt `run_number`."""

    id: int
    workflow_instance_id: int
    run_number: int
    status: Status  # Running, or CheckingCondition for a branch node
    node: NodeSpec
    parameters: str
    biz_day: date
    trigger_time: int
    timezone: str
    env_type: EnvType
    worker: str


def lock_claims(conn: sa.Connection) -> None:
    """PostgreSQL: one claiming transaction at a time, so that resource-group slots counted
    at its start stay true (SQLite's write lock does this already)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7346202)")


def has_waiting(conn: sa.Connection, now_ms: int, groups: Sequence[str] | None = None) -> bool:
    """Whether any task instance (of these resource groups; None: any) waits for a
    resource now (not for a retry's time)."""
    query = sa.select(ti.c.id).where(
        ti.c.status == Status.WAIT_RESOURCE.value,
        sa.or_(ti.c.next_try_at.is_(None), ti.c.next_try_at <= now_ms),
    )
    if groups is not None:
        query = query.where(ti.c.resource_group.in_(list(groups)))
    found = conn.execute(query.limit(1)).first()
    return found is not None


def running_by_group(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(ti.c.resource_group, sa.func.count())
        .where(ti.c.status.in_(RUNNING_STATES))
        .group_by(ti.c.resource_group)
    )
    return {str(g): int(n) for g, n in rows}


def claim_many(
    conn: sa.Connection,
    worker: str,
    free: Callable[[str], int],
    full: set[str],
    limit: int,
    now_ms: int,
    groups: Sequence[str] | None = None,
) -> tuple[list[Claimed], int]:
    """Up to `limit` claims in one transaction, each within its resource group's free
    slots (`free(group)` before this call; `full` the groups with none), only of `groups`
    (None: of any group).

    A VIRTUAL node (nothing to run) ends here, in the same transaction, and takes no slot;
    its downstream may then be claimed too. At most VIRTUAL_PER_CLAIM of them per call;
    (the claims, how many VIRTUAL nodes ended).
    """
    taken: dict[str, int] = {}
    found: list[Claimed] = []
    virtual = 0
    # Read once, and again after a VIRTUAL node ends (it may have made downstream tasks of
    # a new priority ready).
    priorities: list[int] | None = None
    while len(found) < limit and virtual < VIRTUAL_PER_CLAIM:
        if priorities is None:
            priorities = waiting_priorities(conn)
        one = claim(
            conn,
            worker,
            sorted(full),
            now_ms,
            end_virtual=True,
            priorities=priorities,
            groups=groups,
        )
        if one == VIRTUAL_ENDED:
            virtual += 1
            priorities = None
            continue
        if one is None:
            break
        assert not isinstance(one, str)
        found.append(one)
        group = one.node.resource_group
        taken[group] = taken.get(group, 0) + 1
        if taken[group] >= free(group):
            full.add(group)
    return found, virtual


def waiting_priorities(conn: sa.Connection) -> list[int]:
    """The priorities of the task instances waiting for a resource, highest first."""
    return [
        int(p)
        for p in conn.execute(
            sa.select(ti.c.priority)
            .where(ti.c.status == Status.WAIT_RESOURCE.value)
            .distinct()
            .order_by(ti.c.priority.desc())
        ).scalars()
    ]


def claim(
    conn: sa.Connection,
    worker: str,
    full_groups: Sequence[str],
    now_ms: int,
    end_virtual: bool = False,
    priorities: Sequence[int] | None = None,
    groups: Sequence[str] | None = None,
) -> Claimed | Literal["virtual"] | None:
    """Take the most urgent task instance waiting for a resource (priority, then trigger
    time) outside the full resource groups (and in `groups`, unless None), and mark it
    claimed by `worker`. Call inside a
    write transaction; on PostgreSQL the row is locked with SKIP LOCKED, so concurrent
    workers take different rows."""
    where: list[sa.ColumnElement[bool]] = [
        ti.c.status == Status.WAIT_RESOURCE.value,
        sa.or_(ti.c.next_try_at.is_(None), ti.c.next_try_at <= now_ms),
    ]
    if full_groups:
        where.append(ti.c.resource_group.not_in(list(full_groups)))
    if groups is not None:
        where.append(ti.c.resource_group.in_(list(groups)))
    # One priority at a time, highest first: each lookup is one range of ix_ti_claim in
    # trigger-time order, where a single ORDER BY priority DESC, trigger_time would sort
    # every waiting task.
    if priorities is None:
        priorities = waiting_priorities(conn)
    row = None
    for priority in priorities:
        query = (
            sa.select(ti)
            .where(*where, ti.c.priority == priority)
            .order_by(ti.c.trigger_time, ti.c.id)
            .limit(1)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is not None:
            break
    if row is None:
        return None
    lock_instance(conn, row.workflow_instance_id)
    node = _node_decoder.decode(row.spec)
    status = Status.CHECKING_CONDITION if node.command == "CONTROLLER_BRANCH" else Status.RUNNING
    run_number = row.run_number + 1
    # The time was read before this transaction began; on PostgreSQL the row may have
    # become ready (committed by another transaction) after that. It cannot start earlier.
    now_ms = max(now_ms, row.waiting_resource_time or 0)
    if end_virtual and node.command == "VIRTUAL":
        _end_virtual(conn, row, run_number, worker, now_ms)
        return VIRTUAL_ENDED
    conn.execute(
        sa.update(ti)
        .where(ti.c.id == row.id)
        .values(
            status=status.value,
            run_number=run_number,
            worker=worker,
            pid=None,
            process=None,
            heartbeat_at=now_ms,
            started_time=row.started_time or now_ms,
            finished_time=None,
            next_try_at=None,
            modify_time=now_ms,
        )
    )
    _new_attempt(conn, row.id, run_number, worker, status, now_ms, ended=False)
    refresh_workflow_instances(conn, [row.workflow_instance_id], now_ms)
    return _claimed(conn, row.id)


def _new_attempt(
    conn: sa.Connection,
    task_instance_id: int,
    run_number: int,
    worker: str,
    status: Status,
    now_ms: int,
    ended: bool,
) -> None:
    """The attempt's row: in progress, or (a VIRTUAL node) ended successfully already."""
    conn.execute(
        sa.insert(task_attempts).values(
            task_instance_id=task_instance_id,
            run_number=run_number,
            worker=worker,
            status=status.value,
            exit_code=0 if ended else None,
            started_time=now_ms,
            finished_time=now_ms if ended else None,
            log="",
        )
    )


def _end_virtual(
    conn: sa.Connection, row: sa.Row[Any], run_number: int, worker: str, now_ms: int
) -> None:
    """A claimed VIRTUAL node: nothing runs, so its attempt starts and succeeds at once."""
    conn.execute(
        sa.update(ti)
        .where(ti.c.id == row.id)
        .values(
            status=Status.SUCCESS.value,
            run_number=run_number,
            started_time=row.started_time or now_ms,
            finished_time=now_ms,
            next_try_at=None,
            modify_time=now_ms,
        )
    )
    _new_attempt(conn, row.id, run_number, worker, Status.SUCCESS, now_ms, ended=True)
    states = states_of(conn, [row.workflow_instance_id]).get(row.workflow_instance_id, [])
    apply_moves(conn, plan(states, now_ms))
    refresh_workflow_instances(conn, [row.workflow_instance_id], now_ms)


def record_process(
    conn: sa.Connection, task_instance_id: int, pid: int, process: str | None
) -> None:
    conn.execute(sa.update(ti).where(ti.c.id == task_instance_id).values(pid=pid, process=process))


def set_checking(conn: sa.Connection, claimed: Claimed, log: str, now_ms: int) -> None:
    lock_instance(conn, claimed.workflow_instance_id)
    conn.execute(
        sa.update(ti)
        .where(
            ti.c.id == claimed.id,
            ti.c.run_number == claimed.run_number,
            ti.c.worker == claimed.worker,
            ti.c.status == Status.RUNNING.value,
        )
        .values(status=Status.CHECKING.value, modify_time=now_ms)
    )
    _attempt(conn, claimed, Status.CHECKING, None, log, None)
    refresh_workflow_instances(conn, [claimed.workflow_instance_id], now_ms)


def heartbeat(conn: sa.Connection, worker: str, ids: Sequence[int], now_ms: int) -> set[int]:
    """Beat for this worker's attempts in progress; the ids still its own (an attempt
    recovered by another engine is not: the worker must stop it)."""
    if not ids:
        return set()
    conn.execute(
        sa.update(ti)
        .where(ti.c.id.in_(list(ids)), ti.c.worker == worker, ti.c.status.in_(RUNNING_STATES))
        .values(heartbeat_at=now_ms)
    )
    mine = conn.execute(
        sa.select(ti.c.id).where(
            ti.c.id.in_(list(ids)), ti.c.worker == worker, ti.c.status.in_(RUNNING_STATES)
        )
    ).scalars()
    return {int(i) for i in mine}


def attempts_of(conn: sa.Connection, worker: str, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    mine = conn.execute(
        sa.select(ti.c.id).where(
            ti.c.id.in_(list(ids)), ti.c.worker == worker, ti.c.status.in_(RUNNING_STATES)
        )
    ).scalars()
    return {int(i) for i in mine}


def finish(
    conn: sa.Connection,
    claimed: Claimed,
    status: Status,
    exit_code: int | None,
    log: str,
    now_ms: int,
    retry_at: int | None,
) -> bool:
    """Record the attempt's end: Success, Failure, or (retry_at given) back to
    WaitResource until `retry_at`; False (nothing written) when the attempt is no longer
    in progress for this worker (recovery, or another worker, has taken it over)."""
    lock_instance(conn, claimed.workflow_instance_id)
    values: dict[str, Any] = {"worker": None, "pid": None, "process": None, "modify_time": now_ms}
    if retry_at is not None:
        values |= {
            "status": Status.WAIT_RESOURCE.value,
            "next_try_at": retry_at,
            "waiting_resource_time": now_ms,
        }
    else:
        values |= {"status": status.value, "finished_time": now_ms}
    done = conn.execute(
        sa.update(ti)
        .where(
            ti.c.id == claimed.id,
            ti.c.run_number == claimed.run_number,
            ti.c.worker == claimed.worker,
            ti.c.status.in_(RUNNING_STATES),
        )
        .values(**values)
    )
    if done.rowcount == 0:
        return False
    _attempt(conn, claimed, status, exit_code, log, now_ms)
    # Its downstream tasks may be ready now: plan the instance at once rather than at the
    # next tick (dispatch latency).
    states = states_of(conn, [claimed.workflow_instance_id]).get(claimed.workflow_instance_id, [])
    apply_moves(conn, plan(states, now_ms))
    refresh_workflow_instances(conn, [claimed.workflow_instance_id], now_ms)
    return True


def _attempt(
    conn: sa.Connection,
    claimed: Claimed,
    status: Status,
    exit_code: int | None,
    log: str,
    finished: int | None,
) -> None:
    conn.execute(
        sa.update(task_attempts)
        .where(
            task_attempts.c.task_instance_id == claimed.id,
            task_attempts.c.run_number == claimed.run_number,
        )
        .values(status=status.value, exit_code=exit_code, log=log, finished_time=finished)
    )


def unchoose(conn: sa.Connection, claimed: Claimed, outputs: Sequence[str], now_ms: int) -> None:
    """A branch chose: downstream tasks fed only by the outputs not chosen become dry runs
    (ConditionUnchoose), and so does everything below them."""
    rows = conn.execute(
        sa.select(ti.c.id, ti.c.spec, ti.c.upstream).where(
            ti.c.workflow_instance_id == claimed.workflow_instance_id
        )
    ).all()
    unchosen = set(outputs)
    skipped: set[int] = set()
    for r in sorted(rows, key=lambda r: r.id):
        node = _node_decoder.decode(r.spec)
        via = [u for u in node.upstream if u.type.value == "Normal"]
        from_branch = [u for u in via if u.node_id == claimed.node.id]
        ups = set(_ids.decode(r.upstream))
        if (from_branch and all(u.output in unchosen for u in from_branch)) or (
            ups and ups <= skipped
        ):
            skipped.add(r.id)
    if skipped:
        conn.execute(
            sa.update(ti)
            .where(ti.c.id.in_(sorted(skipped)))
            .values(trigger_recurrence=Recurrence.CONDITION_UNCHOOSE.value, modify_time=now_ms)
        )


def attempt_log(conn: sa.Connection, task_instance_id: int, run_number: int | None) -> str | None:
    a = task_attempts.c
    query = sa.select(a.log).where(a.task_instance_id == task_instance_id)
    if run_number is None:
        query = query.order_by(a.run_number.desc()).limit(1)
    else:
        query = query.where(a.run_number == run_number)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def append_log(conn: sa.Connection, claimed: Claimed, log: str) -> None:
    """The log so far of an attempt still in progress (an ended one keeps its final log)."""
    conn.execute(
        sa.update(task_attempts)
        .where(
            task_attempts.c.task_instance_id == claimed.id,
            task_attempts.c.run_number == claimed.run_number,
            task_attempts.c.finished_time.is_(None),
        )
        .values(log=log)
    )


def stale_attempts(conn: sa.Connection, heartbeat_before: int) -> list[Claimed]:
    """Attempts in progress whose worker has not beaten since `heartbeat_before`."""
    rows = conn.execute(
        sa.select(ti.c.id).where(
            ti.c.status.in_(RUNNING_STATES),
            sa.or_(ti.c.heartbeat_at.is_(None), ti.c.heartbeat_at < heartbeat_before),
        )
    ).scalars()
    return [_claimed(conn, int(i)) for i in rows]


def _claimed(conn: sa.Connection, task_instance_id: int) -> Claimed:
    row = conn.execute(sa.select(ti).where(ti.c.id == task_instance_id)).one()
    tz = conn.execute(
        sa.select(workflows.c.timezone).where(workflows.c.id == row.workflow_id)
    ).scalar()
    return Claimed(
        row.id,
        row.workflow_instance_id,
        row.run_number,
        Status(row.status),
        _node_decoder.decode(row.spec),
        row.parameters,
        day_from_key(row.biz_day),
        row.trigger_time,
        str(tz or "UTC"),
        EnvType(row.env_type),
        str(row.worker or ""),
    )


def process_of(
    conn: sa.Connection, task_instance_id: int
) -> tuple[int | None, str | None, str | None]:
    """(pid, process identity, worker) of the attempt in progress."""
    row = conn.execute(
        sa.select(ti.c.pid, ti.c.process, ti.c.worker).where(ti.c.id == task_instance_id)
    ).one()
    return row.pid, row.process, row.worker


def heartbeat_of(conn: sa.Connection, task_instance_id: int) -> int | None:
    found = conn.execute(sa.select(ti.c.heartbeat_at).where(ti.c.id == task_instance_id)).scalar()
    return None if found is None else int(found)
