"""Engine II through the official SDK over real HTTP (both databases): every type of
CreateWorkflowInstances run by a real engine, the operations on workflow and task
instances, their refusals, and the operation log.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_dataworks_public20240518.client import Client as SdkClient

from dwsched.clock import SystemClock
from dwsched.domain.calendar import day_start_ms
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from tests.api.sdk_helpers import sdk_error
from tests.engine.test_engine import TZ, flow, node
from tests.support.databases import BACKENDS, new_database_url
from tests.support.factories import project
from tests.support.server import LiveServer, running_server

M = models


@contextlib.contextmanager
def engine_beside(url: str) -> Iterator[LiveServer]:
    """A server on `url` with the engine running beside it, as `dwsched serve` runs it."""
    with running_server(url) as server:
        service = Service(server.store, SystemClock(), WorkerSettings(slots=4), tick_s=0.05)
        service.start()
        try:
            yield server
        finally:
            service.stop()


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A server and engine of the test's own, on a database of its own."""
    with engine_beside(db_url) as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def refusing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server and engine per backend for the tests whose requests are all refused: they
    create nothing, so they cannot disturb each other, and each works in a workspace of its
    own (Space), as the tests on `live` do."""
    for url in new_database_url(request.param, tmp_path_factory.mktemp("refusing")):
        with engine_beside(url) as server:
            yield server


class Space:
    """A workspace on the live server, with helpers to deploy and run workflows."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.sdk: SdkClient = live.sdk()
        self.project = project(live.store)

    def deploy(self, spec: dict[str, Any]) -> tuple[int, dict[str, int]]:
        job = self.sdk.import_workflow_definition(
            M.ImportWorkflowDefinitionRequest(project_id=self.project.id, spec=json.dumps(spec))
        ).body.async_job
        assert job.status == "Success", job.error
        workflow_id = self.sdk.get_workflow_definition(
            M.GetWorkflowDefinitionRequest(id=job.response)
        ).body.workflow_definition.workflow_id
        workflow = self.sdk.get_workflow(M.GetWorkflowRequest(id=workflow_id)).body.workflow
        return workflow_id, {t.name: t.id for t in workflow.tasks}

    def create(self, **fields: Any) -> str:
        fields.setdefault("project_id", self.project.id)
        fields.setdefault("name", "run")
        request = M.CreateWorkflowInstancesRequest(**fields)
        return str(self.sdk.create_workflow_instances(request).body.operation_id)

    def result(self, operation_id: str, timeout_s: float = 15) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.sdk.get_create_workflow_instances_result(
                M.GetCreateWorkflowInstancesResultRequest(operation_id=operation_id)
            ).body.result
            if found.status != "Creating" or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def instance(self, instance_id: int) -> Any:
        return self.sdk.get_workflow_instance(
            M.GetWorkflowInstanceRequest(id=instance_id)
        ).body.workflow_instance

    def wait(
        self, ids: list[int], want: Callable[[Any], bool] | None = None, timeout_s: float = 30
    ) -> list[Any]:
        """The instances once each is finished (or satisfies `want`)."""
        ok = want or (lambda i: i.status in ("Success", "Failure"))
        deadline = time.monotonic() + timeout_s
        while True:
            found = [self.instance(i) for i in ids]
            if all(ok(i) for i in found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError([(i.id, i.status) for i in found])
            time.sleep(0.1)

    def tasks(self, instance: Any) -> dict[str, Any]:
        items = self.sdk.list_task_instances(
            M.ListTaskInstancesRequest(
                project_id=self.project.id,
                bizdate=instance.biz_date,
                workflow_instance_id=instance.id,
                page_size=100,
            )
        ).body.paging_info.task_instances
        return {t.task_name: t for t in items}

    def task(self, task_instance_id: int) -> Any:
        return self.sdk.get_task_instance(
            M.GetTaskInstanceRequest(id=task_instance_id)
        ).body.task_instance

    def wait_task(
        self, task_instance_id: int, want: Callable[[Any], bool], timeout_s: float = 30
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.task(task_instance_id)
            if want(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError((task_instance_id, found.status))
            time.sleep(0.1)

    def log(self, task_instance_id: int, run: int | None = None) -> str:
        return str(
            self.sdk.get_task_instance_log(
                M.GetTaskInstanceLogRequest(id=task_instance_id, run_number=run)
            ).body.task_instance_log
        )

    def biz_ms(self, day: date) -> int:
        return day_start_ms(day, TZ)

    def listed(self, day: date, **filters: Any) -> list[Any]:
        return list(
            self.sdk.list_workflow_instances(
                M.ListWorkflowInstancesRequest(
                    project_id=self.project.id, biz_date=self.biz_ms(day), page_size=100, **filters
                )
            ).body.paging_info.workflow_instances
        )


def periods(*ranges: tuple[str, str], start: str | None = None, end: str | None = None) -> Any:
    return M.CreateWorkflowInstancesRequestPeriods(
        biz_dates=[
            M.CreateWorkflowInstancesRequestPeriodsBizDates(start_biz_date=a, end_biz_date=b)
            for a, b in ranges
        ],
        start_time=start,
        end_time=end,
    )


def props(**fields: Any) -> Any:
    return M.CreateWorkflowInstancesRequestDefaultRunProperties(**fields)


def manual_flow(nodes: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    spec = flow(nodes, **strategy)
    spec["kind"] = "ManualWorkflow"
    spec["spec"]["workflows"][0]["trigger"] = {"type": "Manual", "timezone": TZ}
    return spec


def days_ago(n: int) -> date:
    return datetime.now(ZoneInfo(TZ)).date() - timedelta(days=n)


def success_info(response: Any) -> dict[str, tuple[bool, str]]:
    return {k: (v.success, v.message) for k, v in response.body.success_info.items()}


# CreateWorkflowInstances, every type


def test_backfill_runs_chosen_tasks_per_bizdate_in_order_with_parallelism(
    live: LiveServer, tmp_path: Path
) -> None:
    space = Space(live)
    marks = tmp_path / "marks"
    workflow_id, tasks = space.deploy(
        flow(
            [
                node("extract", "DIDE_SHELL", "echo extract $bizdate"),
                node(
                    "load",
                    "DIDE_SHELL",
                    f"echo start $bizdate ${{x}} >> {marks}; sleep 0.6; "
                    f"echo end $bizdate >> {marks}",
                    after="extract",
                    script_parameters=[{"name": "x", "value": "deployed"}],
                ),
                node("report", "VIRTUAL", after="load"),
            ]
        )
    )
    d = [days_ago(n) for n in (10, 9, 8, 3)]
    operation = space.create(
        type="SupplementData",
        workflow_id=workflow_id,
        periods=periods((d[0].isoformat(), d[2].isoformat()), (d[3].isoformat(), d[3].isoformat())),
        default_run_properties=props(
            mode="ManualSelection", root_task_ids=[tasks["load"]], parallelism=2, order="Desc"
        ),
        task_parameters=json.dumps({str(tasks["load"]): "x=hello"}),
        tags=[M.CreateWorkflowInstancesRequestTags(key="ticket", value="OPS-1")],
        comment="after the fix",
    )
    result = space.result(operation)
    assert result.status == "Created", result.failure_message
    assert len(result.workflow_instance_ids) == 4
    assert len(set(result.unified_workflow_instance_ids)) == 4  # one per BizDate
    assert len(result.workflow_task_instance_ids) == 4
    done = space.wait(result.workflow_instance_ids)
    assert {i.status for i in done} == {"Success"}
    assert {i.type for i in done} == {"SupplementData"}
    assert sorted(i.biz_date for i in done) == [space.biz_ms(x) for x in d]
    assert all([(t.key, t.value) for t in i.tags] == [("ticket", "OPS-1")] for i in done)
    # Desc: the latest BizDate starts first; two at a time.
    lines = [line.split() for line in marks.read_text().splitlines()]
    starts = [words[1] for words in lines if words[0] == "start"]
    key = [x.strftime("%Y%m%d") for x in d]
    assert set(starts[:2]) == {key[3], key[2]} and set(starts[2:]) == {key[1], key[0]}
    running, most = 0, 0
    for word in marks.read_text().splitlines():
        running += 1 if word.startswith("start") else -1
        most = max(most, running)
    assert most == 2
    # Only the chosen task ran; the others were SkipUnchoose dry runs.
    listed = space.tasks(done[0])
    assert listed["load"].trigger_recurrence == "Normal"
    assert listed["extract"].trigger_recurrence == "SkipUnchoose"
    assert listed["report"].trigger_recurrence == "SkipUnchoose"
    assert "hello" in marks.read_text()
    assert space.log(listed["extract"].id) == ""
    assert {t.workflow_instance_type for t in listed.values()} == {"SupplementData"}
    # Visible through ListWorkflowInstances with the type and the unified id.
    (one,) = space.listed(d[3], type="SupplementData")
    assert one.unified_workflow_instance_id in result.unified_workflow_instance_ids
    assert one.name == "run"


def test_backfill_of_an_hourly_workflow_keeps_the_cycles_inside_the_period(
    live: LiveServer,
) -> None:
    space = Space(live)
    workflow_id, tasks = space.deploy(flow([node("tick", "VIRTUAL")], cron="00 00 */6 * * ?"))
    day = days_ago(5)
    operation = space.create(
        type="SupplementData",
        workflow_id=workflow_id,
        periods=periods((day.isoformat(), day.isoformat()), start="05:00:00", end="13:00:00"),
        default_run_properties=props(root_task_ids=[tasks["tick"]], parallelism=1),
    )
    result = space.result(operation)
    assert result.status == "Created", result.failure_message
    done = space.wait(result.workflow_instance_ids)
    assert len(done) == 2  # the 06:00 and 12:00 cycles of the run date
    assert len({i.unified_workflow_instance_id for i in done}) == 1  # one trigger, one BizDate
    assert result.unified_workflow_instance_ids == [done[0].unified_workflow_instance_id]
    hours = sorted(
        (t.trigger_time - space.biz_ms(day + timedelta(days=1))) // 3_600_000
        for i in done
        for t in space.tasks(i).values()
    )
    assert hours == [6, 12]


def test_backfill_modes_choose_tasks(live: LiveServer) -> None:
    space = Space(live)
    workflow_id, t = space.deploy(
        flow(
            [
                node("a", "VIRTUAL"),
                node("b", "VIRTUAL", after="a"),
                node("c", "VIRTUAL", after="b"),
                node("d", "VIRTUAL", after="c"),
            ]
        )
    )
    day = days_ago(2).isoformat()
    cases = {
        "General": (props(mode="General", root_task_ids=[t["b"]], include_task_ids=[t["c"]]), "bc"),
        "Chain": (props(mode="Chain", include_task_ids=[t["b"], t["d"]]), "bcd"),
        "AllDownstream": (
            props(mode="AllDownstream", root_task_ids=[t["b"]], exclude_task_ids=[t["d"]]),
            "bc",
        ),
        "ManualSelection": (props(root_task_ids=[t["a"], t["d"]]), "ad"),
    }
    # All four at once (the engine runs them side by side), then each checked.
    operations = {
        mode: space.create(
            type="SupplementData",
            workflow_id=workflow_id,
            periods=periods((day, day)),
            default_run_properties=run_props,
        )
        for mode, (run_props, _) in cases.items()
    }
    for mode, (_, chosen) in cases.items():
        result = space.result(operations[mode])
        assert result.status == "Created", (mode, result.failure_message)
        (done,) = space.wait(result.workflow_instance_ids)
        ran = {n for n, x in space.tasks(done).items() if x.trigger_recurrence == "Normal"}
        assert ran == set(chosen), mode
        assert done.status == "Success"


def test_backfill_with_workflow_id_1_runs_tasks_of_any_scheduled_workflow(
    live: LiveServer,
) -> None:
    space = Space(live)
    first, t1 = space.deploy(flow([node("one", "VIRTUAL")]))
    second, t2 = space.deploy(flow([node("two", "VIRTUAL"), node("three", "VIRTUAL")]))
    # Two days back: the cycle of yesterday's BizDate is due at 02:30 today, which may be ahead.
    day = days_ago(2).isoformat()
    operation = space.create(
        type="SupplementData",
        workflow_id=1,
        periods=periods((day, day)),
        default_run_properties=props(root_task_ids=[t1["one"], t2["two"]], parallelism=1),
    )
    result = space.result(operation)
    assert result.status == "Created", result.failure_message
    done = space.wait(result.workflow_instance_ids)
    assert sorted(i.workflow_id for i in done) == sorted([first, second])
    assert len({i.unified_workflow_instance_id for i in done}) == 1  # same BizDate, one trigger
    tasks = {n: x.trigger_recurrence for i in done for n, x in space.tasks(i).items()}
    assert tasks == {"one": "Normal", "two": "Normal", "three": "SkipUnchoose"}


def test_smoke_test_manual_manual_workflow_and_trigger_workflow(
    live: LiveServer, tmp_path: Path
) -> None:
    space = Space(live)
    cycle_id, cycle_tasks = space.deploy(
        flow(
            [
                node("a", "DIDE_SHELL", "echo smoke $bizdate"),
                node("b", "DIDE_SHELL", "echo b", after="a"),
            ]
        )
    )
    manual_id, manual_tasks = space.deploy(
        manual_flow(
            [
                node(
                    "m1",
                    "DIDE_SHELL",
                    "echo region=${region}",
                    script_parameters=[{"name": "region", "value": "deployed"}],
                ),
                node("m2", "PYTHON", "print('m2 $bizdate')", after="m1"),
            ]
        )
    )
    trigger_spec = flow([node("t1", "DIDE_SHELL", "echo triggered")])
    trigger_spec["spec"]["workflows"][0]["trigger"] = {"type": "TriggerWorkflow", "timezone": TZ}
    trigger_id, _ = space.deploy(trigger_spec)
    day = days_ago(3)
    runs = {
        "SmokeTest": dict(
            workflow_id=cycle_id,
            default_run_properties=props(root_task_ids=[cycle_tasks["a"]]),
            periods=periods((day.isoformat(), day.isoformat())),
        ),
        "Manual": dict(
            workflow_id=1, default_run_properties=props(root_task_ids=[manual_tasks["m1"]])
        ),
        "ManualWorkflow": dict(
            workflow_id=manual_id, workflow_parameters=json.dumps({"region": "hz"})
        ),
        "TriggerWorkflow": dict(workflow_id=trigger_id),
    }
    # All four at once (the engine runs them side by side), then each checked.
    before = days_ago(1)
    operations = {
        kind: space.create(type=kind, name=f"{kind} run", **f) for kind, f in runs.items()
    }
    after = days_ago(1)  # a Shanghai midnight may fall between the two
    made = {}
    for kind in runs:
        result = space.result(operations[kind])
        assert result.status == "Created", (kind, result.failure_message)
        (made[kind],) = space.wait(result.workflow_instance_ids)
        assert made[kind].type == kind
        assert made[kind].status == "Success", kind
    smoke = space.tasks(made["SmokeTest"])
    assert made["SmokeTest"].biz_date == space.biz_ms(day)
    assert "smoke " + day.strftime("%Y%m%d") in space.log(smoke["a"].id)
    assert smoke["b"].trigger_recurrence == "SkipUnchoose"
    # No Periods: yesterday in the workspace's zone, when the run was created.
    manual_day = made["ManualWorkflow"].biz_date
    (yesterday,) = {d for d in (before, after) if space.biz_ms(d) == manual_day}
    manual = space.tasks(made["ManualWorkflow"])
    assert "region=hz" in space.log(manual["m1"].id)
    assert "m2 " + yesterday.strftime("%Y%m%d") in space.log(manual["m2"].id)
    assert {t.trigger_type for t in manual.values()} == {"Manual"}
    assert space.tasks(made["Manual"])["m2"].trigger_recurrence == "SkipUnchoose"
    # ListWorkflowInstances filters by each type.
    assert [i.id for i in space.listed(yesterday, type="ManualWorkflow")] == [
        made["ManualWorkflow"].id
    ]


def test_instances_created_without_auto_start_wait_for_start(live: LiveServer) -> None:
    space = Space(live)
    workflow_id, _ = space.deploy(manual_flow([node("only", "DIDE_SHELL", "echo started")]))
    result = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id, auto_start_enabled=False)
    )
    (instance_id,) = result.workflow_instance_ids
    time.sleep(1.5)  # the engine plans every second: it must not start it
    assert space.instance(instance_id).status == "NotRun"
    started = space.sdk.start_workflow_instances(
        M.StartWorkflowInstancesRequest(ids=[instance_id, 999_999], comment="go")
    )
    info = success_info(started)
    assert info[str(instance_id)] == (True, "OK")
    assert info["999999"] == (False, "The instance does not exist.")
    (done,) = space.wait([instance_id])
    assert done.status == "Success"
    again = success_info(
        space.sdk.start_workflow_instances(M.StartWorkflowInstancesRequest(ids=[instance_id]))
    )
    assert again[str(instance_id)][0] is False
    assert "started already" in again[str(instance_id)][1]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            dict(periods=periods(*[(f"2025-01-0{d}", f"2025-01-0{d}") for d in range(1, 9)])),
            "Periods.BizDates",
        ),
        (dict(default_run_properties=props(mode="Chain", include_task_ids=[1])), "IncludeTaskIds"),
        (dict(default_run_properties=props(mode="General", root_task_ids=[])), "RootTaskIds"),
        (dict(default_run_properties=props(root_task_ids=[987_654])), "RootTaskIds"),
        (dict(workflow_parameters="a=1"), "WorkflowParameters"),
        (dict(default_run_properties=props(parallelism=11)), "Parallelism"),
        (dict(default_run_properties=props(order="Sideways")), "Order"),
        (dict(periods=periods(("2099-01-01", "2099-01-02"))), "Periods"),
        (dict(periods=periods(("2025-01-05", "2025-01-01"))), "Periods.BizDates[1]"),
        (dict(periods=periods(("2025-1-5", "2025-01-06"))), "StartBizDate"),
        (
            dict(periods=periods(("2025-01-05", "2025-01-05"), start="25:00:00", end="26:00:00")),
            "Periods.StartTime",
        ),
        (dict(task_parameters=json.dumps({"abc": "x=1"})), "TaskParameters"),
        (dict(task_parameters=json.dumps({"987654": "x=1"})), "TaskParameters"),
        (dict(type="Normal"), "Type"),
        (dict(type="ManualWorkflow", workflow_id=None), "WorkflowId"),
        (dict(tag_creation_policy="Replace"), "TagCreationPolicy"),
    ],
)
def test_invalid_requests_name_the_parameter_and_create_nothing(
    refusing: LiveServer, fields: dict[str, Any], param: str
) -> None:
    space = Space(refusing)
    workflow_id, tasks = space.deploy(flow([node("a", "VIRTUAL")]))
    request: dict[str, Any] = dict(
        type="SupplementData",
        workflow_id=1,
        periods=periods(("2025-01-01", "2025-01-01")),
        default_run_properties=props(root_task_ids=[tasks["a"]]),
    )
    request.update(fields)
    if request.get("workflow_id") is None:
        request["workflow_id"] = workflow_id  # a cycle workflow: not for ManualWorkflow
    error = sdk_error(lambda: space.create(**request))
    assert error.code == "InvalidParameter", error
    assert param in error.message, error.message
    assert space.listed(date(2025, 1, 1)) == []


