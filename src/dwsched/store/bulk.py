"""Bulk loading: instances turned into table rows ahead of the write.

An import spends as much time building rows as SQLite spends storing them. `RowBuilder`
does the building without touching the database, so it can run in another process while
the writer stores the rows it built before (`EncodedBatch` is plain data, cheap to pickle).
Rows are grouped by partition: the writer binds the partition's id once per group, not once
per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dwsched.domain.calendar import day_key
from dwsched.domain.models import EnvType, InstanceType, NewProject, Status, WorkflowInstance
from dwsched.store.ids import TASK_INSTANCE_ID_BASE

# (project_id, env_type value, biz_day as yyyymmdd)
PartitionKey = tuple[int, str, int]

_tag_encoder = msgspec.json.Encoder()
VALUES: dict[Any, str] = {m: m.value for kind in (EnvType, InstanceType, Status) for m in kind}


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Instances to write, and the workspaces to create before them."""

    items: Sequence[WorkflowInstance]
    new_projects: Sequence[NewProject] = field(default_factory=tuple)


@dataclass(slots=True)
class EncodedBatch:
    """Instances as rows, by partition. `rows` hold every workflow_instances column but
    the partition id, in table order; `tags` hold (key, value, instance_id)."""

    ids: list[int] = field(default_factory=list)
    rows: dict[PartitionKey, list[tuple[Any, ...]]] = field(default_factory=dict)
    tags: dict[PartitionKey, list[tuple[str, str, int]]] = field(default_factory=dict)
    workflows: dict[int, tuple[int, str, str]] = field(
        default_factory=dict
    )  # id → project, name, owner
    new_projects: list[NewProject] = field(default_factory=list)
    # The largest instance id or UnifiedWorkflowInstanceId below TASK_INSTANCE_ID_BASE, the
    # largest at or above it, and the largest WorkflowTaskInstanceId: an import keeps the
    # engine's ids past them (store.ids.advance_ids).
    top_instance_id: int = 0
    top_high_id: int = 0
    top_task_instance_id: int = 0


class RowBuilder:
    """Collects instances into an EncodedBatch; `take` hands the batch over."""

    def __init__(self) -> None:
        self.batch = EncodedBatch()

    def __len__(self) -> int:
        return len(self.batch.ids)

    def add(
        self,
        id: int,
        project_id: int,
        env_type: str,
        biz_day_key: int,
        type: str,
        status: str,
        workflow_id: int,
        workflow_task_instance_id: int,
        unified_workflow_instance_id: int,
        name: str,
        owner: str,
        create_user: str,
        modify_user: str,
        trigger_time: int,
        started_time: int | None,
        finished_time: int | None,
        create_time: int,
        modify_time: int,
        workflow_parameters: str,
        tags: Sequence[tuple[str, str]],
    ) -> None:
        b = self.batch
        key = (project_id, env_type, biz_day_key)
        rows = b.rows.get(key)
        if rows is None:
            rows = b.rows[key] = []
            b.tags[key] = []
        b.ids.append(id)
        for value in (id, unified_workflow_instance_id):
            if value >= TASK_INSTANCE_ID_BASE:
                if value > b.top_high_id:
                    b.top_high_id = value
            elif value > b.top_instance_id:
                b.top_instance_id = value
        if workflow_task_instance_id > b.top_task_instance_id:
            b.top_task_instance_id = workflow_task_instance_id
        rows.append(
            (
                id,
                project_id,
                env_type,
                biz_day_key,
                type,
                status,
                workflow_id,
                workflow_task_instance_id,
                unified_workflow_instance_id,
                name,
                name.casefold(),
                owner,
                create_user,
                modify_user,
                trigger_time,
                started_time,
                finished_time,
                create_time,
                modify_time,
                workflow_parameters,
                _tag_encoder.encode(tags).decode() if tags else "[]",
            )
        )
        if tags:
            b.tags[key].extend((k, v, id) for k, v in dict.fromkeys(tags))
        if workflow_id not in b.workflows:
            b.workflows[workflow_id] = (project_id, name, owner)

    def take(self) -> EncodedBatch:
        batch, self.batch = self.batch, EncodedBatch()
        return batch


def encode(instances: Iterable[WorkflowInstance]) -> EncodedBatch:
    builder = RowBuilder()
    for i in instances:
        builder.add(
            i.id,
            i.project_id,
            VALUES[i.env_type],
            day_key(i.biz_day),
            VALUES[i.type],
            VALUES[i.status],
            i.workflow_id,
            i.workflow_task_instance_id,
            i.unified_workflow_instance_id,
            i.name,
            i.owner,
            i.create_user,
            i.modify_user,
            i.trigger_time,
            i.started_time,
            i.finished_time,
            i.create_time,
            i.modify_time,
            i.workflow_parameters,
            [(t.key, t.value) for t in i.tags],
        )
    return builder.take()
