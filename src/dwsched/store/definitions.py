"""Workflow definitions (FlowSpec text) and the workflows deployed from them.

Deploying writes the workflow's row (its trigger, strategy and normalised spec, with a
version number) and one task row per node. A node keeps its task id across versions,
matched by its spec id; a node that a new version drops is marked deleted, not removed,
because task instances name it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.errors import DefinitionNotFound, WorkflowNotFound
from dwsched.domain.flowspec import NodeSpec, TriggerType, WorkflowSpec
from dwsched.domain.models import EnvType, WorkflowDefinition
from dwsched.domain.parameters import format_assignments
from dwsched.domain.runs import DEFAULT_WORKFLOW
from dwsched.domain.workflows import DeployedTask, DeployedWorkflow
from dwsched.store import links
from dwsched.store.dialect import among
from dwsched.store.projects import project_by_id
from dwsched.store.schema import id_counters, tasks, workflow_definitions as defs, workflows

_encode = msgspec.json.Encoder().encode
_spec_decoder = msgspec.json.Decoder(WorkflowSpec)
_node_decoder = msgspec.json.Decoder(NodeSpec)


def _new_workflow_id(conn: sa.Connection) -> int:
    """A workflow id never used before (write transaction): from the `workflow` counter,
    past every id present (workflows known from imported instances keep theirs) and past 1,
    DataWorks' default workflow (CreateWorkflowInstances' WorkflowId 1). A deleted
    workflow's id is never given again, so no id moves to another workspace. The counter's
    row is updated first, so concurrent deployers queue on it."""
    c = id_counters.c
    taken = conn.execute(
        sa.update(id_counters)
        .where(c.name == "workflow")
        .values(next_value=c.next_value + 1)
        .returning(c.next_value)
    ).scalar()
    present = conn.execute(sa.select(sa.func.max(workflows.c.id))).scalar() or 0
    floor = max(int(present), DEFAULT_WORKFLOW) + 1
    if taken is None:  # the first deploy: the counter starts past what exists
        conn.execute(sa.insert(id_counters).values(name="workflow", next_value=floor + 1))
        return floor
    value = int(taken) - 1
    if value < floor:
        conn.execute(
            sa.update(id_counters).where(c.name == "workflow").values(next_value=floor + 1)
        )
        return floor
    return value


def _definition(row: sa.Row[Any]) -> WorkflowDefinition:
    m = row._mapping
    return WorkflowDefinition(
        id=m["id"],
        project_id=m["project_id"],
        kind=m["kind"],
        name=m["name"],
        owner=m["owner"],
        description=m["description"],
        spec=m["spec"],
        workflow_id=m["workflow_id"],
        create_time=m["create_time"],
        modify_time=m["modify_time"],
    )


def insert_definition(
    conn: sa.Connection, project_id: int, text: str, spec: WorkflowSpec, now_ms: int
) -> WorkflowDefinition:
    inserted = conn.execute(
        sa.insert(defs).values(
            project_id=project_id,
            kind=spec.kind.value,
            name=spec.name,
            owner=spec.owner,
            description=spec.description,
            spec=text,
            workflow_id=None,
            create_time=now_ms,
            modify_time=now_ms,
        )
    ).inserted_primary_key
    assert inserted is not None
    return definition_by_id(conn, int(inserted[0]), project_id)


def update_definition(
    conn: sa.Connection,
    definition_id: int,
    project_id: int,
    text: str,
    spec: WorkflowSpec,
    now_ms: int,
) -> WorkflowDefinition:
    definition_by_id(conn, definition_id, project_id)
    conn.execute(
        sa.update(defs)
        .where(defs.c.id == definition_id)
        .values(
            kind=spec.kind.value,
            name=spec.name,
            owner=spec.owner,
            description=spec.description,
            spec=text,
            modify_time=now_ms,
        )
    )
    return definition_by_id(conn, definition_id, project_id)


def definition_by_id(
    conn: sa.Connection, definition_id: int, project_id: int | None = None
) -> WorkflowDefinition:
    where = [defs.c.id == definition_id]
    if project_id is not None:
        where.append(defs.c.project_id == project_id)
    row = conn.execute(sa.select(defs).where(*where)).first()
    if row is None:
        raise DefinitionNotFound(str(definition_id))
    return _definition(row)


def definition_by_name(
    conn: sa.Connection, project_id: int, name: str
) -> WorkflowDefinition | None:
    row = conn.execute(
        sa.select(defs)
        .where(defs.c.project_id == project_id, defs.c.name == name)
        .order_by(defs.c.id)
    ).first()
    return None if row is None else _definition(row)


# Deployment


def deploy(
    conn: sa.Connection,
    definition: WorkflowDefinition,
    spec: WorkflowSpec,
    user: str,
    now_ms: int,
    with_nodes: bool,
    readable: frozenset[int] | None = None,
) -> DeployedWorkflow:
    """Deploy `spec` as the definition's workflow: a new workflow the first time, the next
    version after. `with_nodes` false keeps the deployed nodes (the definition's own fields
    change only, as UpdateWorkflowDefinition does in DataWorks). Outputs of other workflows
    are found in the workspaces `readable` (None: all), with the checks of store.links."""
    env = EnvType.PROD.value
    links.lock(conn)
    # Outputs of other workflows must exist whether or not the nodes are deployed now (an
    # invalid spec is refused the same by every action that takes one).
    external = links.resolve(conn, spec, definition.workflow_id, env, readable)
    if with_nodes:
        links.check_kept(conn, spec, definition.workflow_id, env, readable)
    values: dict[str, Any] = {
        "project_id": definition.project_id,
        "name": spec.name,
        "owner": spec.owner,
        "modify_time": now_ms,
        "definition_id": definition.id,
        "env_type": env,
        "kind": spec.kind.value,
        "client_unique_code": spec.client_id,
        "description": spec.description,
        "parameters": format_assignments(spec.parameters),
        "trigger_type": spec.trigger.type.value,
        "cron": spec.trigger.cron,
        "timezone": spec.trigger.timezone,
        "start_time": spec.trigger.start_time,
        "end_time": spec.trigger.end_time,
        "start_ms": spec.trigger.start_ms,
        "end_ms": spec.trigger.end_ms,
        "instance_mode": spec.strategy.instance_mode.value,
        "deploy_time": now_ms,
        "modify_user": user,
    }
    if definition.workflow_id is None:
        values |= {"create_time": now_ms, "create_user": user, "version": 1}
        values["id"] = workflow_id = _new_workflow_id(conn)
        conn.execute(sa.insert(workflows).values(**values))
        conn.execute(
            sa.update(defs).where(defs.c.id == definition.id).values(workflow_id=workflow_id)
        )
    else:
        workflow_id = definition.workflow_id
        values["version"] = workflows.c.version + 1
        conn.execute(sa.update(workflows).where(workflows.c.id == workflow_id).values(**values))
    if with_nodes:
        _deploy_nodes(conn, workflow_id, definition.project_id, spec, now_ms)
    deployed = _tasks_of(conn, workflow_id)
    if with_nodes:
        links.write(conn, workflow_id, env, deployed, external, readable)
    full = _with_nodes(spec, deployed)
    conn.execute(
        sa.update(workflows)
        .where(workflows.c.id == workflow_id)
        .values(spec=_encode(full).decode())
    )
    return workflow_by_id(conn, workflow_id)


def _with_nodes(spec: WorkflowSpec, deployed: Sequence[DeployedTask]) -> WorkflowSpec:
    """The spec as deployed: its own fields, with the nodes the workflow now has."""
    return replace(spec, nodes=tuple(t.node for t in deployed))


def _deploy_nodes(
    conn: sa.Connection, workflow_id: int, project_id: int, spec: WorkflowSpec, now_ms: int
) -> None:
    t = tasks.c
    existing = {
        r.node_id: r.id
        for r in conn.execute(sa.select(t.id, t.node_id).where(t.workflow_id == workflow_id))
    }
    for position, node in enumerate(spec.nodes):
        values = {
            "position": position,
            "name": node.name,
            "type": node.command,
            "owner": spec.owner,
            "spec": _encode(node).decode(),
            "deleted": False,
            "modify_time": now_ms,
        }
        if node.id in existing:
            conn.execute(sa.update(tasks).where(t.id == existing[node.id]).values(**values))
        else:
            conn.execute(
                sa.insert(tasks).values(
                    workflow_id=workflow_id,
                    project_id=project_id,
                    node_id=node.id,
                    create_time=now_ms,
                    **values,
                )
            )
    dropped = set(existing) - {node.id for node in spec.nodes}
    if dropped:
        conn.execute(
            sa.update(tasks)
            .where(t.workflow_id == workflow_id, t.node_id.in_(sorted(dropped)))
            .values(deleted=True, modify_time=now_ms)
        )


def workflow_by_id(conn: sa.Connection, workflow_id: int) -> DeployedWorkflow:
    w = workflows.c
    row = conn.execute(sa.select(workflows).where(w.id == workflow_id, w.kind != "")).first()
    if row is None:
        raise WorkflowNotFound(workflow_id)
    return _workflow(row, _tasks_of(conn, workflow_id))


def _tasks_of(conn: sa.Connection, workflow_id: int) -> tuple[DeployedTask, ...]:
    """The workflow's deployed tasks, upstream first (deleted nodes left out)."""
    t = tasks.c
    rows = conn.execute(
        sa.select(tasks)
        .where(t.workflow_id == workflow_id, t.deleted == sa.false())
        .order_by(t.position)
    )
    return tuple(_task(r) for r in rows)


