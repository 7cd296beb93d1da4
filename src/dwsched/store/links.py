"""Deployed dependencies: the owner of each output name, and the links between deployed
nodes, inside a workflow and across workflows and workspaces (docs/dependencies.md).

An output name is owned by one deployed node per environment. Deploying a workflow:
- finds the owner of every output its nodes name that no node of its own produces
  (`resolve`): a name nobody owns, or owned in a workspace the deployer may not read, is
  refused with the JSON path that names it;
- refuses an output another workflow's node owns already (naming both), and the removal of
  an output other workflows depend on (naming them: `check_kept`);
- writes the workflow's outputs and links (`write`), points the links of other workflows at
  an output's new owner when it moved between the workflow's own nodes, and refuses a
  same-cycle cycle that only exists across workflows (`check_cycles`).
Undeploying (deleting the definition) is refused while other workflows depend on it
(`dependents`), then drops its outputs and links (`drop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import Conflict
from dwsched.domain.flowspec import DependencyType, WorkflowSpec, invalid
from dwsched.domain.workflows import DeployedTask
from dwsched.store.dialect import LINKS_LOCK, advisory_lock, insert_ignoring_conflicts
from dwsched.store.schema import task_links, task_outputs, tasks, workflows

CHUNK = 500
_NORMAL = DependencyType.NORMAL.value


@dataclass(frozen=True, slots=True)
class Owner:
    """The deployed node that produces an output."""

    output: str
    task_id: int
    workflow_id: int
    project_id: int
    node: str
    workflow: str

    def __str__(self) -> str:
        return f"node {self.node!r} of workflow {self.workflow!r} (id {self.workflow_id})"


@dataclass(frozen=True, slots=True)
class Dependent:
    """A deployed node of another workflow that depends on an output."""

    output: str
    node: str
    workflow: str
    workflow_id: int
    project_id: int

    def __str__(self) -> str:
        return (
            f"node {self.node!r} of workflow {self.workflow!r} (id {self.workflow_id}) "
            f"depends on {self.output!r}"
        )


def lock(conn: sa.Connection) -> None:
    """Serialise the deployments that read and change the graph (PostgreSQL: under READ
    COMMITTED two of them would each check against a graph without the other's change)."""
    advisory_lock(conn, LINKS_LOCK)


def owners(conn: sa.Connection, env_type: str, outputs: Sequence[str]) -> dict[str, Owner]:
    """The owners of these output names in `env_type`."""
    o, t, w = task_outputs.c, tasks.c, workflows.c
    found: dict[str, Owner] = {}
    wanted = sorted(set(outputs))
    for start in range(0, len(wanted), CHUNK):
        rows = conn.execute(
            sa.select(o.output, o.task_id, o.workflow_id, o.project_id, t.node_id, w.name)
            .join(tasks, t.id == o.task_id)
            .join(workflows, w.id == o.workflow_id)
            .where(o.env_type == env_type, o.output.in_(wanted[start : start + CHUNK]))
        )
        for r in rows:
            found[r.output] = Owner(
                r.output, r.task_id, r.workflow_id, r.project_id, r.node_id, r.name
            )
    return found


def resolve(
    conn: sa.Connection,
    spec: WorkflowSpec,
    workflow_id: int | None,
    env_type: str,
    readable: frozenset[int] | None,
) -> dict[str, Owner]:
    """The owners of the outputs `spec` names that no node of its own produces, each in
    another workflow; InvalidArgument at the JSON path of one nobody owns (or owned where
    the deployer may not read: it is not told which)."""
    found = owners(conn, env_type, [output for output, _ in spec.external])
    for output, path in spec.external:
        owner = found.get(output)
        if (
            owner is None
            or owner.workflow_id == workflow_id  # produced by a node this version drops
            or (readable is not None and owner.project_id not in readable)
        ):
            raise invalid(
                path,
                f"no deployed node produces the output {output!r} (an output of another "
                "workflow is depended on once the workflow that produces it is deployed)",
            )
    return found


def check_kept(
    conn: sa.Connection,
    spec: WorkflowSpec,
    workflow_id: int | None,
    env_type: str,
    readable: frozenset[int] | None = None,
) -> None:
    """Refuse an output of `spec` that another workflow's node owns (naming both, when the
    deployer may read the other's workspace), and the removal of an output of this workflow
    that other workflows depend on (naming those it may read)."""
    produced = {output: n.id for n in spec.nodes for output in n.outputs}
    for output, owner in owners(conn, env_type, list(produced)).items():
        if owner.workflow_id != workflow_id:
            where = (
                str(owner)
                if readable is None or owner.project_id in readable
                else "a node of a workspace you may not read"
            )
            raise invalid(
                "$.spec.workflows[0].nodes",
                f"the output {output!r} of node {produced[output]!r} is produced by {where} "
                "already: an output name has one producer",
            )
    if workflow_id is None:
        return
    o = task_outputs.c
    held = conn.execute(
        sa.select(o.output).where(o.workflow_id == workflow_id, o.env_type == env_type)
    ).scalars()
    dropped = sorted(set(held) - set(produced))
    if dropped:
        found = dependents(conn, workflow_id, dropped)
        if found:
            raise Conflict(
                f"The workflow {workflow_id} cannot stop producing "
                f"{', '.join(repr(d) for d in sorted({d.output for d in found}))}: "
                f"{_listed(found, readable)}. Change or delete those dependents first."
            )


def dependents(
    conn: sa.Connection, workflow_id: int, outputs: Sequence[str] | None = None
) -> list[Dependent]:
    """The deployed nodes of other workflows that depend on this workflow's outputs (on
    `outputs` of them only, when given)."""
    k, t, w = task_links.c, tasks.c, workflows.c
    query = (
        sa.select(k.output, t.node_id, w.name, w.id, w.project_id)
        .join(tasks, t.id == k.task_id)
        .join(workflows, w.id == k.workflow_id)
        .where(k.upstream_workflow_id == workflow_id, k.workflow_id != workflow_id)
        .order_by(w.id, t.node_id)
    )
    if outputs is not None:
        query = query.where(k.output.in_(list(outputs)))
    return [Dependent(r.output, r.node_id, r.name, r.id, r.project_id) for r in conn.execute(query)]


def _listed(
    found: Sequence[Dependent], readable: frozenset[int] | None = None, at_most: int = 5
) -> str:
    """The dependents named (at most `at_most`), those of workspaces not `readable` only
    counted."""
    seen = [d for d in found if readable is None or d.project_id in readable]
    hidden = len(found) - len(seen)
    shown = "; ".join(str(d) for d in seen[:at_most])
    more = len(seen) - at_most
    parts = [shown] if shown else []
    if more > 0:
        parts.append(f"and {more} more")
    if hidden:
        parts.append(f"{hidden} in workspaces you may not read")
    return "; ".join(parts)


def refuse_undeploy(
    conn: sa.Connection,
    workflow_id: int,
    leaving: frozenset[int] | None = None,
    readable: frozenset[int] | None = None,
) -> None:
    """Conflict, naming them (those `readable`), when other workflows depend on this one's
    outputs (those of workflows in `leaving` left out: they go with it)."""
    found = [d for d in dependents(conn, workflow_id) if d.workflow_id not in (leaving or ())]
    if found:
        raise Conflict(
            f"The workflow {workflow_id} cannot be deleted while other workflows depend on "
            f"its outputs: {_listed(found, readable)}. Change or delete those dependents first."
        )


def write(
    conn: sa.Connection,
    workflow_id: int,
    env_type: str,
    deployed: Sequence[DeployedTask],
    external: dict[str, Owner],
    readable: frozenset[int] | None = None,
) -> None:
    """Record the workflow's outputs and its nodes' links (replacing what it had), point
    other workflows' links at an output's new owner, and refuse a same-cycle cycle."""
    drop(conn, workflow_id)
    by_node = {t.node.id: t for t in deployed}
    outputs = {output: t for t in deployed for output in t.node.outputs}
    if outputs:
        conn.execute(
            sa.insert(task_outputs),
            [
                {
                    "env_type": env_type,
                    "output": output,
                    "task_id": t.id,
                    "workflow_id": workflow_id,
                    "project_id": t.project_id,
                }
                for output, t in outputs.items()
            ],
        )
    rows: dict[tuple[int, int, str], dict[str, object]] = {}
    for t in deployed:
        for u in t.node.upstream:
            if u.external:
                up_task, up_workflow = external[u.output].task_id, external[u.output].workflow_id
            elif u.node_id in by_node:
                up_task, up_workflow = by_node[u.node_id].id, workflow_id
            else:
                continue
            rows.setdefault(
                (t.id, up_task, u.type.value),
                {
                    "task_id": t.id,
                    "upstream_task_id": up_task,
                    "type": u.type.value,
                    "workflow_id": workflow_id,
                    "upstream_workflow_id": up_workflow,
                    "output": u.output,
                },
            )
    if rows:
        conn.execute(sa.insert(task_links), list(rows.values()))
    _follow_moved_outputs(conn, workflow_id, outputs)
    check_cycles(conn, [t.id for t in deployed], readable)
    _check_previous_of_descendants(conn, list(rows.values()), readable)


def _follow_moved_outputs(
    conn: sa.Connection, workflow_id: int, outputs: dict[str, DeployedTask]
) -> None:
    """Point other workflows' links at the new owner of an output that moved between this
    workflow's nodes (one link a pair of nodes and type: a link to the new owner that
    exists already stays as it is)."""
    k = task_links.c
    moved = conn.execute(
        sa.select(task_links).where(
            k.upstream_workflow_id == workflow_id,
            k.workflow_id != workflow_id,
            k.output.in_(list(outputs)),
        )
    ).all()
    for r in moved:
        owner = outputs[r.output].id
        if r.upstream_task_id == owner:
            continue
        conn.execute(
            sa.delete(task_links).where(
                k.task_id == r.task_id, k.upstream_task_id == r.upstream_task_id, k.type == r.type
            )
        )
        conn.execute(
            insert_ignoring_conflicts(conn, task_links).values(
                task_id=r.task_id,
                upstream_task_id=owner,
                type=r.type,
                workflow_id=r.workflow_id,
                upstream_workflow_id=workflow_id,
                output=r.output,
            )
        )


def drop(conn: sa.Connection, workflow_id: int) -> None:
    """Forget the workflow's outputs and its own nodes' links."""
    conn.execute(sa.delete(task_outputs).where(task_outputs.c.workflow_id == workflow_id))
    conn.execute(sa.delete(task_links).where(task_links.c.workflow_id == workflow_id))


def check_cycles(
    conn: sa.Connection, own: Sequence[int], readable: frozenset[int] | None = None
) -> None:
    """InvalidArgument naming the loop when the same-cycle links above these tasks (across
    workflows) come back to one of them."""
    k = task_links.c
    above: dict[int, list[int]] = {}
    frontier, seen = set(own), set(own)
    while frontier:
        ids = sorted(frontier)
        frontier = set()
        for start in range(0, len(ids), CHUNK):
            rows = conn.execute(
                sa.select(k.task_id, k.upstream_task_id).where(
                    k.type == _NORMAL, k.task_id.in_(ids[start : start + CHUNK])
                )
            )
            for task_id, up in rows:
                above.setdefault(int(task_id), []).append(int(up))
                if up not in seen:
                    seen.add(int(up))
                    frontier.add(int(up))
    loop = _loop(above, own)
    if loop:
        raise invalid(
            "$.spec.workflows[0].dependencies",
            f"the dependencies across workflows form a cycle: {_named(conn, loop, readable)}",
        )


def _above(conn: sa.Connection, start: int) -> set[int]:
    """Every node `start` depends on in the same cycle, directly or not (across workflows)."""
    k = task_links.c
    seen: set[int] = set()
    frontier = {start}
    while frontier:
        ids = sorted(frontier)
        frontier = set()
        for chunk in range(0, len(ids), CHUNK):
            ups = conn.execute(
                sa.select(k.upstream_task_id).where(
                    k.type == _NORMAL, k.task_id.in_(ids[chunk : chunk + CHUNK])
                )
            ).scalars()
            for up in ups:
                if int(up) not in seen:
                    seen.add(int(up))
                    frontier.add(int(up))
    return seen


def _check_previous_of_descendants(
    conn: sa.Connection, rows: Sequence[dict[str, Any]], readable: frozenset[int] | None
) -> None:
    """Refuse CrossCycleDependsOnOtherNode on a node below this one (same cycle) when the
    two run on different schedules: the proximity rule may then tie an instance of the
    descendant to a later one of this node, and the two would wait for each other
    (CrossCycleDependsOnChildren has a rule of its own that never does)."""
    other = DependencyType.CROSS_CYCLE_OTHER.value
    w = workflows.c
    for row in rows:
        if row["type"] != other:
            continue
        down, up = int(row["task_id"]), int(row["upstream_task_id"])
        crons = dict(
            conn.execute(
                sa.select(w.id, w.cron).where(
                    w.id.in_([row["workflow_id"], row["upstream_workflow_id"]])
                )
            ).all()
        )
        if crons.get(row["workflow_id"]) == crons.get(row["upstream_workflow_id"]):
            continue  # the same cycles: the previous one is always earlier
        if down in _above(conn, up):
            raise invalid(
                "$.spec.workflows[0].dependencies",
                f"a CrossCycleDependsOnOtherNode dependency on {_named(conn, [up], readable)}, "
                "which runs below this node on another schedule, could make instances wait "
                "for each other: use CrossCycleDependsOnChildren for a first-level child, or "
                "give both the same schedule",
            )


def _loop(above: dict[int, list[int]], start: Sequence[int]) -> list[int]:
    """A cycle of `above` reachable from `start`, as the path that closes it ([] if none)."""
    state: dict[int, int] = {}  # 1 on the path, 2 done
    for root in start:
        if state.get(root):
            continue
        path: list[int] = [root]
        state[root] = 1
        stack = [iter(above.get(root, ()))]
        while stack:
            up = next(stack[-1], None)
            if up is None:
                stack.pop()
                state[path.pop()] = 2
                continue
            if state.get(up) == 1:
                return [*path[path.index(up) :], up]
            if not state.get(up):
                state[up] = 1
                path.append(up)
                stack.append(iter(above.get(up, ())))
    return []


def _named(conn: sa.Connection, loop: Sequence[int], readable: frozenset[int] | None) -> str:
    t, w = tasks.c, workflows.c
    rows = conn.execute(
        sa.select(t.id, t.node_id, w.name, w.project_id)
        .join(workflows, w.id == t.workflow_id)
        .where(t.id.in_(sorted(set(loop))))
    )
    names = {
        int(r.id): (
            f"{r.node_id} ({r.name})"
            if readable is None or r.project_id in readable
            else "(a node of a workspace you may not read)"
        )
        for r in rows
    }
    # The loop is walked upward; shown in the order data flows.
    return " → ".join(names.get(i, str(i)) for i in reversed(loop))


def external_of(conn: sa.Connection, workflow_id: int) -> list[tuple[str, str, int]]:
    """The workflow's nodes' links to other workflows: (type, output named, upstream task)."""
    k = task_links.c
    rows = conn.execute(
        sa.select(k.type, k.output, k.upstream_task_id)
        .where(k.workflow_id == workflow_id, k.upstream_workflow_id != workflow_id)
        .order_by(k.task_id, k.upstream_task_id)
    )
    return [(str(r.type), str(r.output), int(r.upstream_task_id)) for r in rows]
