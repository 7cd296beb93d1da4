"""Workers and resource groups are rows every process on the database shares (SQLite file
and PostgreSQL): a slot limit set once holds for two workers at once, `--groups` restricts
what a worker claims, a killed worker process is found dead by its row, and a planner that
keeps failing no longer stops the worker half of the engine.

Instances are made through the store for a past run date, so that they are due at once.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dwsched.clock import ManualClock, SystemClock
from dwsched.domain.models import Status
from dwsched.domain.queries import page
from dwsched.domain.task_instances import TaskInstanceQuery
from dwsched.domain.workers import HEARTBEAT_MS, STALE_MS, WorkerState
from dwsched.engine.runner import process_alive
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.store import Store
from dwsched.store.schema import task_instances
from tests.cli.helpers import dwsched_process, invoke, ok
from tests.engine.helpers import TZ, deploy_due, wait


def shell(node_id: str, content: str, group: str = "", after: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": node_id,
        "name": node_id,
        "script": {"runtime": {"command": "DIDE_SHELL"}, "content": content},
        "outputs": {"nodeOutputs": [{"data": f"{node_id}_out"}]},
    }
    if group:
        found["runtimeResource"] = {"resourceGroup": group}
    if after is not None:
        found["inputs"] = {"nodeOutputs": [{"data": f"{after}_out"}]}
    return found


def tasks(store: Store, project_id: int) -> list[Any]:
    """The workspace's task instances of the BizDate deploy_due makes."""
    day = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=2)
    biz_ms = int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TZ)).timestamp() * 1000)
    with store.read() as tx:
        _, found = tx.task_instances.page(
            TaskInstanceQuery(project_id=project_id, biz_date_ms=biz_ms, page=page(1, 100))
        )
    return list(found.items)


def statuses(store: Store, project_id: int) -> dict[str, list[str]]:
    """Each node's task statuses, in trigger time order."""
    found: dict[str, list[str]] = {}
    for t in sorted(tasks(store, project_id), key=lambda t: (t.trigger_time, t.id)):
        found.setdefault(t.name, []).append(t.status)
    return found


