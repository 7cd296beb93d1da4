"""Release: which instances made by CreateWorkflowInstances may run. An instance made with
AutoStartEnabled=false waits NotStarted until StartWorkflowInstances queues it; a queued
instance is released as its operation allows (a backfill's Parallelism, its RunPolicy's
window). Instances made by the scheduler have no row here: they run as they come.
"""

from __future__ import annotations

import msgspec
import sqlalchemy as sa

from dwsched.domain.models import InstanceType
from dwsched.domain.runs import RunRequest
from dwsched.domain.transitions import FINISHED_VALUES
from dwsched.store.schema import (
    operation_instances as oi,
    operations,
    workflow_instances as wi,
)

# operation_instances.state
NOT_STARTED, QUEUED = "NotStarted", "Queued"
RELEASED = "Released"  # the instance may run
_request = msgspec.json.Decoder(RunRequest).decode


def queued_operations(conn: sa.Connection) -> list[tuple[str, RunRequest]]:
    ids = conn.execute(sa.select(oi.c.operation_id).where(oi.c.state == QUEUED).distinct())
    wanted = [str(i) for i in ids.scalars()]
    if not wanted:
        return []
    rows = conn.execute(
        sa.select(operations.c.id, operations.c.request).where(operations.c.id.in_(wanted))
    )
    return [(r.id, _request(r.request)) for r in rows]


def release(
    conn: sa.Connection, operation_id: str, request: RunRequest, allowed: bool
) -> list[int]:
    """Release the operation's queued BizDates in order while fewer than its Parallelism
    are unfinished (a backfill), or all of them (other types); `allowed` false (outside
    the RunPolicy's window) releases none. The ids of the instances released."""
    rows = conn.execute(
        sa.select(oi.c.workflow_instance_id, oi.c.biz_day, oi.c.state, wi.c.status)
        .join(wi, wi.c.id == oi.c.workflow_instance_id)
        .where(oi.c.operation_id == operation_id)
    ).all()
    queued = sorted({r.biz_day for r in rows if r.state == QUEUED}, reverse=request.descending)
    if not queued or not allowed:
        return []
    if request.type is InstanceType.SUPPLEMENT_DATA:
        active = {
            r.biz_day for r in rows if r.state == RELEASED and r.status not in FINISHED_VALUES
        }
        room = max(0, request.parallelism - len(active))
        days = queued[:room]
    else:
        days = queued
    if not days:
        return []
    conn.execute(
        sa.update(oi)
        .where(oi.c.operation_id == operation_id, oi.c.state == QUEUED, oi.c.biz_day.in_(days))
        .values(state=RELEASED)
    )
    chosen = set(days)
    return sorted(
        int(r.workflow_instance_id) for r in rows if r.state == QUEUED and r.biz_day in chosen
    )


def held_state(conn: sa.Connection, workflow_instance_id: int) -> str | None:
    """The instance's release state (None: made by the scheduler)."""
    return conn.execute(
        sa.select(oi.c.state).where(oi.c.workflow_instance_id == workflow_instance_id)
    ).scalar()


def held(conn: sa.Connection, ids: list[int]) -> set[int]:
    """Those of the instances their operation still holds (NotStarted, Queued)."""
    if not ids:
        return set()
    return {
        int(i)
        for i in conn.execute(
            sa.select(oi.c.workflow_instance_id).where(
                oi.c.workflow_instance_id.in_(ids), oi.c.state != RELEASED
            )
        ).scalars()
    }
