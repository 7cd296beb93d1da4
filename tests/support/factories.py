"""Factories: plausible domain values with any field overridden, and a workspace in a store.

Importing this module loads no database code (the `Store` it is handed is only a type here).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from dwsched.clock import SystemClock
from dwsched.domain.models import (
    EnvType,
    InstanceType,
    NewProject,
    Project,
    Status,
    Tag,
    WorkflowInstance,
)

if TYPE_CHECKING:
    from dwsched.store import Store

_ids = itertools.count(1)
DAY = date(2025, 3, 31)  # BizDate 1743350400000 in Asia/Shanghai
SHANGHAI_DAY_MS = 1743350400000


def instance(project_id: int, **overrides: Any) -> WorkflowInstance:
    """A plausible Success instance on DAY; any field may be overridden."""
    n = next(_ids)
    base = WorkflowInstance(
        id=n,
        project_id=project_id,
        env_type=EnvType.PROD,
        biz_day=DAY,
        type=InstanceType.NORMAL,
        status=Status.SUCCESS,
        workflow_id=100 + n % 7,
        workflow_task_instance_id=900_000 + n,
        unified_workflow_instance_id=n,
        name=f"wf_{n}",
        owner="1000",
        create_user="1000",
        modify_user="1000",
        trigger_time=SHANGHAI_DAY_MS + 86_400_000 + 2 * 3_600_000,
        started_time=SHANGHAI_DAY_MS + 86_400_000 + 2 * 3_600_000 + n * 1000,
        finished_time=SHANGHAI_DAY_MS + 86_400_000 + 3 * 3_600_000 + n * 1000,
        create_time=SHANGHAI_DAY_MS + 86_400_000,
        modify_time=SHANGHAI_DAY_MS + 86_400_000 + 3 * 3_600_000,
        workflow_parameters="",
        tags=(),
    )
    return replace(base, **overrides)


def project(store: Store, name: str | None = None, tz: str = "Asia/Shanghai") -> Project:
    with store.write() as tx:
        return tx.projects.create(
            NewProject(name=name or f"p_{uuid.uuid4().hex[:10]}", timezone=tz),
            SystemClock().now_ms(),
        )


def put(store: Store, items: list[WorkflowInstance]) -> None:
    store.import_instances(items, [], replace=False, now_ms=SystemClock().now_ms())


def tags(*pairs: str) -> tuple[Tag, ...]:
    return tuple(Tag(*p.split(":", 1)) for p in pairs)
