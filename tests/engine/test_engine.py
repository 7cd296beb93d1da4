"""The engine end to end: workflows deployed through the official SDK, instances generated
by the scheduler under a manual clock, tasks run as real processes by the worker, statuses
read back with ListWorkflowInstances over HTTP (both databases).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_dataworks_public20240518 import models

from dwsched.clock import ManualClock
from dwsched.domain.calendar import day_start_ms
from dwsched.domain.models import Status
from dwsched.domain.schedule import InstanceMode, first_run_date, generation_time_ms
from dwsched.engine.runner import process_alive, process_identity
from dwsched.engine.service import STALE_MS, Service
from dwsched.engine.worker import WorkerSettings
from tests.cli.helpers import export
from tests.support.factories import instance, project, put
from tests.support.server import LiveServer, running_server
from tests.support.specs import qualified

TZ = "Asia/Shanghai"


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A server on a database of its own: an engine works on every instance of its
    database, so each test needs one that no other test's instances share."""
    with running_server(db_url) as server:
        yield server


SECOND = 1000


def flow(
    nodes: list[dict[str, Any]], cron: str = "00 30 02 * * ?", **strategy: Any
) -> dict[str, Any]:
    """A cycle workflow of `nodes` with a name of its own, its outputs qualified with it
    (an output name has one producer in a database)."""
    return qualified(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": f"flow_{time.monotonic_ns()}",
                        "trigger": {"type": "Scheduler", "cron": cron, "timezone": TZ},
                        "strategy": {"instanceMode": "T+1", "rerunTimes": 0, **strategy},
                        "nodes": nodes,
                    }
                ]
            },
        }
    )


def node(
    node_id: str,
    command: str,
    content: str = "",
    after: str | None = None,
    script_parameters: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": node_id,
        "name": node_id,
        "script": {
            "runtime": {"command": command},
            "content": content,
            **({"parameters": script_parameters} if script_parameters is not None else {}),
        },
        "outputs": {"nodeOutputs": [{"data": f"{node_id}_out"}]},
        **extra,
    }
    if after is not None:
        found["inputs"] = {"nodeOutputs": [{"data": f"{after}_out"}]}
    return found


