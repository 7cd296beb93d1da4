"""Access control's storage: users, groups, custom policies and their attachments, workspace
members and their roles, and the workspace of each id an action touches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import Conflict, InvalidArgument, NotFound
from dwsched.store.schema import (
    access_keys,
    console_sessions,
    group_users,
    member_roles,
    operations,
    policies,
    policy_attachments,
    project_members,
    projects,
    task_instances,
    tasks,
    user_groups,
    users,
    workflow_definitions,
    workflow_instances,
    workflows,
)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    display_name: str
    create_time: int


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind an AccessKey: its user and every policy that applies to it
    (attached to the user or to one of its groups), as (name, document text or None for a
    built-in)."""

    user: User
    policy_names: tuple[str, ...]
    custom_documents: tuple[tuple[str, str], ...]


class UserNotFound(NotFound):
    def __init__(self, user: str) -> None:
        super().__init__(f"The user {user!r} does not exist.")


def _user(r: Any) -> User:
    return User(int(r.id), r.name, r.display_name, int(r.create_time))


def create_user(conn: sa.Connection, name: str, display_name: str, now_ms: int) -> User:
    if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None:
        raise Conflict(f"The user {name!r} exists already.")
    conn.execute(sa.insert(users).values(name=name, display_name=display_name, create_time=now_ms))
    return user_by_name(conn, name)


def user_by_name(conn: sa.Connection, name: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        raise UserNotFound(name)
    return _user(row)


def user_by_id(conn: sa.Connection, user_id: int) -> User | None:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    return None if row is None else _user(row)


def set_password(conn: sa.Connection, name: str, password_hash: str) -> None:
    """Set the user's password hash and end the user's console sessions."""
    user = user_by_name(conn, name)
    conn.execute(sa.update(users).where(users.c.id == user.id).values(password_hash=password_hash))
    _end_sessions_of(conn, user.id)


def end_sessions(conn: sa.Connection, name: str) -> int:
    """End every console session of the user; how many there were."""
    return _end_sessions_of(conn, user_by_name(conn, name).id)


def _end_sessions_of(conn: sa.Connection, user_id: int) -> int:
    done = conn.execute(sa.delete(console_sessions).where(console_sessions.c.user_id == user_id))
    return int(done.rowcount)


def password_of(conn: sa.Connection, name: str) -> tuple[int, str] | None:
    """The user's id and password hash; None for an unknown user or one without a password."""
    row = conn.execute(
        sa.select(users.c.id, users.c.password_hash).where(users.c.name == name)
    ).first()
    if row is None or not row.password_hash:
        return None
    return int(row.id), str(row.password_hash)


def all_users(conn: sa.Connection) -> list[User]:
    return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.id))]


def delete_user(conn: sa.Connection, name: str) -> None:
    user = user_by_name(conn, name)
    keys = sorted(
        str(k)
        for k in conn.execute(
            sa.select(access_keys.c.id).where(access_keys.c.user_id == user.id)
        ).scalars()
    )
    if keys:
        many = len(keys) > 1
        raise Conflict(
            f"The user {name!r} still owns the AccessKey{'s' if many else ''} "
            f"{', '.join(keys)}; delete {'them' if many else 'it'} first "
            "(dwsched keys delete ID)."
        )
    for table, column in (
        (group_users, group_users.c.user_id),
        (project_members, project_members.c.user_id),
        (member_roles, member_roles.c.user_id),
        (console_sessions, console_sessions.c.user_id),
    ):
        conn.execute(sa.delete(table).where(column == user.id))
    conn.execute(
        sa.delete(policy_attachments).where(
            policy_attachments.c.principal_type == "User",
            policy_attachments.c.principal_id == user.id,
        )
    )
    conn.execute(sa.delete(users).where(users.c.id == user.id))


def create_group(conn: sa.Connection, name: str, now_ms: int) -> int:
    if conn.execute(sa.select(user_groups.c.id).where(user_groups.c.name == name)).first():
        raise Conflict(f"The group {name!r} exists already.")
    conn.execute(sa.insert(user_groups).values(name=name, create_time=now_ms))
    return group_id(conn, name)


def group_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(sa.select(user_groups.c.id).where(user_groups.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"The group {name!r} does not exist.")
    return int(found)


def add_to_group(conn: sa.Connection, group: str, user: str) -> None:
    gid, uid = group_id(conn, group), user_by_name(conn, user).id
    exists = conn.execute(
        sa.select(group_users.c.user_id).where(
            group_users.c.group_id == gid, group_users.c.user_id == uid
        )
    ).first()
    if exists is None:
        conn.execute(sa.insert(group_users).values(group_id=gid, user_id=uid))


def groups(conn: sa.Connection) -> list[tuple[str, list[str]]]:
    rows = conn.execute(
        sa.select(user_groups.c.name, users.c.name.label("user"))
        .select_from(user_groups)
        .outerjoin(group_users, group_users.c.group_id == user_groups.c.id)
        .outerjoin(users, users.c.id == group_users.c.user_id)
        .order_by(user_groups.c.name, users.c.name)
    )
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r.name, [])
        if r.user is not None:
            found[r.name].append(r.user)
    return list(found.items())


