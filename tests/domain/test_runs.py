"""domain.runs, pure: what a CreateWorkflowInstances request makes (docs/operations.md): the
workflows each type runs, the tasks chosen by Mode, the BizDates and cycles of a backfill in
order, the instance's parameters, the checks of supplied parameters, and RunPolicy windows.
(Bounds on ranges and instance counts: test_run_bounds.py.)"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dwsched.domain import flowspec
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.models import EnvType, InstanceType
from dwsched.domain.runs import (
    Mode,
    PlannedInstance,
    RunPolicy,
    RunRequest,
    check_parameters,
    in_window,
    named_workflow,
    plan_run,
)
from dwsched.domain.schedule import CycleKind
from dwsched.domain.workflows import DeployedTask, DeployedWorkflow

SH = "Asia/Shanghai"
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=ZoneInfo(SH))
NOW_MS = int(NOW.timestamp() * 1000)
T = InstanceType

# Workflow 7 (scheduled daily at 03:00):  a ─▶ b ─▶ c      task ids 71..74, node order
#                                          └──▶ d
GRAPH = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"]}


def deployed(
    workflow_id: int = 7,
    kind: str = "CycleWorkflow",
    trigger: dict[str, Any] | None = None,
    nodes: dict[str, tuple[str, list[str]]] | None = None,
    parameters: dict[str, str] | None = None,
    node_parameters: dict[str, dict[str, str]] | None = None,
    content: dict[str, str] | None = None,
) -> DeployedWorkflow:
    """A deployed workflow read from a FlowSpec; `nodes`: id -> (type, upstream ids)."""
    shape = nodes or {n: ("DIDE_SHELL", ups) for n, ups in GRAPH.items()}
    own = node_parameters or {}
    text = json.dumps(
        {
            "kind": kind,
            "spec": {
                "workflows": [
                    {
                        "name": f"w{workflow_id}",
                        "trigger": trigger
                        if trigger is not None
                        else {"type": "Scheduler", "cron": "00 00 03 * * ?"},
                        "parameters": [
                            {"name": k, "value": v} for k, v in (parameters or {}).items()
                        ],
                        "nodes": [
                            {
                                "id": n,
                                "script": {
                                    "runtime": {"command": command},
                                    "content": (content or {}).get(n, ""),
                                    "parameters": [
                                        {"name": k, "value": v} for k, v in own.get(n, {}).items()
                                    ],
                                },
                            }
                            for n, (command, _) in shape.items()
                        ],
                        "dependencies": [
                            {"nodeId": n, "depends": [{"nodeId": u} for u in ups]}
                            for n, (_, ups) in shape.items()
                            if ups
                        ],
                    }
                ]
            },
        }
    )
    spec = flowspec.parse(text, SH)
    ids = {n: workflow_id * 10 + i for i, n in enumerate(shape, 1)}
    tasks = tuple(DeployedTask(ids[n.id], workflow_id, 1, "o", n, 0, 0) for n in spec.nodes)
    return DeployedWorkflow(workflow_id, 1, 1, EnvType.PROD, spec, 1, 0, 0, 0, "o", "o", tasks)


def request(
    kind: InstanceType = T.SUPPLEMENT_DATA, workflow_id: int = 7, **fields: Any
) -> RunRequest:
    return RunRequest(project_id=1, name="r", type=kind, workflow_id=workflow_id, **fields)


def refused(req: RunRequest, workflows: dict[int, DeployedWorkflow]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        plan_run(req, workflows, SH, NOW_MS)
    return caught.value


def days(first: str, last: str) -> tuple[tuple[date, date], ...]:
    return ((date.fromisoformat(first), date.fromisoformat(last)),)


CYCLE = deployed()
MANUAL = deployed(8, "ManualWorkflow", trigger={})
TRIGGERED = deployed(9, trigger={"type": "TriggerWorkflow"})
UNSCHEDULED = deployed(6, trigger={"type": "Manual"})
ALL = {w.id: w for w in (CYCLE, MANUAL, TRIGGERED, UNSCHEDULED)}


# Which workflow each type runs


@pytest.mark.parametrize(
    ("kind", "runs"),
    [
        (T.SUPPLEMENT_DATA, {7}),
        (T.SMOKE_TEST, {7}),
        (T.MANUAL, {8}),
        (T.MANUAL_WORKFLOW, {8}),
        (T.TRIGGER_WORKFLOW, {9}),
    ],
)
def test_each_type_runs_its_kind_of_workflow(kind: InstanceType, runs: set[int]) -> None:
    for workflow in ALL.values():
        req = request(
            kind,
            workflow.id,
            root_task_ids=(workflow.tasks[0].id,),
            ranges=days("2025-06-01", "2025-06-01"),
        )
        if workflow.id in runs:
            assert plan_run(req, {workflow.id: workflow}, SH, NOW_MS)
        else:
            error = refused(req, {workflow.id: workflow})
            assert error.param == "WorkflowId"
            assert f"WorkflowId {workflow.id}" in error.message


# The tasks that run (Mode, Root/Include/ExcludeTaskIds)


def chosen(**fields: Any) -> set[int]:
    (planned,) = plan_run(request(T.SMOKE_TEST, **fields), {7: CYCLE}, SH, NOW_MS)
    return set(planned.chosen)


@pytest.mark.parametrize(
    ("fields", "tasks"),
    [
        ({"root_task_ids": (72,)}, {72}),
        ({"root_task_ids": (72,), "include_task_ids": (74,)}, {72, 74}),  # ManualSelection
        ({"mode": Mode.GENERAL, "root_task_ids": (71,), "include_task_ids": (73,)}, {71, 73}),
        ({"mode": Mode.ALL_DOWNSTREAM, "root_task_ids": (72,)}, {72, 73}),
        ({"mode": Mode.ALL_DOWNSTREAM, "root_task_ids": (71,)}, {71, 72, 73, 74}),
        (
            {"mode": Mode.ALL_DOWNSTREAM, "root_task_ids": (72,), "include_task_ids": (74,)},
            {72, 73, 74},
        ),
        ({"mode": Mode.CHAIN, "include_task_ids": (71, 73)}, {71, 72, 73}),
        ({"mode": Mode.CHAIN, "include_task_ids": (72, 72)}, {72}),
        (
            {"mode": Mode.ALL_DOWNSTREAM, "root_task_ids": (71,), "exclude_task_ids": (72, 74)},
            {71, 73},
        ),
    ],
)
def test_modes_choose_tasks(fields: dict[str, Any], tasks: set[int]) -> None:
    assert chosen(**fields) == tasks


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        (
            {"root_task_ids": (99,)},
            "DefaultRunProperties.RootTaskIds",
            "99 is not a task of the workflow 7",
        ),
        (
            {"root_task_ids": (71,), "include_task_ids": (81,)},
            "DefaultRunProperties.IncludeTaskIds",
            "81",
        ),
        (
            {"root_task_ids": (71,), "exclude_task_ids": (5,)},
            "DefaultRunProperties.ExcludeTaskIds",
            "5",
        ),
        ({"root_task_ids": (71,), "task_parameters": ((5, "x=1"),)}, "TaskParameters", "5"),
        (
            {"mode": Mode.GENERAL, "root_task_ids": (71, 72)},
            "DefaultRunProperties.RootTaskIds",
            "exactly one",
        ),
        ({"mode": Mode.ALL_DOWNSTREAM}, "DefaultRunProperties.RootTaskIds", "it names 0"),
        (
            {"mode": Mode.GENERAL, "root_task_ids": (72,), "include_task_ids": (74,)},
            "DefaultRunProperties.IncludeTaskIds",
            "74 is not",
        ),
        (
            {"mode": Mode.CHAIN, "include_task_ids": (71,)},
            "DefaultRunProperties.IncludeTaskIds",
            "[start, end]",
        ),
        (
            {"mode": Mode.CHAIN, "root_task_ids": (71,), "include_task_ids": (71, 73)},
            "DefaultRunProperties.IncludeTaskIds",
            "RootTaskIds empty",
        ),
        (
            {"mode": Mode.CHAIN, "include_task_ids": (73, 71)},
            "DefaultRunProperties.IncludeTaskIds",
            "the task 71 is not downstream of the task 73",
        ),
        (
            {"mode": Mode.CHAIN, "include_task_ids": (74, 73)},
            "DefaultRunProperties.IncludeTaskIds",
            "not downstream",
        ),
        (
            {"root_task_ids": (72,), "exclude_task_ids": (72,)},
            "DefaultRunProperties.ExcludeTaskIds",
            "leaves no task",
        ),
        ({}, "DefaultRunProperties.RootTaskIds", "is required: SmokeTest"),
    ],
)
def test_bad_task_choices_name_their_parameter(
    fields: dict[str, Any], param: str, words: str
) -> None:
    error = refused(request(T.SMOKE_TEST, **fields), {7: CYCLE})
    assert error.param == param
    assert words in error.message


@pytest.mark.parametrize(
    ("kind", "workflow"),
    [(T.SUPPLEMENT_DATA, CYCLE), (T.MANUAL_WORKFLOW, MANUAL), (T.TRIGGER_WORKFLOW, TRIGGERED)],
)
def test_without_task_ids_the_whole_workflow_runs(
    kind: InstanceType, workflow: DeployedWorkflow
) -> None:
    req = request(kind, workflow.id, ranges=days("2025-06-01", "2025-06-01"))
    (planned,) = plan_run(req, {workflow.id: workflow}, SH, NOW_MS)
    assert planned.chosen == {t.id for t in workflow.tasks}


def test_manual_names_its_tasks() -> None:
    error = refused(request(T.MANUAL, 8), {8: MANUAL})
    assert (error.param, "is required: Manual runs the tasks it names" in error.message) == (
        "DefaultRunProperties.RootTaskIds",
        True,
    )


def test_workflow_id_1_runs_the_named_tasks_of_each_workflow_holding_them() -> None:
    other = deployed(5, trigger={"type": "Scheduler", "cron": "00 00 04 * * ?"})
    req = request(workflow_id=1, root_task_ids=(73, 51), ranges=days("2025-06-01", "2025-06-02"))
    planned = plan_run(req, {7: CYCLE, 5: other}, SH, NOW_MS)
    # Per BizDate, each workflow in id order; only the named task of each runs.
    assert [(p.cycle.biz_day.day, p.workflow.id, set(p.chosen)) for p in planned] == [
        (1, 5, {51}),
        (1, 7, {73}),
        (2, 5, {51}),
        (2, 7, {73}),
    ]
    error = refused(request(workflow_id=1, ranges=days("2025-06-01", "2025-06-01")), {7: CYCLE})
    assert "with WorkflowId 1" in error.message
    error = refused(request(workflow_id=1, root_task_ids=(99,)), {7: CYCLE})
    assert "is not a task of the workflows this type runs" in error.message


# BizDates and cycles


def cycles(planned: list[PlannedInstance]) -> list[tuple[date, str]]:
    """Each instance's BizDate and its TriggerTime as local wall-clock time."""
    return [
        (
            p.cycle.biz_day,
            datetime.fromtimestamp(p.cycle.trigger_time / 1000, UTC)
            .astimezone(ZoneInfo(SH))
            .strftime("%m-%d %H:%M"),
        )
        for p in planned
    ]


