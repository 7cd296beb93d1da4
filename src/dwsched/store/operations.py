"""Operations on instances: asynchronous creation (CreateWorkflowInstances), the release of
created instances (AutoStartEnabled, a backfill's Parallelism and RunPolicy), and the
operator's actions on task and workflow instances, each recorded in the operation log.

Every action on a task instance runs in one write transaction: on PostgreSQL it first takes
the claim lock (engine.lock_claims: no worker claims meanwhile), then its workflow
instances' locks in ascending id order (as the planner does), then writes only if the task
is still in the status the decision was made on (domain.operations.decide). A worker that
finishes meanwhile finds its attempt no longer its own and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain import operations as ops
from dwsched.domain.calendar import day_key
from dwsched.domain.errors import NotFound
from dwsched.domain.execution import Recurrence, plan
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import EnvType, Status
from dwsched.domain.operations import Operation
from dwsched.domain.runs import PlannedInstance, RunRequest
from dwsched.store import definitions
from dwsched.store.engine import (
    RELEASED,
    NewInstance,
    apply_moves,
    insert_instances,
    lock_instance,
    refresh_workflow_instances,
    states_of,
)
from dwsched.store.schema import (
    operation_instances as oi,
    operations,
    scheduled_cycles,
    task_attempts,
    task_instances as ti,
    task_operation_logs as logs,
    tasks,
    workflow_instances as wi,
)

CREATING, CREATED, CREATE_FAILURE = "Creating", "Created", "CreateFailure"
NOT_STARTED, QUEUED = "NotStarted", "Queued"
_node = msgspec.json.Decoder(NodeSpec).decode
_encode = msgspec.json.Encoder().encode
_request = msgspec.json.Decoder(RunRequest).decode


class OperationNotFound(NotFound):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"The operation {operation_id!r} does not exist.")


@dataclass(frozen=True, slots=True)
class OperationRecord:
    id: str
    kind: str
    project_id: int
    status: str
    failure_message: str
    result: dict[str, Any]
    request: str


def insert_operation(
    conn: sa.Connection,
    operation_id: str,
    kind: str,
    project_id: int,
    status: str,
    request: str,
    user: str,
    now_ms: int,
    result: dict[str, Any] | None = None,
    failure_message: str = "",
) -> None:
    conn.execute(
        sa.insert(operations).values(
            id=operation_id,
            kind=kind,
            project_id=project_id,
            status=status,
            request=request,
            result=json.dumps(result or {}),
            failure_message=failure_message,
            user=user,
            create_time=now_ms,
            modify_time=now_ms,
        )
    )


def operation_by_id(conn: sa.Connection, operation_id: str, kind: str) -> OperationRecord:
    row = conn.execute(
        sa.select(operations).where(operations.c.id == operation_id, operations.c.kind == kind)
    ).first()
    if row is None:
        raise OperationNotFound(operation_id)
    return OperationRecord(
        row.id,
        row.kind,
        row.project_id,
        row.status,
        row.failure_message,
        json.loads(row.result or "{}"),
        row.request,
    )


# Creation


def creating(conn: sa.Connection) -> list[tuple[str, RunRequest, int, str]]:
    """The CreateWorkflowInstances operations still Creating: (id, request, create time,
    user), oldest first."""
    rows = conn.execute(
        sa.select(
            operations.c.id, operations.c.request, operations.c.create_time, operations.c.user
        )
        .where(operations.c.status == CREATING)
        .order_by(operations.c.create_time)
    )
    return [(r.id, _request(r.request), r.create_time, r.user) for r in rows]


def take_creation(conn: sa.Connection, operation_id: str, now_ms: int) -> bool:
    """Mark the operation Created (first, so that two schedulers do not both create it);
    False when it is no longer Creating."""
    done = conn.execute(
        sa.update(operations)
        .where(operations.c.id == operation_id, operations.c.status == CREATING)
        .values(status=CREATED, modify_time=now_ms)
    )
    return done.rowcount == 1


def create_instances(
    conn: sa.Connection,
    operation_id: str,
    request: RunRequest,
    planned: Sequence[PlannedInstance],
    user: str,
    now_ms: int,
) -> dict[str, list[int]]:
    """Write the planned instances and their release state; the operation's result."""
    policy = request.run_policy
    todo = [
        NewInstance(
            workflow=p.workflow,
            cycle=p.cycle,
            kind=request.type,
            name=request.name,
            env_type=request.env_type or p.workflow.env_type,
            parameters=p.parameters,
            tags=request.tags if request.overwrite_tags else _append(request.tags),
            group=p.cycle.biz_day,
            chosen=p.chosen,
            task_parameters=p.task_parameters,
            supplied=p.supplied,
            priority=request.priority,
            resource_group=request.resource_group,
            trigger_type="Manual",
            run_now=policy is not None and policy.immediately,
            user=user,
        )
        for p in planned
    ]
    ids, task_ids = insert_instances(conn, todo, now_ms)
    state = QUEUED if request.auto_start else NOT_STARTED
    conn.execute(
        sa.insert(oi),
        [
            {
                "workflow_instance_id": i,
                "operation_id": operation_id,
                "biz_day": day_key(new.cycle.biz_day),
                "state": state,
            }
            for i, new in zip(ids, todo, strict=True)
        ],
    )
    unified = list(dict.fromkeys(_unified_ids(conn, ids)))
    result = {
        "WorkflowInstanceIds": ids,
        "UnifiedWorkflowInstanceIds": unified,
        "WorkflowTaskInstanceIds": task_ids,
    }
    conn.execute(
        sa.update(operations)
        .where(operations.c.id == operation_id)
        .values(result=json.dumps(result), modify_time=now_ms)
    )
    return result


