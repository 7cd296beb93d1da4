"""The one writer of statuses: every change of `task_instances.status`, and every derived
change of `workflow_instances.status`, goes through here, is checked against the legal
transitions (domain.transitions) and is recorded as a `status_events` row in the same
transaction. Consumers (alerts, metrics) read the events after their own cursor
(`event_cursors`); events every cursor has passed are swept after a retention (docs/events.md).

A workflow instance's status is derived incrementally: one index probe per status
(ix_ti_instance_status) tells which statuses its tasks have, which decides it
(execution.status_from_present) unless a failure may block tasks below it (then its tasks
are read: the graph decides). Its StartedTime follows the earliest start written; its
FinishedTime, the latest finish, is read once it is done. The cost of a change does not grow
with the number of the instance's tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.execution import Recurrence, TaskState, status_from_present, workflow_status
from dwsched.domain.models import Status
from dwsched.domain.transitions import FINISHED, Cause, Kind, StatusEvent, check
from dwsched.store import dialect
from dwsched.store.schema import (
    event_cursors,
    status_events,
    task_instances as ti,
    workflow_instances as wi,
)

CHUNK = 500
DAY_MS = 86_400_000
# Retention (docs/events.md): events are kept a week after every consumer has read them, and
# a month at most (a consumer that stopped reading does not keep them forever).
RETENTION_MS = 7 * DAY_MS
MAX_RETENTION_MS = 30 * DAY_MS
SWEEP_EVERY_MS = 600_000
_ids = msgspec.json.Decoder(list[int]).decode
_NORMAL = Recurrence.NORMAL

# Built once (each call would otherwise build and key these statements again).
_INSERT_EVENT = sa.insert(status_events)
_INSERT_EVENT_TX: dict[str, Any] = {}


def _insert_event(conn: sa.Connection) -> Any:
    """The event INSERT, stamping the writing transaction's id where it has one
    (PostgreSQL: consumers read in (txid, id) order, docs/events.md)."""
    name = conn.dialect.name
    if name not in _INSERT_EVENT_TX:
        txid = dialect.transaction_id(conn)
        _INSERT_EVENT_TX[name] = _INSERT_EVENT if txid is None else _INSERT_EVENT.values(txid=txid)
    return _INSERT_EVENT_TX[name]


# A workflow instance's status, its times' inputs, and which statuses its tasks have: one
# probe of ix_ti_instance_status each.
_PROBE = sa.select(
    wi.c.status,
    wi.c.started_time,
    wi.c.project_id,
    *(
        sa.exists()
        .where(ti.c.workflow_instance_id == sa.bindparam("instance_id"), ti.c.status == s.value)
        .label(f"has_{n}")
        for n, s in enumerate(Status)
    ),
).where(wi.c.id == sa.bindparam("instance_id"))
_UPDATE_INSTANCE = (
    sa.update(wi)
    .where(wi.c.id == sa.bindparam("instance_id"))
    .values(
        status=sa.bindparam("new_status"),
        started_time=sa.bindparam("new_started_time"),
        finished_time=sa.bindparam("new_finished_time"),
        modify_time=sa.bindparam("new_modify_time"),
    )
)


_UPDATES: dict[tuple[tuple[str, ...], tuple[str, ...]], sa.Update] = {}


def _update(values: tuple[str, ...], guard: tuple[str, ...]) -> sa.Update:
    """The guarded UPDATE of a move writing these columns (built once per shape)."""
    found = _UPDATES.get((values, guard))
    if found is None:
        found = (
            sa.update(ti)
            .where(
                ti.c.id.in_(sa.bindparam("move_ids", expanding=True)),
                ti.c.status == sa.bindparam("move_old"),
                *(ti.c[k] == sa.bindparam(f"guard_{k}") for k in guard),
            )
            .values(
                {ti.c.status: sa.bindparam("move_new")}
                | {ti.c[k]: sa.bindparam(f"value_{k}") for k in values}
            )
            .returning(
                ti.c.id,
                ti.c.workflow_instance_id,
                ti.c.project_id,
                ti.c.run_number,
                ti.c.started_time,
            )
        )
        _UPDATES[(values, guard)] = found
    return found


@dataclass(frozen=True, slots=True)
class Moved:
    """A task instance whose status the writer changed, as it is now."""

    id: int
    workflow_instance_id: int
    project_id: int
    run_number: int
    started_time: int | None


def move(
    conn: sa.Connection,
    ids: Sequence[int],
    old: Status,
    new: Status,
    cause: Cause,
    at: int,
    values: Mapping[str, Any] | None = None,
    guard: Mapping[str, Any] | None = None,
) -> list[Moved]:
    """Move the task instances among `ids` still in `old` (and whose `guard` columns hold
    those values: the attempt's run number and worker...) to `new`, writing `values` (plain
    values or SQL expressions of the row) with the status, and record one event per
    change; those changed. IllegalTransition (nothing written) when `cause` may not make
    that change."""
    check(old, new, cause)
    if not ids:
        return []
    values = dict(values or {})
    guard = dict(guard or {})
    plain = {k: v for k, v in values.items() if not isinstance(v, sa.ClauseElement)}
    statement = _update(tuple(sorted(plain)), tuple(sorted(guard)))
    if len(plain) < len(values):  # expressions of the row: bound into this statement only
        statement = statement.values(
            {k: v for k, v in values.items() if isinstance(v, sa.ClauseElement)}
        )
    params = {
        "move_old": old.value,
        "move_new": new.value,
        **{f"value_{k}": v for k, v in plain.items()},
        **{f"guard_{k}": v for k, v in guard.items()},
    }
    moved: list[Moved] = []
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        rows = conn.execute(statement, {**params, "move_ids": chunk}).all()
        moved += [Moved(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]
    if moved:
        conn.execute(
            _insert_event(conn),
            [
                {
                    "kind": Kind.TASK.value,
                    "instance_id": m.id,
                    "workflow_instance_id": m.workflow_instance_id,
                    "project_id": m.project_id,
                    "old_status": old.value,
                    "new_status": new.value,
                    "run_number": m.run_number,
                    "at": at,
                    "cause": cause.value,
                }
                for m in moved
            ],
        )
    return moved


def earliest_starts(moved: Iterable[Moved]) -> dict[int, int | None]:
    """Per workflow instance of `moved`, the earliest StartedTime among them."""
    found: dict[int, int | None] = {}
    for m in moved:
        now = found.get(m.workflow_instance_id)
        if m.started_time is not None and (now is None or m.started_time < now):
            found[m.workflow_instance_id] = m.started_time
        else:
            found.setdefault(m.workflow_instance_id, now)
    return found


def derive(
    conn: sa.Connection, instance_id: int, at: int, cause: Cause, started: int | None = None
) -> Status | None:
    """Derive the workflow instance's status after changes of its tasks (`started`: the
    earliest StartedTime they wrote, if any; the changes never clear one) and record the
    change, if any; the status (None: no such instance)."""
    current = conn.execute(_PROBE, {"instance_id": instance_id}).first()
    if current is None:
        return None
    present = {s for s, found in zip(Status, current[3:], strict=True) if found}
    status = status_from_present(present)
    if status is None:
        status = workflow_status(_states(conn, instance_id))
    first = current.started_time
    if started is not None and (first is None or started < first):
        first = started
    return _write(conn, instance_id, current, status, first, at, cause)


def rederive(conn: sa.Connection, instance_id: int, at: int, cause: Cause) -> Status | None:
    """Derive the workflow instance's status and times from all its tasks (after an
    operator's action, which may clear their times), recording the change, if any."""
    current = conn.execute(
        sa.select(wi.c.status, wi.c.started_time, wi.c.project_id).where(wi.c.id == instance_id)
    ).first()
    if current is None:
        return None
    states = _states(conn, instance_id)
    if not states:
        return None
    first = conn.execute(
        sa.select(sa.func.min(ti.c.started_time)).where(ti.c.workflow_instance_id == instance_id)
    ).scalar()
    return _write(conn, instance_id, current, workflow_status(states), first, at, cause)


