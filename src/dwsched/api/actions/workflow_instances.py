"""ListWorkflowInstances and GetWorkflowInstance (DESIGN.md §3)."""

from __future__ import annotations

from typing import Any

from dwsched.api import wire
from dwsched.api.context import Context
from dwsched.api.owners import owner_filter
from dwsched.api.params import INT64_MAX, Params, to_choice, to_int
from dwsched.domain.calendar import MAX_MS, MIN_MS
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.queries import (
    MAX_IDS,
    MAX_TAGS,
    InstanceQuery,
    page,
    parse_sort,
    parse_tag_match,
)

FILTER_KEYS = ("status", "executionDate")


def list_workflow_instances(ctx: Context, p: Params) -> dict[str, Any]:
    statuses, execution_date = _filter(p.json_object("Filter"))
    query = InstanceQuery(
        project_id=p.required_integer("ProjectId"),
        biz_date_ms=p.required_integer("BizDate", minimum=MIN_MS, maximum=MAX_MS),
        env_type=p.choice("EnvType", EnvType) or EnvType.PROD,
        type=p.choice("Type", InstanceType),
        workflow_id=p.integer("WorkflowId"),
        unified_workflow_instance_id=p.integer("UnifiedWorkflowInstanceId"),
        name=p.text("Name", max_length=512) or None,
        ids=tuple(p.int_list("Ids", MAX_IDS) or ()) or None,
        owner=owner_filter(ctx, p),
        tags=tuple(parse_tag_match(t) for t in p.str_list("Tags", MAX_TAGS) or ()),
        statuses=statuses,
        execution_date_ms=execution_date,
        sort=parse_sort(p.text("SortBy", max_length=256) or ""),
        page=page(
            p.integer("PageNumber", minimum=-INT64_MAX), p.integer("PageSize", minimum=-INT64_MAX)
        ),
    )
    tz, found = ctx.store.list_instances(query)
    items = [wire.workflow_instance(i, tz) for i in found.items]
    return {
        "PagingInfo": wire.paging(
            query.page.number, query.page.size, found.total, "WorkflowInstances", items
        )
    }


def _filter(value: dict[str, Any] | None) -> tuple[tuple[Status, ...], int | None]:
    if value is None:
        return (), None
    for key in value:
        if key not in FILTER_KEYS:
            raise InvalidArgument(
                "Filter",
                f"The parameter Filter has an unknown key {key!r}; allowed: status, executionDate.",
            )
    raw = value.get("status")
    if raw is None:
        statuses: tuple[Status, ...] = ()
    elif isinstance(raw, list):
        statuses = tuple(to_choice("Filter.status", s, Status) for s in raw)
    else:
        statuses = (to_choice("Filter.status", raw, Status),)
    when = value.get("executionDate")
    execution = None if when is None else to_int("Filter.executionDate", when, MIN_MS, MAX_MS)
    return statuses, execution


def get_workflow_instance(ctx: Context, p: Params) -> dict[str, Any]:
    with ctx.store.read() as tx:
        found = tx.instances.get(p.required_integer("Id"))
        tz = tx.projects.timezone(found.project_id)
    return {"WorkflowInstance": wire.workflow_instance(found, tz)}
