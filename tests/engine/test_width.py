"""A wide instance (both databases): many VIRTUAL nodes end together in one claim, each with
its own attempt, run number, times and events, and what waits for all of them runs after;
the instance's status and times are what its tasks make them.
"""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.domain.models import Status
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.store import Store
from dwsched.store.schema import status_events, task_attempts, task_instances, workflow_instances
from tests.engine.test_engine import node
from tests.store.test_status_events import MINUTE, Instance, assert_complete

WIDTH = 60


def test_a_wide_instance_of_virtual_nodes_ends_in_one_claim(store: Store) -> None:
    roots = [node(f"v{k:02d}", "VIRTUAL") for k in range(WIDTH)]
    join = node("join", "VIRTUAL")
    join["inputs"] = {"nodeOutputs": [{"data": f"v{k:02d}_out"} for k in range(WIDTH)]}
    run = Instance(store, [*roots, join])
    service = Service(store, run.clock, WorkerSettings(slots=2))
    run.clock.advance(MINUTE)
    store.plan(run.now())
    run.clock.advance(5)
    claimed, ended = store.claim_tasks(service.worker.name, None, 2, run.now())
    assert (claimed, ended) == ([], WIDTH + 1)  # the join too, once its upstreams ended
    now = run.now()
    ti, a, wi = task_instances.c, task_attempts.c, workflow_instances.c
    with store.read() as tx:
        tasks = tx.conn.execute(
            sa.select(ti.id, ti.status, ti.run_number, ti.started_time, ti.finished_time).where(
                ti.workflow_instance_id == run.id
            )
        ).all()
        attempts = tx.conn.execute(
            sa.select(a.task_instance_id, a.run_number, a.worker, a.status, a.exit_code)
            .join(task_instances, ti.id == a.task_instance_id)
            .where(ti.workflow_instance_id == run.id)
        ).all()
        instance = tx.conn.execute(
            sa.select(wi.status, wi.started_time, wi.finished_time).where(wi.id == run.id)
        ).one()
        events = tx.conn.execute(
            sa.select(sa.func.count()).where(
                status_events.c.workflow_instance_id == run.id, status_events.c.kind == "task"
            )
        ).scalar_one()
    assert {(t.status, t.run_number, t.started_time, t.finished_time) for t in tasks} == {
        (Status.SUCCESS, 1, now, now)
    }
    assert sorted((x.task_instance_id, x.run_number) for x in attempts) == sorted(
        (t.id, 1) for t in tasks
    )
    assert {(x.worker, x.status, x.exit_code) for x in attempts} == {
        (service.worker.name, Status.SUCCESS, 0)
    }
    assert tuple(instance) == (Status.SUCCESS, now, now)
    assert events == 2 * (WIDTH + 1)  # ready, ended: each once
    assert_complete(run)
