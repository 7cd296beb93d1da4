"""Attempts: the runs of a claimed task instance, their heartbeats, logs and outcomes, and
the attempts whose worker stopped beating.

An attempt's end is written through the transition writer; the instance's downstream tasks
are planned at once (dispatch latency) and its status derived, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.attempts import Claimed
from dwsched.domain.calendar import day_from_key
from dwsched.domain.execution import Recurrence
from dwsched.domain.flowspec import DependencyType, NodeSpec
from dwsched.domain.models import EnvType, Status
from dwsched.domain.transitions import RUNNING_VALUES, Cause
from dwsched.store import transitions
from dwsched.store.planning import lock_instance, plan_instance
from dwsched.store.schema import task_attempts, task_instances as ti, workflows

_node_decoder = msgspec.json.Decoder(NodeSpec)
_ids = msgspec.json.Decoder(list[int])


def new_attempts(
    conn: sa.Connection,
    started: Sequence[tuple[int, int]],
    worker: str,
    status: Status,
    now_ms: int,
    ended: bool,
) -> None:
    """The rows of attempts (task instance id, run number) begun now: in progress, or (VIRTUAL
    nodes) ended successfully already."""
    if not started:
        return
    conn.execute(
        sa.insert(task_attempts),
        [
            {
                "task_instance_id": task_instance_id,
                "run_number": run_number,
                "worker": worker,
                "status": status.value,
                "exit_code": 0 if ended else None,
                "started_time": now_ms,
                "finished_time": now_ms if ended else None,
                "log": "",
            }
            for task_instance_id, run_number in started
        ],
    )


def record_process(
    conn: sa.Connection, task_instance_id: int, pid: int, process: str | None
) -> None:
    conn.execute(sa.update(ti).where(ti.c.id == task_instance_id).values(pid=pid, process=process))


def _own(claimed: Claimed) -> dict[str, Any]:
    """The attempt is still this claim's: same run, same worker."""
    return {"run_number": claimed.run_number, "worker": claimed.worker}


def set_checking(conn: sa.Connection, claimed: Claimed, log: str, now_ms: int) -> None:
    """The process succeeded: its quality check runs (Checking)."""
    lock_instance(conn, claimed.workflow_instance_id)
    moved = transitions.move(
        conn,
        [claimed.id],
        Status.RUNNING,
        Status.CHECKING,
        Cause.CHECKING,
        now_ms,
        {"modify_time": now_ms},
        _own(claimed),
    )
    _attempt(conn, claimed, Status.CHECKING, None, log, None)
    if moved:
        transitions.derive(conn, claimed.workflow_instance_id, now_ms, Cause.CHECKING)


def heartbeat(conn: sa.Connection, worker: str, ids: Sequence[int], now_ms: int) -> set[int]:
    """Beat for this worker's attempts in progress; the ids still its own (an attempt
    recovered by another engine is not: the worker must stop it)."""
    if not ids:
        return set()
    conn.execute(
        sa.update(ti)
        .where(ti.c.id.in_(list(ids)), ti.c.worker == worker, ti.c.status.in_(RUNNING_VALUES))
        .values(heartbeat_at=now_ms)
    )
    return attempts_of(conn, worker, ids)