def test_unknown_workflow_and_wrong_workflow_kind_are_invalid(refusing: LiveServer) -> None:
    space = Space(refusing)
    manual_id, _tasks = space.deploy(manual_flow([node("m", "VIRTUAL")]))
    for fields in (
        dict(type="ManualWorkflow", workflow_id=123_456),
        dict(
            type="SupplementData",
            workflow_id=manual_id,
            periods=periods(("2025-01-01", "2025-01-01")),
        ),
        dict(type="TriggerWorkflow", workflow_id=manual_id),
    ):
        error = sdk_error(lambda fields=fields: space.create(**fields))
        assert (error.code, "WorkflowId" in error.message) == ("InvalidParameter", True), error
    other = project(refusing.store)
    error = sdk_error(
        lambda: space.create(project_id=other.id, type="ManualWorkflow", workflow_id=manual_id)
    )
    assert "WorkflowId" in error.message
    missing = sdk_error(
        lambda: space.sdk.get_create_workflow_instances_result(
            M.GetCreateWorkflowInstancesResultRequest(operation_id="nope")
        )
    )
    assert missing.code == "Invalid.Operation.NotExist"


# Operations on task instances


def test_task_operations_follow_the_transition_rules(live: LiveServer, tmp_path: Path) -> None:
    space = Space(live)
    flag = tmp_path / "fixed"
    workflow_id, _ = space.deploy(
        manual_flow(
            [
                node("load", "DIDE_SHELL", f"test -f {flag} && echo loaded || exit 4"),
                node("after", "DIDE_SHELL", "echo after", after="load"),
            ],
            rerunTimes=0,
        )
    )
    (instance_id,) = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id)
    ).workflow_instance_ids
    (failed,) = space.wait([instance_id])
    assert failed.status == "Failure"
    tasks = space.tasks(failed)
    load, after = tasks["load"], tasks["after"]
    assert (load.status, after.status) == ("Failure", "NotRun")

    def op(call: Callable[[Any], Any], request: Any) -> dict[str, tuple[bool, str]]:
        return success_info(call(request))

    # Not allowed in these statuses: refused per id, nothing changes.
    refused = op(space.sdk.resume_task_instances, M.ResumeTaskInstancesRequest(ids=[load.id]))
    assert refused[str(load.id)][0] is False and "not suspended" in refused[str(load.id)][1]
    refused = op(
        space.sdk.rerun_task_instances, M.RerunTaskInstancesRequest(ids=[after.id, 424242])
    )
    assert refused[str(after.id)][0] is False and "has not finished" in refused[str(after.id)][1]
    assert refused["424242"] == (False, "The instance does not exist.")
    # Suspend the waiting downstream task, then fix and rerun the failure.
    assert op(space.sdk.suspend_task_instances, M.SuspendTaskInstancesRequest(ids=[after.id])) == {
        str(after.id): (True, "OK")
    }
    again = op(space.sdk.suspend_task_instances, M.SuspendTaskInstancesRequest(ids=[after.id]))
    assert "already suspended" in again[str(after.id)][1]
    flag.write_text("")
    rerun = op(
        space.sdk.rerun_task_instances,
        M.RerunTaskInstancesRequest(ids=[load.id], use_latest_config=True, comment="fixed"),
    )
    assert rerun == {str(load.id): (True, "OK")}
    space.wait_task(load.id, lambda t: t.status == "Success")
    time.sleep(1.2)  # the suspended task must not run
    frozen = space.task(after.id)
    assert (frozen.status, frozen.operation_type) == ("NotRun", "Suspend")
    assert space.instance(instance_id).status == "NotRun"
    assert op(space.sdk.resume_task_instances, M.ResumeTaskInstancesRequest(ids=[after.id])) == {
        str(after.id): (True, "OK")
    }
    (done,) = space.wait([instance_id])
    assert done.status == "Success"
    # The rerun history: run 1 failed, run 2 succeeded, each with its log.
    history = space.sdk.list_task_instances(
        M.ListTaskInstancesRequest(project_id=space.project.id, bizdate=done.biz_date, id=load.id)
    ).body.paging_info.task_instances
    assert sorted((h.run_number, h.status) for h in history) == [(1, "Failure"), (2, "Success")]
    assert "loaded" in space.log(load.id, 2) and "loaded" not in space.log(load.id, 1)
    # Stop and set-success are refused on finished instances.
    stop = op(space.sdk.stop_task_instances, M.StopTaskInstancesRequest(ids=[load.id]))
    assert "already ended" in stop[str(load.id)][1]
    ok = op(space.sdk.set_success_task_instances, M.SetSuccessTaskInstancesRequest(ids=[load.id]))
    assert "already succeeded" in ok[str(load.id)][1]
    # The operation log says who did what.
    logs = space.sdk.list_task_instance_operation_logs(
        M.ListTaskInstanceOperationLogsRequest(id=load.id)
    ).body.paging_info
    assert [entry.operation_content for entry in logs.operation_logs] == ["rerun: fixed"]
    assert logs.operation_logs[0].user == "0"  # the tenant's own key: its account id
    suspended_log = space.sdk.list_task_instance_operation_logs(
        M.ListTaskInstanceOperationLogsRequest(id=after.id)
    ).body.paging_info.operation_logs
    assert [e.operation_content for e in suspended_log] == ["suspended", "resumed"]