def test_two_workers_on_one_database_share_a_slot_limit_of_one(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    spans = tmp_path / "spans.txt"
    record = (
        f'echo "$DWSCHED_TASK_INSTANCE_ID start $(date +%s%N)" >> {spans}; sleep 0.3; '
        f'echo "$DWSCHED_TASK_INSTANCE_ID end $(date +%s%N)" >> {spans}'
    )
    project_id, _, _ = deploy_due(store, [shell("etl_step", record, "etl")], "0 0 0/4 * * ?")
    with store.write() as tx:
        tx.resource_groups.set_slots("etl", 1, SystemClock().now_ms())
    # Two workers, each with a store (connections) of its own and room for four attempts:
    # neither is told the limit; it is the database's.
    other = Store.open(db_url)
    first = Service(store, SystemClock(), WorkerSettings(slots=4), tick_s=0.02)
    second = Service(other, SystemClock(), WorkerSettings(slots=4), tick_s=0.02, scheduling=False)
    first.start()
    second.start()
    try:
        wait(lambda: statuses(store, project_id).get("etl_step") == ["Success"] * 6, "6 runs")
        shown = ok(invoke("workers", "list", "--db", db_url, env={"COLUMNS": "300"})).output
        assert first.worker.name in shown and second.worker.name in shown, shown
    finally:
        first.stop()
        second.stop()
        other.close()
    spans_by_task: dict[str, dict[str, int]] = {}
    for line in spans.read_text().split("\n")[:-1]:
        task, what, at = line.split()
        spans_by_task.setdefault(task, {})[what] = int(at)
    ordered = sorted((s["start"], s["end"]) for s in spans_by_task.values())
    assert len(ordered) == 6
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert end <= start, f"two attempts of etl ran at once: {ordered}"
    # Both registered, and both marked stopped as they stopped.
    with store.read() as tx:
        listed = {w.name: w for w in tx.workers.all()}
    now = SystemClock().now_ms()
    for service in (first, second):
        assert listed[service.worker.name].state(now) is WorkerState.STOPPED
        assert listed[service.worker.name].pid == os.getpid()


def test_a_worker_claims_only_the_groups_it_serves(store: Store) -> None:
    project_id, _, _ = deploy_due(
        store, [shell("in_etl", "true", "etl"), shell("elsewhere", "true")], "00 30 02 * * ?"
    )
    clock = ManualClock(SystemClock().now_ms())
    etl_only = Service(store, clock, WorkerSettings(groups=("etl",)))
    for _ in range(3):
        etl_only.tick()
        etl_only.worker.wait_idle()
        clock.advance(1_000)
    assert statuses(store, project_id) == {"in_etl": ["Success"], "elsewhere": ["WaitResource"]}
    with store.read() as tx:
        (row,) = tx.workers.all()
    assert row.groups == ("etl",) and row.name == etl_only.worker.name
    # `-` on the command line: the group of nodes that name none.
    unnamed = Service(store, clock, WorkerSettings(groups=("",)), scheduling=False)
    unnamed.tick()
    unnamed.worker.wait_idle()
    assert statuses(store, project_id) == {"in_etl": ["Success"], "elsewhere": ["Success"]}


def test_group_slots_given_to_a_worker_are_written_for_every_worker(store: Store) -> None:
    with store.write() as tx:
        tx.resource_groups.set_slots("reports", 3, SystemClock().now_ms())
    service = Service(
        store,
        ManualClock(SystemClock().now_ms()),
        WorkerSettings(group_slots={"etl": 2}, default_group_slots=6),
        scheduling=False,
    )
    service.tick()
    with store.read() as tx:
        limits = {g.name: g.slots for g in tx.resource_groups.all()}
    assert limits == {"etl": 2, "reports": 3, "*": 6}


def test_a_failing_plan_no_longer_stops_heartbeats_or_claims(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    hold = f"n=0; while [ ! -e {flag} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done"
    nodes = [shell("hold", hold), shell("after", "true", after="hold")]
    project_id, _, _ = deploy_due(store, nodes, "0 0 0/12 * * ?")  # two instances
    clock = ManualClock(SystemClock().now_ms())
    service = Service(store, clock, WorkerSettings(slots=1))
    service.tick()
    assert statuses(store, project_id) == {
        "hold": ["Running", "WaitResource"],
        "after": ["NotRun", "NotRun"],
    }
    # A broken row: the second instance's waiting task names its upstreams in a form the
    # planner cannot read; every planning round fails on it from now on.
    by_name = sorted(tasks(store, project_id), key=lambda t: (t.trigger_time, t.id))
    broken = [t for t in by_name if t.name == "after"][1]
    running = next(t for t in by_name if t.name == "hold")
    with store.write() as tx:
        tx.conn.execute(
            sa.update(task_instances)
            .where(task_instances.c.id == broken.id)
            .values(upstream="not a list")
        )
    with pytest.raises(Exception):  # noqa: B017 - whichever error the planner raises
        store.plan(clock.now_ms())

    clock.advance(HEARTBEAT_MS)
    service.tick()  # plans (and fails), then beats and claims all the same
    beat = clock.now_ms()
    with store.read() as tx:
        assert tx.attempts.heartbeat_at(running.id) == beat
        record = tx.workers.get(service.worker.name)
    assert record is not None and record.heartbeat_at == beat

    flag.touch()
    service.worker.wait_idle()
    clock.advance(HEARTBEAT_MS)
    service.tick()
    service.worker.wait_idle()
    with store.read() as tx:  # (listings would read the broken row too)
        found = tx.conn.execute(sa.select(task_instances.c.status)).scalars().all()
    assert sum(s in ("Running", "Success") for s in found) >= 2, found  # claimed again


def test_a_killed_worker_process_is_recovered_by_its_row(store: Store, db_url: str) -> None:
    project_id, _, _ = deploy_due(store, [shell("long", "sleep 300")], "00 30 02 * * ?")
    with dwsched_process("worker", "--db", db_url, "--groups", "-,etl") as worker:
        found: list[Any] = []

        def recorded() -> bool:
            with store.read() as tx:
                found[:] = [tx.attempts.process(c.id) for c in tx.attempts.stale(2**62)]
            return bool(found) and found[0][1] is not None

        # Planning is the scheduler's: this process plans, the worker process claims.
        scheduler = Service(store, SystemClock(), None, scheduling=True, working=False)
        deadline = time.monotonic() + 60
        while not recorded():
            assert time.monotonic() < deadline, worker.stderr
            scheduler.tick()
            time.sleep(0.1)
        pid, identity, name = found[0]
        assert pid is not None and identity is not None and name is not None
        with store.read() as tx:
            row = tx.workers.get(name)
            assert row is not None, tx.workers.all()
        assert (row.pid, row.groups) == (worker.popen.pid, ("", "etl"))
        os.kill(worker.popen.pid, signal.SIGKILL)
        worker.popen.wait(10)
    assert process_alive(pid, identity)  # the task's process group lives on, orphaned
    # Dead by its row at once (its process is gone), well before its heartbeat is stale.
    started = time.monotonic()
    scheduler = Service(store, SystemClock(), None, scheduling=True, working=False)
    while statuses(store, project_id)["long"] != [Status.FAILURE.value]:
        assert time.monotonic() - started < STALE_MS / 2000, "not recovered from the row"
        scheduler.tick()
        time.sleep(0.2)
    wait(lambda: not process_alive(pid, identity), "the orphan to be killed", 10)
    (task,) = tasks(store, project_id)
    with store.read() as tx:
        log = tx.task_instances.log(task.id, None)
    assert "is no longer running" in log and "was killed" in log, log
