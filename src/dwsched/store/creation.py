"""Asynchronous creation (CreateWorkflowInstances): the recorded operations (their kind,
request, status and result) and the writing of the instances a request plans, with their
release state (store.release). The scheduler creates each Creating operation's instances in
one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.calendar import day_key
from dwsched.domain.errors import OperationNotFound
from dwsched.domain.flowspec import TriggerType
from dwsched.domain.operations import CreationStatus, OperationLog, OperationRecord
from dwsched.domain.runs import PlannedInstance, RunRequest
from dwsched.store.actions import operation_logs
from dwsched.store.generation import NewInstance, insert_instances
from dwsched.store.release import NOT_STARTED, QUEUED
from dwsched.store.schema import (
    operation_instances as oi,
    operations,
    tasks,
    workflow_instances as wi,
)
from dwsched.store.task_instances import task_instance_by_id

CREATING, CREATED, CREATE_FAILURE = (
    CreationStatus.CREATING.value,
    CreationStatus.CREATED.value,
    CreationStatus.CREATE_FAILURE.value,
)
_request = msgspec.json.Decoder(RunRequest).decode


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
            trigger_type=TriggerType.MANUAL.value,
            run_now=policy is not None and policy.immediately,
            user=user,
            cross_cycle=not request.descending,
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


class Operations:
    """The recorded operations (CreateWorkflowInstances, RerunWorkflowInstances) and the log
    of the operator's actions on a task instance (`Tx.operations`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def get(self, operation_id: str, kind: str) -> OperationRecord:
        """The operation of that kind (OperationNotFound if none)."""
        return operation_by_id(self.conn, operation_id, kind)

    def logs(
        self, task_instance_id: int, start_ms: int, end_ms: int, offset: int, limit: int
    ) -> tuple[int, list[OperationLog]]:
        """(how many, one page of) the actions on the task instance between the two
        instants, oldest first (TaskInstanceNotFound if there is no such instance)."""
        task_instance_by_id(self.conn, task_instance_id)
        total, rows = operation_logs(self.conn, task_instance_id, start_ms, end_ms, offset, limit)
        return total, [
            OperationLog(r.id, r.task_instance_id, r.create_time, r.user, r.content) for r in rows
        ]