def test_set_success_unblocks_downstream_and_rerun_mode_is_enforced(live: LiveServer) -> None:
    space = Space(live)
    workflow_id, _ = space.deploy(
        manual_flow(
            [
                node("broken", "DIDE_SHELL", "exit 1"),
                node("next", "DIDE_SHELL", "echo next", after="broken"),
            ],
            rerunTimes=0,
            rerunMode="FailureAllowed",
        )
    )
    (instance_id,) = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id)
    ).workflow_instance_ids
    (failed,) = space.wait([instance_id])
    tasks = space.tasks(failed)
    info = success_info(
        space.sdk.set_success_task_instances(
            M.SetSuccessTaskInstancesRequest(ids=[tasks["broken"].id])
        )
    )
    assert info == {str(tasks["broken"].id): (True, "OK")}
    (_done,) = space.wait([instance_id], lambda i: i.status == "Success")
    assert "next" in space.log(tasks["next"].id)
    refused = success_info(
        space.sdk.rerun_task_instances(M.RerunTaskInstancesRequest(ids=[tasks["next"].id]))
    )
    assert "FailureAllowed" in refused[str(tasks["next"].id)][1]


def test_stop_kills_the_running_process_group(live: LiveServer, tmp_path: Path) -> None:
    space = Space(live)
    workflow_id, _ = space.deploy(
        manual_flow(
            [
                node(
                    "long",
                    "DIDE_SHELL",
                    f"echo $$ > {tmp_path}/$DWSCHED_WORKFLOW_INSTANCE_ID; sleep 60",
                )
            ],
            rerunTimes=0,
        )
    )
    operations = [space.create(type="ManualWorkflow", workflow_id=workflow_id) for _ in range(2)]
    (first, second) = [space.result(o).workflow_instance_ids[0] for o in operations]
    pid_file = tmp_path / str(first)
    space.wait([first], lambda i: i.status == "Running")
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    task = space.tasks(space.instance(first))["long"]
    info = success_info(space.sdk.stop_task_instances(M.StopTaskInstancesRequest(ids=[task.id])))
    assert info == {str(task.id): (True, "OK")}
    (stopped,) = space.wait([first])
    assert stopped.status == "Failure"
    deadline = time.monotonic() + 5
    while _alive(pid):
        assert time.monotonic() < deadline, "the process survived the stop"
        time.sleep(0.05)
    assert "stopped by" in space.log(task.id)
    # StopWorkflowInstances: the whole instance, whatever its tasks are doing.
    space.wait([second], lambda i: i.status in ("Running", "WaitResource", "NotRun"))
    info = success_info(
        space.sdk.stop_workflow_instances(M.StopWorkflowInstancesRequest(ids=[second, first]))
    )
    assert info[str(second)] == (True, "OK")
    assert info[str(first)][0] is False and "already ended" in info[str(first)][1]
    (ended,) = space.wait([second])
    assert ended.status == "Failure"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}/stat").exists() and ") Z " not in Path(f"/proc/{pid}/stat").read_text()
    )