def test_a_backfill_makes_each_cycle_of_each_bizdate_on_the_day_after() -> None:
    planned = plan_run(request(ranges=days("2025-06-01", "2025-06-03")), {7: CYCLE}, SH, NOW_MS)
    assert cycles(planned) == [
        (date(2025, 6, 1), "06-02 03:00"),
        (date(2025, 6, 2), "06-03 03:00"),
        (date(2025, 6, 3), "06-04 03:00"),
    ]
    assert {p.cycle.kind for p in planned} == {CycleKind.NORMAL}


def test_descending_order_and_merged_ranges() -> None:
    ranges = (
        (date(2025, 6, 3), date(2025, 6, 4)),
        (date(2025, 6, 1), date(2025, 6, 3)),  # overlaps: each BizDate once
        (date(2025, 5, 20), date(2025, 5, 20)),
    )
    planned = plan_run(request(ranges=ranges, descending=True), {7: CYCLE}, SH, NOW_MS)
    assert [p.cycle.biz_day.isoformat() for p in planned] == [
        "2025-06-04",
        "2025-06-03",
        "2025-06-02",
        "2025-06-01",
        "2025-05-20",
    ]


def test_the_day_window_keeps_the_cycles_between_start_and_end() -> None:
    six_hourly = deployed(trigger={"type": "Scheduler", "cron": "00 00 */6 * * ?"})
    req = request(ranges=days("2025-06-01", "2025-06-02"), day_start="06:00:00", day_end="12:00:00")
    planned = plan_run(req, {7: six_hourly}, SH, NOW_MS)
    assert cycles(planned) == [
        (date(2025, 6, 1), "06-02 06:00"),
        (date(2025, 6, 1), "06-02 12:00"),
        (date(2025, 6, 2), "06-03 06:00"),
        (date(2025, 6, 2), "06-03 12:00"),
    ]
    assert [p.cycle.period_number for p in planned] == [2, 3, 2, 3]


