"""The claim queue: task instances waiting for a resource, taken by workers in order of
priority, then trigger time, within their resource group's free slots.

A claim runs in a write transaction; on PostgreSQL rows are taken with SKIP LOCKED (and one
claiming transaction runs at a time: lock_claims), so concurrent workers take different
rows. VIRTUAL nodes (nothing to run) waiting at the priority being claimed end together, in
one pass: their rows, their attempts and their events are written in a few statements, then
each instance they belong to is planned and derived once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.attempts import VIRTUAL_PER_CLAIM, Claimed
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import Status
from dwsched.domain.transitions import RUNNING_VALUES, Cause
from dwsched.store import transitions
from dwsched.store.attempts import claimed_of, new_attempts
from dwsched.store.dialect import CLAIM_LOCK, advisory_lock, skipping_locked
from dwsched.store.planning import lock_instance, plan_instance, try_lock_instance
from dwsched.store.schema import task_instances as ti, workflows

VIRTUAL = "VIRTUAL"
BRANCH = "CONTROLLER_BRANCH"
_node_decoder = msgspec.json.Decoder(NodeSpec)


def lock_claims(conn: sa.Connection) -> None:
    """PostgreSQL: one claiming transaction at a time, so that resource-group slots counted
    at its start stay true (SQLite's write lock does this already)."""
    advisory_lock(conn, CLAIM_LOCK)


def has_waiting(conn: sa.Connection, now_ms: int, groups: Sequence[str] | None = None) -> bool:
    """Whether any task instance (of these resource groups; None: any) waits for a
    resource now (not for a retry's time)."""
    where = _claimable(now_ms, (), groups)
    found = conn.execute(sa.select(ti.c.id).where(*where).limit(1)).first()
    return found is not None


def running_by_group(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(ti.c.resource_group, sa.func.count())
        .where(ti.c.status.in_(RUNNING_VALUES))
        .group_by(ti.c.resource_group)
    )
    return {str(g): int(n) for g, n in rows}


def _claimable(
    now_ms: int, full_groups: Sequence[str], groups: Sequence[str] | None
) -> list[sa.ColumnElement[bool]]:
    """Waiting for a resource now (not for a retry's time), outside the full resource
    groups, and in `groups` unless None."""
    where = [
        ti.c.status == Status.WAIT_RESOURCE.value,
        sa.or_(ti.c.next_try_at.is_(None), ti.c.next_try_at <= now_ms),
    ]
    if full_groups:
        where.append(ti.c.resource_group.not_in(list(full_groups)))
    if groups is not None:
        where.append(ti.c.resource_group.in_(list(groups)))
    return where


def claim_many(
    conn: sa.Connection,
    worker: str,
    free: Callable[[str], int],
    full: set[str],
    limit: int,
    now_ms: int,
    groups: Sequence[str] | None = None,
    ended_ids: list[int] | None = None,
) -> tuple[list[Claimed], int]:
    """Up to `limit` claims in one transaction, each within its resource group's free
    slots (`free(group)` before this call; `full` the groups with none), only of `groups`
    (None: of any group).

    VIRTUAL nodes (nothing to run) end here, in the same transaction, and take no slot;
    their downstream may then be claimed too. At most VIRTUAL_PER_CLAIM of them per call;
    (the claims, how many VIRTUAL nodes ended); their ids are added to `ended_ids`.
    """
    taken: dict[str, int] = {}
    found: list[Claimed] = []
    virtual = 0
    busy: set[int] = set()  # tasks whose instance another transaction holds: next time
    held: set[int] = set()  # the workflow instances this transaction has locked
    # Read once, and again after VIRTUAL nodes end (they may have made downstream tasks of
    # a new priority ready).
    priorities: list[int] | None = None
    while len(found) < limit and virtual < VIRTUAL_PER_CLAIM:
        if priorities is None:
            priorities = waiting_priorities(conn)
        row = next_waiting(conn, sorted(full), now_ms, priorities, groups, busy)
        if row is None:
            break
        if not _lock(conn, row.workflow_instance_id, held):
            busy.add(int(row.id))
            continue
        if row.type == VIRTUAL:
            virtual += end_virtual(
                conn,
                worker,
                row,
                sorted(full),
                now_ms,
                VIRTUAL_PER_CLAIM - virtual,
                groups,
                busy,
                ended_ids,
                held,
            )
            priorities = None
            continue
        one = claim_row(conn, worker, row, now_ms)
        found.append(one)
        group = one.node.resource_group
        taken[group] = taken.get(group, 0) + 1
        if taken[group] >= free(group):
            full.add(group)
    return found, virtual


def _lock(conn: sa.Connection, instance_id: int, held: set[int]) -> bool:
    """Lock a claimed task's workflow instance. The first one a claim takes it waits for (it
    holds no other yet, so no planner can be waiting for it); any further one only if free
    (claims lock in the order of urgency, planners in id order: waiting there could
    deadlock). False: another transaction holds it, the task waits for the next claim."""
    if instance_id in held:
        return True
    if not held:
        lock_instance(conn, instance_id)
    elif not try_lock_instance(conn, instance_id):
        return False
    held.add(instance_id)
    return True


def waiting_priorities(conn: sa.Connection) -> list[int]:
    """The priorities of the task instances waiting for a resource, highest first."""
    return [
        int(p)
        for p in conn.execute(
            sa.select(ti.c.priority)
            .where(ti.c.status == Status.WAIT_RESOURCE.value)
            .distinct()
            .order_by(ti.c.priority.desc())
        ).scalars()
    ]


def next_waiting(
    conn: sa.Connection,
    full_groups: Sequence[str],
    now_ms: int,
    priorities: Sequence[int],
    groups: Sequence[str] | None = None,
    skipped: Collection[int] = (),
) -> Any:
    """The most urgent task instance waiting for a resource (priority, then trigger time)
    outside the full resource groups and in `groups` unless None, other than `skipped`
    (its row, locked on PostgreSQL, with its workflow's timezone), or None."""
    where = _claimable(now_ms, full_groups, groups)
    if skipped:
        where.append(ti.c.id.not_in(sorted(skipped)))
    # One priority at a time, highest first: each lookup is one range of ix_ti_claim in
    # trigger-time order, where a single ORDER BY priority DESC, trigger_time would sort
    # every waiting task.
    for priority in priorities:
        query = (
            sa.select(ti, workflows.c.timezone)
            .outerjoin(workflows, workflows.c.id == ti.c.workflow_id)
            .where(*where, ti.c.priority == priority)
            .order_by(ti.c.trigger_time, ti.c.id)
            .limit(1)
        )
        row = conn.execute(skipping_locked(conn, query, of=ti)).first()
        if row is not None:
            return row
    return None


def claim_row(conn: sa.Connection, worker: str, row: Any, now_ms: int) -> Claimed:
    """Mark the waiting task instance `row` (locked, and its workflow instance) claimed by
    `worker`: Running, or CheckingCondition for a branch node; its attempt begins."""
    node = _node_decoder.decode(row.spec)
    status = Status.CHECKING_CONDITION if node.command == BRANCH else Status.RUNNING
    run_number = row.run_number + 1
    # The time was read before this transaction began; on PostgreSQL the row may have
    # become ready (committed by another transaction) after that. It cannot start earlier.
    now_ms = max(now_ms, row.waiting_resource_time or 0)
    started = row.started_time or now_ms
    transitions.move(
        conn,
        [row.id],
        Status.WAIT_RESOURCE,
        status,
        Cause.CLAIM,
        now_ms,
        {
            "run_number": run_number,
            "worker": worker,
            "pid": None,
            "process": None,
            "heartbeat_at": now_ms,
            "started_time": started,
            "finished_time": None,
            "next_try_at": None,
            "modify_time": now_ms,
        },
    )
    new_attempts(conn, [(row.id, run_number)], worker, status, now_ms, ended=False)
    transitions.derive(conn, row.workflow_instance_id, now_ms, Cause.CLAIM, started)
    return claimed_of(conn, row, status, run_number, worker)


def end_virtual(
    conn: sa.Connection,
    worker: str,
    first: Any,
    full_groups: Sequence[str],
    now_ms: int,
    limit: int,
    groups: Sequence[str] | None = None,
    busy: set[int] | None = None,
    ended_ids: list[int] | None = None,
    held: set[int] | None = None,
) -> int:
    """End the VIRTUAL node `first` (the most urgent waiting task, locked with its
    instance) and up to `limit` in all of the VIRTUAL nodes waiting at its priority after
    it: nothing runs, so each attempt starts and succeeds at once. Then plan and derive
    their instances, once each. Those whose instance another transaction holds wait for
    the next claim (added to `busy`). How many ended."""
    where = _claimable(now_ms, full_groups, groups)
    query = (
        sa.select(ti.c.id, ti.c.workflow_instance_id, ti.c.waiting_resource_time)
        .where(*where, ti.c.priority == first.priority, ti.c.type == VIRTUAL)
        .order_by(ti.c.trigger_time, ti.c.id)
        .limit(limit)
    )
    rows = [first, *(r for r in conn.execute(skipping_locked(conn, query)) if r.id != first.id)]
    held = held if held is not None else set()
    held.add(first.workflow_instance_id)
    for instance_id in sorted({r.workflow_instance_id for r in rows} - held):
        if try_lock_instance(conn, instance_id):
            held.add(instance_id)
    if busy is not None:
        busy.update(int(r.id) for r in rows if r.workflow_instance_id not in held)
    rows = [r for r in rows if r.workflow_instance_id in held][:limit]
    # As for a claim: not before the latest of them became ready.
    now_ms = max(now_ms, *(r.waiting_resource_time or 0 for r in rows))
    ended = transitions.move(
        conn,
        [r.id for r in rows],
        Status.WAIT_RESOURCE,
        Status.SUCCESS,
        Cause.VIRTUAL,
        now_ms,
        {
            "run_number": ti.c.run_number + 1,
            "started_time": sa.func.coalesce(ti.c.started_time, now_ms),
            "finished_time": now_ms,
            "next_try_at": None,
            "modify_time": now_ms,
        },
    )
    new_attempts(
        conn, [(m.id, m.run_number) for m in ended], worker, Status.SUCCESS, now_ms, ended=True
    )
    starts = transitions.earliest_starts(ended)
    for instance_id in sorted(starts):
        planned = transitions.earliest_starts(plan_instance(conn, instance_id, now_ms))
        earliest = [s for s in (starts[instance_id], planned.get(instance_id)) if s is not None]
        transitions.derive(
            conn, instance_id, now_ms, Cause.VIRTUAL, min(earliest) if earliest else None
        )
    if ended_ids is not None:
        ended_ids += [m.id for m in ended]
    return len(ended)