def test_rerun_workflow_instances_reruns_failures_and_downstream(
    live: LiveServer, tmp_path: Path
) -> None:
    space = Space(live)
    flag = tmp_path / "ok"
    workflow_id, _ = space.deploy(
        manual_flow(
            [
                node("good", "DIDE_SHELL", "echo good"),
                node("flaky", "DIDE_SHELL", f"test -f {flag} || exit 2", after="good"),
                node("last", "DIDE_SHELL", "echo last", after="flaky"),
            ],
            rerunTimes=0,
        )
    )
    (instance_id,) = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id, name="nightly")
    ).workflow_instance_ids
    (failed,) = space.wait([instance_id])
    assert failed.status == "Failure"
    flag.write_text("")
    operation = space.sdk.rerun_workflow_instances(
        M.RerunWorkflowInstancesRequest(
            project_id=space.project.id,
            type="ManualWorkflow",
            workflow_id=workflow_id,
            ids=[instance_id],
            name="night",
            filter=M.RerunWorkflowInstancesRequestFilter(
                task_instance_statuses=["Failure"], rerun_downstream_enabled=True
            ),
        )
    ).body.operation_id
    result = space.sdk.get_rerun_workflow_instances_result(
        M.GetRerunWorkflowInstancesResultRequest(operation_id=operation)
    ).body.result
    assert (result.status, result.failure_message) == ("Success", "")
    (done,) = space.wait([instance_id], lambda i: i.status == "Success")
    tasks = space.tasks(done)
    assert (tasks["good"].run_number, tasks["flaky"].run_number) == (1, 2)
    # Nothing matches now (no Failure task): the operation fails and says why.
    none = space.sdk.rerun_workflow_instances(
        M.RerunWorkflowInstancesRequest(
            project_id=space.project.id,
            type="ManualWorkflow",
            workflow_id=workflow_id,
            filter=M.RerunWorkflowInstancesRequestFilter(task_instance_statuses=["Failure"]),
        )
    ).body.operation_id
    result = space.sdk.get_rerun_workflow_instances_result(
        M.GetRerunWorkflowInstancesResultRequest(operation_id=none)
    ).body.result
    assert result.status == "Failure" and "matches" in result.failure_message
    error = sdk_error(
        lambda: space.sdk.rerun_workflow_instances(
            M.RerunWorkflowInstancesRequest(
                project_id=space.project.id, type="SupplementData", workflow_id=workflow_id
            )
        )
    )
    assert error.code == "InvalidParameter" and "Type" in error.message