class Run:
    """A deployed workflow, its engine under a manual clock, and what the SDK shows."""

    def __init__(self, live: LiveServer, spec: dict[str, Any], **settings: Any) -> None:
        self.live = live
        self.project = project(live.store)
        before = datetime.now(ZoneInfo(TZ))
        request = models.ImportWorkflowDefinitionRequest(
            project_id=self.project.id, spec=json.dumps(spec)
        )
        job = live.sdk().import_workflow_definition(request).body.async_job
        assert job.status == "Success", job
        got = live.sdk().get_workflow_definition(
            models.GetWorkflowDefinitionRequest(id=job.response)
        )
        self.workflow_id = got.body.workflow_definition.workflow_id
        # T+1: the first run date is the day after the deploy (two after, past 23:30), by
        # the deploy's own time (a 23:30 may pass during the import).
        with live.store.read() as tx:
            deployed = tx.workflows.get(self.workflow_id).deploy_time
        self.first = first_run_date(TZ, deployed, InstanceMode.T_PLUS_1)
        assert self.first - before.date() in (timedelta(days=1), timedelta(days=2))
        self.clock = ManualClock(generation_time_ms(self.first, TZ))
        self.service = Service(live.store, self.clock, WorkerSettings(slots=4, **settings))

    def biz_ms(self, run_date: date | None = None) -> int:
        return day_start_ms((run_date or self.first) - timedelta(days=1), TZ)

    def at(self, run_date: date, hour: int, minute: int = 0) -> int:
        return int(
            datetime(
                run_date.year, run_date.month, run_date.day, hour, minute, tzinfo=ZoneInfo(TZ)
            ).timestamp()
            * 1000
        )

    def instances(self, run_date: date | None = None) -> list[Any]:
        request = models.ListWorkflowInstancesRequest(
            project_id=self.project.id,
            biz_date=self.biz_ms(run_date),
            workflow_id=self.workflow_id,
            page_size=100,
            sort_by="TriggerTime Asc",
        )
        return self.live.sdk().list_workflow_instances(request).body.paging_info.workflow_instances

    def trigger_times(self, run_date: date | None = None) -> list[int]:
        """TriggerTime, which the API's item does not carry: from `dwsched export`."""
        day = ((run_date or self.first) - timedelta(days=1)).isoformat()
        url = self.live.store.database.url.render_as_string(hide_password=False)
        lines = export(url, self.project.id, "--biz-date", day)
        return sorted(i["TriggerTime"] for i in lines if i["WorkflowId"] == self.workflow_id)

    def status(self) -> str:
        (only,) = self.instances()
        return str(only.status)

    def until(self, want: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            now = self.status()
            if not seen or seen[-1] != now:
                seen.append(now)
            if now == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"never {want}; saw {seen}")

    def run_until_done(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            self.service.tick()
            self.service.worker.wait_idle()
            if self.status() in ("Success", "Failure") and not self.service.worker.busy:
                self.service.tick()
                if self.status() in ("Success", "Failure"):
                    return
        raise AssertionError(f"still {self.status()} after {rounds} rounds")


def until_exists(path: Path) -> str:
    """A shell line that waits for `path`: the task runs until the test lets it go (or a
    minute has passed, so that a failed test leaves no process behind for long)."""
    return f"n=0; while [ ! -e {path} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done"


def test_an_instance_walks_every_status(live: LiveServer, tmp_path: Path) -> None:
    extracted, checked = tmp_path / "extracted", tmp_path / "checked"
    spec = flow(
        [
            node("extract", "DIDE_SHELL", f"{until_exists(extracted)}; echo extract $bizdate"),
            node(
                "report",
                "PYTHON",
                "print('report ${yyyy-mm-dd}')",
                after="extract",
                qualityCheck={"command": f"{until_exists(checked)}; test 1 -eq 1"},
            ),
            node("done", "VIRTUAL", after="report"),
        ]
    )
    run = Run(live, spec)
    assert run.instances() == []
    run.service.scheduler.generate()
    (made,) = run.instances()
    trigger = run.at(run.first, 2, 30)
    assert (made.status, made.type, run.trigger_times()) == ("NotRun", "Normal", [trigger])
    assert made.biz_date == run.biz_ms() and made.workflow_id == run.workflow_id
    assert made.started_time is None and made.finished_time is None

    live.store.plan(run.clock.now_ms())  # before its time
    assert run.status() == "WaitTime"
    run.clock.advance(trigger - run.clock.now_ms())
    live.store.plan(run.clock.now_ms())  # its time has come: waiting for a slot
    assert run.status() == "WaitResource"
    assert run.service.worker.claim_and_start() == 1
    assert run.status() == "Running"  # extract waits for the test
    extracted.touch()
    run.service.worker.wait_idle()
    run.service.tick()  # report: ready, claimed, runs; its quality check waits for the test
    run.until("Checking")
    checked.touch()
    run.service.worker.wait_idle()
    run.run_until_done()
    (finished,) = run.instances()
    assert finished.status == "Success"
    assert finished.started_time is not None and finished.finished_time >= finished.started_time


def test_failure_is_retried_then_fails(live: LiveServer) -> None:
    spec = flow(
        [
            node("flaky", "DIDE_SHELL", "echo trying; exit 3"),
            node("after", "VIRTUAL", after="flaky"),
        ],
        rerunMode="Allowed",
        rerunTimes=1,
        rerunInterval=60_000,
    )
    run = Run(live, spec)
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.service.tick()
    run.service.worker.wait_idle()
    run.service.tick()
    assert run.status() == "WaitResource"  # the retry waits out rerunInterval
    run.clock.advance(30 * SECOND)
    run.service.tick()
    run.service.worker.wait_idle()
    assert run.status() == "WaitResource"
    run.clock.advance(31 * SECOND)
    run.service.tick()  # the second (last) attempt
    run.service.worker.wait_idle()
    run.service.tick()
    assert run.status() == "Failure"
    # ListTaskInstances with an Id gives that task instance's rerun history.
    sdk = live.sdk()
    everything = models.ListTaskInstancesRequest(project_id=run.project.id, bizdate=run.biz_ms())
    (flaky,) = [
        t
        for t in sdk.list_task_instances(everything).body.paging_info.task_instances
        if t.task_name == "flaky"
    ]
    history = models.ListTaskInstancesRequest(
        project_id=run.project.id, bizdate=run.biz_ms(), id=flaky.id
    )
    runs = sdk.list_task_instances(history).body.paging_info.task_instances
    assert [(t.run_number, t.status) for t in runs] == [(1, "Failure"), (2, "Failure")]
    assert runs[0].finished_time <= runs[1].started_time


def test_timeout_kills_the_process_group(live: LiveServer) -> None:
    spec = flow([node("slow", "DIDE_SHELL", "sleep 60 & sleep 60; wait", timeout=1)])
    run = Run(live, spec)
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    started = time.monotonic()
    run.service.tick()
    run.service.worker.wait_idle(30)
    assert time.monotonic() - started < 15
    run.service.tick()
    assert run.status() == "Failure"


def test_branch_not_chosen_is_a_dry_run(live: LiveServer) -> None:
    spec = flow(
        [
            node("start", "VIRTUAL"),
            {
                "id": "pick",
                "name": "pick",
                "script": {"runtime": {"command": "CONTROLLER_BRANCH"}},
                "inputs": {"nodeOutputs": [{"data": "start_out"}]},
                "branch": {
                    "branches": [
                        {"when": "'$bizdate' > '20000101'", "output": {"data": "yes"}},
                        {"when": "1 == 2", "output": {"data": "no"}},
                    ]
                },
            },
            {
                "id": "chosen",
                "name": "chosen",
                "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "echo chosen"},
                "inputs": {"nodeOutputs": [{"data": "yes"}]},
            },
            {
                "id": "skipped",
                "name": "skipped",
                "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "exit 1"},
                "inputs": {"nodeOutputs": [{"data": "no"}]},
            },
        ]
    )
    run = Run(live, spec)
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.run_until_done()
    assert run.status() == "Success"  # `skipped` (exit 1) never ran


def test_unconfigured_task_type_fails_and_a_configured_one_runs(live: LiveServer) -> None:
    spec = flow([node("sql", "ODPS_SQL", "select 1;")])
    run = Run(live, spec)
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.run_until_done()
    assert run.status() == "Failure"
    configured = Run(
        live, flow([node("sql", "ODPS_SQL", "select 1;")]), runners={"ODPS_SQL": "cat {script}"}
    )
    configured.clock.advance(configured.at(configured.first, 2, 30) - configured.clock.now_ms())
    configured.run_until_done()
    assert configured.status() == "Success"


def test_generation_is_idempotent_and_catches_up(live: LiveServer) -> None:
    run = Run(live, flow([node("n", "VIRTUAL")], cron="0 0 */6 * * ?"))
    run.service.tick()
    run.service.tick()
    assert run.trigger_times() == [run.at(run.first, h) for h in (0, 6, 12, 18)]
    # Down for three days: each missed run date is made once, all BizDates filled.
    run.clock.advance(3 * 86_400_000)
    for _ in range(3):
        run.service.scheduler.generate()
    for k in range(4):
        day = run.first + timedelta(days=k)
        assert len(run.instances(day)) == 4, day
    assert run.instances(run.first + timedelta(days=4)) == []


def test_weekly_schedule_makes_dry_runs_on_other_days(live: LiveServer) -> None:
    run = Run(live, flow([node("n", "DIDE_SHELL", "exit 1")], cron="0 0 3 ? * MON"))
    days = [run.first + timedelta(days=k) for k in range(7)]
    run.clock.advance(generation_time_ms(days[-1], TZ) - run.clock.now_ms())
    run.service.scheduler.generate()
    run.clock.advance(run.at(days[-1], 4) - run.clock.now_ms())
    for _ in range(3):
        run.service.tick()
        run.service.worker.wait_idle()
    statuses = {d.weekday(): run.instances(d)[0].status for d in days}
    assert statuses[0] == "Failure"  # Monday ran `exit 1`
    assert all(statuses[w] == "Success" for w in range(1, 7))  # dry runs


def test_an_attempt_whose_worker_died_is_failed_and_its_process_killed(live: LiveServer) -> None:
    run = Run(live, flow([node("long", "DIDE_SHELL", "sleep 120")]))
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.service.tick()
    assert run.status() == "Running"
    deadline = time.monotonic() + 10
    pid = identity = None
    while time.monotonic() < deadline and identity is None:
        # The process is recorded once started.
        with live.store.read() as tx:
            tasks = tx.attempts.stale(run.clock.now_ms() + 1)
            if tasks:
                pid, identity, _ = tx.attempts.process(tasks[0].id)
        time.sleep(0.05)
    assert pid is not None and identity is not None and process_alive(pid, identity)
    # The first worker goes silent; another engine on the same database finds the attempt.
    other = Service(
        live.store, ManualClock(run.clock.now_ms() + STALE_MS + SECOND), WorkerSettings()
    )
    assert other.recover() == 1  # only this test's attempt is in its database
    assert not _eventually(lambda: process_alive(pid, identity))
    run.service.worker.wait_idle()
    assert run.status() == "Failure"
    assert process_identity(pid) is None or not process_alive(pid, identity)


def _eventually(check: Callable[[], bool], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not check():
            return False
        time.sleep(0.05)
    return check()


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _task_statuses(run: Run) -> dict[str, str]:
    request = models.ListTaskInstancesRequest(
        project_id=run.project.id, bizdate=run.biz_ms(), page_size=100
    )
    paging = run.live.sdk().list_task_instances(request).body.paging_info
    return {t.task_name: t.status for t in paging.task_instances}


def test_a_full_resource_group_makes_work_wait_and_priority_goes_first(
    live: LiveServer, tmp_path: Path
) -> None:
    group = {"runtimeResource": {"resourceGroup": "etl"}}
    first, then = tmp_path / "first", tmp_path / "then"
    spec = flow(
        [
            node("low", "DIDE_SHELL", until_exists(then), priority=1, **group),
            node("high", "DIDE_SHELL", until_exists(first), priority=8, **group),
            node("elsewhere", "DIDE_SHELL", until_exists(first)),
        ]
    )
    run = Run(live, spec, group_slots={"etl": 1})
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.service.tick()
    # One slot in `etl`: the higher priority runs, the other waits for the slot; the
    # default group has room of its own.
    assert _task_statuses(run) == {"high": "Running", "low": "WaitResource", "elsewhere": "Running"}
    first.touch()
    run.service.worker.wait_idle()
    run.service.tick()
    assert _task_statuses(run)["low"] == "Running"
    then.touch()
    run.run_until_done()
    assert set(_task_statuses(run).values()) == {"Success"}


def test_imported_instances_are_records_the_engine_never_runs(live: LiveServer) -> None:
    p = project(live.store)
    waiting = instance(p.id, status=Status.NOT_RUN, started_time=None, finished_time=None)
    put(live.store, [waiting])
    service = Service(live.store, ManualClock(waiting.trigger_time + 86_400_000), WorkerSettings())
    for _ in range(3):
        service.tick()
    service.worker.wait_idle()
    got = live.sdk().get_workflow_instance(models.GetWorkflowInstanceRequest(id=waiting.id))
    assert got.body.workflow_instance.status == "NotRun"


def test_a_running_attempts_log_can_be_followed(live: LiveServer, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = f"echo started $bizdate; {until_exists(go)}; echo finished"
    run = Run(live, flow([node("talk", "DIDE_SHELL", script)]))
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.service.tick()
    request = models.ListTaskInstancesRequest(project_id=run.project.id, bizdate=run.biz_ms())
    (task,) = live.sdk().list_task_instances(request).body.paging_info.task_instances

    def log() -> str:
        got = live.sdk().get_task_instance_log(models.GetTaskInstanceLogRequest(id=task.id))
        return str(got.body.task_instance_log)

    bizdate = (run.first - timedelta(days=1)).strftime("%Y%m%d")
    deadline = time.monotonic() + 10
    while f"started {bizdate}" not in log():
        assert time.monotonic() < deadline, log()
        run.service.worker.heartbeat()  # saves what the attempt has written so far
        time.sleep(0.1)
    assert "finished" not in log()
    go.touch()
    run.service.worker.wait_idle()
    assert log().splitlines()[:2] == [f"started {bizdate}", "finished"]


def test_a_branch_is_checking_its_condition_between_claim_and_result(live: LiveServer) -> None:
    """CheckingCondition is the state a claimed branch node holds while its worker
    evaluates the conditions: claimed here with the worker's own call, seen through the
    SDK, then run by that worker."""
    spec = flow(
        [
            {
                "id": "pick",
                "name": "pick",
                "script": {"runtime": {"command": "CONTROLLER_BRANCH"}},
                "branch": {
                    "branches": [
                        {"when": "'$bizdate' != ''", "output": {"data": "yes"}},
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
        ]
    )
    run = Run(live, spec)
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.service.scheduler.generate()
    live.store.plan(run.clock.now_ms())
    worker = run.service.worker
    claims, _ = live.store.claim_tasks(worker.name, None, 4, run.clock.now_ms())
    assert [c.node.id for c in claims] == ["pick"]
    assert run.status() == "CheckingCondition"
    assert _task_statuses(run) == {"pick": "CheckingCondition", "no_path": "NotRun"}
    worker.run_claimed(claims[0])
    run.run_until_done()
    assert _task_statuses(run) == {"pick": "Success", "no_path": "Success"}  # a dry run
    assert run.status() == "Success"


def test_an_instance_blocked_below_a_failure_does_not_stall_the_planner(
    live: LiveServer,
) -> None:
    """A failed task leaves its downstream NotRun (as DataWorks does) and its instance
    Failure; the planner then passes over it, even when it looks at one instance at a
    time, so later instances still run."""
    run = Run(live, flow([node("a", "DIDE_SHELL", "exit 1"), node("b", "VIRTUAL", after="a")]))
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    run.run_until_done()
    assert run.status() == "Failure"
    assert _task_statuses(run) == {"a": "Failure", "b": "NotRun"}
    second = run.first + timedelta(days=1)
    run.clock.advance(generation_time_ms(second, TZ) - run.clock.now_ms())
    run.service.scheduler.generate()
    run.clock.advance(run.at(second, 2, 30) - run.clock.now_ms())
    assert live.store.plan(run.clock.now_ms(), limit=1) == 1  # the new instance's `a`
    (later,) = run.instances(second)
    assert later.status == "WaitResource"


def test_a_new_version_applies_from_the_next_generated_instance(live: LiveServer) -> None:
    first = flow(
        [node("say", "DIDE_SHELL", "echo version one"), node("maybe", "DIDE_SHELL", "exit 1")]
    )
    run = Run(live, first)
    run.service.scheduler.generate()  # day 1, made from version one
    second = json.loads(json.dumps(first))
    nodes = second["spec"]["workflows"][0]["nodes"]
    nodes[0]["script"]["content"] = "echo version two"
    nodes[1]["recurrence"] = "Skip"  # a dry run from now on
    request = models.ImportWorkflowDefinitionRequest(
        project_id=run.project.id, spec=json.dumps(second)
    )
    assert live.sdk().import_workflow_definition(request).body.async_job.status == "Success"
    day2 = run.first + timedelta(days=1)
    run.clock.advance(generation_time_ms(day2, TZ) - run.clock.now_ms())
    run.service.scheduler.generate()  # day 2, made from version two
    run.clock.advance(run.at(day2, 3) - run.clock.now_ms())
    for _ in range(4):
        run.service.tick()
        run.service.worker.wait_idle()

    def tasks(day: date) -> dict[str, Any]:
        request = models.ListTaskInstancesRequest(
            project_id=run.project.id, bizdate=run.biz_ms(day)
        )
        found = live.sdk().list_task_instances(request).body.paging_info.task_instances
        return {t.task_name: t for t in found}

    def log(task_id: int) -> str:
        got = live.sdk().get_task_instance_log(models.GetTaskInstanceLogRequest(id=task_id))
        return str(got.body.task_instance_log)

    one, two = tasks(run.first), tasks(day2)
    assert "version one" in log(one["say"].id) and "version two" in log(two["say"].id)
    assert (one["maybe"].status, one["maybe"].trigger_recurrence) == ("Failure", "Normal")
    assert (two["maybe"].status, two["maybe"].trigger_recurrence) == ("Success", "Skip")
    assert log(two["maybe"].id) == ""  # a dry run runs nothing