def test_a_backfill_ignores_the_triggers_validity_window() -> None:
    ended = deployed(
        trigger={
            "type": "Scheduler",
            "cron": "00 00 03 * * ?",
            "startTime": "2030-01-01 00:00:00",
            "endTime": "2031-01-01 00:00:00",
        }
    )
    planned = plan_run(request(ranges=days("2025-06-01", "2025-06-01")), {7: ended}, SH, NOW_MS)
    assert cycles(planned) == [(date(2025, 6, 1), "06-02 03:00")]


def test_a_backfill_reaches_today_in_the_workspaces_zone_not_beyond() -> None:
    # 00:30 on June 11 in Shanghai is still June 10 in UTC.
    now = int(datetime(2025, 6, 11, 0, 30, tzinfo=ZoneInfo(SH)).timestamp() * 1000)
    today = request(ranges=days("2025-06-11", "2025-06-11"))
    assert plan_run(today, {7: CYCLE}, SH, now)
    with pytest.raises(InvalidArgument, match=r"reaches 2025-06-11, after today \(2025-06-10\)"):
        plan_run(today, {7: CYCLE}, "UTC", now)
    error = refused(request(ranges=days("2025-06-10", "2025-06-11")), {7: CYCLE})
    assert error.param == "Periods"


def test_a_backfill_needs_bizdates() -> None:
    error = refused(request(), {7: CYCLE})
    assert (error.param, error.message) == (
        "Periods",
        "The parameter Periods.BizDates is required for SupplementData.",
    )
    backwards = ((date(2025, 6, 2), date(2025, 6, 1)),)  # an empty range
    assert refused(request(ranges=backwards), {7: CYCLE}).param == "Periods"