def attempts_of(conn: sa.Connection, worker: str, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    mine = conn.execute(
        sa.select(ti.c.id).where(
            ti.c.id.in_(list(ids)), ti.c.worker == worker, ti.c.status.in_(RUNNING_VALUES)
        )
    ).scalars()
    return {int(i) for i in mine}


def finish(
    conn: sa.Connection,
    claimed: Claimed,
    status: Status,
    exit_code: int | None,
    log: str,
    now_ms: int,
    retry_at: int | None,
) -> bool:
    """Record the attempt's end: Success, Failure, or (retry_at given) back to
    WaitResource until `retry_at`; False (nothing written) when the attempt is no longer
    in progress for this worker (recovery, or another worker, has taken it over)."""
    lock_instance(conn, claimed.workflow_instance_id)
    values: dict[str, Any] = {"worker": None, "pid": None, "process": None, "modify_time": now_ms}
    if retry_at is not None:
        new = Status.WAIT_RESOURCE
        cause = Cause.RETRY
        values |= {"next_try_at": retry_at, "waiting_resource_time": now_ms}
    else:
        new = status
        cause = Cause.FINISH
        values["finished_time"] = now_ms
    if claimed.recovering:
        cause = Cause.RECOVERY
    # In progress, it is in the status it was claimed in, or Checking after Running.
    for old in (claimed.status, Status.CHECKING):
        moved = transitions.move(conn, [claimed.id], old, new, cause, now_ms, values, _own(claimed))
        if moved or claimed.status is not Status.RUNNING:
            break
    if not moved:
        return False
    _attempt(conn, claimed, status, exit_code, log, now_ms)
    # Its downstream tasks may be ready now: plan the instance at once rather than at the
    # next tick (dispatch latency).
    planned = plan_instance(conn, claimed.workflow_instance_id, now_ms)
    started = transitions.earliest_starts(planned).get(claimed.workflow_instance_id)
    transitions.derive(conn, claimed.workflow_instance_id, now_ms, cause, started)
    return True


def _attempt(
    conn: sa.Connection,
    claimed: Claimed,
    status: Status,
    exit_code: int | None,
    log: str,
    finished: int | None,
) -> None:
    conn.execute(
        sa.update(task_attempts)
        .where(
            task_attempts.c.task_instance_id == claimed.id,
            task_attempts.c.run_number == claimed.run_number,
        )
        .values(status=status.value, exit_code=exit_code, log=log, finished_time=finished)
    )


def unchoose(conn: sa.Connection, claimed: Claimed, outputs: Sequence[str], now_ms: int) -> None:
    """A branch chose: downstream tasks fed only by the outputs not chosen become dry runs
    (ConditionUnchoose), and so does everything below them."""
    rows = conn.execute(
        sa.select(ti.c.id, ti.c.spec, ti.c.upstream).where(
            ti.c.workflow_instance_id == claimed.workflow_instance_id
        )
    ).all()
    unchosen = set(outputs)
    skipped: set[int] = set()
    own = {int(r.id) for r in rows}
    for r in sorted(rows, key=lambda r: r.id):
        node = _node_decoder.decode(r.spec)
        via = [u for u in node.upstream if u.type is DependencyType.NORMAL]
        from_branch = [u for u in via if u.node_id == claimed.node.id]
        # Its upstreams in this instance (those elsewhere do not decide what a branch skips).
        ups = set(_ids.decode(r.upstream)) & own
        if (from_branch and all(u.output in unchosen for u in from_branch)) or (
            ups and ups <= skipped
        ):
            skipped.add(r.id)
    if skipped:
        conn.execute(
            sa.update(ti)
            .where(ti.c.id.in_(sorted(skipped)))
            .values(trigger_recurrence=Recurrence.CONDITION_UNCHOOSE.value, modify_time=now_ms)
        )


def attempt_log(conn: sa.Connection, task_instance_id: int, run_number: int | None) -> str | None:
    a = task_attempts.c
    query = sa.select(a.log).where(a.task_instance_id == task_instance_id)
    if run_number is None:
        query = query.order_by(a.run_number.desc()).limit(1)
    else:
        query = query.where(a.run_number == run_number)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def append_log(conn: sa.Connection, claimed: Claimed, log: str) -> None:
    """The log so far of an attempt still in progress (an ended one keeps its final log)."""
    conn.execute(
        sa.update(task_attempts)
        .where(
            task_attempts.c.task_instance_id == claimed.id,
            task_attempts.c.run_number == claimed.run_number,
            task_attempts.c.finished_time.is_(None),
        )
        .values(log=log)
    )


def stale_attempts(conn: sa.Connection, heartbeat_before: int) -> list[Claimed]:
    """Attempts in progress whose worker has not beaten since `heartbeat_before` (ending
    one of them is a recovery)."""
    rows = conn.execute(
        sa.select(ti).where(
            ti.c.status.in_(RUNNING_VALUES),
            sa.or_(ti.c.heartbeat_at.is_(None), ti.c.heartbeat_at < heartbeat_before),
        )
    ).all()
    return [
        claimed_of(conn, r, Status(r.status), r.run_number, str(r.worker or ""), recovering=True)
        for r in rows
    ]


def claimed_of(
    conn: sa.Connection,
    row: Any,
    status: Status,
    run_number: int,
    worker: str,
    recovering: bool = False,
) -> Claimed:
    """A task_instances row (all columns; with its workflow's `timezone`, if read with it)
    as the attempt `run_number` of `worker`."""
    tz = row.timezone if "timezone" in row._fields else None
    if tz is None:
        tz = conn.execute(
            sa.select(workflows.c.timezone).where(workflows.c.id == row.workflow_id)
        ).scalar()
    return Claimed(
        row.id,
        row.workflow_instance_id,
        run_number,
        status,
        _node_decoder.decode(row.spec),
        row.parameters,
        day_from_key(row.biz_day),
        row.trigger_time,
        str(tz or "UTC"),
        EnvType(row.env_type),
        worker,
        recovering,
    )


def process_of(
    conn: sa.Connection, task_instance_id: int
) -> tuple[int | None, str | None, str | None]:
    """(pid, process identity, worker) of the attempt in progress."""
    row = conn.execute(
        sa.select(ti.c.pid, ti.c.process, ti.c.worker).where(ti.c.id == task_instance_id)
    ).one()
    return row.pid, row.process, row.worker


def heartbeat_of(conn: sa.Connection, task_instance_id: int) -> int | None:
    found = conn.execute(sa.select(ti.c.heartbeat_at).where(ti.c.id == task_instance_id)).scalar()
    return None if found is None else int(found)


class Attempts:
    """The attempts in progress, as their worker and the recovery see them (`Tx.attempts`).

    Ending an attempt is a unit of work of its own (`Store.finish_task`: nothing is written
    when the attempt was taken over)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def record_process(self, task_instance_id: int, pid: int, identity: str | None) -> None:
        """The process the attempt runs in (its pid, and what tells it from a later one)."""
        record_process(self.conn, task_instance_id, pid, identity)

    def set_checking(self, claimed: Claimed, log: str, now_ms: int) -> None:
        """The process succeeded: the attempt's quality check runs (Checking)."""
        set_checking(self.conn, claimed, log, now_ms)

    def heartbeat(self, worker: str, task_instance_ids: Sequence[int], now_ms: int) -> set[int]:
        """Beat for the worker's attempts; the ids that are still its own."""
        return heartbeat(self.conn, worker, task_instance_ids, now_ms)

    def owned(self, worker: str, task_instance_ids: Sequence[int]) -> set[int]:
        """Which of these attempts in progress are still `worker`'s."""
        return attempts_of(self.conn, worker, task_instance_ids)

    def save_log(self, claimed: Claimed, log: str) -> None:
        """The log so far of an attempt in progress."""
        append_log(self.conn, claimed, log)

    def stale(self, heartbeat_before: int) -> list[Claimed]:
        """Attempts in progress whose worker has not beaten since `heartbeat_before`."""
        return stale_attempts(self.conn, heartbeat_before)

    def process(self, task_instance_id: int) -> tuple[int | None, str | None, str | None]:
        """(pid, process identity, worker) of the task instance's attempt in progress."""
        return process_of(self.conn, task_instance_id)

    def heartbeat_at(self, task_instance_id: int) -> int | None:
        """When the task instance's attempt last beat (None: never)."""
        return heartbeat_of(self.conn, task_instance_id)