def test_http_trigger_node_waits_for_its_trigger(db_url: str) -> None:
    """A SCHEDULER_TRIGGER node waits in WaitTrigger at its time until
    TriggerSchedulerTaskInstance fires it; fired early, it passes at once (manual clock)."""
    from tests.engine.test_engine import Run

    with running_server(db_url) as live:
        run = Run(
            live,
            flow(
                [
                    node("gate", "SCHEDULER_TRIGGER"),
                    node("work", "DIDE_SHELL", "echo after the gate", after="gate"),
                ],
                cron="00 30 02 * * ?",
            ),
        )
        sdk = live.sdk()
        tasks = sdk.get_workflow(M.GetWorkflowRequest(id=run.workflow_id)).body.workflow.tasks
        gate_id = next(t.id for t in tasks if t.name == "gate")
        run.service.scheduler.generate()
        trigger = run.at(run.first, 2, 30)
        run.clock.advance(trigger - run.clock.now_ms())
        run.service.tick()
        (instance,) = run.instances()
        space = Space(live)
        space.project = run.project
        gate = space.tasks(instance)["gate"]
        assert (gate.status, instance.status) == ("WaitTrigger", "WaitTime")
        time.sleep(0.2)
        run.service.tick()
        assert space.task(gate.id).status == "WaitTrigger"  # nothing runs it but the call
        missing = sdk_error(
            lambda: sdk.trigger_scheduler_task_instance(
                M.TriggerSchedulerTaskInstanceRequest(task_id=gate_id, trigger_time=trigger + 1)
            )
        )
        assert missing.code == "Invalid.TaskInstance.NotExist"
        assert "no Prod instance" in missing.message
        fired = sdk.trigger_scheduler_task_instance(
            M.TriggerSchedulerTaskInstanceRequest(
                task_id=gate_id, trigger_time=trigger, env_type="Prod"
            )
        )
        assert fired.body.success is True
        assert space.task(gate.id).status == "Success"
        # (The API's clock is the real one: its own planning sees `work` before its time;
        # the engine's manual clock, past it, moves it on.)
        run.clock.advance(2 * 1000)
        run.run_until_done()
        assert run.status() == "Success"
        work = space.tasks(run.instances()[0])["work"]
        assert "after the gate" in space.log(work.id)
        again = sdk_error(
            lambda: sdk.trigger_scheduler_task_instance(
                M.TriggerSchedulerTaskInstanceRequest(task_id=gate_id, trigger_time=trigger)
            )
        )
        assert again.code == "InvalidParameter" and "already ended" in again.message
        logs = sdk.list_task_instance_operation_logs(
            M.ListTaskInstanceOperationLogsRequest(id=gate.id)
        ).body.paging_info
        assert [e.operation_content for e in logs.operation_logs] == ["triggered"]
        future = sdk_error(
            lambda: sdk.list_task_instance_operation_logs(
                M.ListTaskInstanceOperationLogsRequest(id=gate.id, date=trigger + 40 * 86_400_000)
            )
        )
        assert future.code == "InvalidParameter" and "Date" in future.message