@pytest.mark.parametrize(
    ("kind", "workflow"),
    [
        (T.SMOKE_TEST, CYCLE),
        (T.MANUAL, MANUAL),
        (T.MANUAL_WORKFLOW, MANUAL),
        (T.TRIGGER_WORKFLOW, TRIGGERED),
    ],
)
def test_other_types_run_now_for_one_bizdate_yesterday_by_default(
    kind: InstanceType, workflow: DeployedWorkflow
) -> None:
    root = (workflow.tasks[0].id,)
    (planned,) = plan_run(
        request(kind, workflow.id, root_task_ids=root), {workflow.id: workflow}, SH, NOW_MS
    )
    assert planned.cycle.trigger_time == NOW_MS
    assert planned.cycle.biz_day == NOW.date() - timedelta(days=1)
    assert planned.cycle.kind is CycleKind.NORMAL
    one = request(kind, workflow.id, root_task_ids=root, ranges=days("2025-05-01", "2025-05-01"))
    (planned,) = plan_run(one, {workflow.id: workflow}, SH, NOW_MS)
    assert (planned.cycle.biz_day, planned.cycle.trigger_time) == (date(2025, 5, 1), NOW_MS)
    two = request(kind, workflow.id, root_task_ids=root, ranges=days("2025-05-01", "2025-05-02"))
    error = refused(two, {workflow.id: workflow})
    assert error.param == "Periods" and "runs for one BizDate" in error.message


# Parameters