def _write(
    conn: sa.Connection,
    instance_id: int,
    current: Any,
    status: Status,
    started: int | None,
    at: int,
    cause: Cause,
) -> Status:
    finished = None
    if status in FINISHED:
        finished = conn.execute(
            sa.select(sa.func.max(ti.c.finished_time)).where(
                ti.c.workflow_instance_id == instance_id
            )
        ).scalar()
    conn.execute(
        _UPDATE_INSTANCE,
        {
            "instance_id": instance_id,
            "new_status": status.value,
            "new_started_time": started,
            "new_finished_time": finished,
            "new_modify_time": at,
        },
    )
    if status.value != current.status:
        conn.execute(
            _insert_event(conn),
            [
                {
                    "kind": Kind.WORKFLOW.value,
                    "instance_id": instance_id,
                    "workflow_instance_id": instance_id,
                    "project_id": current.project_id,
                    "old_status": current.status,
                    "new_status": status.value,
                    "run_number": None,
                    "at": at,
                    "cause": cause.value,
                }
            ],
        )
    return status


def _states(conn: sa.Connection, instance_id: int) -> list[TaskState]:
    """Every task of the instance, upstream first (status and upstreams only)."""
    rows = conn.execute(
        sa.select(ti.c.id, ti.c.status, ti.c.upstream, ti.c.trigger_time)
        .where(ti.c.workflow_instance_id == instance_id)
        .order_by(ti.c.position)
    )
    return [
        TaskState(int(r.id), Status(r.status), _upstream(r.upstream), int(r.trigger_time), _NORMAL)
        for r in rows
    ]


# Consumers of the event stream


def registered(conn: sa.Connection, consumer: str) -> bool:
    """Whether `consumer` has a cursor."""
    c = event_cursors.c
    return conn.execute(sa.select(c.consumer).where(c.consumer == consumer)).first() is not None


