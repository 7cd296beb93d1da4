"""Instances that wait outside their own workflow instance, for the CLI and console tests.

Two scheduled workflows deployed through the official SDK (ImportWorkflowDefinition):
`upstream_flow` produces an output with its node `load`; `downstream_flow`'s node `report`
takes that output as input (a same-cycle dependency on another workflow) and depends on its
own previous cycle (CrossCycleDependsOnSelf); its node `tidy` follows `report` inside the
workflow. Their instances of the day before yesterday and of yesterday are then made by the
store, as the scheduler makes them (store.generate_many, as tests/engine/helpers.py
`deploy_due` does). No engine runs: every task instance stays waiting (NotRun).

Output names are unique across every workspace of a database: each gets a fresh prefix.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alibabacloud_dataworks_public20240518 import models as M

from dwsched.domain.generation import GenerationPlan
from dwsched.domain.schedule import Trigger, cycles_on
from tests.support.server import LiveServer

TZ = "Asia/Shanghai"
CRON = "00 30 02 * * ?"


@dataclass(frozen=True)
class Linked:
    """The made instances: workflow instance and task instance ids by BizDate."""

    upstream_workflow: int
    downstream_workflow: int
    upstream_name: str
    downstream_name: str
    days: tuple[date, date]  # the BizDates: the day before, and the later one
    # (workflow, BizDate) -> workflow instance id
    instances: dict[tuple[str, date], int]
    # (node, BizDate) -> task instance id
    tasks: dict[tuple[str, date], int]

    def task(self, node: str, later: bool = True) -> int:
        return self.tasks[(node, self.days[1] if later else self.days[0])]

    def instance(self, workflow: str, later: bool = True) -> int:
        return self.instances[(workflow, self.days[1] if later else self.days[0])]


def _node(node_id: str, output: str, inputs: tuple[str, ...] = ()) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": node_id,
        "name": node_id,
        "script": {"runtime": {"command": "VIRTUAL"}, "content": ""},
        "outputs": {"nodeOutputs": [{"data": output}]},
    }
    if inputs:
        found["inputs"] = {"nodeOutputs": [{"data": i} for i in inputs]}
    return found


def _flow(name: str, nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "version": "1.1.0",
        "kind": "CycleWorkflow",
        "spec": {
            "workflows": [
                {
                    "name": name,
                    "trigger": {"type": "Scheduler", "cron": CRON, "timezone": TZ},
                    "strategy": {"instanceMode": "T+1", "rerunTimes": 0},
                    "nodes": nodes,
                    **extra,
                }
            ]
        },
    }


def deploy(live: LiveServer, project_id: int, spec: dict[str, Any]) -> int:
    """Deploy a FlowSpec through the official SDK; the workflow's id."""
    sdk = live.sdk()
    job = sdk.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=json.dumps(spec))
    ).body.async_job
    assert job.status == "Success", job.error
    return int(
        sdk.get_workflow_definition(
            M.GetWorkflowDefinitionRequest(id=job.response)
        ).body.workflow_definition.workflow_id
    )


def make_linked(
    live: LiveServer,
    upstream_project: int,
    downstream_project: int | None = None,
    upstream_name: str = "",
    task_name: str = "report",
) -> Linked:
    """Deploy both workflows (the upstream one in `upstream_project`, the other in
    `downstream_project`, by default the same) and make their instances of two BizDates."""
    prefix = uuid.uuid4().hex[:10]
    load_out, report_out, tidy_out = (f"{prefix}_{n}" for n in ("load", "report", "tidy"))
    up_name = upstream_name or f"orders_{prefix}"
    down_name = f"report_{prefix}"
    up = deploy(live, upstream_project, _flow(up_name, [_node("load", load_out)]))
    down = deploy(
        live,
        upstream_project if downstream_project is None else downstream_project,
        _flow(
            down_name,
            [
                {**_node("report", report_out, (load_out,)), "name": task_name},
                _node("tidy", tidy_out, (report_out,)),
            ],
            dependencies=[{"nodeId": "report", "depends": [{"type": "CrossCycleDependsOnSelf"}]}],
        ),
    )
    store = live.store
    with store.read() as tx:
        workflows = [tx.workflows.get(up), tx.workflows.get(down)]
    today = datetime.now(ZoneInfo(TZ)).date()
    run_dates = [today - timedelta(days=2), today - timedelta(days=1)]
    plans = []
    for w in workflows:
        spec = w.spec.trigger
        assert spec.cron is not None
        trigger = Trigger(spec.cron, TZ, spec.start_ms, spec.end_ms)
        plans.append(GenerationPlan(w, [(d, cycles_on(trigger, d)) for d in run_dates], None))
    assert store.generate_many(plans, int(time.time() * 1000)) == 4
    biz_days = (run_dates[0] - timedelta(days=1), run_dates[1] - timedelta(days=1))
    instances: dict[tuple[str, date], int] = {}
    tasks: dict[tuple[str, date], int] = {}
    sdk = live.sdk()
    for workflow_id, name, project_id in (
        (up, "upstream", upstream_project),
        (down, "downstream", downstream_project or upstream_project),
    ):
        for day in biz_days:
            biz = int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TZ)).timestamp())
            listed = sdk.list_workflow_instances(
                M.ListWorkflowInstancesRequest(
                    project_id=project_id, biz_date=biz * 1000, workflow_id=workflow_id
                )
            ).body.paging_info.workflow_instances
            (found,) = listed
            instances[(name, day)] = int(found.id)
            items = sdk.list_task_instances(
                M.ListTaskInstancesRequest(
                    project_id=project_id, bizdate=biz * 1000, workflow_instance_id=found.id
                )
            ).body.paging_info.task_instances
            for t in items:
                node = "report" if t.task_name == task_name else str(t.task_name)
                tasks[(node, day)] = int(t.id)
    return Linked(up, down, up_name, down_name, biz_days, instances, tasks)
