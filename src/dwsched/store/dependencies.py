"""Instance-level dependencies that leave a workflow instance: on another workflow's
instance, or on a previous cycle (docs/dependencies.md).

They are resolved when instances are made (`resolve`), by domain.dependencies from the
deployed links (store.links) and both nodes' schedules, against the instances that exist:
- Normal (scheduled) instances wait for Normal instances: those made in the same batch and
  those made before (scheduled_cycles); an upstream cycle with no instance (before the
  node's first instance, outside its validity window) is not waited for;
- a backfill's (SupplementData) instances wait only for instances of the same backfill;
- other runs (manual runs, smoke tests, triggered runs) wait for nothing outside themselves.
The upstream ids join task_instances.upstream (what planning reads); each edge is a row of
task_instance_dependencies with its type, which finds downstreams and is what
RemoveTaskInstanceDependencies removes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain import dependencies
from dwsched.domain.calendar import day_from_key
from dwsched.domain.flowspec import DependencyType
from dwsched.domain.models import InstanceType, Status
from dwsched.domain.schedule import Trigger
from dwsched.store.dialect import among, bulk_insert
from dwsched.store.planning import lock_instances
from dwsched.store.schema import (
    scheduled_cycles,
    task_instance_dependencies as tid,
    task_instances as ti,
    task_links,
    workflows,
)

CHUNK = 500
_SELF = DependencyType.CROSS_CYCLE_SELF
_CHILDREN = DependencyType.CROSS_CYCLE_CHILDREN
_ids = msgspec.json.Decoder(list[int]).decode
_encode = msgspec.json.Encoder().encode
# Instance types whose instances wait outside themselves, and for what kind of instance.
LINKED = (InstanceType.NORMAL, InstanceType.SUPPLEMENT_DATA)


@dataclass(frozen=True, slots=True)
class Edge:
    task_instance_id: int
    upstream_id: int
    type: DependencyType


@dataclass(frozen=True, slots=True)
class Batch:
    """Instances being made: for each, its workflow id, cycle (trigger time, run date), kind,
    the tasks that run in it (None: all) and its task instance ids by deployed task id."""

    workflow_id: int
    trigger: Trigger | None
    trigger_time: int
    run_date: date
    kind: InstanceType
    chosen: frozenset[int] | None
    task_instances: Mapping[int, int]
    nodes: Mapping[int, Any]  # deployed task id -> NodeSpec
    cross_cycle: bool = True  # a backfill run newest first links no previous cycle


def resolve(conn: sa.Connection, batch: Sequence[Batch]) -> list[Edge]:
    """The edges of the batch's task instances to instances outside their own."""
    wanted = [
        (b, task_id)
        for b in batch
        if b.kind in LINKED and b.trigger is not None
        for task_id, node in b.nodes.items()
        if (b.chosen is None or task_id in b.chosen)
        and any(u.external or not u.same_cycle for u in node.upstream)
    ]
    if not wanted:
        return []
    pairs = _pairs(conn, {task_id for _, task_id in wanted})
    up_workflows = {w for rows in pairs.values() for _, _, w, _ in rows}
    triggers = _triggers(conn, up_workflows)
    for b in batch:
        triggers.setdefault(b.workflow_id, b.trigger)
    selfish = _self_dependent(conn, {t for rows in pairs.values() for _, t, _, _ in rows})
    # Keyed by schedule, not by workflow: thousands of workflows share a few crons.
    days: dict[tuple[Trigger | None, date, bool], dependencies.NodeDays | None] = {}
    resolved: dict[tuple[Any, ...], list[tuple[int, ...]]] = {}

    def node_days(
        workflow_id: int, run_date: date, self_dependent: bool
    ) -> dependencies.NodeDays | None:
        trigger = triggers.get(workflow_id)
        key = (trigger, run_date, self_dependent)
        if key not in days:
            days[key] = (
                None
                if trigger is None
                else dependencies.node_days(trigger, run_date, self_dependent)
            )
        return days[key]

    wants: list[_Want] = []
    positions: dict[int, dict[int, int]] = {}
    for b, task_id in wanted:
        down_self = any(u.type is _SELF for u in b.nodes[task_id].upstream)
        down = node_days(b.workflow_id, b.run_date, down_self)
        index = None if down is None else _index(positions, down, b.trigger_time)
        if down is None or index is None:
            continue
        for kind, up_task, up_workflow, _ in pairs.get(task_id, ()):
            if kind is not DependencyType.NORMAL and not b.cross_cycle:
                continue
            up_self = down_self if kind is _SELF else up_task in selfish
            up = down if kind is _SELF else node_days(up_workflow, b.run_date, up_self)
            if up is None:
                continue
            up_trigger = triggers.get(b.workflow_id if kind is _SELF else up_workflow)
            key = (kind, triggers.get(b.workflow_id), down_self, up_trigger, up_self, b.run_date)
            if key not in resolved:
                resolved[key] = dependencies.upstream_slots(kind, down, up)
            down_id = b.task_instances[task_id]
            for at in resolved[key][index]:
                wants.append(_Want(b.kind, down_id, kind, up_task, up_workflow, at))
    found = _instances(conn, batch, wants)
    edges: dict[tuple[int, int], Edge] = {}
    for w in wants:
        up_id = found.get((w.instance_kind, w.up_task, w.at))
        if up_id is not None and up_id != w.down_id:
            edges.setdefault((w.down_id, up_id), Edge(w.down_id, up_id, w.type))
    return list(edges.values())


