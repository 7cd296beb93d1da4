"""What a rerun does to a task its branch node did not choose, and how an HTTP trigger node
runs outside scheduled instances, through the official SDK over real HTTP with a real engine
(both databases; docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models as M

from tests.engine.test_engine import flow, node
from tests.engine.test_operations import (
    Space,
    days_ago,
    engine_beside,
    manual_flow,
    periods,
    props,
    success_info,
)
from tests.support.server import LiveServer


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with engine_beside(db_url) as server:
        yield server


def _branching() -> list[dict[str, Any]]:
    """`pick` chooses `chosen`; `not_taken` (which would fail) is a dry run."""
    return [
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
            "id": "not_taken",
            "name": "not_taken",
            "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "echo ran; exit 1"},
            "inputs": {"nodeOutputs": [{"data": "no"}]},
            "outputs": {"nodeOutputs": [{"data": "not_taken_out"}]},
        },
        node("below", "DIDE_SHELL", "echo below", after="not_taken"),
    ]


def test_a_task_its_branch_did_not_choose_is_not_rerun_alone(live: LiveServer) -> None:
    space = Space(live)
    workflow_id, _ = space.deploy(manual_flow(_branching(), rerunTimes=0))
    (instance_id,) = space.result(
        space.create(type="ManualWorkflow", workflow_id=workflow_id)
    ).workflow_instance_ids
    (done,) = space.wait([instance_id])
    assert done.status == "Success"
    tasks = space.tasks(done)
    skipped, below, pick = tasks["not_taken"], tasks["below"], tasks["pick"]
    assert (skipped.trigger_recurrence, below.trigger_recurrence) == ("ConditionUnchoose",) * 2

    # Alone (or with what is below it), it is refused: it would run code its branch skipped.
    refused = success_info(
        space.sdk.rerun_task_instances(M.RerunTaskInstancesRequest(ids=[skipped.id, below.id]))
    )
    ok, message = refused[str(skipped.id)]
    assert not ok
    assert f"task instance {skipped.id} (not_taken)" in message
    assert f"branch node pick (task instance {pick.id})" in message
    assert "Rerun the branch node" in message
    assert not refused[str(below.id)][0]
    assert space.instance(instance_id).status == "Success"
    assert space.task(skipped.id).run_number == 1 and space.log(skipped.id) == ""

    # With its branch node, the branch decides again: it stays a dry run, nothing fails.
    again = success_info(
        space.sdk.rerun_task_instances(M.RerunTaskInstancesRequest(ids=[pick.id, skipped.id]))
    )
    assert again == {str(pick.id): (True, "OK"), str(skipped.id): (True, "OK")}
    (rerun,) = space.wait([instance_id], lambda i: i.status in ("Success", "Failure"))
    space.wait_task(pick.id, lambda t: t.status == "Success" and t.run_number == 2)
    (rerun,) = space.wait([instance_id])
    assert rerun.status == "Success"
    after = space.task(skipped.id)
    assert (after.status, after.trigger_recurrence) == ("Success", "ConditionUnchoose")
    assert "ran" not in space.log(skipped.id)

    # A workflow-level rerun of the unchosen task alone is refused the same way.
    op = space.sdk.rerun_workflow_instances(
        M.RerunWorkflowInstancesRequest(
            project_id=space.project.id,
            type="ManualWorkflow",
            workflow_id=workflow_id,
            ids=[instance_id],
            filter=M.RerunWorkflowInstancesRequestFilter(task_ids=[skipped.task_id]),
        )
    ).body.operation_id
    result = _rerun_result(space, op)
    assert result.status == "Failure" and "branch node pick" in result.failure_message
    assert space.instance(instance_id).status == "Success"


def _rerun_result(space: Space, operation_id: str) -> Any:
    deadline = time.monotonic() + 15
    while True:
        found = space.sdk.get_rerun_workflow_instances_result(
            M.GetRerunWorkflowInstancesResultRequest(operation_id=operation_id)
        ).body.result
        if found.status not in ("Running", "NotRun") or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_trigger_node_in_a_backfill_or_manual_run_does_not_wait_for_a_trigger(
    live: LiveServer,
) -> None:
    """Only scheduled (Normal) instances wait in WaitTrigger for TriggerSchedulerTaskInstance:
    in any other run the HTTP trigger node passes at its time and what is below it runs."""
    space = Space(live)
    workflow_id, tasks = space.deploy(
        flow(
            [
                node("gate", "SCHEDULER_TRIGGER"),
                node("work", "DIDE_SHELL", "echo after the gate", after="gate"),
            ]
        )
    )
    day = days_ago(3).isoformat()
    backfill = space.result(
        space.create(
            type="SupplementData",
            workflow_id=workflow_id,
            default_run_properties=props(
                mode="General", root_task_ids=[tasks["gate"]], include_task_ids=[tasks["work"]]
            ),
            periods=periods((day, day)),
        )
    )
    smoke = space.result(
        space.create(
            type="SmokeTest",
            workflow_id=workflow_id,
            default_run_properties=props(root_task_ids=[tasks["gate"], tasks["work"]]),
        )
    )
    ids = [*backfill.workflow_instance_ids, *smoke.workflow_instance_ids]
    assert len(ids) == 2
    for finished in space.wait(ids, timeout_s=30):
        assert finished.status == "Success", finished.type
        ran = space.tasks(finished)
        assert ran["gate"].status == "Success"
        assert "after the gate" in space.log(ran["work"].id)
