"""Workflow definitions (Data Studio) and the workflows deployed from them (scheduler side).

CreateWorkflowDefinition, ImportWorkflowDefinition, UpdateWorkflowDefinition,
DeleteWorkflowDefinition, ListWorkflowDefinitions, GetWorkflowDefinition, ListWorkflows,
GetWorkflow. A definition is deployed when it is created, imported or updated; its
workflow's id is the `WorkflowId` of the instance APIs. Import runs at once: its AsyncJob is
returned complete.
"""

from __future__ import annotations

import uuid
from typing import Any

from dwsched.api import wire
from dwsched.api.context import Context
from dwsched.api.owners import owner_filter
from dwsched.api.params import Params, to_int
from dwsched.domain import flowspec
from dwsched.domain.errors import InvalidArgument, WorkflowNotFound
from dwsched.domain.models import EnvType
from dwsched.domain.queries import MAX_PAGE_NUMBER
from dwsched.domain.workflows import DeployedWorkflow

MAX_SPEC = 512 * 1024
MAX_DEFINITION_PAGE = 100
MAX_WORKFLOW_PAGE = 100
WORKFLOW_SORTS = {"Id": "id", "CreateTime": "create_time", "ModifyTime": "modify_time"}


def _spec(ctx: Context, p: Params, project_id: int) -> tuple[str, flowspec.WorkflowSpec]:
    text = p.required_text("Spec", max_length=MAX_SPEC)
    with ctx.store.read() as tx:
        tz = tx.projects.get(project_id).timezone
    return text, flowspec.parse(text, tz, default_owner=ctx.account)


class _RolledBack(Exception):
    """A dry run's deploy, undone."""


def _readable(ctx: Context) -> frozenset[int] | None:
    """The workspaces whose outputs a spec may depend on: those the caller may read."""
    return None if ctx.caller is None else ctx.caller.readable


def _definition_id(p: Params) -> int:
    """Definition ids are strings on the wire (numeric in dwsched)."""
    return to_int("Id", p.required_text("Id", max_length=32).strip(), 1, 2**63 - 1)


def create_workflow_definition(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    text, spec = _spec(ctx, p, project_id)
    with ctx.store.write() as tx:
        definition, _ = tx.definitions.create(
            project_id, text, spec, ctx.account, ctx.now_ms, False, _readable(ctx)
        )
    return {"Id": str(definition.id)}


def import_workflow_definition(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    dry_run = p.boolean("DryRun") is True
    text, spec = _spec(ctx, p, project_id)
    response = ""
    try:
        with ctx.store.write() as tx:
            definition, _ = tx.definitions.create_or_replace(
                project_id, text, spec, ctx.account, ctx.now_ms, _readable(ctx)
            )
            if dry_run:  # every rule of a deploy checked (other workflows' outputs too)
                raise _RolledBack
        response = str(definition.id)
    except _RolledBack:
        pass
    return {
        "AsyncJob": {
            "Id": uuid.uuid4().hex,
            "Type": "Create",
            "Status": "Success",
            "Progress": 100,
            "Completed": True,
            "CreateTime": ctx.now_ms,
            "Error": "",
            "Response": response,
        }
    }


def update_workflow_definition(ctx: Context, p: Params) -> dict[str, Any]:
    definition_id = _definition_id(p)
    project_id = p.required_integer("ProjectId")
    text, spec = _spec(ctx, p, project_id)
    with ctx.store.write() as tx:
        tx.definitions.update(
            definition_id, project_id, text, spec, ctx.account, ctx.now_ms, _readable(ctx)
        )
    return {"Success": True}


def delete_workflow_definition(ctx: Context, p: Params) -> dict[str, Any]:
    definition_id = _definition_id(p)
    with ctx.store.write() as tx:
        tx.definitions.delete(definition_id, p.required_integer("ProjectId"), _readable(ctx))
    return {"Success": True}


def get_workflow_definition(ctx: Context, p: Params) -> dict[str, Any]:
    definition_id = _definition_id(p)
    with ctx.store.read() as tx:
        found = tx.definitions.get(definition_id, p.integer("ProjectId"))
    return {"WorkflowDefinition": wire.workflow_definition(found)}


def list_workflow_definitions(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    kind = p.choice("Type", flowspec.WorkflowKind)
    number = p.integer("PageNumber", maximum=MAX_PAGE_NUMBER) or 1
    size = p.integer("PageSize", maximum=MAX_DEFINITION_PAGE) or 10
    owner = owner_filter(ctx, p)
    with ctx.store.read() as tx:
        total, found = tx.definitions.page(
            project_id,
            None if kind is None else kind.value,
            p.text("Name", max_length=512),
            owner,
            (number - 1) * size,
            size,
        )
    items = [wire.workflow_definition_item(d) for d in found]
    return {"PagingInfo": wire.paging(number, size, total, "WorkflowDefinitions", items)}


def list_workflows(ctx: Context, p: Params) -> dict[str, Any]:
    number, size, total, found = listed_workflows(ctx, p)
    items = [wire.workflow(w) for w in found]
    return {"PagingInfo": wire.paging(number, size, total, "Workflows", items)}


def listed_workflows(ctx: Context, p: Params) -> tuple[int, int, int, list[DeployedWorkflow]]:
    """ListWorkflows' page: its number and size, the total, and the deployed workflows."""
    project_id = p.required_integer("ProjectId")
    number = p.integer("PageNumber", maximum=MAX_PAGE_NUMBER) or 1
    size = p.integer("PageSize", maximum=MAX_WORKFLOW_PAGE) or 10
    trigger_type = p.choice("TriggerType", flowspec.TriggerType)
    owner = owner_filter(ctx, p)
    with ctx.store.read() as tx:
        total, found = tx.workflows.page(
            project_id,
            p.choice("EnvType", EnvType) or EnvType.PROD,
            p.int_list("Ids", 1000),
            p.text("Name", max_length=512),
            owner,
            trigger_type,
            _workflow_sort(p.text("SortBy", max_length=64)),
            (number - 1) * size,
            size,
        )
    return number, size, total, list(found)


def _workflow_sort(text: str | None) -> tuple[str, bool]:
    if not text or not text.strip():
        return "id", True
    field, _, direction = text.strip().partition(" ")
    direction = direction.strip() or "Desc"
    if field not in WORKFLOW_SORTS or direction not in ("Asc", "Desc"):
        raise InvalidArgument(
            "SortBy",
            f"The parameter SortBy {text!r} must be one of Id, CreateTime, ModifyTime, "
            "optionally followed by Asc or Desc.",
        )
    return WORKFLOW_SORTS[field], direction == "Desc"


def get_workflow(ctx: Context, p: Params) -> dict[str, Any]:
    workflow_id = p.required_integer("Id")
    env = p.choice("EnvType", EnvType) or EnvType.PROD
    with ctx.store.read() as tx:
        found = tx.workflows.get(workflow_id)
        links = tx.workflows.dependencies(workflow_id)
    if found.env_type is not env:
        raise WorkflowNotFound(workflow_id)
    return {"Workflow": wire.workflow(found, True, links)}
