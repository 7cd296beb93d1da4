"""Workspaces: create, read, list, change, delete."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import Conflict, ProjectNotEmpty, ProjectNotFound
from dwsched.domain.models import NewProject, Project, ProjectChanges, ProjectStatus
from dwsched.store import links
from dwsched.store.dialect import advance_sequence
from dwsched.store.instances import count_project_instances, delete_project_instances
from dwsched.store.schema import (
    member_roles,
    operation_instances,
    operations,
    project_members,
    projects,
    task_instance_dependencies,
    task_instances,
    tasks,
    workflow_definitions,
    workflow_instances,
    workflows,
)
from dwsched.store.statements import Compiled, run


def _project(row: sa.Row[tuple[object, ...]]) -> Project:
    m = row._mapping
    return Project(
        id=m["id"],
        name=m["name"],
        display_name=m["display_name"],
        description=m["description"],
        owner=m["owner"],
        status=ProjectStatus(m["status"]),
        timezone=m["timezone"],
        dev_environment_enabled=bool(m["dev_environment_enabled"]),
        create_time=m["create_time"],
        modify_time=m["modify_time"],
    )


def insert_project(conn: sa.Connection, new: NewProject, now_ms: int) -> Project:
    if conn.execute(sa.select(projects.c.id).where(projects.c.name == new.name)).first():
        raise Conflict(f"A workspace named {new.name!r} exists already.")
    if (
        new.id is not None
        and conn.execute(sa.select(projects.c.id).where(projects.c.id == new.id)).first()
    ):
        raise Conflict(f"A workspace with id {new.id} exists already.")
    values = {
        "name": new.name,
        "display_name": new.display_name or new.name,
        "description": new.description,
        "owner": new.owner,
        "status": ProjectStatus.AVAILABLE.value,
        "timezone": new.timezone,
        "dev_environment_enabled": new.dev_environment_enabled,
        "create_time": now_ms,
        "modify_time": now_ms,
    }
    if new.id is not None:
        values["id"] = new.id
    inserted = conn.execute(sa.insert(projects).values(**values)).inserted_primary_key
    assert inserted is not None
    project_id = inserted[0]
    if new.id is not None:
        advance_sequence(conn, projects, new.id)  # ids given explicitly (imports)
    return project_by_id(conn, int(project_id))


def project_by_id(conn: sa.Connection, project_id: int) -> Project:
    row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
    if row is None:
        raise ProjectNotFound(project_id)
    return _project(row)


def project_timezone(conn: sa.Connection, project_id: int) -> str:
    tz = conn.execute(
        sa.select(projects.c.timezone).where(projects.c.id == project_id)
    ).scalar_one_or_none()
    if tz is None:
        raise ProjectNotFound(project_id)
    return str(tz)


@lru_cache(maxsize=8)
def _timezone_statement(dialect: sa.Dialect) -> Compiled:
    return Compiled(
        sa.select(projects.c.timezone).where(projects.c.id == sa.bindparam("project_id")), dialect
    )


def timezone_on_cursor(cursor: Any, dialect: sa.Dialect, project_id: int) -> str:
    """The workspace's zone, on a raw cursor (the listing's hot path)."""
    rows = run(cursor, _timezone_statement(dialect), {"project_id": project_id})
    if not rows:
        raise ProjectNotFound(project_id)
    return str(rows[0][0])


class Projects:
    """Workspaces, in one transaction (`Tx.projects`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def create(self, new: NewProject, now_ms: int) -> Project:
        """Conflict when the name, or the id given, is taken."""
        return insert_project(self.conn, new, now_ms)

    def get(self, project_id: int) -> Project:
        return project_by_id(self.conn, project_id)

    def timezone(self, project_id: int) -> str:
        return project_timezone(self.conn, project_id)

    def page(
        self,
        ids: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
        status: ProjectStatus | None = None,
        offset: int = 0,
        limit: int = 1000,
        name_contains: str | None = None,
    ) -> tuple[int, list[Project]]:
        """A page of workspaces by Id, and their count. `name_contains` matches a part of the
        name, ignoring case; its `%`, `_` and `\\` are plain characters (escaped for LIKE)."""
        where: list[sa.ColumnElement[bool]] = []
        if ids:
            where.append(projects.c.id.in_(ids))
        if names:
            where.append(projects.c.name.in_(names))
        if name_contains:
            # autoescape escapes `%`, `_` and `/` and sets ESCAPE '/': a backslash is then a
            # plain character on both dialects (PostgreSQL's default escape is replaced).
            folded = sa.func.lower(projects.c.name)
            where.append(folded.contains(name_contains.lower(), autoescape=True))
        if status is not None:
            where.append(projects.c.status == status.value)
        total = self.conn.execute(
            sa.select(sa.func.count()).select_from(projects).where(*where)
        ).scalar()
        rows = self.conn.execute(
            sa.select(projects).where(*where).order_by(projects.c.id).offset(offset).limit(limit)
        ).all()
        return int(total or 0), [_project(r) for r in rows]

    def all(self) -> list[Project]:
        rows = self.conn.execute(sa.select(projects).order_by(projects.c.id))
        return [_project(r) for r in rows]

    def update(self, project_id: int, changes: ProjectChanges, now_ms: int) -> Project:
        project_by_id(self.conn, project_id)
        values: dict[str, object] = {
            name: getattr(changes, name)
            for name in ("display_name", "description", "timezone", "dev_environment_enabled")
            if getattr(changes, name) is not None
        }
        if changes.status is not None:
            values["status"] = changes.status.value
        values["modify_time"] = now_ms
        self.conn.execute(sa.update(projects).where(projects.c.id == project_id).values(**values))
        return project_by_id(self.conn, project_id)

    def delete(self, project_id: int) -> None:
        """Delete a workspace. One that holds instances must first be disabled (Forbidden)."""
        conn = self.conn
        project = project_by_id(conn, project_id)
        held = count_project_instances(conn, project_id)
        if held and project.status is not ProjectStatus.FORBIDDEN:
            raise ProjectNotEmpty(
                f"The workspace {project_id} holds {held} workflow instances. Disable it first "
                "(UpdateProject with Status=Forbidden), then delete it: the instances are "
                "deleted with it."
            )
        # Other workspaces' workflows may depend on this one's outputs: refused, naming
        # them; its own outputs and links go with it.
        links.lock(conn)
        own = frozenset(
            int(i)
            for i in conn.execute(
                sa.select(workflows.c.id).where(workflows.c.project_id == project_id)
            ).scalars()
        )
        for workflow_id in sorted(own):
            links.refuse_undeploy(conn, workflow_id, leaving=own)
        for workflow_id in sorted(own):
            links.drop(conn, workflow_id)
        mine = sa.select(task_instances.c.id).where(task_instances.c.project_id == project_id)
        d = task_instance_dependencies.c
        conn.execute(
            sa.delete(task_instance_dependencies).where(
                sa.or_(d.task_instance_id.in_(mine), d.upstream_id.in_(mine))
            )
        )
        delete_project_instances(conn, project_id)
        op_ids = sa.select(operations.c.id).where(operations.c.project_id == project_id)
        conn.execute(
            sa.delete(operation_instances).where(operation_instances.c.operation_id.in_(op_ids))
        )
        for table in (
            tasks,
            workflow_definitions,
            workflows,
            operations,
            project_members,
            member_roles,
        ):
            conn.execute(sa.delete(table).where(table.c.project_id == project_id))
        conn.execute(sa.delete(projects).where(projects.c.id == project_id))

    def of(self, kind: str, ids: Sequence[Any]) -> dict[Any, int]:
        """The workspace of each existing id of `kind` (domain.access.ID_KINDS: "Project",
        "WorkflowInstance", ...); ids that do not exist are left out."""
        return workspaces_of(self.conn, kind, ids)


def workspaces_of(conn: sa.Connection, kind: str, ids: Sequence[Any]) -> dict[Any, int]:
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
