"""The operator's actions on task and workflow instances, each recorded in the operation
log: on task instances (rerun, stop, set success, suspend, resume, trigger) and on workflow
instances (start, stop, rerun).

Every action runs in one write transaction: on PostgreSQL it first takes the claim lock
(claims.lock_claims: no worker claims meanwhile), then its workflow instances' locks in
ascending id order (as the planner does), then writes through the transition writer only if
the task is still in the status the decision was made on (domain.operations.decide). A
worker that finishes meanwhile finds its attempt no longer its own and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain import operations as ops
from dwsched.domain.calendar import day_key
from dwsched.domain.execution import BRANCH_NODE, Recurrence
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import EnvType, Status
from dwsched.domain.operations import InstanceMatch, Operation, Result, TaskFilter
from dwsched.domain.parameters import format_assignments
from dwsched.domain.transitions import FINISHED_VALUES, RUNNING
from dwsched.store import definitions, transitions
from dwsched.store.planning import lock_instance, lock_instances, plan_instance
from dwsched.store.release import NOT_STARTED, QUEUED, RELEASED, held, held_state
from dwsched.store.schema import (
    operation_instances as oi,
    scheduled_cycles,
    task_attempts,
    task_instances as ti,
    task_operation_logs as logs,
    tasks,
    workflow_instances as wi,
)

_node = msgspec.json.Decoder(NodeSpec).decode
_encode = msgspec.json.Encoder().encode


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
    lock_instances(conn, [r.workflow_instance_id for r in rows.values()])
    touched: set[int] = set()
    rows = _rows(conn, ids)  # again, now that their instances are locked
    # In id order, as every other writer of several task instances takes their rows (a
    # heartbeat's UPDATE): two of them never wait for each other's rows.
    for task_instance_id in sorted(ids, key=int):
        row = rows.get(task_instance_id)
        if row is None:
            results[task_instance_id] = Result(False, "The instance does not exist.")
            continue
        try:
            outcome = ops.decide(op, _current(row))
            if op is Operation.RERUN:
                _check_chosen(conn, row, set(ids))
        except ops.Refused as exc:
            results[task_instance_id] = Result(False, exc.message)
            continue
        _apply(conn, op, row, outcome, user, now_ms, latest_config)
        log_operation(conn, task_instance_id, user, ops.describe(op, comment), now_ms)
        touched.add(row.workflow_instance_id)
        results[task_instance_id] = Result(True, _done(op, outcome))
    _replan(conn, touched, op, now_ms)
    return {i: results[i] for i in ids}  # in the request's order


def _check_chosen(conn: sa.Connection, row: sa.Row[Any], rerun: set[int]) -> None:
    """Refused when the task is a dry run because its branch node did not choose it
    (ConditionUnchoose) and that branch node has decided (finished) and is not rerun with
    it: rerun alone, the task would run code its branch skipped. Rerun with its branch node
    (or while that node has yet to decide), the branch decides again."""
    if row.trigger_recurrence != Recurrence.CONDITION_UNCHOOSE.value:
        return
    tasks = {int(r.id): r for r in instance_tasks(conn, row.workflow_instance_id)}
    branches: list[sa.Row[Any]] = []
    seen: set[int] = set()
    todo = list(json.loads(row.upstream))
    while todo:  # breadth first: the nearest branch node first
        up = todo.pop(0)
        found = tasks.get(up)
        if found is None or up in seen:
            continue
        seen.add(up)
        if found.type == BRANCH_NODE:
            branches.append(found)
        todo.extend(json.loads(found.upstream))
    if not branches or any(b.id in rerun or b.status not in FINISHED_VALUES for b in branches):
        return
    branch = branches[0]
    raise ops.Refused(
        f"The task instance {row.id} ({row.name}) was not chosen by its branch node "
        f"{branch.name} (task instance {branch.id}): it was a dry run, and rerun alone it "
        f"would run code its branch skipped. Rerun the branch node {branch.id} together with "
        "it (or RerunWorkflowInstances with RerunDownstreamEnabled): the branch decides again."
    )


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
    old = Status(row.status)
    running = old in RUNNING
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
    new = old if outcome.status is None else outcome.status
    transitions.move(
        conn, [row.id], old, new, op.cause, now_ms, values, {"suspended": row.suspended}
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
        "parameters": format_assignments(workflow.spec.parameters),
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


def _replan(conn: sa.Connection, instance_ids: Iterable[int], op: Operation, now_ms: int) -> None:
    """Move what the operations made ready, and derive the instances' statuses again from
    all their tasks (an action may clear a task's times). An instance its operation still
    holds (NotStarted, Queued) is not moved: it runs when it is released, as the planner
    would have it."""
    ids = sorted(set(instance_ids))
    kept = held(conn, ids)
    for instance_id in ids:
        if instance_id not in kept:
            plan_instance(conn, instance_id, now_ms)
        transitions.rederive(conn, instance_id, now_ms, op.cause)


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
    rows = [
        r for r in instance_tasks(conn, workflow_instance_id) if r.status not in FINISHED_VALUES
    ]
    if not rows or status in FINISHED_VALUES:
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
    _replan(conn, [workflow_instance_id], Operation.STOP, now_ms)
    return Result(True, "OK")


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
    if status not in FINISHED_VALUES:
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
    picked = [r for r in rows if r.id in chosen and r.status in FINISHED_VALUES]
    if not picked:
        return Result(
            False, f"No finished task of the workflow instance {workflow_instance_id} matches."
        )
    decided = []
    for row in picked:
        try:
            decided.append((row, ops.decide(Operation.RERUN, _current(row))))
            _check_chosen(conn, row, chosen)
        except ops.Refused as exc:
            return Result(False, exc.message)
    for row, outcome in decided:
        _apply(conn, Operation.RERUN, row, outcome, user, now_ms, latest_config=False)
        log_operation(conn, row.id, user, "rerun (RerunWorkflowInstances)", now_ms)
    _replan(conn, [workflow_instance_id], Operation.RERUN, now_ms)
    n = len(decided)
    return Result(True, f"{n} task instance{'' if n == 1 else 's'} rerun")


def matching_instances(conn: sa.Connection, project_id: int, match: InstanceMatch) -> list[int]:
    """The ids of the workspace's instances RerunWorkflowInstances' match chooses."""
    c = wi.c
    where: list[sa.ColumnElement[bool]] = [
        c.project_id == project_id,
        c.workflow_id == match.workflow_id,
        c.type == match.kind.value,
    ]
    if match.env_type is not None:
        where.append(c.env_type == match.env_type.value)
    if match.ids is not None:
        where.append(c.id.in_(list(match.ids)))
    if match.biz_day is not None:
        where.append(c.biz_day == day_key(match.biz_day))
    if match.trigger_range is not None:
        where.append(c.trigger_time.between(*match.trigger_range))
    if match.status is not None:
        where.append(c.status == match.status.value)
    rows = conn.execute(sa.select(c.id, c.name).where(*where).order_by(c.id)).all()
    name = match.name
    return [int(r.id) for r in rows if name is None or name.casefold() in str(r.name).casefold()]


def match_record(match: InstanceMatch) -> str:
    """The match as its operation records it (the request column)."""
    return json.dumps(
        {
            "workflow_id": match.workflow_id,
            "kind": match.kind.value,
            "env_type": None if match.env_type is None else match.env_type.value,
            "ids": None if match.ids is None else list(match.ids),
            "biz_day": None if match.biz_day is None else day_key(match.biz_day),
            "trigger_range": None if match.trigger_range is None else list(match.trigger_range),
            "name": match.name,
            "status": None if match.status is None else match.status.value,
        }
    )


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