def test_workflow_parameters_override_the_workflows_and_are_marked_supplied() -> None:
    workflow = deployed(parameters={"region": "hz", "env": "prod"})
    req = request(ranges=days("2025-06-01", "2025-06-01"), workflow_parameters="env=test")
    (planned,) = plan_run(req, {7: workflow}, SH, NOW_MS)
    assert planned.parameters == "region=hz env=test"
    assert planned.supplied == {"env"}
    assert planned.task_parameters == {}
    (plain,) = plan_run(request(ranges=req.ranges), {7: workflow}, SH, NOW_MS)
    assert (plain.parameters, plain.supplied) == ("region=hz env=prod", frozenset())


def test_task_parameters_override_those_tasks() -> None:
    workflow = deployed(node_parameters={"b": {"n": "1"}})
    req = request(ranges=days("2025-06-01", "2025-06-01"), task_parameters=((72, "n=2"),))
    (planned,) = plan_run(req, {7: workflow}, SH, NOW_MS)
    assert planned.task_parameters == {72: {"n": "2"}}


def test_a_manual_workflows_parameters_are_json_and_reach_the_tasks_that_see_them() -> None:
    workflow = deployed(
        8,
        "ManualWorkflow",
        trigger={},
        parameters={"region": "hz"},
        node_parameters={"a": {"n": "1"}, "b": {"m": "1"}},
    )
    req = request(
        T.MANUAL_WORKFLOW,
        8,
        workflow_parameters='{"n": 5, "region": "sh"}',
        task_parameters=((81, "n=3"),),
    )
    (planned,) = plan_run(req, {8: workflow}, SH, NOW_MS)
    assert planned.parameters == "region=hz"  # the workflow's own, as deployed
    assert planned.supplied == frozenset()
    # Above the TaskParameters; each task gets only the names it can refer to.
    assert planned.task_parameters == {
        81: {"n": "5", "region": "sh"},
        82: {"region": "sh"},
        83: {"region": "sh"},
        84: {"region": "sh"},
    }


def checked(req: RunRequest, *workflows: DeployedWorkflow) -> InvalidArgument | None:
    try:
        check_parameters(req, workflows)
    except InvalidArgument as error:
        return error
    return None


SHELL_P = deployed(parameters={"day": "x"}, node_parameters={"b": {"n": "1"}})
PYTHON_P = deployed(
    nodes={"a": ("PYTHON", [])}, parameters={"day": "x"}, node_parameters={"a": {"n": "1"}}
)
SQL_P = deployed(
    nodes={"a": ("ODPS_SQL", [])},
    parameters={"day": "x"},
    content={"a": "select * from t where d = '${day}'"},
)


@pytest.mark.parametrize(
    ("req", "workflow", "param", "words"),
    [
        (request(workflow_parameters="day=20250101"), SHELL_P, None, ""),
        (
            request(workflow_parameters="other=1"),
            SHELL_P,
            "WorkflowParameters",
            "'other', which the workflow 7 does not declare (declared: day)",
        ),
        (
            request(workflow_parameters="n=1"),
            SHELL_P,
            "WorkflowParameters",
            "does not declare",
        ),  # a node's: not the workflow's
        (
            request(workflow_id=1, workflow_parameters="day=1"),
            SHELL_P,
            "WorkflowParameters",
            "with WorkflowId 1",
        ),
        (
            request(workflow_parameters="day=$(id)"),
            SHELL_P,
            "WorkflowParameters",
            "holds $ or a backtick",
        ),
        (request(workflow_parameters="day=`id`"), SHELL_P, "WorkflowParameters", "runs it in bash"),
        (request(workflow_parameters="day=$(id)"), PYTHON_P, None, ""),
        (request(task_parameters=((71, "n=2"),)), PYTHON_P, None, ""),
        (request(task_parameters=((71, "day=2"),)), PYTHON_P, None, ""),  # the workflow's: visible
        (
            request(task_parameters=((71, "zz=2"),)),
            PYTHON_P,
            "TaskParameters",
            "task 71 does not declare",
        ),
        (
            request(task_parameters=((72, "n=$x"),)),
            SHELL_P,
            "TaskParameters",
            "task 72 (DIDE_SHELL) runs it in bash",
        ),
        (request(task_parameters=((72, "n=a;b|c"),)), SHELL_P, None, ""),  # quoted: data
        (request(workflow_parameters="day=2025-01-01"), SQL_P, None, ""),
        (
            request(workflow_parameters="day=a'b"),
            SQL_P,
            "WorkflowParameters",
            "pastes it into ODPS_SQL code",
        ),
    ],
)
def test_supplied_parameters(
    req: RunRequest, workflow: DeployedWorkflow, param: str | None, words: str
) -> None:
    error = checked(req, workflow)
    if param is None:
        assert error is None
    else:
        assert error is not None and error.param == param
        assert words in error.message


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"n": 5}', True),
        ('{"n": "a b", "region": 1.5}', True),
        ("n=5", False),
        ("[1]", False),
        ('{"n": [1]}', False),
        ('{"1x": 1}', False),
    ],
)
def test_a_manual_workflows_parameters_are_a_json_object(text: str, ok: bool) -> None:
    manual = deployed(
        8,
        "ManualWorkflow",
        trigger={},
        node_parameters={"a": {"n": "1"}},
        parameters={"region": "x"},
    )
    error = checked(request(T.MANUAL_WORKFLOW, 8, workflow_parameters=text), manual)
    assert (error is None) is ok
    if error is not None:
        assert error.param == "WorkflowParameters"


