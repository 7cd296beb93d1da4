"""Dependencies across workflows and cycles through the official SDK over real HTTP, with a
real engine on a real clock (both databases; docs/dependencies.md).

Instances are made as the scheduler makes them (`Store.generate_many` for run dates whose
cycles are all due now), and everything is asserted through the API: which instances wait
for which (ListUpstream/DownstreamTaskInstances, GetWorkflow's Dependencies), that they run
in that order, that a failure blocks the other workflow until SetSuccessTaskInstances or
RemoveTaskInstanceDependencies, that backfills and smoke tests wait only for their own, and
that deployment (and its dry run) refuses what would break the links, changing nothing.

Output names are global in a database: every test names its outputs with a tag of its own.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

from dwsched.clock import SystemClock
from dwsched.domain.calendar import day_start_ms
from dwsched.domain.generation import GenerationPlan
from dwsched.domain.schedule import Trigger, cycles_on
from dwsched.domain.users import PrincipalType
from dwsched.runtime.keys import create_key
from tests.api.sdk_helpers import sdk_error
from tests.engine.test_operations import Space, days_ago, engine_beside, periods, props
from tests.support.databases import BACKENDS, new_database_url
from tests.support.server import LiveServer, running_server

TZ = "Asia/Shanghai"
DAILY = "00 00 02 * * ?"
HOURLY = "00 00 * * * ?"
TIMEOUT_S = 30


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A server and engine of the test's own, on a database of its own."""
    with engine_beside(db_url) as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def deploying(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for the tests that only deploy (no instance, no engine): each
    works in workspaces of its own, with output names of its own."""
    for url in new_database_url(request.param, tmp_path_factory.mktemp("deploying")):
        with running_server(url) as server:
            yield server


# Specs


def tagged() -> str:
    """A prefix for the test's output names (they are global in a database)."""
    return f"t{uuid.uuid4().hex[:10]}"


def node(
    node_id: str,
    content: str | None = None,
    produces: list[str] | None = None,
    takes: list[str] | None = None,
) -> dict[str, Any]:
    """A DIDE_SHELL node running `content` (a VIRTUAL node when None)."""
    found: dict[str, Any] = {
        "id": node_id,
        "name": node_id,
        "script": {
            "runtime": {"command": "VIRTUAL" if content is None else "DIDE_SHELL"},
            "content": content or "",
        },
        "outputs": {"nodeOutputs": [{"data": o} for o in produces or []]},
    }
    if takes:
        found["inputs"] = {"nodeOutputs": [{"data": o} for o in takes]}
    return found


def cycle_flow(
    name: str,
    nodes: list[dict[str, Any]],
    cron: str = DAILY,
    dependencies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    workflow: dict[str, Any] = {
        "name": name,
        "trigger": {"type": "Scheduler", "cron": cron, "timezone": TZ},
        "strategy": {"instanceMode": "T+1", "rerunTimes": 0},
        "nodes": nodes,
    }
    if dependencies is not None:
        workflow["dependencies"] = dependencies
    return {"version": "1.1.0", "kind": "CycleWorkflow", "spec": {"workflows": [workflow]}}


def depends(node_id: str, kind: str, **named: str) -> dict[str, Any]:
    return {"nodeId": node_id, "depends": [{"type": kind, **named}]}


# Instances as the scheduler makes them, and what the API shows of them


def run_date(days_back: int = 1) -> date:
    """A run date whose cycles are all due now (1: yesterday's, in the workspace's zone)."""
    return datetime.now(ZoneInfo(TZ)).date() - timedelta(days=days_back)


def biz_ms(day: date) -> int:
    """The BizDate (epoch ms) of the instances of run date `day`."""
    return day_start_ms(day - timedelta(days=1), TZ)


def generate(live: LiveServer, workflow_ids: list[int], days: list[date]) -> None:
    """Make the Normal instances of these workflows on these run dates, in one transaction
    (as the scheduler's generation does for the workflows due together)."""
    with live.store.read() as tx:
        deployed = [tx.workflows.get(i) for i in workflow_ids]
    plans = []
    for w in deployed:
        t = w.spec.trigger
        assert t.cron is not None
        trigger = Trigger(t.cron, t.timezone, t.start_ms, t.end_ms)
        plans.append(GenerationPlan(w, [(d, cycles_on(trigger, d)) for d in days], None))
    assert live.store.generate_many(plans, SystemClock().now_ms()) > 0


class Deps(Space):
    """A workspace on the live server, with what these tests read of task instances."""

    def of(self, workflow_id: int, day: date, kind: str = "Normal") -> list[Any]:
        """The workflow's task instances of run date `day`, by TriggerTime."""
        items = self.sdk.list_task_instances(
            M.ListTaskInstancesRequest(
                project_id=self.project.id,
                bizdate=biz_ms(day),
                workflow_id=workflow_id,
                workflow_instance_type=kind,
                page_size=100,
            )
        ).body.paging_info.task_instances
        return sorted(items, key=lambda t: (t.trigger_time, t.id))

    def one(self, workflow_id: int, day: date) -> Any:
        (found,) = self.of(workflow_id, day)
        return found

    def upstream(self, task_instance_id: int) -> tuple[int, list[tuple[str, int]]]:
        """TotalCount and (DependencyType, Id) of each upstream task instance, by Id."""
        paging = self.sdk.list_upstream_task_instances(
            M.ListUpstreamTaskInstancesRequest(id=task_instance_id, page_size=100)
        ).body.paging_info
        found = [(u.dependency_type, u.task_instance.id) for u in paging.upstream_task_instances]
        return paging.total_count, sorted(found, key=lambda x: x[1])

    def downstream(self, task_instance_id: int) -> tuple[int, list[tuple[str, int]]]:
        paging = self.sdk.list_downstream_task_instances(
            M.ListDownstreamTaskInstancesRequest(id=task_instance_id, page_size=100)
        ).body.paging_info
        found = [(d.dependency_type, d.task_instance.id) for d in paging.downstream_task_instances]
        return paging.total_count, sorted(found, key=lambda x: x[1])

    def settle(self, ids: list[int], status: str = "Success") -> list[Any]:
        """The task instances once each has `status` (fails on any other end)."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            found = [self.task(i) for i in ids]
            if all(t.status == status for t in found):
                return found
            ended = [(t.id, t.status) for t in found if t.status in ("Success", "Failure")]
            assert all(s == status for _, s in ended), ended
            assert time.monotonic() < deadline, [(t.id, t.status) for t in found]
            time.sleep(0.05)

    def operation_log(self, task_instance_id: int) -> list[str]:
        logs = self.sdk.list_task_instance_operation_logs(
            M.ListTaskInstanceOperationLogsRequest(id=task_instance_id)
        ).body.paging_info.operation_logs
        return [e.operation_content for e in logs]

    def set_success(self, task_instance_id: int) -> None:
        info = self.sdk.set_success_task_instances(
            M.SetSuccessTaskInstancesRequest(ids=[task_instance_id])
        ).body.success_info
        assert {k: (v.success, v.message) for k, v in info.items()} == {
            str(task_instance_id): (True, "OK")
        }


def holds(check: Callable[[], bool], what: str, seconds: float = 1.2) -> None:
    """`check()` holds throughout `seconds` (longer than the engine's planning period)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.1)


def in_order(tasks: list[Any]) -> None:
    """Each task instance started once the one before it had finished."""
    for before, after in itertools.pairwise(tasks):
        assert after.started_time >= before.finished_time, (before.id, after.id)


def blocked_pair(live: LiveServer, tag: str) -> tuple[Deps, Deps, Any, Any]:
    """Workflow A (its node `a` fails) and workflow B of another workspace, whose node `b`
    takes a's output; their instances of yesterday's run date, once `a` has failed:
    (A's workspace, B's workspace, a's task instance, b's task instance)."""
    up, down = Deps(live), Deps(live)
    a_id, _ = up.deploy(cycle_flow(f"{tag}_A", [node("a", "exit 1", [f"{tag}.a"])]))
    b_id, _ = down.deploy(
        cycle_flow(f"{tag}_B", [node("b", "echo b ran", [f"{tag}.b"], [f"{tag}.a"])])
    )
    day = run_date()
    generate(live, [b_id, a_id], [day])
    (a,) = up.settle([up.one(a_id, day).id], "Failure")
    b = down.one(b_id, day)
    assert down.upstream(b.id) == (1, [("Normal", a.id)])
    return up, down, a, b


def developer(live: LiveServer, name: str, workspace: int, visitor_of: int | None) -> Any:
    """The SDK as a user (not an administrator) allowed every action, Developer of
    `workspace`, and Visitor of `visitor_of` when given."""
    now = SystemClock().now_ms()
    everything = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    with live.store.write() as tx:
        if not tx.policies.exists("Everything"):
            tx.policies.create("Everything", json.dumps(everything), "", now)
        user = tx.users.create(name, name, now)
    with live.store.write() as tx:
        tx.policies.attach("Everything", PrincipalType.USER, name, attach=True)
        tx.members.add(workspace, user.id, ["role_project_dev"], now)
        if visitor_of is not None:
            tx.members.add(visitor_of, user.id, ["role_project_guest"], now)
    key = create_key(live.store, f"{name}-key", now)
    with live.store.write() as tx:
        tx.users.set_key_user(key.id, name)
    return live.sdk(key_id=key.id, secret=key.secret)


def waiting(space: Deps, task_instance_id: int) -> bool:
    return bool(space.task(task_instance_id).status == "NotRun")


# 1. A chain across workflows (and workspaces)


def test_an_instance_waits_for_its_upstream_in_another_workflow(live: LiveServer) -> None:
    tag = tagged()
    up, down = Deps(live), Deps(live)  # two workspaces: the output is found in the other
    a_id, a_tasks = up.deploy(cycle_flow(f"{tag}_A", [node("a", "sleep 0.5", [f"{tag}.x"])]))
    b_id, _ = down.deploy(cycle_flow(f"{tag}_B", [node("b", "echo b", [f"{tag}.y"], [f"{tag}.x"])]))
    deps = down.sdk.get_workflow(M.GetWorkflowRequest(id=b_id)).body.workflow.dependencies
    assert [(d.type, d.upstream_output, d.upstream_task_id) for d in deps] == [
        ("Normal", f"{tag}.x", a_tasks["a"])
    ]
    assert up.sdk.get_workflow(M.GetWorkflowRequest(id=a_id)).body.workflow.dependencies == []
    day = run_date()
    generate(live, [b_id, a_id], [day])  # the downstream first: it still finds its upstream
    a, b = up.one(a_id, day), down.one(b_id, day)
    assert down.upstream(b.id) == (1, [("Normal", a.id)])
    assert up.downstream(a.id) == (1, [("Normal", b.id)])
    (a,) = up.settle([a.id])
    (b,) = down.settle([b.id])
    assert b.started_time >= a.finished_time
    assert down.instance(b.workflow_instance_id).status == "Success"


# 2, 3. Nodes of different frequencies


def test_a_daily_node_waits_for_the_days_24_hourly_instances(live: LiveServer) -> None:
    tag = tagged()
    space = Deps(live)
    hourly_id, _ = space.deploy(
        cycle_flow(f"{tag}_H", [node("h", "sleep 0.1", [f"{tag}.h"])], cron=HOURLY)
    )
    daily_id, _ = space.deploy(
        cycle_flow(f"{tag}_D", [node("d", None, [f"{tag}.d"], [f"{tag}.h"])], cron=DAILY)
    )
    day = run_date()
    generate(live, [hourly_id, daily_id], [day])
    hours = space.of(hourly_id, day)
    assert len(hours) == 24
    d = space.one(daily_id, day)
    assert space.upstream(d.id) == (24, [("Normal", h.id) for h in sorted(hours, key=_id)])
    assert space.downstream(hours[5].id) == (1, [("Normal", d.id)])
    hours = space.settle([h.id for h in hours])
    (d,) = space.settle([d.id])
    assert d.started_time >= max(h.finished_time for h in hours)


def test_each_hourly_instance_waits_for_the_daily_one(live: LiveServer) -> None:
    tag = tagged()
    space = Deps(live)
    daily_id, _ = space.deploy(
        cycle_flow(f"{tag}_D", [node("d", "sleep 0.5", [f"{tag}.d"])], cron=DAILY)
    )
    hourly_id, _ = space.deploy(
        cycle_flow(f"{tag}_H", [node("h", None, [f"{tag}.h"], [f"{tag}.d"])], cron=HOURLY)
    )
    day = run_date()
    # In two transactions, the upstream's first (as the scheduler does past 500 workflows).
    generate(live, [daily_id], [day])
    generate(live, [hourly_id], [day])
    d = space.one(daily_id, day)
    hours = space.of(hourly_id, day)
    assert len(hours) == 24
    for h in hours:
        assert space.upstream(h.id) == (1, [("Normal", d.id)]), h.trigger_time
    assert space.downstream(d.id) == (24, [("Normal", h.id) for h in sorted(hours, key=_id)])
    (d,) = space.settle([d.id])
    hours = space.settle([h.id for h in hours])
    assert min(h.started_time for h in hours) >= d.finished_time


def _id(t: Any) -> int:
    return int(t.id)


def _second(pair: tuple[str, int]) -> int:
    return pair[1]


# 4, 5, 6. Cross-cycle dependencies


def test_a_self_dependent_node_waits_for_its_previous_day(live: LiveServer, tmp_path: Path) -> None:
    tag = tagged()
    space = Deps(live)
    fixed, marks = tmp_path / "fixed", tmp_path / "marks"
    workflow_id, _ = space.deploy(
        cycle_flow(
            f"{tag}_S",
            [node("s", f"test -f {fixed} || exit 1; echo $bizdate >> {marks}", [f"{tag}.s"])],
            dependencies=[depends("s", "CrossCycleDependsOnSelf")],
        )
    )
    days = [run_date(3), run_date(2), run_date(1)]
    generate(live, [workflow_id], days[:2])
    generate(live, [workflow_id], days[2:])  # as the scheduler makes a day's, a day later
    first, second, third = (space.one(workflow_id, d) for d in days)
    assert space.upstream(first.id) == (0, [])  # the first instance ever: no previous cycle
    assert space.upstream(second.id) == (1, [("CrossCycle", first.id)])
    assert space.upstream(third.id) == (1, [("CrossCycle", second.id)])
    assert space.downstream(first.id) == (1, [("CrossCycle", second.id)])
    space.settle([first.id], "Failure")
    holds(
        lambda: waiting(space, second.id) and waiting(space, third.id),
        "days 2 and 3 wait below day 1's failure",
    )
    assert not marks.exists()
    fixed.write_text("")
    released = int(time.time() * 1000)
    space.set_success(first.id)
    done = space.settle([first.id, second.id, third.id])
    assert done[1].started_time >= released
    in_order(done[1:])
    keys = [(d - timedelta(days=1)).strftime("%Y%m%d") for d in days]
    assert marks.read_text().split() == keys[1:]


def test_a_self_dependent_backfill_runs_its_bizdates_in_order(
    live: LiveServer, tmp_path: Path
) -> None:
    tag = tagged()
    space = Deps(live)
    marks = tmp_path / "marks"
    workflow_id, tasks = space.deploy(
        cycle_flow(
            f"{tag}_S",
            [
                node(
                    "s",
                    f"echo start $bizdate >> {marks}; sleep 0.3; echo end $bizdate >> {marks}",
                    [f"{tag}.s"],
                )
            ],
            dependencies=[depends("s", "CrossCycleDependsOnSelf", nodeId="s")],  # itself
        )
    )
    bizdates = [days_ago(4), days_ago(3), days_ago(2)]
    result = space.result(
        space.create(
            type="SupplementData",
            workflow_id=workflow_id,
            periods=periods((bizdates[0].isoformat(), bizdates[2].isoformat())),
            default_run_properties=props(root_task_ids=[tasks["s"]], parallelism=3),
        )
    )
    assert result.status == "Created", result.failure_message
    instances = sorted(
        (space.instance(i) for i in result.workflow_instance_ids), key=lambda i: i.biz_date
    )
    assert [i.biz_date for i in instances] == [space.biz_ms(d) for d in bizdates]
    runs = [space.tasks(i)["s"] for i in instances]
    assert space.upstream(runs[0].id) == (0, [])
    assert space.upstream(runs[1].id) == (1, [("CrossCycle", runs[0].id)])
    assert space.upstream(runs[2].id) == (1, [("CrossCycle", runs[1].id)])
    done = space.settle([r.id for r in runs])
    in_order(done)
    keys = [d.strftime("%Y%m%d") for d in bizdates]
    assert marks.read_text().split() == [word for k in keys for word in ("start", k, "end", k)]


def test_a_node_can_wait_for_its_childrens_previous_cycle(live: LiveServer) -> None:
    """P waits for its child C's previous cycle; O (no same-cycle link) for C's previous
    cycle too, through CrossCycleDependsOnOtherNode by nodeId."""
    tag = tagged()
    space = Deps(live)
    workflow_id, _ = space.deploy(
        cycle_flow(
            f"{tag}_P",
            [
                node("p", None, [f"{tag}.p"]),
                node("c", "sleep 0.3", [f"{tag}.c"], [f"{tag}.p"]),
                node("o", None, [f"{tag}.o"]),
            ],
            dependencies=[
                depends("p", "CrossCycleDependsOnChildren"),
                depends("o", "CrossCycleDependsOnOtherNode", nodeId="c"),
            ],
        )
    )
    days = [run_date(2), run_date(1)]
    generate(live, [workflow_id], days[:1])
    generate(live, [workflow_id], days[1:])
    first = {t.task_name: t for t in space.of(workflow_id, days[0])}
    second = {t.task_name: t for t in space.of(workflow_id, days[1])}
    assert space.upstream(first["p"].id) == (0, [])
    assert space.upstream(first["o"].id) == (0, [])
    assert space.upstream(second["p"].id) == (1, [("CrossCycle", first["c"].id)])
    assert space.upstream(second["o"].id) == (1, [("CrossCycle", first["c"].id)])
    assert space.upstream(second["c"].id) == (1, [("Normal", second["p"].id)])
    assert space.downstream(first["c"].id) == (
        2,
        sorted([("CrossCycle", second["p"].id), ("CrossCycle", second["o"].id)], key=_second),
    )
    c1, p2, o2 = space.settle([first["c"].id, second["p"].id, second["o"].id])
    assert p2.started_time >= c1.finished_time
    assert o2.started_time >= c1.finished_time


# 7, 8. A failure upstream, and how an operator unblocks its downstream


def test_a_failed_upstream_blocks_the_other_workflow_until_set_success(
    live: LiveServer,
) -> None:
    up, down, a, b = blocked_pair(live, tagged())
    holds(lambda: waiting(down, b.id), "b waits below a's failure")
    assert down.instance(b.workflow_instance_id).status not in ("Success", "Failure")
    before = int(time.time() * 1000)
    up.set_success(a.id)
    (b,) = down.settle([b.id])
    assert b.started_time >= before
    assert "b ran" in down.log(b.id)
    assert down.instance(b.workflow_instance_id).status == "Success"


def test_remove_task_instance_dependencies_unblocks_a_waiting_instance(
    live: LiveServer,
) -> None:
    up, down, a, b = blocked_pair(live, tagged())
    assert down.operation_log(b.id) == []

    def remove(task_instance_id: int, ids: list[int], comment: str | None = None) -> Any:
        return down.sdk.remove_task_instance_dependencies(
            M.RemoveTaskInstanceDependenciesRequest(
                id=task_instance_id, upstream_task_instance_ids=ids, comment=comment
            )
        )

    # An id that is not one of its upstreams: refused whole, naming the parameter.
    stranger = 987_654_321
    error = sdk_error(lambda: remove(b.id, [a.id, stranger]))
    assert error.code == "InvalidParameter", error
    assert "UpstreamTaskInstanceIds" in error.message and str(stranger) in error.message
    assert down.upstream(b.id) == (1, [("Normal", a.id)])
    assert up.downstream(a.id) == (1, [("Normal", b.id)])
    assert down.operation_log(b.id) == []
    holds(lambda: waiting(down, b.id), "b still waits for a")
    # Removed: it runs at once, and the operation log says so.
    assert remove(b.id, [a.id], "a was loaded by hand").body.success is True
    assert down.task(b.id).status != "NotRun"  # planned by the call itself
    (b,) = down.settle([b.id])
    assert up.task(a.id).status == "Failure"
    assert down.upstream(b.id) == (0, [])
    assert up.downstream(a.id) == (0, [])
    (entry,) = down.operation_log(b.id)
    assert str(a.id) in entry and "a was loaded by hand" in entry
    # A task that no longer waits: refused, naming Id.
    error = sdk_error(lambda: remove(b.id, [a.id]))
    assert error.code == "InvalidParameter", error
    assert len(down.operation_log(b.id)) == 1
    assert (down.task(b.id).status, down.task(b.id).run_number) == ("Success", 1)
    assert re.search(r"\bId\b", error.message), error.message


# 9. Deployment's refusals


def test_deployment_refuses_what_would_break_the_links(deploying: LiveServer) -> None:
    tag = tagged()
    space = Deps(deploying)
    x, y = f"{tag}.x", f"{tag}.y"
    job = space.sdk.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(
            project_id=space.project.id,
            spec=json.dumps(cycle_flow(f"{tag}_A", [node("a", None, [x])])),
        )
    ).body.async_job
    assert job.status == "Success", job.error
    definition_a = job.response
    a_id = space.sdk.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=definition_a)
    ).body.workflow_definition.workflow_id
    b_id, _ = space.deploy(cycle_flow(f"{tag}_B", [node("b", None, [y], [x])]))
    sdk = space.sdk
    pid = space.project.id

    def state() -> Any:
        workflows = sdk.list_workflows(M.ListWorkflowsRequest(project_id=pid, page_size=100))
        definitions = sdk.list_workflow_definitions(
            M.ListWorkflowDefinitionsRequest(project_id=pid, page_size=100)
        )
        return (
            workflows.body.paging_info.to_map(),
            definitions.body.paging_info.to_map(),
            sdk.get_workflow(M.GetWorkflowRequest(id=a_id)).body.workflow.to_map(),
            sdk.get_workflow(M.GetWorkflowRequest(id=b_id)).body.workflow.to_map(),
        )

    def deploy(spec: dict[str, Any]) -> Any:
        request = M.ImportWorkflowDefinitionRequest(project_id=pid, spec=json.dumps(spec))
        return sdk_error(lambda: sdk.import_workflow_definition(request))

    before = state()
    assert len(before[0]["Workflows"]) == 2
    assert [(d["Type"], d["UpstreamOutput"]) for d in before[3]["Dependencies"]] == [("Normal", x)]
    # An output nobody produces, as an input and as a dependency: the JSON path.
    nobody = f"{tag}.nobody"
    error = deploy(cycle_flow(f"{tag}_C", [node("c", None, [f"{tag}.c"], [nobody])]))
    assert error.code == "InvalidParameter", error
    assert "$.spec.workflows[0].nodes[0].inputs.nodeOutputs[0].data" in error.message
    assert nobody in error.message
    error = deploy(
        cycle_flow(
            f"{tag}_C",
            [node("c", None, [f"{tag}.c"])],
            dependencies=[depends("c", "CrossCycleDependsOnOtherNode", output=nobody)],
        )
    )
    assert error.code == "InvalidParameter", error
    assert "$.spec.workflows[0].dependencies[0].depends[0].output" in error.message
    assert state() == before
    # A second producer of an output: both named.
    error = deploy(cycle_flow(f"{tag}_D", [node("d", None, [x])]))
    assert error.code == "InvalidParameter", error
    assert x in error.message
    assert "'d'" in error.message and "'a'" in error.message and f"{tag}_A" in error.message
    assert state() == before
    # A same-cycle loop across workflows: A redeployed on B's output.
    error = deploy(cycle_flow(f"{tag}_A", [node("a", None, [x], [y])]))
    assert error.code == "InvalidParameter", error
    assert "cycle" in error.message and f"{tag}_A" in error.message
    assert f"{tag}_B" in error.message
    assert state() == before
    # A redeploy that drops an output B depends on: 409, naming B.
    error = deploy(cycle_flow(f"{tag}_A", [node("a", None, [f"{tag}.other"])]))
    assert (error.status_code, error.code) == (409, "Conflict"), error
    assert x in error.message and f"{tag}_B" in error.message and "'b'" in error.message
    assert state() == before
    # Deleting A while B depends on it: 409, naming B.
    error = sdk_error(
        lambda: sdk.delete_workflow_definition(
            M.DeleteWorkflowDefinitionRequest(project_id=pid, id=str(definition_a))
        )
    )
    assert (error.status_code, error.code) == (409, "Conflict"), error
    assert f"{tag}_B" in error.message and "'b'" in error.message
    assert state() == before
    assert before[3]["Dependencies"][0]["UpstreamTaskId"] == before[2]["Tasks"][0]["Id"]
    # What is allowed still is: the output moves to another node of A, B's link follows it;
    # once B is deleted, so can A be.
    _, a_tasks = space.deploy(
        cycle_flow(f"{tag}_A", [node("a", None, [f"{tag}.other"]), node("a2", None, [x])])
    )
    deps = sdk.get_workflow(M.GetWorkflowRequest(id=b_id)).body.workflow.dependencies
    assert [(d.type, d.upstream_output, d.upstream_task_id) for d in deps] == [
        ("Normal", x, a_tasks["a2"])
    ]
    for name in (f"{tag}_B", f"{tag}_A"):
        (found,) = sdk.list_workflow_definitions(
            M.ListWorkflowDefinitionsRequest(project_id=pid, name=name)
        ).body.paging_info.workflow_definitions
        sdk.delete_workflow_definition(
            M.DeleteWorkflowDefinitionRequest(project_id=pid, id=found.id)
        )
    assert (
        sdk.list_workflow_definitions(
            M.ListWorkflowDefinitionsRequest(project_id=pid)
        ).body.paging_info.total_count
        == 0
    )
    # An output of a workspace the deployer may not read is unknown to it; made a Visitor of
    # that workspace, the deployer may depend on it.
    z = f"{tag}.z"
    space.deploy(cycle_flow(f"{tag}_Z", [node("z", None, [z])]))
    theirs = Deps(deploying)
    outsider, reader = (
        developer(deploying, f"{tag}_{n}", theirs.project.id, also)
        for n, also in ((1, None), (2, pid))
    )
    wanting = cycle_flow(f"{tag}_W", [node("w", None, [f"{tag}.w"], [z])])
    request = M.ImportWorkflowDefinitionRequest(
        project_id=theirs.project.id, spec=json.dumps(wanting)
    )
    error = sdk_error(lambda: outsider.import_workflow_definition(request))
    assert error.code == "InvalidParameter", error
    assert "$.spec.workflows[0].nodes[0].inputs.nodeOutputs[0].data" in error.message
    assert f"{tag}_Z" not in error.message and "'z'" not in error.message  # not told where
    listed = M.ListWorkflowsRequest(project_id=theirs.project.id)
    assert sdk.list_workflows(listed).body.paging_info.total_count == 0
    assert reader.import_workflow_definition(request).body.async_job.status == "Success"
    assert sdk.list_workflows(listed).body.paging_info.total_count == 1