# Policies


def create_policy(
    conn: sa.Connection, name: str, document: str, description: str, now_ms: int
) -> None:
    if conn.execute(sa.select(policies.c.name).where(policies.c.name == name)).first():
        raise Conflict(f"The policy {name!r} exists already.")
    conn.execute(
        sa.insert(policies).values(
            name=name, document=document, description=description, create_time=now_ms
        )
    )


def custom_policies(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(name, description, document) of every custom policy."""
    rows = conn.execute(sa.select(policies).order_by(policies.c.name))
    return [(r.name, r.description, r.document) for r in rows]


def delete_policy(conn: sa.Connection, name: str) -> None:
    attached = conn.execute(
        sa.select(sa.func.count()).where(policy_attachments.c.policy_name == name)
    ).scalar()
    if attached:
        times = "once" if attached == 1 else f"{attached} times"
        raise Conflict(
            f"The policy {name!r} is attached {times}; detach it first (dwsched policies list "
            "shows where)."
        )
    done = conn.execute(sa.delete(policies).where(policies.c.name == name))
    if done.rowcount == 0:
        raise NotFound(f"The policy {name!r} does not exist.")


def policy_exists(conn: sa.Connection, name: str) -> bool:
    return (
        conn.execute(sa.select(policies.c.name).where(policies.c.name == name)).first() is not None
    )


def principal_id(conn: sa.Connection, principal_type: str, name: str) -> int:
    if principal_type == "User":
        return user_by_name(conn, name).id
    if principal_type == "Group":
        return group_id(conn, name)
    raise InvalidArgument("PrincipalType", "The principal type must be User or Group.")


def attach(conn: sa.Connection, policy: str, principal_type: str, principal: int) -> None:
    c = policy_attachments.c
    exists = conn.execute(
        sa.select(c.policy_name).where(
            c.policy_name == policy, c.principal_type == principal_type, c.principal_id == principal
        )
    ).first()
    if exists is None:
        conn.execute(
            sa.insert(policy_attachments).values(
                policy_name=policy, principal_type=principal_type, principal_id=principal
            )
        )


def detach(conn: sa.Connection, policy: str, principal_type: str, principal: int) -> None:
    c = policy_attachments.c
    done = conn.execute(
        sa.delete(policy_attachments).where(
            c.policy_name == policy, c.principal_type == principal_type, c.principal_id == principal
        )
    )
    if done.rowcount == 0:
        raise NotFound(f"The policy {policy!r} is not attached to that {principal_type.lower()}.")


def attachments(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(policy, principal type, principal name) of every attachment."""
    c = policy_attachments.c
    rows = conn.execute(sa.select(c.policy_name, c.principal_type, c.principal_id))
    names = {("User", u.id): u.name for u in all_users(conn)} | {
        ("Group", int(r.id)): r.name for r in conn.execute(sa.select(user_groups))
    }
    return sorted(
        (r.policy_name, r.principal_type, names.get((r.principal_type, r.principal_id), "?"))
        for r in rows
    )


def set_key_user(conn: sa.Connection, access_key_id: str, user: str) -> None:
    """Give the key to a user (its requests are then that user's)."""
    owner = user_by_name(conn, user)
    done = conn.execute(
        sa.update(access_keys).where(access_keys.c.id == access_key_id).values(user_id=owner.id)
    )
    if done.rowcount == 0:
        raise NotFound(f"The AccessKey {access_key_id!r} does not exist.")


def key_users(conn: sa.Connection) -> dict[str, str]:
    """AccessKey id -> its user's name (keys without a user left out)."""
    rows = conn.execute(
        sa.select(access_keys.c.id, users.c.name).join(users, users.c.id == access_keys.c.user_id)
    )
    return {str(r.id): str(r.name) for r in rows}


def principal_of_key(conn: sa.Connection, access_key_id: str) -> Principal | None:
    """The user owning the key and the policies that apply to it; None for a key without
    a user."""
    user_id = conn.execute(
        sa.select(access_keys.c.user_id).where(access_keys.c.id == access_key_id)
    ).scalar()
    if user_id is None:
        return None  # the tenant's own key
    return principal_of_user(conn, int(user_id))


def principal_of_user(conn: sa.Connection, user_id: int) -> Principal:
    """The user and the policies that apply to it (its own and its groups')."""
    user = user_by_id(conn, user_id)
    if user is None:
        # The user is gone: its key or session may do nothing (never everything).
        return Principal(User(user_id, f"deleted-user-{user_id}", "", 0), (), ())
    group_ids = [
        int(g)
        for g in conn.execute(
            sa.select(group_users.c.group_id).where(group_users.c.user_id == user.id)
        ).scalars()
    ]
    c = policy_attachments.c
    names = sorted(
        {
            str(n)
            for n in conn.execute(
                sa.select(c.policy_name).where(
                    sa.or_(
                        sa.and_(c.principal_type == "User", c.principal_id == user.id),
                        sa.and_(c.principal_type == "Group", c.principal_id.in_(group_ids or [-1])),
                    )
                )
            ).scalars()
        }
    )
    documents = tuple(
        (r.name, r.document)
        for r in conn.execute(
            sa.select(policies.c.name, policies.c.document).where(policies.c.name.in_(names))
        )
    )
    return Principal(user, tuple(names), documents)


# Workspace members and roles


def member_roles_of(conn: sa.Connection, project_id: int, user_id: int) -> set[str] | None:
    """The member's role codes; None when the user is not a member of the workspace."""
    member = conn.execute(
        sa.select(project_members.c.user_id).where(
            project_members.c.project_id == project_id, project_members.c.user_id == user_id
        )
    ).first()
    if member is None:
        return None
    rows = conn.execute(
        sa.select(member_roles.c.role_code).where(
            member_roles.c.project_id == project_id, member_roles.c.user_id == user_id
        )
    )
    return {str(r) for r in rows.scalars()}


def require_member(conn: sa.Connection, project_id: int, user_id: int) -> None:
    if member_roles_of(conn, project_id, user_id) is None:
        raise NotFound(f"The user {user_id} is not a member of the workspace {project_id}.")


def member_projects(conn: sa.Connection, user_id: int) -> set[int]:
    rows = conn.execute(
        sa.select(project_members.c.project_id).where(project_members.c.user_id == user_id)
    )
    return {int(p) for p in rows.scalars()}


def add_member(
    conn: sa.Connection, project_id: int, user_id: int, roles: Iterable[str], now_ms: int
) -> None:
    if member_roles_of(conn, project_id, user_id) is not None:
        raise Conflict(f"The user {user_id} is a member of the workspace {project_id} already.")
    conn.execute(
        sa.insert(project_members).values(
            project_id=project_id, user_id=user_id, status="Normal", create_time=now_ms
        )
    )
    grant(conn, project_id, user_id, roles)


def grant(conn: sa.Connection, project_id: int, user_id: int, roles: Iterable[str]) -> None:
    have = member_roles_of(conn, project_id, user_id) or set()
    new = [r for r in dict.fromkeys(roles) if r not in have]
    if new:
        conn.execute(
            sa.insert(member_roles),
            [{"project_id": project_id, "user_id": user_id, "role_code": r} for r in new],
        )


def revoke(conn: sa.Connection, project_id: int, user_id: int, roles: Iterable[str]) -> None:
    conn.execute(
        sa.delete(member_roles).where(
            member_roles.c.project_id == project_id,
            member_roles.c.user_id == user_id,
            member_roles.c.role_code.in_(list(roles)),
        )
    )


def remove_member(conn: sa.Connection, project_id: int, user_id: int) -> None:
    for table in (member_roles, project_members):
        conn.execute(
            sa.delete(table).where(table.c.project_id == project_id, table.c.user_id == user_id)
        )


def members(
    conn: sa.Connection,
    project_id: int,
    user_ids: Sequence[int] | None,
    role_codes: Sequence[str] | None,
) -> list[tuple[User, str, set[str]]]:
    """(user, status, role codes) of the workspace's members matching, by user id."""
    rows = conn.execute(
        sa.select(users, project_members.c.status)
        .join(project_members, project_members.c.user_id == users.c.id)
        .where(project_members.c.project_id == project_id)
        .order_by(users.c.id)
    ).all()
    found = []
    for r in rows:
        if user_ids is not None and int(r.id) not in user_ids:
            continue
        roles = member_roles_of(conn, project_id, int(r.id)) or set()
        if role_codes is not None and not roles & set(role_codes):
            continue
        found.append((_user(r), str(r.status), roles))
    return found


# The workspace of each id an action touches


def projects_of(conn: sa.Connection, kind: str, ids: Sequence[Any]) -> dict[Any, int]:
    """Each existing id's workspace (ids that do not exist are left out)."""
    table = {
        "Project": projects,
        "WorkflowInstance": workflow_instances,
        "TaskInstance": task_instances,
        "Workflow": workflows,
        "Definition": workflow_definitions,
        "Task": tasks,
        "Operation": operations,
    }[kind]
    key = table.c.id
    project = key if table is projects else table.c.project_id
    found: dict[Any, int] = {}
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), 500):
        rows = conn.execute(sa.select(key, project).where(key.in_(wanted[start : start + 500])))
        found.update({r[0]: int(r[1]) for r in rows})
    return found