@dataclass(frozen=True, slots=True)
class _Want:
    """A task instance waits for the instance of `up_task` (of `up_workflow`) at `at`."""

    instance_kind: InstanceType
    down_id: int
    type: DependencyType
    up_task: int
    up_workflow: int
    at: int


def _index(
    positions: dict[int, dict[int, int]], days: dependencies.NodeDays, trigger_time: int
) -> int | None:
    """The position of the cycle at `trigger_time` among `days.current` (None: not one)."""
    found = positions.get(id(days))
    if found is None:
        found = positions[id(days)] = {s.trigger_time: n for n, s in enumerate(days.current)}
    return found.get(trigger_time)


def _pairs(
    conn: sa.Connection, task_ids: Iterable[int]
) -> dict[int, list[tuple[DependencyType, int, int, str]]]:
    """For each task, its (type, upstream task, upstream workflow, output) that leave its
    workflow instance: links to other workflows, cross-cycle links, and for
    CrossCycleDependsOnChildren one pair per first-level child."""
    k = task_links.c
    ids = sorted(task_ids)
    found: dict[int, list[tuple[DependencyType, int, int, str]]] = {}
    parents: list[int] = []
    for start in range(0, len(ids), CHUNK):
        rows = conn.execute(
            sa.select(task_links).where(among(conn, k.task_id, ids[start : start + CHUNK]))
        )
        for r in rows:
            kind = DependencyType(r.type)
            if kind is _CHILDREN:
                parents.append(int(r.task_id))
            elif kind is not DependencyType.NORMAL or r.upstream_workflow_id != r.workflow_id:
                found.setdefault(int(r.task_id), []).append(
                    (kind, int(r.upstream_task_id), int(r.upstream_workflow_id), r.output)
                )
    for start in range(0, len(parents), CHUNK):
        rows = conn.execute(
            sa.select(k.task_id, k.workflow_id, k.upstream_task_id).where(
                among(conn, k.upstream_task_id, parents[start : start + CHUNK]),
                k.type == DependencyType.NORMAL.value,
            )
        )
        for child, child_workflow, parent in rows:
            found.setdefault(int(parent), []).append(
                (_CHILDREN, int(child), int(child_workflow), "")
            )
    return found


def _triggers(conn: sa.Connection, ids: Iterable[int]) -> dict[int, Trigger | None]:
    w = workflows.c
    wanted = sorted(set(ids))
    found: dict[int, Trigger | None] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = conn.execute(
            sa.select(w.id, w.cron, w.timezone, w.start_ms, w.end_ms).where(
                among(conn, w.id, wanted[start : start + CHUNK])
            )
        )
        for r in rows:
            found[int(r.id)] = (
                None if not r.cron else Trigger(r.cron, r.timezone, r.start_ms, r.end_ms)
            )
    return found