def test_run_policy_window_immediately_priority_and_resource_group(live: LiveServer) -> None:
    space = Space(live)
    workflow_id, tasks = space.deploy(flow([node("t", "DIDE_SHELL", "echo ran")]))
    now = datetime.now(ZoneInfo(TZ))
    later = (now + timedelta(hours=2)).strftime("%H:%M:%S")
    much_later = (now + timedelta(hours=3)).strftime("%H:%M:%S")

    def start(day: date, **run: Any) -> str:
        return space.create(
            type="SupplementData",
            workflow_id=workflow_id,
            periods=periods((day.isoformat(), day.isoformat())),
            default_run_properties=props(root_task_ids=[tasks["t"]], **run),
        )

    def created(operation_id: str) -> list[int]:
        result = space.result(operation_id)
        assert result.status == "Created", result.failure_message
        return list(result.workflow_instance_ids)

    # The four backfills are created at once (the engine takes them side by side).
    # Outside its RunPolicy window, a backfill's BizDate waits (NotRun) to start.
    outside = start(
        days_ago(4),
        run_policy=M.CreateWorkflowInstancesRequestDefaultRunPropertiesRunPolicy(
            type="Daily", start_time=later, end_time=much_later
        ),
    )
    # Inside it (a window around now, across midnight if need be), it runs.
    within = start(
        days_ago(5),
        run_policy=M.CreateWorkflowInstancesRequestDefaultRunPropertiesRunPolicy(
            type="Daily",
            start_time=(now - timedelta(hours=1)).strftime("%H:%M:%S"),
            end_time=(now + timedelta(hours=1)).strftime("%H:%M:%S"),
        ),
    )
    # Today's BizDate runs tomorrow at 02:30 unless Immediately; with Immediately, now.
    later_today = start(days_ago(0))
    immediately = start(
        days_ago(0),
        run_policy=M.CreateWorkflowInstancesRequestDefaultRunPropertiesRunPolicy(immediately=True),
        priority=7,
        runtime_resource="etl",
    )
    (waiting,) = created(outside)
    (inside,) = created(within)
    (done,) = space.wait([inside])
    assert done.status == "Success"
    assert space.instance(waiting).status == "NotRun"
    (tomorrow,) = created(later_today)
    (now_run,) = created(immediately)
    (ran,) = space.wait([now_run])
    assert ran.status == "Success"
    assert space.wait([tomorrow], lambda i: i.status == "WaitTime")
    task = space.tasks(ran)["t"]
    assert (task.priority, task.runtime_resource.resource_group_id) == (7, "etl")
    assert space.tasks(space.instance(tomorrow))["t"].priority == 1
    # A bad window is refused, naming the field.
    error = sdk_error(
        lambda: start(
            days_ago(1),
            run_policy=M.CreateWorkflowInstancesRequestDefaultRunPropertiesRunPolicy(
                type="Monthly"
            ),
        )
    )
    assert error.code == "InvalidParameter" and "RunPolicy.Type" in error.message