def _append(tags: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Append: the request's tags added to the workflow's (deployed workflows carry none in
    dwsched, so these are the request's, each once)."""
    return list(dict.fromkeys(tags))


def _unified_ids(conn: sa.Connection, ids: Sequence[int]) -> list[int]:
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(
            sa.select(wi.c.id, wi.c.unified_workflow_instance_id).where(wi.c.id.in_(chunk))
        )
        found.update({int(r.id): int(r.unified_workflow_instance_id) for r in rows})
    return [found[i] for i in ids]


def fail_creation(conn: sa.Connection, operation_id: str, message: str, now_ms: int) -> None:
    conn.execute(
        sa.update(operations)
        .where(operations.c.id == operation_id)
        .values(status=CREATE_FAILURE, failure_message=message, modify_time=now_ms)
    )


# Release: which created instances may run


def queued_operations(conn: sa.Connection) -> list[tuple[str, RunRequest]]:
    ids = conn.execute(sa.select(oi.c.operation_id).where(oi.c.state == QUEUED).distinct())
    wanted = [str(i) for i in ids.scalars()]
    if not wanted:
        return []
    rows = conn.execute(
        sa.select(operations.c.id, operations.c.request).where(operations.c.id.in_(wanted))
    )
    return [(r.id, _request(r.request)) for r in rows]


def release(conn: sa.Connection, operation_id: str, request: RunRequest, allowed: bool) -> int:
    """Release the operation's queued BizDates in order while fewer than its Parallelism
    are unfinished (a backfill), or all of them (other types); `allowed` false (outside
    the RunPolicy's window) releases none. The number of instances released."""
    rows = conn.execute(
        sa.select(oi.c.workflow_instance_id, oi.c.biz_day, oi.c.state, wi.c.status)
        .join(wi, wi.c.id == oi.c.workflow_instance_id)
        .where(oi.c.operation_id == operation_id)
    ).all()
    queued = sorted({r.biz_day for r in rows if r.state == QUEUED}, reverse=request.descending)
    if not queued or not allowed:
        return 0
    if request.type.value == "SupplementData":
        finished = (Status.SUCCESS.value, Status.FAILURE.value)
        active = {r.biz_day for r in rows if r.state == RELEASED and r.status not in finished}
        room = max(0, request.parallelism - len(active))
        days = queued[:room]
    else:
        days = queued
    if not days:
        return 0
    done = conn.execute(
        sa.update(oi)
        .where(oi.c.operation_id == operation_id, oi.c.state == QUEUED, oi.c.biz_day.in_(days))
        .values(state=RELEASED)
    )
    return int(done.rowcount)


def held_state(conn: sa.Connection, workflow_instance_id: int) -> str | None:
    return conn.execute(
        sa.select(oi.c.state).where(oi.c.workflow_instance_id == workflow_instance_id)
    ).scalar()


# Operations on task instances


@dataclass(frozen=True, slots=True)
class Result:
    success: bool
    message: str


def task_operation(
    conn: sa.Connection,
    op: Operation,
    ids: Sequence[int],
    user: str,
    comment: str,
    now_ms: int,
    latest_config: bool = False,
) -> dict[int, Result]:
    """Apply `op` to each task instance; each id's own result (one refused id does not
    stop the others)."""
    rows = _rows(conn, ids)
    results: dict[int, Result] = {}
    for instance_id in sorted({r.workflow_instance_id for r in rows.values()}):
        lock_instance(conn, instance_id)
    touched: set[int] = set()
    rows = _rows(conn, ids)  # again, now that their instances are locked
    for task_instance_id in ids:
        row = rows.get(task_instance_id)
        if row is None:
            results[task_instance_id] = Result(False, "The instance does not exist.")
            continue
        try:
            outcome = ops.decide(op, _current(row))
        except ops.Refused as exc:
            results[task_instance_id] = Result(False, exc.message)
            continue
        _apply(conn, op, row, outcome, user, now_ms, latest_config)
        log_operation(conn, task_instance_id, user, ops.describe(op, comment), now_ms)
        touched.add(row.workflow_instance_id)
        results[task_instance_id] = Result(True, _done(op, outcome))
    _replan(conn, touched, now_ms)
    return results


def _done(op: Operation, outcome: ops.Outcome) -> str:
    if op is Operation.TRIGGER and outcome.status is None:
        return "Triggered: it succeeds when it reaches WaitTrigger."
    return "OK"


def _rows(conn: sa.Connection, ids: Iterable[int]) -> dict[int, sa.Row[Any]]:
    wanted = sorted(set(ids))
    found: dict[int, sa.Row[Any]] = {}
    for start in range(0, len(wanted), 500):
        rows = conn.execute(sa.select(ti).where(ti.c.id.in_(wanted[start : start + 500])))
        found.update({int(r.id): r for r in rows})
    return found


def _current(row: sa.Row[Any]) -> ops.Current:
    node = _node(row.spec)
    return ops.Current(row.id, Status(row.status), bool(row.suspended), node.rerun_mode.value)


def _apply(
    conn: sa.Connection,
    op: Operation,
    row: sa.Row[Any],
    outcome: ops.Outcome,
    user: str,
    now_ms: int,
    latest_config: bool,
) -> None:
    values: dict[str, Any] = {
        "suspended": outcome.suspended,
        "operation_type": op.value,
        "modify_time": now_ms,
    }
    running = row.status in (s.value for s in ops.RUNNING)
    if outcome.status is not None:
        values["status"] = outcome.status.value
    if op is Operation.RERUN:
        values |= {
            "started_time": None,
            "finished_time": None,
            "next_try_at": None,
            "waiting_trigger_time": None,
            "waiting_resource_time": None,
            "triggered_at": None,
        }
        node = _node(row.spec)
        if row.trigger_recurrence == Recurrence.CONDITION_UNCHOOSE.value:
            values["trigger_recurrence"] = node.recurrence.value
        if latest_config:
            values |= _latest(conn, row)
    elif op is Operation.STOP:
        values |= {"finished_time": now_ms, "worker": None, "pid": None, "process": None}
        if running:
            _end_attempt(conn, row, f"dwsched: the attempt was stopped by {user or 'an operator'}.")
    elif op in (Operation.SET_SUCCESS, Operation.TRIGGER) and outcome.status is Status.SUCCESS:
        values |= {"finished_time": now_ms, "started_time": row.started_time or now_ms}
    elif op is Operation.TRIGGER:
        values["triggered_at"] = now_ms
    conn.execute(
        sa.update(ti)
        .where(ti.c.id == row.id, ti.c.status == row.status, ti.c.suspended == row.suspended)
        .values(**values)
    )


def _latest(conn: sa.Connection, row: sa.Row[Any]) -> dict[str, Any]:
    """The task's settings as deployed now (UseLatestConfig)."""
    workflow = definitions.workflow_by_id(conn, row.workflow_id)
    task = next((t for t in workflow.tasks if t.id == row.task_id), None)
    if task is None:
        return {}
    node = replace(task.node, supplied=())  # every value as deployed: none supplied
    return {
        "spec": _encode(node).decode(),
        "name": node.name,
        "type": node.command,
        "owner": task.owner,
        "priority": node.priority,
        "resource_group": node.resource_group,
        "parameters": " ".join(f"{k}={v}" for k, v in workflow.spec.parameters),
    }


def _end_attempt(conn: sa.Connection, row: sa.Row[Any], note: str) -> None:
    a = task_attempts.c
    current = conn.execute(
        sa.select(a.log).where(a.task_instance_id == row.id, a.run_number == row.run_number)
    ).scalar()
    if current is None:
        return
    conn.execute(
        sa.update(task_attempts)
        .where(a.task_instance_id == row.id, a.run_number == row.run_number)
        .values(
            status=Status.FAILURE.value,
            finished_time=sa.func.coalesce(a.finished_time, row.modify_time),
            log=(current + ("\n" if current and not current.endswith("\n") else "") + note + "\n"),
        )
    )


def _replan(conn: sa.Connection, instance_ids: Iterable[int], now_ms: int) -> None:
    """Move what the operations made ready, and derive the instances' statuses again. An
    instance its operation still holds (NotStarted, Queued) is not moved: it runs when it
    is released, as the planner would have it."""
    ids = sorted(set(instance_ids))
    held = {
        int(i)
        for i in conn.execute(
            sa.select(oi.c.workflow_instance_id).where(
                oi.c.workflow_instance_id.in_(ids), oi.c.state != RELEASED
            )
        ).scalars()
    }
    states = states_of(conn, [i for i in ids if i not in held])
    for found in states.values():
        apply_moves(conn, plan(found, now_ms))
    refresh_workflow_instances(conn, ids, now_ms)


def log_operation(
    conn: sa.Connection, task_instance_id: int, user: str, content: str, now_ms: int
) -> None:
    conn.execute(
        sa.insert(logs).values(
            task_instance_id=task_instance_id, create_time=now_ms, user=user, content=content
        )
    )


def operation_logs(
    conn: sa.Connection, task_instance_id: int, start_ms: int, end_ms: int, offset: int, limit: int
) -> tuple[int, list[sa.Row[Any]]]:
    """The operations on the task instance between the two instants, oldest first."""
    where = (
        logs.c.task_instance_id == task_instance_id,
        logs.c.create_time >= start_ms,
        logs.c.create_time < end_ms,
    )
    total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar() or 0
    rows = conn.execute(
        sa.select(logs).where(*where).order_by(logs.c.id).offset(offset).limit(limit)
    ).all()
    return int(total), list(rows)


# Operations on workflow instances


def instance_tasks(conn: sa.Connection, workflow_instance_id: int) -> list[sa.Row[Any]]:
    return list(
        conn.execute(
            sa.select(ti)
            .where(ti.c.workflow_instance_id == workflow_instance_id)
            .order_by(ti.c.position)
        ).all()
    )


def instance_status(conn: sa.Connection, workflow_instance_id: int) -> str | None:
    return conn.execute(sa.select(wi.c.status).where(wi.c.id == workflow_instance_id)).scalar()


def start_instance(
    conn: sa.Connection, workflow_instance_id: int, user: str, now_ms: int
) -> Result:
    """StartWorkflowInstances for one instance: one made with AutoStartEnabled=false is
    queued to run (a backfill's Parallelism still applies)."""
    status = instance_status(conn, workflow_instance_id)
    if status is None:
        return Result(False, "The instance does not exist.")
    state = held_state(conn, workflow_instance_id)
    if state != NOT_STARTED:
        why = (
            "it was not created with AutoStartEnabled=false"
            if state is None
            else "it has been started already"
        )
        return Result(
            False, f"The workflow instance {workflow_instance_id} cannot be started: {why}."
        )
    conn.execute(
        sa.update(oi).where(oi.c.workflow_instance_id == workflow_instance_id).values(state=QUEUED)
    )
    for row in instance_tasks(conn, workflow_instance_id):
        log_operation(conn, row.id, user, "started (StartWorkflowInstances)", now_ms)
    return Result(True, "OK")


def stop_instance(
    conn: sa.Connection, workflow_instance_id: int, user: str, comment: str, now_ms: int
) -> Result:
    """StopWorkflowInstances for one instance: every unfinished task stops (Failure)."""
    lock_instance(conn, workflow_instance_id)
    status = instance_status(conn, workflow_instance_id)
    if status is None:
        return Result(False, "The instance does not exist.")
    rows = [r for r in instance_tasks(conn, workflow_instance_id) if r.status not in _FINISHED]
    if not rows or status in _FINISHED:
        return Result(
            False, f"The workflow instance {workflow_instance_id} has already ended ({status})."
        )
    conn.execute(
        sa.update(oi)
        .where(oi.c.workflow_instance_id == workflow_instance_id)
        .values(state=RELEASED)
    )
    for row in rows:
        outcome = ops.decide(Operation.STOP, _current(row))
        _apply(conn, Operation.STOP, row, outcome, user, now_ms, latest_config=False)
        log_operation(conn, row.id, user, ops.describe(Operation.STOP, comment), now_ms)
    _replan(conn, [workflow_instance_id], now_ms)
    return Result(True, "OK")


_FINISHED = (Status.SUCCESS.value, Status.FAILURE.value)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """RerunWorkflowInstances' Filter: which tasks of each instance rerun."""

    task_ids: frozenset[int] | None = None
    statuses: frozenset[str] | None = None
    name: str | None = None
    types: frozenset[str] | None = None
    downstream: bool = False

    def matches(self, row: sa.Row[Any]) -> bool:
        return (
            (self.task_ids is None or row.task_id in self.task_ids)
            and (self.statuses is None or row.status in self.statuses)
            and (self.name is None or self.name.casefold() in row.name.casefold())
            and (self.types is None or row.type in self.types)
        )


def rerun_instance(
    conn: sa.Connection,
    workflow_instance_id: int,
    wanted: TaskFilter,
    user: str,
    now_ms: int,
) -> Result:
    """Rerun the matching tasks of a finished workflow instance (and, if asked, everything
    below them); unfinished tasks among them are left to run as they will."""
    lock_instance(conn, workflow_instance_id)
    status = instance_status(conn, workflow_instance_id)
    if status is None:
        return Result(False, "The instance does not exist.")
    if status not in _FINISHED:
        return Result(
            False,
            f"The workflow instance {workflow_instance_id} is {status}; only a finished "
            "instance can be rerun.",
        )
    rows = instance_tasks(conn, workflow_instance_id)
    chosen = {r.id for r in rows if wanted.matches(r)}
    if wanted.downstream:
        below: dict[int, set[int]] = {r.id: set() for r in rows}
        for r in rows:
            for up in json.loads(r.upstream):
                below.setdefault(up, set()).add(r.id)
        todo = list(chosen)
        while todo:
            for child in below.get(todo.pop(), ()):
                if child not in chosen:
                    chosen.add(child)
                    todo.append(child)
    picked = [r for r in rows if r.id in chosen and r.status in _FINISHED]
    if not picked:
        return Result(
            False, f"No finished task of the workflow instance {workflow_instance_id} matches."
        )
    decided = []
    for row in picked:
        try:
            decided.append((row, ops.decide(Operation.RERUN, _current(row))))
        except ops.Refused as exc:
            return Result(False, exc.message)
    for row, outcome in decided:
        _apply(conn, Operation.RERUN, row, outcome, user, now_ms, latest_config=False)
        log_operation(conn, row.id, user, "rerun (RerunWorkflowInstances)", now_ms)
    _replan(conn, [workflow_instance_id], now_ms)
    return Result(True, f"{len(decided)} task instances rerun")


def matching_instances(
    conn: sa.Connection,
    project_id: int,
    workflow_id: int,
    kind: str,
    env_type: str | None,
    ids: Sequence[int] | None,
    biz_day: int | None,
    trigger_range: tuple[int, int] | None,
    name: str | None,
    status: str | None,
) -> list[int]:
    """RerunWorkflowInstances' match: the workflow's instances of `kind`."""
    c = wi.c
    where: list[sa.ColumnElement[bool]] = [
        c.project_id == project_id,
        c.workflow_id == workflow_id,
        c.type == kind,
    ]
    if env_type is not None:
        where.append(c.env_type == env_type)
    if ids is not None:
        where.append(c.id.in_(list(ids)))
    if biz_day is not None:
        where.append(c.biz_day == biz_day)
    if trigger_range is not None:
        where.append(c.trigger_time.between(*trigger_range))
    if status is not None:
        where.append(c.status == status)
    rows = conn.execute(sa.select(c.id, c.name).where(*where).order_by(c.id)).all()
    return [int(r.id) for r in rows if name is None or name.casefold() in str(r.name).casefold()]


def workflows_of_tasks(conn: sa.Connection, project_id: int, task_ids: Iterable[int]) -> list[int]:
    """The deployed workflows of the workspace holding these tasks."""
    wanted = sorted(set(task_ids))
    if not wanted:
        return []
    rows = conn.execute(
        sa.select(tasks.c.workflow_id)
        .where(
            tasks.c.id.in_(wanted),
            tasks.c.project_id == project_id,
            tasks.c.deleted == sa.false(),
        )
        .distinct()
    )
    return sorted(int(i) for i in rows.scalars())


def scheduled_task_instance(
    conn: sa.Connection, task_id: int, trigger_time: int, env: EnvType
) -> int | None:
    """The id of the task's instance generated for the cycle at `trigger_time`."""
    workflow_id = conn.execute(sa.select(tasks.c.workflow_id).where(tasks.c.id == task_id)).scalar()
    if workflow_id is None:
        return None
    sc = scheduled_cycles.c
    instance_id = conn.execute(
        sa.select(sc.workflow_instance_id).where(
            sc.workflow_id == workflow_id, sc.trigger_time == trigger_time
        )
    ).scalar()
    if instance_id is None:
        return None
    found = conn.execute(
        sa.select(ti.c.id).where(
            ti.c.workflow_instance_id == instance_id,
            ti.c.task_id == task_id,
            ti.c.env_type == env.value,
        )
    ).scalar()
    return None if found is None else int(found)