def _self_dependent(conn: sa.Connection, task_ids: Iterable[int]) -> set[int]:
    k = task_links.c
    wanted = sorted(set(task_ids))
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        found.update(
            int(t)
            for t in conn.execute(
                sa.select(k.task_id).where(
                    among(conn, k.task_id, wanted[start : start + CHUNK]),
                    k.upstream_task_id == k.task_id,
                    k.type == _SELF.value,
                )
            ).scalars()
        )
    return found


def _instances(
    conn: sa.Connection, batch: Sequence[Batch], wants: Sequence[_Want]
) -> dict[tuple[InstanceType, int, int], int]:
    """(instance kind, upstream task, trigger time) -> its task instance id, among the
    batch's instances and (for Normal ones) those made before."""
    found: dict[tuple[InstanceType, int, int], int] = {}
    for b in batch:
        for task_id, task_instance_id in b.task_instances.items():
            found[(b.kind, task_id, b.trigger_time)] = task_instance_id
    missing: dict[int, set[int]] = {}  # upstream workflow -> trigger times
    up_tasks_of: dict[int, set[int]] = {}
    for w in wants:
        if (
            w.instance_kind is InstanceType.NORMAL
            and (w.instance_kind, w.up_task, w.at) not in found
        ):
            missing.setdefault(w.up_workflow, set()).add(w.at)
            up_tasks_of.setdefault(w.up_workflow, set()).add(w.up_task)
    if not missing:
        return found
    sc = scheduled_cycles.c
    wanted = {(w, at) for w, times in missing.items() for at in times}
    low, high = min(at for _, at in wanted), max(at for _, at in wanted)
    instance_of: dict[tuple[int, int], int] = {}
    workflow_ids = sorted(missing)
    # A few statements for the lot: the cycles of up to CHUNK workflows between the earliest
    # and the latest time wanted (a workflow-day or two each), kept when wanted.
    for start in range(0, len(workflow_ids), CHUNK):
        rows = conn.execute(
            sa.select(sc.workflow_id, sc.trigger_time, sc.workflow_instance_id).where(
                among(conn, sc.workflow_id, workflow_ids[start : start + CHUNK]),
                sc.trigger_time.between(low, high),
            )
        )
        for workflow_id, at, instance_id in rows:
            if (int(workflow_id), int(at)) in wanted:
                instance_of[(int(workflow_id), int(at))] = int(instance_id)
    instance_ids = sorted(set(instance_of.values()))
    up_tasks = {t for tasks in up_tasks_of.values() for t in tasks}
    time_of = {i: at for (_, at), i in instance_of.items()}
    for start in range(0, len(instance_ids), CHUNK):
        rows = conn.execute(
            sa.select(ti.c.id, ti.c.workflow_instance_id, ti.c.task_id).where(
                among(conn, ti.c.workflow_instance_id, instance_ids[start : start + CHUNK])
            )
        )
        for r in rows:
            if int(r.task_id) in up_tasks:
                key = (InstanceType.NORMAL, int(r.task_id), time_of[int(r.workflow_instance_id)])
                found[key] = int(r.id)
    return found


def insert(conn: sa.Connection, edges: Sequence[Edge]) -> None:
    bulk_insert(
        conn,
        tid,
        [
            {
                "task_instance_id": e.task_instance_id,
                "upstream_id": e.upstream_id,
                "type": e.type.value,
            }
            for e in edges
        ],
    )


# Reading and removing edges


def types_of(conn: sa.Connection, task_instance_id: int, upstream: bool) -> dict[int, str]:
    """The task instance's edges outside its workflow instance: upstream id (or downstream
    id) -> FlowSpec dependency type."""
    d = tid.c
    if upstream:
        rows = conn.execute(
            sa.select(d.upstream_id, d.type).where(d.task_instance_id == task_instance_id)
        )
    else:
        rows = conn.execute(
            sa.select(d.task_instance_id, d.type).where(d.upstream_id == task_instance_id)
        )
    return {int(i): str(t) for i, t in rows}


