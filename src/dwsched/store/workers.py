"""Workers' rows: registered as each worker starts, beaten while it lives, marked draining
and stopped as it shuts down (domain.workers)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from dwsched.domain.transitions import RUNNING_VALUES
from dwsched.domain.workers import RETENTION_MS, WorkerRecord
from dwsched.store.schema import task_instances as ti, workers


def register(conn: sa.Connection, record: WorkerRecord) -> None:
    """Write the worker's row (replacing one of the same name: a worker that registers
    again after its row was swept)."""
    conn.execute(sa.delete(workers).where(workers.c.name == record.name))
    conn.execute(
        sa.insert(workers).values(
            name=record.name,
            host=record.host,
            pid=record.pid,
            process=record.process,
            groups=None if record.groups is None else json.dumps(list(record.groups)),
            slots=record.slots,
            started_at=record.started_at,
            heartbeat_at=record.heartbeat_at,
            draining=record.draining,
            stopped_at=record.stopped_at,
        )
    )


def beat(conn: sa.Connection, name: str, now_ms: int) -> bool:
    """The worker's heartbeat; False when it has no row (swept: it must register again)."""
    done = conn.execute(
        sa.update(workers).where(workers.c.name == name).values(heartbeat_at=now_ms)
    )
    return done.rowcount > 0


def mark(conn: sa.Connection, name: str, draining: bool, stopped_at: int | None) -> None:
    """The worker drains (shuts down, its attempts finishing or stopping), or (stopped_at)
    has stopped."""
    conn.execute(
        sa.update(workers)
        .where(workers.c.name == name)
        .values(draining=draining, stopped_at=stopped_at)
    )


def worker_by_name(conn: sa.Connection, name: str) -> WorkerRecord | None:
    row = conn.execute(sa.select(workers).where(workers.c.name == name)).first()
    return None if row is None else _record(row, 0)


def all_workers(conn: sa.Connection) -> list[WorkerRecord]:
    """Every worker's row (the latest beat first), with its attempts in progress."""
    running = {
        str(w): int(n)
        for w, n in conn.execute(
            sa.select(ti.c.worker, sa.func.count())
            .where(ti.c.status.in_(RUNNING_VALUES), ti.c.worker.is_not(None))
            .group_by(ti.c.worker)
        )
    }
    rows = conn.execute(
        sa.select(workers).order_by(workers.c.heartbeat_at.desc(), workers.c.name)
    ).all()
    return [_record(r, running.get(r.name, 0)) for r in rows]


def sweep(conn: sa.Connection, beaten_before: int) -> int:
    """Delete the rows of workers that have not beaten since `beaten_before`."""
    return conn.execute(sa.delete(workers).where(workers.c.heartbeat_at < beaten_before)).rowcount


def _record(row: sa.Row[tuple[object, ...]], running: int) -> WorkerRecord:
    groups = None if row.groups is None else tuple(str(g) for g in json.loads(row.groups))
    return WorkerRecord(
        name=row.name,
        host=row.host,
        pid=int(row.pid),
        process=row.process,
        groups=groups,
        slots=int(row.slots),
        started_at=int(row.started_at),
        heartbeat_at=int(row.heartbeat_at),
        draining=bool(row.draining),
        stopped_at=None if row.stopped_at is None else int(row.stopped_at),
        running=running,
    )


class Workers:
    """The workers' rows (`Tx.workers`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def register(self, record: WorkerRecord) -> None:
        """Register a worker as it starts, and forget the workers silent for RETENTION_MS."""
        sweep(self.conn, record.started_at - RETENTION_MS)
        register(self.conn, record)

    def beat(self, name: str, now_ms: int) -> bool:
        """The worker's heartbeat; False when it has no row (it must register again)."""
        return beat(self.conn, name, now_ms)

    def mark(self, name: str, draining: bool, stopped_at: int | None = None) -> None:
        """The worker drains as it shuts down, or (`stopped_at`) has stopped."""
        mark(self.conn, name, draining, stopped_at)

    def get(self, name: str) -> WorkerRecord | None:
        return worker_by_name(self.conn, name)

    def all(self) -> list[WorkerRecord]:
        """Every registered worker (the latest beat first), with its attempts in progress."""
        return all_workers(self.conn)