def test_a_dry_run_import_refuses_what_the_import_refuses(deploying: LiveServer) -> None:
    """DryRun validates a spec as the import would (tests/api/test_workflows.py): the link
    checks of deployment included, deploying nothing."""
    tag = tagged()
    space = Deps(deploying)
    x = f"{tag}.x"
    space.deploy(cycle_flow(f"{tag}_A", [node("a", None, [x])]))
    space.deploy(cycle_flow(f"{tag}_B", [node("b", None, [f"{tag}.b"], [x])]))
    pid = space.project.id

    def dry_run(spec: dict[str, Any]) -> tuple[str, str]:
        """The answer's Code and message ("Success" when it is accepted)."""
        request = M.ImportWorkflowDefinitionRequest(
            project_id=pid, spec=json.dumps(spec), dry_run=True
        )
        try:
            space.sdk.import_workflow_definition(request)
        except AlibabaCloudException as error:
            return str(error.code), str(error.message)
        return "Success", ""

    refused = {
        "an unknown output": (
            cycle_flow(f"{tag}_C", [node("c", None, [f"{tag}.c"], [f"{tag}.nobody"])]),
            "InvalidParameter",
            "$.spec.workflows[0].nodes[0].inputs.nodeOutputs[0].data",
        ),
        "a second producer": (
            cycle_flow(f"{tag}_D", [node("d", None, [x])]),
            "InvalidParameter",
            f"{tag}_A",
        ),
        "a dropped output": (
            cycle_flow(f"{tag}_A", [node("a", None, [f"{tag}.other"])]),
            "Conflict",
            f"{tag}_B",
        ),
    }
    answers = {case: dry_run(spec) for case, (spec, _, _) in refused.items()}
    listed = M.ListWorkflowsRequest(project_id=pid)
    assert space.sdk.list_workflows(listed).body.paging_info.total_count == 2
    wrong = {
        case: answers[case]
        for case, (_, code, names) in refused.items()
        if answers[case][0] != code or names not in answers[case][1]
    }
    assert wrong == {}


# 10. Manual runs wait for nothing outside themselves


def test_a_smoke_test_does_not_wait_for_the_other_workflow(live: LiveServer) -> None:
    up, down, a, b = blocked_pair(live, tagged())
    bizdate = datetime.fromtimestamp(b.bizdate / 1000, ZoneInfo(TZ)).date()
    result = down.result(
        down.create(
            type="SmokeTest",
            workflow_id=b.workflow_id,
            default_run_properties=props(root_task_ids=[b.task_id]),
            periods=periods((bizdate.isoformat(), bizdate.isoformat())),
        )
    )
    assert result.status == "Created", result.failure_message
    (smoke_id,) = result.workflow_instance_ids
    smoke = down.tasks(down.instance(smoke_id))["b"]
    assert smoke.bizdate == b.bizdate  # the same BizDate as the blocked Normal instance
    assert down.upstream(smoke.id) == (0, [])
    (smoke,) = down.settle([smoke.id])
    assert "b ran" in down.log(smoke.id)
    assert down.task(b.id).status == "NotRun"  # the Normal instance still waits
    assert up.downstream(a.id) == (1, [("Normal", b.id)])
