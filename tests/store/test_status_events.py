"""Every status change is one status event (both databases): the engine's steps and the
operator's actions walked on real instances under a manual clock, each change found as an
event with its old and new status and its cause; the workflow instances' derived changes
too; an illegal change refused; the consumers' cursors and the retention.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dwsched.clock import ManualClock, SystemClock
from dwsched.domain import flowspec
from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.operations import InstanceMatch, Operation, TaskFilter
from dwsched.domain.schedule import Trigger, cycles_on
from dwsched.domain.transitions import Cause, IllegalTransition, StatusEvent, check
from dwsched.engine.service import STALE_MS, Service
from dwsched.engine.worker import WorkerSettings
from dwsched.store import Store, transitions
from dwsched.store.schema import status_events, task_instances, workflow_instances
from tests.engine.test_engine import TZ, flow, node
from tests.support.databases import new_database_url
from tests.support.factories import project

RUN_DATE = date(2025, 4, 1)
MINUTE = 60_000
S = Status
Event = tuple[str, str, str]  # (old, new, cause)


class Instance:
    """One generated instance of a deployed workflow, under a manual clock set before its
    trigger time."""

    def __init__(self, store: Store, nodes: list[dict[str, Any]], **strategy: Any) -> None:
        self.store = store
        text = json.dumps(flow(nodes, **strategy))
        now = SystemClock().now_ms()
        self.project = project(store)
        spec = flowspec.parse(text, TZ)
        with store.write() as tx:
            deployed = tx.definitions.create(self.project.id, text, spec, "test", now, True)[1]
        self.workflow_id = deployed.id
        t = deployed.spec.trigger
        (cycle,) = cycles_on(Trigger(t.cron, TZ, t.start_ms, t.end_ms), RUN_DATE)
        store.generate(deployed, [(RUN_DATE, [cycle])], None, now)
        self.trigger = cycle.trigger_time
        self.clock = ManualClock(self.trigger - MINUTE)
        with store.read() as tx:
            wi = workflow_instances.c
            self.id = tx.conn.execute(
                sa.select(wi.id).where(wi.workflow_id == deployed.id)
            ).scalar_one()
            ti = task_instances.c
            rows = tx.conn.execute(
                sa.select(ti.id, ti.name).where(ti.workflow_instance_id == self.id)
            ).all()
        self.tasks = {str(r.name): int(r.id) for r in rows}
        self.names = {v: k for k, v in self.tasks.items()}

    def now(self) -> int:
        return self.clock.now_ms()

    def statuses(self) -> dict[str, str]:
        with self.store.read() as tx:
            ti = task_instances.c
            rows = tx.conn.execute(
                sa.select(ti.name, ti.status).where(ti.workflow_instance_id == self.id)
            ).all()
            status = tx.conn.execute(
                sa.select(workflow_instances.c.status).where(workflow_instances.c.id == self.id)
            ).scalar_one()
        return {str(r.name): str(r.status) for r in rows} | {"(instance)": str(status)}

    def events(self) -> dict[str, list[Event]]:
        """Per task name (the instance's own under "(instance)"), its events in order."""
        e = status_events.c
        with self.store.read() as tx:
            rows = tx.conn.execute(
                sa.select(status_events).where(e.workflow_instance_id == self.id).order_by(e.id)
            ).all()
        found: dict[str, list[Event]] = {}
        for r in rows:
            name = "(instance)" if r.kind == "workflow" else self.names[r.instance_id]
            found.setdefault(name, []).append((r.old_status, r.new_status, r.cause))
        return found

    def act(self, op: Operation, *names: str) -> None:
        ids = [self.tasks[n] for n in names]
        results = self.store.task_operation(op, ids, "tester", "", self.now())
        assert all(r.success for r in results.values()), results


def chained(events: Sequence[Event], first: str, last: str) -> bool:
    """The events follow each other from `first` to `last`: none is missing."""
    at = first
    for old, new, _ in events:
        if old != at:
            return False
        at = new
    return at == last


def assert_complete(run: Instance) -> None:
    """Every task's (and the instance's) events chain from NotRun to its status now."""
    now = run.statuses()
    for name, events in run.events().items():
        assert chained(events, S.NOT_RUN, now[name]), (name, events, now[name])
    for name, status in now.items():
        if status != S.NOT_RUN:
            assert name in run.events(), name


def drive(run: Instance, service: Service, rounds: int = 30) -> None:
    """Plan, claim and run until the instance has finished."""
    for _ in range(rounds):
        run.store.plan(run.now())
        service.worker.claim_and_start()
        service.worker.wait_idle()
        if run.statuses()["(instance)"] in (S.SUCCESS, S.FAILURE) and not service.worker.busy:
            return
    raise AssertionError(run.statuses())


def test_the_engine_records_every_change(store: Store) -> None:
    run = Instance(
        store,
        [
            node("check", "DIDE_SHELL", "true", qualityCheck={"command": "true"}),
            node("virt", "VIRTUAL", after="check"),
            {
                "id": "pick",
                "name": "pick",
                "script": {"runtime": {"command": "CONTROLLER_BRANCH"}},
                "branch": {
                    "branches": [
                        {"when": "1 == 1", "output": {"data": "yes"}},
                        {"when": "1 == 2", "output": {"data": "no"}},
                    ]
                },
            },
            {
                "id": "no_path",
                "name": "no_path",
                "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "exit 1"},
                "inputs": {"nodeOutputs": [{"data": "no"}]},
            },
            node("flaky", "DIDE_SHELL", "exit 3"),
        ],
        rerunMode="Allowed",
        rerunTimes=1,
        rerunInterval=0,
    )
    service = Service(store, run.clock, WorkerSettings(slots=4))
    store.plan(run.now())  # before its time
    run.clock.advance(MINUTE)
    drive(run, service)
    events = run.events()
    waited = [(S.NOT_RUN, S.WAIT_TIME, Cause.PLAN), (S.WAIT_TIME, S.WAIT_RESOURCE, Cause.PLAN)]
    claimed = (S.WAIT_RESOURCE, S.RUNNING, Cause.CLAIM)
    assert events["check"] == [
        *waited,
        claimed,
        (S.RUNNING, S.CHECKING, Cause.CHECKING),
        (S.CHECKING, S.SUCCESS, Cause.FINISH),
    ]
    assert events["virt"] == [
        (S.NOT_RUN, S.WAIT_RESOURCE, Cause.PLAN),
        (S.WAIT_RESOURCE, S.SUCCESS, Cause.VIRTUAL),
    ]
    assert events["pick"] == [
        *waited,
        (S.WAIT_RESOURCE, S.CHECKING_CONDITION, Cause.CLAIM),
        (S.CHECKING_CONDITION, S.SUCCESS, Cause.FINISH),
    ]
    assert events["no_path"] == [(S.NOT_RUN, S.SUCCESS, Cause.PLAN)]  # a dry run
    assert events["flaky"] == [
        *waited,
        claimed,
        (S.RUNNING, S.WAIT_RESOURCE, Cause.RETRY),
        claimed,
        (S.RUNNING, S.FAILURE, Cause.FINISH),
    ]
    instance = events["(instance)"]
    assert instance[:3] == [*waited, (S.WAIT_RESOURCE, S.RUNNING, Cause.CLAIM)]
    assert instance[-1][1:] == (S.FAILURE, Cause.FINISH)
    assert_complete(run)
    # Run numbers: the attempt each event belongs to.
    e = status_events.c
    with store.read() as tx:
        runs = tx.conn.execute(
            sa.select(e.run_number)
            .where(e.instance_id == run.tasks["flaky"], e.kind == "task")
            .order_by(e.id)
        ).scalars()
        assert list(runs) == [0, 0, 1, 1, 2, 2]


def test_a_dead_workers_attempt_is_recovered(store: Store) -> None:
    run = Instance(store, [node("long", "DIDE_SHELL", "sleep 120")])
    service = Service(store, run.clock, WorkerSettings(slots=1))
    run.clock.advance(MINUTE)
    store.plan(run.now())
    assert service.worker.claim_and_start() == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the process is recorded once started
        with store.read() as tx:
            if tx.attempts.process(run.tasks["long"])[1] is not None:
                break
        time.sleep(0.05)
    other = Service(store, ManualClock(run.now() + STALE_MS + 1000), WorkerSettings())
    assert other.recover() == 1
    service.worker.wait_idle()
    assert run.events()["long"][-1] == (S.RUNNING, S.FAILURE, Cause.RECOVERY)
    assert run.events()["(instance)"][-1] == (S.RUNNING, S.FAILURE, Cause.RECOVERY)
    assert_complete(run)


def test_the_operators_actions_record_every_change(store: Store) -> None:
    run = Instance(
        store,
        [
            node("a", "DIDE_SHELL", "true"),
            node("b", "DIDE_SHELL", "true", after="a"),
            node("gate", "SCHEDULER_TRIGGER"),
            node("early", "SCHEDULER_TRIGGER"),
        ],
        rerunMode="Allowed",
    )
    store.plan(run.now())  # before its time: WaitTime
    run.act(Operation.SUSPEND, "a", "b")
    run.act(Operation.RESUME, "a", "b")  # a plans again: WaitTime
    run.act(Operation.TRIGGER, "early")  # kept until it reaches WaitTrigger
    run.clock.advance(MINUTE)
    store.plan(run.now())
    run.act(Operation.TRIGGER, "gate")
    claims, _ = store.claim_tasks("w1", None, 4, run.now())
    assert [c.id for c in claims] == [run.tasks["a"]]
    run.act(Operation.STOP, "a")
    run.act(Operation.SET_SUCCESS, "b")
    run.act(Operation.RERUN, "a")  # waits for a resource again
    stopped = store.stop_instances([run.id], "tester", "", run.now())
    assert stopped[run.id].success
    rerun = store.rerun_instances(
        "op-1",
        run.project.id,
        InstanceMatch(run.workflow_id, InstanceType.NORMAL, EnvType.PROD, ids=(run.id,)),
        TaskFilter(task_ids=None, statuses=frozenset({"Failure"})),
        "tester",
        run.now(),
    )
    assert rerun.status == "Success", rerun.failure_message
    events = run.events()
    waiting = (S.NOT_RUN, S.WAIT_TIME, Cause.PLAN)
    ready = (S.NOT_RUN, S.WAIT_RESOURCE, Cause.PLAN)
    assert events["a"] == [
        waiting,
        (S.WAIT_TIME, S.NOT_RUN, Cause.SUSPEND),
        (S.NOT_RUN, S.NOT_RUN, Cause.RESUME),
        waiting,
        (S.WAIT_TIME, S.WAIT_RESOURCE, Cause.PLAN),
        (S.WAIT_RESOURCE, S.RUNNING, Cause.CLAIM),
        (S.RUNNING, S.FAILURE, Cause.STOP),
        (S.FAILURE, S.NOT_RUN, Cause.RERUN),
        ready,
        (S.WAIT_RESOURCE, S.FAILURE, Cause.STOP),
        (S.FAILURE, S.NOT_RUN, Cause.RERUN),
        ready,
    ]
    assert events["b"] == [
        (S.NOT_RUN, S.NOT_RUN, Cause.SUSPEND),
        (S.NOT_RUN, S.NOT_RUN, Cause.RESUME),
        (S.NOT_RUN, S.SUCCESS, Cause.SET_SUCCESS),
    ]
    assert events["gate"] == [
        waiting,
        (S.WAIT_TIME, S.WAIT_TRIGGER, Cause.PLAN),
        (S.WAIT_TRIGGER, S.SUCCESS, Cause.TRIGGER),
    ]
    assert events["early"] == [
        waiting,
        (S.WAIT_TIME, S.WAIT_TIME, Cause.TRIGGER),
        (S.WAIT_TIME, S.SUCCESS, Cause.PLAN),
    ]
    instance = events["(instance)"]
    assert (S.WAIT_RESOURCE, S.FAILURE, Cause.STOP) in instance
    assert instance[-1] == (S.FAILURE, S.WAIT_RESOURCE, Cause.RERUN)
    assert_complete(run)


def test_an_illegal_change_is_refused_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(IllegalTransition):
        check(S.SUCCESS, S.RUNNING, Cause.CLAIM)
    with pytest.raises(IllegalTransition):
        check(S.NOT_RUN, S.SUCCESS, Cause.FINISH)
    check(S.WAIT_RESOURCE, S.RUNNING, Cause.CLAIM)
    run = Instance(store, [node("a", "DIDE_SHELL", "true")])
    before = run.statuses()
    with pytest.raises(IllegalTransition), store.write() as tx:
        transitions.move(tx.conn, [run.tasks["a"]], S.NOT_RUN, S.RUNNING, Cause.PLAN, run.now())
    assert run.statuses() == before and run.events() == {}


def next_events(store: Store, consumer: str, now_ms: int, limit: int = 1000) -> list[StatusEvent]:
    with store.write() as tx:
        return tx.events.next(consumer, now_ms, limit)


def settled_events(store: Store, consumer: str, now_ms: int) -> list[StatusEvent]:
    """The next events once there are some: on PostgreSQL a consumer reads only what every
    older transaction of the cluster has settled, and the other tests' databases share the
    cluster (their transactions may hold the horizon back for a moment)."""
    deadline = time.monotonic() + 10
    while not (found := next_events(store, consumer, now_ms)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def advance(store: Store, consumer: str, last_event_id: int, now_ms: int) -> None:
    with store.write() as tx:
        tx.events.advance(consumer, last_event_id, now_ms)


def sweep(store: Store, now_ms: int) -> int:
    with store.write() as tx:
        return tx.events.sweep(now_ms)


def test_consumers_read_after_their_cursor_and_old_events_are_swept(store: Store) -> None:
    run = Instance(store, [node("a", "DIDE_SHELL", "true"), node("b", "VIRTUAL")])
    now = run.now()
    assert next_events(store, "alerts", now) == []  # registered at the newest event
    assert next_events(store, "metrics", now) == []
    store.plan(now)
    first = settled_events(store, "alerts", now)
    assert {(e.instance_id, e.old, e.new, e.cause) for e in first if e.kind == "task"} == {
        (run.tasks[n], S.NOT_RUN, S.WAIT_TIME, Cause.PLAN) for n in run.tasks
    }
    assert {e.instance_id for e in first if e.kind == "workflow"} == {run.id}
    assert next_events(store, "alerts", now) == first  # until the cursor moves
    assert next_events(store, "alerts", now, limit=1) == first[:1]
    advance(store, "alerts", first[-1].id, now)
    assert next_events(store, "alerts", now) == []
    advance(store, "alerts", first[0].id, now)  # never back
    assert next_events(store, "alerts", now) == []
    day = 86_400_000
    # Kept while a consumer (metrics) has not read them, however old...
    assert sweep(store, now + 8 * day) == 0
    advance(store, "metrics", first[-1].id, now)
    store.plan(now)  # the planner's own cursor (it plans from the successes) passes them too
    assert sweep(store, now + 6 * day) == 0  # ...and for a week after
    assert sweep(store, now + 8 * day) == len(first)
    # A consumer that stopped reading keeps them a month at most.
    run.clock.advance(MINUTE)
    store.plan(run.now())
    later = settled_events(store, "alerts", now)
    assert later and later[0].id > first[-1].id
    assert sweep(store, run.now() + 8 * day) == 0
    assert sweep(store, run.now() + 31 * day) == len(later)
    assert next_events(store, "alerts", now) == []


def test_an_event_committed_late_is_not_passed_over_on_postgresql(tmp_path: Path) -> None:
    """PostgreSQL hands out event ids as rows are written, not as transactions commit: a
    consumer that read the event of a transaction that committed first must still get the
    lower id of one that commits after it (SQLite has one writer: ids are in commit order)."""
    for url in new_database_url("postgres", tmp_path):
        with Store.open(url) as store:
            run = Instance(
                store, [node("a", "DIDE_SHELL", "true"), node("b", "DIDE_SHELL", "true")]
            )
            now = run.now()
            assert next_events(store, "alerts", now) == []
            with store.write() as slow:
                transitions.move(
                    slow.conn, [run.tasks["a"]], S.NOT_RUN, S.WAIT_TIME, Cause.PLAN, now
                )
                with store.write() as fast:  # a second connection: takes the next id, commits
                    transitions.move(
                        fast.conn, [run.tasks["b"]], S.NOT_RUN, S.WAIT_TIME, Cause.PLAN, now
                    )
                assert next_events(store, "alerts", now) == []  # `a` is not settled yet
            found = settled_events(store, "alerts", now)
            assert [e.instance_id for e in found] == [run.tasks["a"], run.tasks["b"]]
            assert found[0].id < found[1].id
            advance(store, "alerts", found[-1].id, now)
            assert next_events(store, "alerts", now) == []
