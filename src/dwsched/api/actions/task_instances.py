"""The task-instance read APIs: ListTaskInstances, GetTaskInstance, GetTaskInstanceLog,
ListUpstreamTaskInstances and ListDownstreamTaskInstances.

ListTaskInstances reads one (project, env, Bizdate) partition, as ListWorkflowInstances
does. GetTaskInstanceLog of an instance that has not run yet is an empty log (its run 1);
a RunNumber it has not had is a 404.
"""

from __future__ import annotations

from typing import Any

from dwsched.api import wire
from dwsched.api.context import Context
from dwsched.api.owners import owner_filter
from dwsched.api.params import INT64_MAX, Params, to_int
from dwsched.domain.calendar import MAX_MS, MIN_MS
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.execution import Recurrence
from dwsched.domain.flowspec import TriggerType
from dwsched.domain.models import EnvType, InstanceType
from dwsched.domain.queries import MAX_IDS, Page, page, parse_sort
from dwsched.domain.task_instances import TaskInstanceQuery, TimeRange

FILTER_RANGES = ("startedTime", "finishedTime", "createTime")
FILTER_KEYS = tuple(f"{r}{end}" for r in FILTER_RANGES for end in ("Start", "End"))
MAX_RUN_NUMBER = 2**31 - 1


def list_task_instances(ctx: Context, p: Params) -> dict[str, Any]:
    started, finished, created = _filter(p.json_object("Filter"))
    query = TaskInstanceQuery(
        project_id=p.required_integer("ProjectId"),
        biz_date_ms=p.required_integer("Bizdate", minimum=MIN_MS, maximum=MAX_MS),
        env_type=p.choice("ProjectEnv", EnvType) or EnvType.PROD,
        id=p.integer("Id"),
        ids=tuple(p.int_list("Ids", MAX_IDS) or ()) or None,
        task_id=p.integer("TaskId"),
        task_ids=tuple(p.int_list("TaskIds", MAX_IDS) or ()) or None,
        task_name=p.text("TaskName", max_length=512) or None,
        task_type=p.text("TaskType", max_length=64) or None,
        owner=owner_filter(ctx, p),
        resource_group=p.text("RuntimeResource", max_length=128) or None,
        status=p.text("Status", max_length=32) or None,
        trigger_type=p.choice("TriggerType", TriggerType),
        trigger_recurrence=p.choice("TriggerRecurrence", Recurrence),
        workflow_id=p.integer("WorkflowId"),
        workflow_instance_id=p.integer("WorkflowInstanceId"),
        workflow_instance_type=p.choice("WorkflowInstanceType", InstanceType),
        unified_workflow_instance_id=p.integer("UnifiedWorkflowInstanceId"),
        started=started,
        finished=finished,
        created=created,
        sort=parse_sort(p.text("SortBy", max_length=256) or ""),
        page=_page(p),
    )
    with ctx.store.read() as tx:
        tz, found = tx.task_instances.page(query)
    items = [wire.task_instance(t, tz) for t in found.items]
    return {
        "PagingInfo": wire.paging(
            query.page.number, query.page.size, found.total, "TaskInstances", items
        )
    }


def _page(p: Params) -> Page:
    return page(
        p.integer("PageNumber", minimum=-INT64_MAX), p.integer("PageSize", minimum=-INT64_MAX)
    )


def _filter(value: dict[str, Any] | None) -> tuple[TimeRange, TimeRange, TimeRange]:
    """The Filter's time ranges (started, finished, created), each end inclusive."""
    if value is None:
        return TimeRange(), TimeRange(), TimeRange()
    for key in value:
        if key not in FILTER_KEYS:
            raise InvalidArgument(
                "Filter",
                f"The parameter Filter has an unknown key {key!r}; allowed: "
                f"{', '.join(FILTER_KEYS)}.",
            )

    def bound(key: str) -> int | None:
        raw = value.get(key)
        return None if raw is None else to_int(f"Filter.{key}", raw, MIN_MS, MAX_MS)

    started, finished, created = (
        TimeRange(bound(f"{r}Start"), bound(f"{r}End")) for r in FILTER_RANGES
    )
    return started, finished, created


def get_task_instance(ctx: Context, p: Params) -> dict[str, Any]:
    with ctx.store.read() as tx:
        found = tx.task_instances.get(p.required_integer("Id"))
        tz = tx.projects.timezone(found.project_id)
    return {"TaskInstance": wire.task_instance_detail(found, tz)}


def get_task_instance_log(ctx: Context, p: Params) -> dict[str, Any]:
    task_instance_id = p.required_integer("Id")
    run_number = p.integer("RunNumber", maximum=MAX_RUN_NUMBER)
    with ctx.store.read() as tx:
        return {"TaskInstanceLog": tx.task_instances.log(task_instance_id, run_number)}


def _neighbours(ctx: Context, p: Params, upstream: bool) -> dict[str, Any]:
    task_instance_id = p.required_integer("Id")
    wanted = _page(p)
    with ctx.store.read() as tx:
        tz, total, found = tx.task_instances.neighbours(
            task_instance_id,
            upstream,
            wanted.offset,
            wanted.size,
            None if ctx.caller is None else ctx.caller.readable,
        )
    return {
        "PagingInfo": wire.task_instance_neighbours(
            wanted.number, wanted.size, total, upstream, found, tz
        )
    }


def list_upstream_task_instances(ctx: Context, p: Params) -> dict[str, Any]:
    return _neighbours(ctx, p, upstream=True)


def list_downstream_task_instances(ctx: Context, p: Params) -> dict[str, Any]:
    return _neighbours(ctx, p, upstream=False)