def _task(r: sa.Row[Any]) -> DeployedTask:
    return DeployedTask(
        id=r.id,
        workflow_id=r.workflow_id,
        project_id=r.project_id,
        owner=r.owner,
        node=_node_decoder.decode(r.spec),
        create_time=r.create_time,
        modify_time=r.modify_time,
    )


def _workflow(row: sa.Row[Any], deployed: tuple[DeployedTask, ...]) -> DeployedWorkflow:
    m = row._mapping
    spec = _spec_decoder.decode(m["spec"]) if m["spec"] else None
    if spec is None:
        raise WorkflowNotFound(m["id"])
    return DeployedWorkflow(
        id=m["id"],
        project_id=m["project_id"],
        definition_id=m["definition_id"] or 0,
        env_type=EnvType(m["env_type"]),
        spec=spec,
        version=m["version"],
        deploy_time=m["deploy_time"] or 0,
        create_time=m["create_time"],
        modify_time=m["modify_time"],
        create_user=m["create_user"],
        modify_user=m["modify_user"],
        tasks=deployed,
    )


def workflows_page(
    conn: sa.Connection,
    project_id: int,
    env_type: EnvType,
    ids: Sequence[int] | None,
    name: str | None,
    owner: str | None,
    trigger_type: TriggerType | None,
    order: tuple[str, bool],
    offset: int,
    limit: int,
) -> tuple[int, list[DeployedWorkflow]]:
    """Deployed workflows (those with a definition) of a workspace, without their tasks."""
    w = workflows.c
    where: list[sa.ColumnElement[bool]] = [
        w.project_id == project_id,
        w.env_type == env_type.value,
        w.definition_id.is_not(None),
    ]
    if ids is not None:
        where.append(w.id.in_(list(ids)))
    if name:
        where.append(sa.func.lower(w.name).contains(name.lower(), autoescape=True))
    if owner is not None:
        where.append(w.owner == owner)
    if trigger_type is not None:
        where.append(w.trigger_type == trigger_type.value)
    column, descending = order
    sort = getattr(w, column)
    total = conn.execute(
        sa.select(sa.func.count()).select_from(workflows).where(*where)
    ).scalar_one()
    rows = conn.execute(
        sa.select(workflows)
        .where(*where)
        .order_by(
            sort.desc() if descending else sort.asc(), w.id.desc() if descending else w.id.asc()
        )
        .offset(offset)
        .limit(limit)
    )
    return int(total), [_workflow(r, ()) for r in rows]