def register(conn: sa.Connection, consumer: str, now_ms: int, from_start: bool = False) -> None:
    """Make `consumer`'s cursor if it has none: after every event settled now (it reads
    what happens from now on), or before the oldest kept (`from_start`)."""
    if registered(conn, consumer):
        return
    txid, event_id = 0, 0
    if not from_start:
        horizon = dialect.settled_horizon(conn)
        if horizon is None:  # SQLite: ids are in commit order
            event_id = int(conn.execute(sa.select(sa.func.max(status_events.c.id))).scalar() or 0)
        else:  # every transaction below the horizon has settled: past all it wrote
            txid, event_id = horizon - 1, _PAST_EVERY_ID
    conn.execute(
        sa.insert(event_cursors).values(
            consumer=consumer, last_txid=txid, last_event_id=event_id, modify_time=now_ms
        )
    )


_PAST_EVERY_ID = 2**62


def events_after(conn: sa.Connection, consumer: str, limit: int = 1000) -> list[StatusEvent]:
    """The next events for `consumer` (registered), in (txid, id) order; they stay next
    until `advance` moves its cursor past them. On PostgreSQL only events of settled
    transactions are read: one that took a lower id and commits later is read when it has,
    never passed over."""
    c = event_cursors.c
    cursor = conn.execute(
        sa.select(c.last_txid, c.last_event_id).where(c.consumer == consumer)
    ).one()
    e = status_events.c
    query = sa.select(status_events).where(
        sa.tuple_(e.txid, e.id)
        > sa.tuple_(sa.literal(cursor.last_txid), sa.literal(cursor.last_event_id))
    )
    horizon = dialect.settled_horizon(conn)
    if horizon is not None:
        query = query.where(e.txid < horizon)
    rows = conn.execute(query.order_by(e.txid, e.id).limit(limit))
    return [
        StatusEvent(
            int(r.id),
            Kind(r.kind),
            int(r.instance_id),
            int(r.workflow_instance_id),
            int(r.project_id),
            Status(r.old_status),
            Status(r.new_status),
            r.run_number,
            int(r.at),
            Cause(r.cause),
        )
        for r in rows
    ]


def advance(conn: sa.Connection, consumer: str, last_event_id: int, now_ms: int) -> None:
    """Move `consumer`'s cursor to the event `last_event_id` (never back; nothing when that
    event is no longer kept)."""
    txid = conn.execute(
        sa.select(status_events.c.txid).where(status_events.c.id == last_event_id)
    ).scalar()
    if txid is None:
        return
    c = event_cursors.c
    conn.execute(
        sa.update(event_cursors)
        .where(
            c.consumer == consumer,
            sa.tuple_(c.last_txid, c.last_event_id)
            < sa.tuple_(sa.literal(int(txid)), sa.literal(last_event_id)),
        )
        .values(last_txid=int(txid), last_event_id=last_event_id, modify_time=now_ms)
    )


def sweep(conn: sa.Connection, now_ms: int, limit: int = 10_000, rounds: int = 100) -> int:
    """Delete the events past their retention, `limit` at a time (at most `rounds` times):
    older than RETENTION_MS and passed by every cursor, or older than MAX_RETENTION_MS
    whatever the cursors; how many."""
    c, e = event_cursors.c, status_events.c
    unread = (
        sa.exists()
        .where(sa.tuple_(e.txid, e.id) > sa.tuple_(c.last_txid, c.last_event_id))
        .correlate(status_events)
    )
    doomed = (
        sa.select(e.id)
        .where(
            sa.or_(
                sa.and_(e.at < now_ms - RETENTION_MS, ~unread),
                e.at < now_ms - MAX_RETENTION_MS,
            )
        )
        .order_by(e.id)
        .limit(limit)
    )
    deleted = 0
    for _ in range(rounds):
        ids = [int(i) for i in conn.execute(doomed).scalars()]
        for start in range(0, len(ids), CHUNK):
            conn.execute(sa.delete(status_events).where(e.id.in_(ids[start : start + CHUNK])))
        deleted += len(ids)
        if len(ids) < limit:
            break
    return deleted


class StatusEvents:
    """The status event stream as its consumers read it (`Tx.events`, docs/events.md)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def next(self, consumer: str, now_ms: int, limit: int = 1000) -> list[StatusEvent]:
        """The next status events for `consumer` (registered at the newest event on its
        first call: a write), oldest first; they stay next until `advance`."""
        register(self.conn, consumer, now_ms)
        return events_after(self.conn, consumer, limit)

    def advance(self, consumer: str, last_event_id: int, now_ms: int) -> None:
        """`consumer` has handled the events up to `last_event_id`."""
        advance(self.conn, consumer, last_event_id, now_ms)

    def forget(self, consumer: str) -> None:
        """`consumer` reads no more: its cursor holds no event back from the sweep (a
        consumer that reads again starts at the newest event)."""
        self.conn.execute(sa.delete(event_cursors).where(event_cursors.c.consumer == consumer))

    def sweep(self, now_ms: int) -> int:
        """Delete the events past their retention (docs/events.md); how many."""
        return sweep(self.conn, now_ms)


def _upstream(text: str) -> tuple[int, ...]:
    return tuple(_ids(text))