def test_tasks_do_not_see_the_servers_environment(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DWSCHED_SECRET_KEY", "not-for-tasks")
    monkeypatch.setenv("SOME_SERVER_SETTING", "not-for-tasks-either")
    space = Space(live)
    script = 'echo "[${DWSCHED_SECRET_KEY:-hidden}] [${SOME_SERVER_SETTING:-hidden}] TZ=$TZ"'
    workflow_id, _ = space.deploy(manual_flow([node("env", "DIDE_SHELL", script)]))
    (instance_id,) = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id)
    ).workflow_instance_ids
    (done,) = space.wait([instance_id])
    assert "[hidden] [hidden] TZ=Asia/Shanghai" in space.log(space.tasks(done)["env"].id)


def test_review_findings_on_operations(live: LiveServer, tmp_path: Path) -> None:
    """Found by review: a task operation ran an instance still held for StartWorkflowInstances;
    a NUL in Tags was accepted (and then broke every creation on PostgreSQL); a deleted
    workspace's queued operations stopped the release of every other; stopping an instance
    that had already failed answered OK."""
    space = Space(live)
    marker = tmp_path / "ran"
    workflow_id, _ = space.deploy(
        manual_flow(
            [
                node("m1", "DIDE_SHELL", "exit 1"),
                node("m2", "DIDE_SHELL", f"touch {marker}", after="m1"),
            ],
            rerunTimes=0,
        )
    )
    (held,) = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id, auto_start_enabled=False)
    ).workflow_instance_ids
    m1 = space.tasks(space.instance(held))["m1"]
    assert success_info(
        space.sdk.set_success_task_instances(M.SetSuccessTaskInstancesRequest(ids=[m1.id]))
    ) == {str(m1.id): (True, "OK")}
    time.sleep(1.5)
    assert not marker.exists() and space.instance(held).status == "NotRun"
    space.sdk.start_workflow_instances(M.StartWorkflowInstancesRequest(ids=[held]))
    assert space.wait([held])[0].status == "Success" and marker.exists()

    error = sdk_error(
        lambda: space.create(
            type="ManualWorkflow",
            workflow_id=workflow_id,
            tags=[M.CreateWorkflowInstancesRequestTags(key="k", value="a\x00b")],
        )
    )
    assert error.code == "InvalidParameter" and "Tags" in error.message

    # A workspace with a queued backfill is deleted; another workspace's runs go on.
    doomed = Space(live)
    cycle_id, cycle_tasks = doomed.deploy(flow([node("slow", "DIDE_SHELL", "sleep 2")]))
    doomed.result(
        doomed.create(
            type="SupplementData",
            workflow_id=cycle_id,
            periods=periods((days_ago(4).isoformat(), days_ago(2).isoformat())),
            default_run_properties=props(root_task_ids=[cycle_tasks["slow"]], parallelism=1),
        )
    )
    doomed.sdk.update_project(M.UpdateProjectRequest(id=doomed.project.id, status="Forbidden"))
    doomed.sdk.delete_project(M.DeleteProjectRequest(id=doomed.project.id))
    other_id, _ = space.deploy(manual_flow([node("ok", "VIRTUAL")]))
    operations = [space.create(type="ManualWorkflow", workflow_id=other_id) for _ in range(3)]
    # (Created beside them, for the last finding.)
    failing = space.create(type="ManualWorkflow", workflow_id=workflow_id)
    runs = [space.result(o).workflow_instance_ids[0] for o in operations]
    assert {i.status for i in space.wait(runs)} == {"Success"}

    (failed,) = space.result(failing).workflow_instance_ids
    assert space.wait([failed])[0].status == "Failure"  # m2 waits below m1's failure
    refused = success_info(
        space.sdk.stop_workflow_instances(M.StopWorkflowInstancesRequest(ids=[failed]))
    )
    assert refused[str(failed)][0] is False and "already ended" in refused[str(failed)][1]