def workflows_by_ids(
    conn: sa.Connection, ids: Sequence[int]
) -> list[tuple[DeployedWorkflow, int | None, int | None]]:
    """Deployed workflows with their tasks, and their first run day and generated-through
    day (yyyymmdd), in a few statements for many workflows."""
    found: list[tuple[DeployedWorkflow, int | None, int | None]] = []
    t = tasks.c
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        task_rows: dict[int, list[DeployedTask]] = {}
        for r in conn.execute(
            sa.select(tasks)
            .where(among(conn, t.workflow_id, chunk), t.deleted == sa.false())
            .order_by(t.workflow_id, t.position)
        ):
            task_rows.setdefault(r.workflow_id, []).append(_task(r))
        rows = conn.execute(sa.select(workflows).where(among(conn, workflows.c.id, chunk)))
        for row in rows:
            deployed = _workflow(row, tuple(task_rows.get(row.id, ())))
            found.append((deployed, row.first_run_day, row.generated_through))
    return found


class Definitions:
    """Workflow definitions, each deployed as a workflow when stored (`Tx.definitions`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def get(self, definition_id: int, project_id: int | None = None) -> WorkflowDefinition:
        return definition_by_id(self.conn, definition_id, project_id)

    def create(
        self,
        project_id: int,
        text: str,
        spec: WorkflowSpec,
        user: str,
        now_ms: int,
        nodes: bool,
        readable: frozenset[int] | None = None,
    ) -> tuple[WorkflowDefinition, DeployedWorkflow]:
        """Store a definition and deploy it (with its nodes, or none as DataWorks'
        CreateWorkflowDefinition does); outputs of other workflows are looked for in the
        workspaces `readable` (None: all)."""
        project_by_id(self.conn, project_id)
        found = insert_definition(self.conn, project_id, text, spec, now_ms)
        deployed = deploy(self.conn, found, spec, user, now_ms, nodes, readable)
        return definition_by_id(self.conn, found.id), deployed

    def create_or_replace(
        self,
        project_id: int,
        text: str,
        spec: WorkflowSpec,
        user: str,
        now_ms: int,
        readable: frozenset[int] | None = None,
    ) -> tuple[WorkflowDefinition, DeployedWorkflow]:
        """Create the definition with its nodes, or overwrite the one it names: by its spec
        id when that is a definition id of the workspace, else by its name (outputs of other
        workflows as `create` finds them)."""
        conn = self.conn
        project_by_id(conn, project_id)
        found: WorkflowDefinition | None = None
        if spec.client_id.isdigit():
            try:
                found = definition_by_id(conn, int(spec.client_id), project_id)
            except DefinitionNotFound:
                found = None
        found = found or definition_by_name(conn, project_id, spec.name)
        if found is None:
            found = insert_definition(conn, project_id, text, spec, now_ms)
        else:
            found = update_definition(conn, found.id, project_id, text, spec, now_ms)
        deployed = deploy(conn, found, spec, user, now_ms, True, readable)
        return definition_by_id(conn, found.id), deployed

    def update(
        self,
        definition_id: int,
        project_id: int,
        text: str,
        spec: WorkflowSpec,
        user: str,
        now_ms: int,
        readable: frozenset[int] | None = None,
    ) -> DeployedWorkflow:
        """Change the definition's own fields and deploy them as the next version (its nodes
        stay as deployed)."""
        found = update_definition(self.conn, definition_id, project_id, text, spec, now_ms)
        return deploy(self.conn, found, spec, user, now_ms, False, readable)

    def delete(
        self, definition_id: int, project_id: int, readable: frozenset[int] | None = None
    ) -> None:
        """Delete the definition; its workflow stops being scheduled (it stays, undeployed, for
        the instances it made). Conflict while other workflows depend on its outputs."""
        found = definition_by_id(self.conn, definition_id, project_id)
        if found.workflow_id is not None:
            links.lock(self.conn)
            links.refuse_undeploy(self.conn, found.workflow_id, readable=readable)
            links.drop(self.conn, found.workflow_id)
            self.conn.execute(
                sa.update(workflows)
                .where(workflows.c.id == found.workflow_id)
                .values(definition_id=None)
            )
        self.conn.execute(sa.delete(defs).where(defs.c.id == definition_id))

    def page(
        self,
        project_id: int,
        kind: str | None,
        name: str | None,
        owner: str | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[WorkflowDefinition]]:
        """A page of the workspace's definitions, newest first, and their count
        (ProjectNotFound for no such workspace)."""
        project_by_id(self.conn, project_id)
        where: list[sa.ColumnElement[bool]] = [defs.c.project_id == project_id]
        if kind is not None:
            where.append(defs.c.kind == kind)
        if name:
            where.append(sa.func.lower(defs.c.name).contains(name.lower(), autoescape=True))
        if owner is not None:
            where.append(defs.c.owner == owner)
        total = self.conn.execute(
            sa.select(sa.func.count()).select_from(defs).where(*where)
        ).scalar_one()
        rows = self.conn.execute(
            sa.select(defs).where(*where).order_by(defs.c.id.desc()).offset(offset).limit(limit)
        )
        return int(total), [_definition(r) for r in rows]
