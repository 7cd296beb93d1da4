"""Workspaces: CreateProject, GetProject, ListProjects, UpdateProject, DeleteProject.

Each workspace has an IANA time zone, dwsched's extension: `TimeZone` on create and update
(raw clients and the CLI send it; the SDK models have no such field and ignore it). The SDK's
CreateProjectRequest carries it as the resource tag `dwsched:TimeZone` in
`AliyunResourceTags` (docs/semantics.md).
ListProjects takes `Names` (exact names, as the SDK sends them) and `Name`, a part of the
name ignoring case, as DataWorks' other listings' `Name` filters do (the 2024-05-18 SDK model
has no such field either: raw clients send it).
"""

from __future__ import annotations

from typing import Any

from dwsched.api import wire
from dwsched.api.actions.members import add_member
from dwsched.api.context import Context
from dwsched.api.params import Params, to_choice
from dwsched.domain.calendar import zone
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.models import NewProject, ProjectChanges, ProjectStatus
from dwsched.domain.projects import check_project_name
from dwsched.domain.queries import MAX_PAGE_NUMBER

MAX_PROJECT_PAGE = 100
TIMEZONE_TAG = "dwsched:TimeZone"  # an AliyunResourceTags key: the zone, through the SDK
OWNER_ROLE = "role_project_owner"
SETTABLE_STATUSES = (ProjectStatus.AVAILABLE, ProjectStatus.FORBIDDEN)


def create_project(ctx: Context, p: Params) -> dict[str, Any]:
    name = check_project_name(p.required_text("Name", max_length=64))
    tz = _timezone(p) or ctx.default_timezone
    with ctx.store.write() as tx:
        project = tx.projects.create(
            NewProject(
                name=name,
                timezone=tz,
                display_name=p.text("DisplayName", max_length=256) or name,
                description=p.text("Description", max_length=4096) or "",
                owner=ctx.account,
                dev_environment_enabled=p.boolean("DevEnvironmentEnabled") is not False,
            ),
            ctx.now_ms,
        )
    if ctx.caller is not None and ctx.caller.user_id is not None:
        # As in DataWorks, the user who creates a workspace is its owner.
        add_member(ctx, project.id, ctx.caller.user_id, [OWNER_ROLE])
    return {"Id": project.id, "ProjectId": project.id}


def _timezone(p: Params) -> str | None:
    """The zone CreateProject asks for (checked): `TimeZone`, or the `dwsched:TimeZone` tag
    of `AliyunResourceTags` (what the SDK's model can carry); both given must agree."""
    given = p.text("TimeZone", max_length=64)
    if given:
        zone(given)
    tagged = None
    if "AliyunResourceTags" in p.values:
        tags = p.json_value("AliyunResourceTags")
        if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
            raise InvalidArgument(
                "AliyunResourceTags",
                'The parameter AliyunResourceTags must be a JSON list of {"Key", "Value"}.',
            )
        for tag in tags:
            if tag.get("Key") == TIMEZONE_TAG:
                value = tag.get("Value")
                if not isinstance(value, str):
                    raise InvalidArgument(
                        "AliyunResourceTags",
                        f"The parameter AliyunResourceTags: the tag {TIMEZONE_TAG} needs an "
                        "IANA time zone as its Value.",
                    )
                zone(value, f"AliyunResourceTags ({TIMEZONE_TAG})")
                tagged = value
    if given and tagged and given != tagged:
        raise InvalidArgument(
            "TimeZone",
            f"The parameter TimeZone {given!r} and the tag {TIMEZONE_TAG} {tagged!r} differ.",
        )
    return given or tagged


def get_project(ctx: Context, p: Params) -> dict[str, Any]:
    with ctx.store.read() as tx:
        return {"Project": wire.project(tx.projects.get(p.required_integer("Id")))}


def list_projects(ctx: Context, p: Params) -> dict[str, Any]:
    number = p.integer("PageNumber", maximum=MAX_PAGE_NUMBER) or 1
    size = p.integer("PageSize", maximum=MAX_PROJECT_PAGE) or 10
    ids = p.int_list("Ids", 1000)
    if ctx.caller is not None and ctx.caller.readable is not None:
        # Only the workspaces the caller may read: others are not even counted.
        readable = ctx.caller.readable
        ids = [i for i in (ids if ids is not None else sorted(readable)) if i in readable] or [0]
    with ctx.store.read() as tx:
        total, found = tx.projects.page(
            ids=ids,
            names=p.str_list("Names", 1000),
            status=p.choice("Status", ProjectStatus),
            offset=(number - 1) * size,
            limit=size,
            name_contains=p.text("Name", max_length=64),
        )
    return {
        "PagingInfo": wire.paging(number, size, total, "Projects", [wire.project(x) for x in found])
    }


def update_project(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("Id")
    status = p.text("Status", max_length=32)
    tz = p.text("TimeZone", max_length=64)
    if tz is not None:
        zone(tz)
    changes = ProjectChanges(
        display_name=p.text("DisplayName", max_length=256),
        description=p.text("Description", max_length=4096),
        status=None if status is None else _settable(status),
        timezone=tz,
        dev_environment_enabled=p.boolean("DevEnvironmentEnabled"),
    )
    with ctx.store.write() as tx:
        tx.projects.update(project_id, changes, ctx.now_ms)
    return {}


def _settable(status: str) -> ProjectStatus:
    found = to_choice("Status", status, ProjectStatus)
    if found not in SETTABLE_STATUSES:
        raise InvalidArgument(
            "Status", "The parameter Status can be set to Available or Forbidden."
        )
    return found


def delete_project(ctx: Context, p: Params) -> dict[str, Any]:
    with ctx.store.write() as tx:
        tx.projects.delete(p.required_integer("Id"))
    return {}