def remove(conn: sa.Connection, task_instance_id: int, upstream_ids: Sequence[int]) -> list[int]:
    """Drop these upstreams of the task instance (its own workflow instance's or others');
    the ids it no longer waits for."""
    text = conn.execute(sa.select(ti.c.upstream).where(ti.c.id == task_instance_id)).scalar()
    have = _ids(text or "[]")
    gone = [u for u in have if u in set(upstream_ids)]
    if not gone:
        return []
    kept = [u for u in have if u not in set(gone)]
    conn.execute(
        sa.update(ti).where(ti.c.id == task_instance_id).values(upstream=_encode(kept).decode())
    )
    conn.execute(
        sa.delete(tid).where(
            tid.c.task_instance_id == task_instance_id, tid.c.upstream_id.in_(gone)
        )
    )
    return gone


# The other direction: instances made after their downstreams


def resolve_later(conn: sa.Connection, batch: Sequence[Batch]) -> list[Edge]:
    """The edges from task instances made BEFORE this batch, in other workflows and not
    started yet (NotRun), to the batch's Normal instances they wait for: an upstream
    workflow generated after its downstream (another zone's evening, a later transaction of
    the same generation, a deploy with Immediately). Same-cycle and other-node links across
    workflows; the others stay inside a workflow, whose days are made in order."""
    made = [b for b in batch if b.kind is InstanceType.NORMAL and b.trigger is not None]
    if not made:
        return []
    k = task_links.c
    ids = sorted({b.workflow_id for b in made})
    links: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        links += conn.execute(
            sa.select(k.task_id, k.workflow_id, k.upstream_task_id, k.type).where(
                among(conn, k.upstream_workflow_id, ids[start : start + CHUNK]),
                k.workflow_id != k.upstream_workflow_id,
                k.type.in_([DependencyType.NORMAL.value, DependencyType.CROSS_CYCLE_OTHER.value]),
            )
        )
    if not links:
        return []
    new_at: dict[int, dict[date, set[int]]] = {}  # upstream task -> run date -> times made
    trigger_of: dict[int, Trigger | None] = {}
    for b in made:
        trigger_of[b.workflow_id] = b.trigger
        for task_id in b.task_instances:
            new_at.setdefault(task_id, {}).setdefault(b.run_date, set()).add(b.trigger_time)
    down_workflows = {int(r.workflow_id) for r in links}
    triggers = _triggers(conn, down_workflows)
    through = _generated_through(conn, down_workflows)
    in_batch = {(b.workflow_id, b.run_date) for b in batch}
    made_id = {(t, b.trigger_time): i for b in made for t, i in b.task_instances.items()}
    selfish = _self_dependent(
        conn, {int(r.task_id) for r in links} | {int(r.upstream_task_id) for r in links}
    )
    up_workflow_of = {t: b.workflow_id for b in made for t in b.task_instances}
    wanted: dict[tuple[int, int], set[tuple[int, DependencyType, int]]] = {}
    cached: dict[tuple[Any, ...], tuple[dependencies.NodeDays, list[tuple[int, ...]]]] = {}
    for r in links:
        down_task, down_workflow, up_task = (
            int(r.task_id),
            int(r.workflow_id),
            int(r.upstream_task_id),
        )
        kind = DependencyType(r.type)
        down_trigger = triggers.get(down_workflow)
        up_trigger = trigger_of.get(up_workflow_of.get(up_task, -1))
        last = through.get(down_workflow)
        if down_trigger is None or up_trigger is None or up_task not in new_at or last is None:
            continue
        for run_date, times in new_at[up_task].items():
            days = [run_date] if kind is DependencyType.NORMAL else [run_date, run_date + _ONE_DAY]
            for day in days:
                if day > last or (down_workflow, day) in in_batch:
                    continue  # not made yet (it will link itself), or made with this batch
                down_self, up_self = down_task in selfish, up_task in selfish
                key = (kind, down_trigger, down_self, up_trigger, up_self, day)
                if key not in cached:
                    down = dependencies.node_days(down_trigger, day, down_self)
                    up = dependencies.node_days(up_trigger, day, up_self)
                    cached[key] = (down, dependencies.upstream_slots(kind, down, up))
                down, picked = cached[key]
                for slot, ats in zip(down.current, picked, strict=True):
                    for at in ats:
                        if at in times:
                            wanted.setdefault((down_workflow, slot.trigger_time), set()).add(
                                (down_task, kind, made_id[(up_task, at)])
                            )
    if not wanted:
        return []
    return _existing_edges(conn, wanted)


