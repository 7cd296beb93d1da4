"""Workspace members and roles, as DataWorks has them: CreateProjectMember,
GetProjectMember, ListProjectMembers, DeleteProjectMember, GrantMemberProjectRoles,
RevokeMemberProjectRoles, ListProjectRoles, GetProjectRole.

A member's UserId is the dwsched user's id (a decimal string, as DataWorks account ids are);
roles are DataWorks' built-in workspace roles (domain.access.ROLES).
"""

from __future__ import annotations

import re
from typing import Any

from dwsched.api import wire
from dwsched.api.context import Context
from dwsched.api.params import Params
from dwsched.domain.access import ROLES, Kind, Role
from dwsched.domain.errors import (
    InvalidArgument,
    MemberNotFound,
    MissingArgument,
    RoleNotFound,
    UserNotFound,
)
from dwsched.domain.queries import MAX_PAGE_NUMBER

MAX_PAGE = 100
_DIGITS = re.compile(r"[0-9]{1,19}")
# What each kind of action grants, as DataWorks' ModulePermissions (module, permission).
# A role's module permissions: (ModuleId, ModuleName, PermissionType). The SDK models
# declare ModuleId an integer: dwsched numbers its three modules (docs/access.md).
WORKSPACE_MODULE, DATA_STUDIO_MODULE, OPERATION_CENTER_MODULE = 1, 2, 3
_MODULES = {
    Kind.READ: [
        (OPERATION_CENTER_MODULE, "Operation Center", "Read"),
        (DATA_STUDIO_MODULE, "Data Studio", "Read"),
    ],
    Kind.OPERATE: [(OPERATION_CENTER_MODULE, "Operation Center", "Operate")],
    Kind.DEVELOP: [(DATA_STUDIO_MODULE, "Data Studio", "Develop")],
    Kind.ADMINISTER: [(WORKSPACE_MODULE, "Workspace Management", "Administer")],
    Kind.MONITOR: [(OPERATION_CENTER_MODULE, "Operation Center", "Monitor")],
}


def _user_id(p: Params) -> int:
    text = p.required_text("UserId", max_length=64).strip()
    if not _DIGITS.fullmatch(text) or not 0 < int(text) < 2**63:
        raise InvalidArgument("UserId", f"The parameter UserId must be a user id, got {text!r}.")
    return int(text)


def _roles(p: Params, required: bool) -> list[str]:
    codes = p.str_list("RoleCodes", 50)
    if not codes:
        if required:
            raise MissingArgument("RoleCodes")
        return []
    for code in codes:
        if code not in ROLES:
            raise InvalidArgument(
                "RoleCodes",
                f"The parameter RoleCodes holds {code!r}, not a workspace role; the roles are "
                f"{', '.join(ROLES)}.",
            )
    return list(dict.fromkeys(codes))


def _role(r: Role) -> dict[str, Any]:
    return {"Code": r.code, "Name": r.name, "Type": "System"}


def _member(project_id: int, user: Any, status: str, roles: set[str]) -> dict[str, Any]:
    return {
        "ProjectId": project_id,
        "UserId": str(user.id),
        "UserName": user.name,
        "Status": status,
        "Roles": [_role(ROLES[c]) for c in sorted(roles) if c in ROLES],
    }


def create_project_member(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    user_id = _user_id(p)
    add_member(ctx, project_id, user_id, _roles(p, required=True))
    return {}


def add_member(ctx: Context, project_id: int, user_id: int, roles: list[str]) -> None:
    """Make the user a member with `roles`; a user id naming no user is the UserId
    parameter's fault."""
    try:
        with ctx.store.write() as tx:
            tx.members.add(project_id, user_id, roles, ctx.now_ms)
    except UserNotFound as exc:
        raise InvalidArgument("UserId", f"The parameter UserId {user_id} names no user.") from exc


def delete_project_member(ctx: Context, p: Params) -> dict[str, Any]:
    with ctx.store.write() as tx:
        tx.members.remove(p.required_integer("ProjectId"), _user_id(p))
    return {}


def grant_member_project_roles(ctx: Context, p: Params) -> dict[str, Any]:
    project_id, user_id = p.required_integer("ProjectId"), _user_id(p)
    with ctx.store.write() as tx:
        tx.members.change_roles(project_id, user_id, _roles(p, required=True), grant=True)
    return {}


def revoke_member_project_roles(ctx: Context, p: Params) -> dict[str, Any]:
    project_id, user_id = p.required_integer("ProjectId"), _user_id(p)
    with ctx.store.write() as tx:
        tx.members.change_roles(project_id, user_id, _roles(p, required=True), grant=False)
    return {}


def get_project_member(ctx: Context, p: Params) -> dict[str, Any]:
    project_id, user_id = p.required_integer("ProjectId"), _user_id(p)
    with ctx.store.read() as tx:
        found = tx.members.find(project_id, [user_id], None)
    if not found:
        raise MemberNotFound(project_id, user_id)
    user, status, roles = found[0]
    return {"ProjectMember": _member(project_id, user, status, roles)}


def _page(p: Params) -> tuple[int, int]:
    number = p.integer("PageNumber", maximum=MAX_PAGE_NUMBER) or 1
    size = p.integer("PageSize", maximum=MAX_PAGE) or 10
    return number, size


def list_project_members(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    raw_ids = p.str_list("UserIds", 100)
    user_ids = None
    if raw_ids:
        if not all(_DIGITS.fullmatch(i) for i in raw_ids):
            raise InvalidArgument("UserIds", "The parameter UserIds must be a list of user ids.")
        user_ids = [int(i) for i in raw_ids]
    codes = _roles(p, required=False) or None
    number, size = _page(p)
    with ctx.store.read() as tx:
        found = tx.members.find(project_id, user_ids, codes)
    items = [_member(project_id, u, s, r) for u, s, r in found]
    chosen = items[(number - 1) * size : number * size]
    return {"PagingInfo": wire.paging(number, size, len(items), "ProjectMembers", chosen)}


def _project_role(project_id: int, r: Role) -> dict[str, Any]:
    modules = sorted({m for k in r.kinds for m in _MODULES[k]})
    return {
        **_role(r),
        "ProjectId": project_id,
        "ModulePermissions": [
            {"ModuleId": module, "ModuleName": name, "PermissionType": permission}
            for module, name, permission in modules
        ],
    }


def list_project_roles(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    with ctx.store.read() as tx:
        tx.projects.get(project_id)
    kind = p.text("Type", max_length=32)
    if kind not in (None, "System", "UserCustom"):
        raise InvalidArgument("Type", "The parameter Type must be System or UserCustom.")
    codes = set(p.str_list("Codes", 100) or []) or None
    names = set(p.str_list("Names", 100) or []) or None
    number, size = _page(p)
    roles = [
        r
        for r in ROLES.values()
        if kind != "UserCustom"
        and (codes is None or r.code in codes)
        and (names is None or r.name in names)
    ]
    items = [_project_role(project_id, r) for r in roles]
    chosen = items[(number - 1) * size : number * size]
    paging = wire.paging(number, size, len(items), "ProjectRoles", chosen)
    # ListProjectRoles' SDK model declares its page numbers strings (ListProjectMembers'
    # integers): each answer has the types its model declares.
    for field in ("PageNumber", "PageSize", "TotalCount"):
        paging[field] = str(paging[field])
    return {"PagingInfo": paging}


def get_project_role(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    with ctx.store.read() as tx:
        tx.projects.get(project_id)
    code = p.required_text("Code", max_length=64)
    if code not in ROLES:
        raise RoleNotFound(code)
    return {"ProjectRole": _project_role(project_id, ROLES[code])}