# RunPolicy: when a backfill's next BizDate may start


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(SH)).timestamp() * 1000)


@pytest.mark.parametrize(
    ("policy", "when", "allowed"),
    [
        (None, "2025-06-10 03:00:00", True),
        (RunPolicy(start="09:00:00", end="17:00:00"), "2025-06-10 08:59:59", False),
        (RunPolicy(start="09:00:00", end="17:00:00"), "2025-06-10 09:00:00", True),
        (RunPolicy(start="09:00:00", end="17:00:00"), "2025-06-10 17:00:00", True),
        (RunPolicy(start="09:00:00", end="17:00:00"), "2025-06-10 17:00:01", False),
        (
            RunPolicy(start="22:00:00", end="02:00:00"),
            "2025-06-10 23:30:00",
            True,
        ),  # across midnight
        (RunPolicy(start="22:00:00", end="02:00:00"), "2025-06-10 01:59:59", True),
        (RunPolicy(start="22:00:00", end="02:00:00"), "2025-06-10 12:00:00", False),
        (RunPolicy(type="Weekend"), "2025-06-14 10:00:00", True),  # Saturday
        (RunPolicy(type="Weekend"), "2025-06-15 23:59:59", True),  # Sunday
        (RunPolicy(type="Weekend"), "2025-06-16 10:00:00", False),  # Monday
        (RunPolicy(type="Weekend", start="09:00:00", end="10:00:00"), "2025-06-14 11:00:00", False),
    ],
)
def test_run_policy_windows_in_the_workspaces_zone(
    policy: RunPolicy | None, when: str, allowed: bool
) -> None:
    assert in_window(policy, at(when), SH) is allowed


def test_a_window_is_read_in_the_zone_given() -> None:
    policy = RunPolicy(start="09:00:00", end="17:00:00")
    ten_in_shanghai = at("2025-06-10 10:00:00")  # 02:00 UTC
    assert in_window(policy, ten_in_shanghai, SH)
    assert not in_window(policy, ten_in_shanghai, "UTC")


def test_the_workflow_named_must_be_one_of_the_requests_workspace() -> None:
    req = request(T.MANUAL_WORKFLOW, workflow_id=8)
    assert named_workflow(req, MANUAL) is MANUAL
    other = RunRequest(project_id=2, name="r", type=T.MANUAL_WORKFLOW, workflow_id=8)
    for found, asked in ((None, req), (MANUAL, other)):
        with pytest.raises(InvalidArgument) as caught:
            named_workflow(asked, found)
        assert caught.value.param == "WorkflowId"
        assert caught.value.message == (
            f"The parameter WorkflowId 8 names no deployed workflow of the workspace "
            f"{asked.project_id}."
        )