_ONE_DAY = timedelta(days=1)


def _generated_through(conn: sa.Connection, ids: Iterable[int]) -> dict[int, date]:
    """The last run date each workflow has instances made for."""
    w = workflows.c
    wanted = sorted(set(ids))
    found: dict[int, date] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = conn.execute(
            sa.select(w.id, w.generated_through).where(
                among(conn, w.id, wanted[start : start + CHUNK])
            )
        )
        for r in rows:
            if r.generated_through is not None:
                found[int(r.id)] = day_from_key(int(r.generated_through))
    return found


def _existing_edges(
    conn: sa.Connection, wanted: Mapping[tuple[int, int], set[tuple[int, DependencyType, int]]]
) -> list[Edge]:
    """The edges from the NotRun task instances of (workflow, TriggerTime) in `wanted`."""
    sc = scheduled_cycles.c
    workflow_ids = sorted({w for w, _ in wanted})
    times = sorted({t for _, t in wanted})
    edges: dict[tuple[int, int], Edge] = {}
    for start in range(0, len(workflow_ids), CHUNK):
        for at_start in range(0, len(times), CHUNK):
            rows = conn.execute(
                sa.select(sc.workflow_id, sc.trigger_time, ti.c.id, ti.c.task_id)
                .join(ti, ti.c.workflow_instance_id == sc.workflow_instance_id)
                .where(
                    among(conn, sc.workflow_id, workflow_ids[start : start + CHUNK]),
                    among(conn, sc.trigger_time, times[at_start : at_start + CHUNK]),
                    ti.c.status == Status.NOT_RUN.value,
                )
            )
            for r in rows:
                for down_task, kind, up_id in wanted.get(
                    (int(r.workflow_id), int(r.trigger_time)), ()
                ):
                    if int(r.task_id) == down_task:  # one edge a pair, whatever its types
                        edges.setdefault((int(r.id), up_id), Edge(int(r.id), up_id, kind))
    return list(edges.values())


def attach(conn: sa.Connection, edges: Sequence[Edge]) -> list[Edge]:
    """Add these edges to task instances that exist, those still NotRun (one that has moved
    on is not held back after the fact); the edges added."""
    by_task: dict[int, dict[int, Edge]] = {}
    for e in edges:
        by_task.setdefault(e.task_instance_id, {}).setdefault(e.upstream_id, e)
    if not by_task:
        return []
    # Their instances are locked first, in id order as every locker takes them: the task's
    # upstream list is read and written whole, and an operator's removal must not be undone.
    owners = conn.execute(
        sa.select(ti.c.workflow_instance_id).where(ti.c.id.in_(sorted(by_task))).distinct()
    ).scalars()
    lock_instances(conn, sorted(int(i) for i in owners))
    added: list[Edge] = []
    for task_instance_id in sorted(by_task):
        text = conn.execute(
            sa.select(ti.c.upstream).where(
                ti.c.id == task_instance_id, ti.c.status == Status.NOT_RUN.value
            )
        ).scalar()
        if text is None:
            continue
        have = _ids(text)
        new = [e for u, e in by_task[task_instance_id].items() if u not in have]
        if not new:
            continue
        done = conn.execute(
            sa.update(ti)
            .where(ti.c.id == task_instance_id, ti.c.status == Status.NOT_RUN.value)
            .values(upstream=_encode([*have, *(e.upstream_id for e in new)]).decode())
        )
        if done.rowcount == 1:
            added += new
    insert(conn, added)
    return added
