"""Planning: the moves that time and upstreams allow a workflow instance's tasks
(domain.execution.plan), written through the transition writer.

Only the tasks a plan can move (NotRun, WaitTime) and their upstreams are read, so planning
an instance after one of its tasks ends costs what is left to start there, not its width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import groupby
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.execution import TRIGGER_NODE, Move, Recurrence, TaskState, plan
from dwsched.domain.models import InstanceType, Status
from dwsched.domain.transitions import FINISHED_VALUES, Cause, Kind, StatusEvent
from dwsched.store import transitions
from dwsched.store.dialect import among, lock_row, try_lock_row, upstreams_succeeded
from dwsched.store.release import RELEASED
from dwsched.store.schema import (
    operation_instances as oi,
    task_instance_dependencies,
    task_instances as ti,
    workflow_instances as wi,
)
from dwsched.store.transitions import Moved

_ids = msgspec.json.Decoder(list[int]).decode
_MOVABLE = (Status.NOT_RUN.value, Status.WAIT_TIME.value)
_STATE = (
    ti.c.id,
    ti.c.workflow_instance_id,
    ti.c.position,
    ti.c.status,
    ti.c.upstream,
    ti.c.trigger_time,
    ti.c.trigger_recurrence,
    ti.c.suspended,
    ti.c.type,
    ti.c.triggered_at,
    ti.c.workflow_instance_type,
)


def unfinished_instance_ids(
    conn: sa.Connection, limit: int, now_ms: int, changed_since: int | None = None
) -> list[int]:
    """The workflow instances the planner may move now: with a task WaitTime whose time has
    come (tomorrow's instances, made the evening before, wait a day), or NotRun with
    every upstream Success (here or in another workflow instance: a wait across workflows or
    cycles can last a day, and neither the waiting task nor those below it may crowd out
    the instances that can move), in an instance not finished (one whose remaining tasks
    all wait below a failure is Failure, so it is left out: it can never move), not held by
    its operation. Oldest trigger time
    first, at most `limit` instances, in ascending id order (the order of locking).

    `changed_since`: only the NotRun tasks changed since then (made, rerun, released from
    a removed dependency) are probed, not every waiting one: their number grows with each
    task blocked for good below a failure, and each probe reads all its upstreams."""
    not_run = [ti.c.status == Status.NOT_RUN.value, upstreams_succeeded(conn.dialect)]
    if changed_since is not None:
        not_run.insert(1, ti.c.modify_time >= changed_since)
    ids = [
        int(i)
        for i in conn.execute(
            sa.select(ti.c.workflow_instance_id)
            .join(wi, wi.c.id == ti.c.workflow_instance_id)
            .where(
                ti.c.status.in_(_MOVABLE),
                ti.c.suspended.is_(False),
                sa.or_(
                    sa.and_(ti.c.status == Status.WAIT_TIME.value, ti.c.trigger_time <= now_ms),
                    sa.and_(*not_run),
                ),
                wi.c.status.not_in(FINISHED_VALUES),
                ~sa.exists().where(
                    oi.c.workflow_instance_id == ti.c.workflow_instance_id,
                    oi.c.state != RELEASED,
                ),
            )
            .group_by(ti.c.workflow_instance_id)
            .order_by(sa.func.min(ti.c.trigger_time))
            .limit(limit)
        ).scalars()
    ]
    return sorted(ids)


def after_successes(conn: sa.Connection, events: Sequence[StatusEvent]) -> list[int]:
    """The workflow instances a task's Success among these status events may have made
    movable, however it succeeded (an attempt, a VIRTUAL node, a dry run the planner
    ended, an operator's SetSuccess): its own, and those with a NotRun task waiting for it
    in another workflow instance."""
    done = [e for e in events if e.kind is Kind.TASK and e.new is Status.SUCCESS and e.old != e.new]
    own = {e.workflow_instance_id for e in done}
    return sorted(own | set(waiting_downstream(conn, sorted({e.instance_id for e in done}))))


def waiting_downstream(conn: sa.Connection, task_instance_ids: Sequence[int]) -> list[int]:
    """The workflow instances with a task NotRun that waits for one of these (in another
    workflow instance), ascending. The edges are read first, then their tasks by id: the
    same plan whatever the statistics say of how many tasks wait."""
    if not task_instance_ids:
        return []
    d = task_instance_dependencies.c
    found: set[int] = set()
    for start in range(0, len(task_instance_ids), 1000):
        chunk = task_instance_ids[start : start + 1000]
        down = sorted(
            {
                int(i)
                for i in conn.execute(
                    sa.select(d.task_instance_id).where(among(conn, d.upstream_id, chunk))
                ).scalars()
            }
        )
        for at in range(0, len(down), 1000):
            found.update(
                int(i)
                for i in conn.execute(
                    sa.select(ti.c.workflow_instance_id).where(
                        among(conn, ti.c.id, down[at : at + 1000]),
                        ti.c.status == Status.NOT_RUN.value,
                    )
                ).scalars()
            )
    return sorted(found)


def movable_states(conn: sa.Connection, instance_id: int) -> list[TaskState]:
    """The states a plan of the instance needs: its NotRun and WaitTime tasks and their
    upstreams, upstream first."""
    return movable_states_many(conn, [instance_id]).get(instance_id, [])


def movable_states_many(conn: sa.Connection, ids: Sequence[int]) -> dict[int, list[TaskState]]:
    """movable_states of each of these instances (a few queries for them all)."""
    rows: list[Any] = []
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows += conn.execute(
            sa.select(*_STATE).where(
                among(conn, ti.c.workflow_instance_id, chunk)
                if len(chunk) > 1
                else ti.c.workflow_instance_id == chunk[0],
                ti.c.status.in_(_MOVABLE),
            )
        )
    have = {int(r.id) for r in rows}
    ups = sorted({u for r in rows for u in _ids(r.upstream)} - have)
    above: list[Any] = []
    for start in range(0, len(ups), 500):
        above += conn.execute(
            sa.select(*_STATE).where(among(conn, ti.c.id, ups[start : start + 500]))
        )
    found: dict[int, list[TaskState]] = {i: [] for i in wanted}
    # An upstream of another workflow instance (store.dependencies) goes with each instance
    # that waits for it, ahead of that instance's own tasks.
    elsewhere: dict[int, set[int]] = {}
    for r in rows:
        for u in _ids(r.upstream):
            elsewhere.setdefault(u, set()).add(int(r.workflow_instance_id))
    for r in [*rows, *above]:
        for instance_id in sorted(elsewhere.get(int(r.id), set()) - {int(r.workflow_instance_id)}):
            found[instance_id].append(replace(_state(r), elsewhere=True))
    for r in sorted([*rows, *above], key=lambda r: (r.workflow_instance_id, r.position)):
        if r.workflow_instance_id in found:
            found[r.workflow_instance_id].append(_state(r))
    return found


def _state(r: Any) -> TaskState:
    return TaskState(
        r.id,
        Status(r.status),
        tuple(_ids(r.upstream)),
        r.trigger_time,
        Recurrence(r.trigger_recurrence),
        bool(r.suspended),
        r.type == TRIGGER_NODE,
        r.triggered_at is not None,
        scheduled=r.workflow_instance_type == InstanceType.NORMAL.value,
    )


def plan_instance(conn: sa.Connection, instance_id: int, now_ms: int) -> list[Moved]:
    """Apply the moves that time and upstreams allow the instance's tasks now."""
    return plan_instances(conn, [instance_id], now_ms)


def plan_instances(conn: sa.Connection, ids: Sequence[int], now_ms: int) -> list[Moved]:
    """plan_instance for each of these instances (locked), their moves written together.
    A dry run a plan ends (Success at its time) lets the tasks below it move in the same
    pass: the instances where one ended are planned again, until nothing ends."""
    made: list[Moved] = []
    todo = list(ids)
    while todo:
        found = movable_states_many(conn, todo)
        moves = [m for states in found.values() for m in plan(states, now_ms)]
        done = apply_moves(conn, moves)
        made += done
        ended = {m.task_instance_id for m in moves if m.status is Status.SUCCESS}
        todo = sorted({d.workflow_instance_id for d in done if d.id in ended})
    return made


def apply_moves(conn: sa.Connection, moves: Iterable[Move]) -> list[Moved]:
    """Write the moves (a few statements: alike moves together); those made."""

    def key(m: Move) -> tuple[str, str, bool, int]:
        return (m.since.value, m.status.value, m.dry_run, m.at)

    moved: list[Moved] = []
    for (since, status, dry_run, at), alike in groupby(sorted(moves, key=key), key=key):
        new = Status(status)
        values: dict[str, Any] = {"modify_time": at}
        if new is Status.WAIT_TIME:
            values["waiting_trigger_time"] = at
        if new is Status.WAIT_RESOURCE:
            values["waiting_resource_time"] = at
        if dry_run:
            values |= {"started_time": at, "finished_time": at}
        ids = [m.task_instance_id for m in alike]
        moved += transitions.move(conn, ids, Status(since), new, Cause.PLAN, at, values)
    return moved


def lock_instance(conn: sa.Connection, instance_id: int) -> None:
    """Serialise the transactions that change one workflow instance's tasks (PostgreSQL:
    a row lock; under READ COMMITTED two of them would each derive the instance's status
    from a state without the other's change. SQLite's write lock does this already)."""
    lock_row(conn, wi, instance_id)


def try_lock_instance(conn: sa.Connection, instance_id: int) -> bool:
    """lock_instance unless another transaction holds it: False then, at once. A claim
    takes its instances this way: it locks them in the order of urgency, not of ids, so
    waiting there could deadlock with a planner locking in id order."""
    return try_lock_row(conn, wi, instance_id)


def lock_instances(conn: sa.Connection, ids: Sequence[int]) -> None:
    """lock_instance for each, in ascending id order (as every locker takes them)."""
    for instance_id in sorted(set(ids)):
        lock_instance(conn, instance_id)
