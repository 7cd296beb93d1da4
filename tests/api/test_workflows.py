"""Workflow definitions and deployed workflows through the official SDK: Create, Import
(with DryRun), Update, Delete, List and Get of definitions; ListWorkflows and GetWorkflow;
invalid FlowSpec answered with the JSON path of the fault; the `workflows` CLI.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models

from dwsched.domain.models import Project
from tests.api.sdk_helpers import acs3, assert_sdk_error, ok_json, sdk_error
from tests.cli.helpers import invoke, ok
from tests.support.factories import project
from tests.support.server import LiveServer
from tests.support.specs import qualified

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "daily_orders.json"


def example(p: Project | None = None, **changes: Any) -> dict[str, Any]:
    """The example workflow with `changes`. To be deployed in `p`, its outputs are qualified
    as DataWorks users name them: with the workflow's name (unless they are already), then
    with the workspace's (an output name has one producer over every workspace)."""
    spec: dict[str, Any] = json.loads(EXAMPLE.read_text())
    spec["spec"]["workflows"][0].update(changes)
    return spec if p is None else qualified(qualified(spec), p.name)


def import_(live: LiveServer, project_id: int, spec: dict[str, Any], dry_run: bool = False) -> Any:
    request = models.ImportWorkflowDefinitionRequest(
        project_id=project_id, spec=json.dumps(spec), dry_run=dry_run
    )
    return live.sdk().import_workflow_definition(request).body.async_job


def get_workflow(live: LiveServer, workflow_id: int) -> Any:
    return live.sdk().get_workflow(models.GetWorkflowRequest(id=workflow_id)).body.workflow


def get_definition(live: LiveServer, definition_id: str, project_id: int | None = None) -> Any:
    request = models.GetWorkflowDefinitionRequest(id=definition_id, project_id=project_id)
    return live.sdk().get_workflow_definition(request).body.workflow_definition


def list_workflows(live: LiveServer, project_id: int, **fields: Any) -> Any:
    request = models.ListWorkflowsRequest(project_id=project_id, **fields)
    return live.sdk().list_workflows(request).body.paging_info


def list_definitions(live: LiveServer, project_id: int, **fields: Any) -> Any:
    request = models.ListWorkflowDefinitionsRequest(project_id=project_id, **fields)
    return live.sdk().list_workflow_definitions(request).body.paging_info


def test_import_deploys_the_workflow_with_its_tasks(live: LiveServer) -> None:
    p = project(live.store)
    spec = example(p)
    job = import_(live, p.id, spec)
    assert (job.status, job.completed, job.progress, job.type) == ("Success", True, 100, "Create")
    definition = get_definition(live, job.response, p.id)
    assert definition.id == job.response and definition.name == "daily_orders"
    assert json.loads(definition.spec) == spec  # the text as given
    assert definition.project_id == p.id and definition.workflow_id

    w = get_workflow(live, definition.workflow_id)
    assert (w.id, w.name, w.project_id, w.env_type) == (
        definition.workflow_id,
        "daily_orders",
        p.id,
        "Prod",
    )
    assert (w.trigger.type, w.trigger.cron) == ("Scheduler", "00 30 02 * * ?")
    assert (w.trigger.start_time, w.trigger.end_time) == (
        "1970-01-01 00:00:00",
        "9999-01-01 00:00:00",
    )
    assert w.parameters == "env=prod"
    tasks = {t.name: t for t in w.tasks}
    assert [t.name for t in w.tasks] == [
        "ods_orders_extract",
        "branch_weekday",
        "ads_orders_report",
        "weekend_note",
    ]
    extract = tasks["ods_orders_extract"]
    assert (extract.type, extract.timeout, extract.runtime_resource.resource_group_id) == (
        "DIDE_SHELL",
        3600,
        "default",
    )
    # The workflow's strategy applies to nodes that do not set their own.
    assert (extract.rerun_mode, extract.rerun_times, extract.rerun_interval) == (
        "AllAllowed",
        2,
        60,
    )
    assert tasks["branch_weekday"].type == "CONTROLLER_BRANCH"
    assert all(t.workflow_id == w.id and t.project_id == p.id for t in w.tasks)
    assert len({t.id for t in w.tasks}) == 4

    listed = list_workflows(live, p.id)
    assert listed.total_count == 1
    assert [x.id for x in listed.workflows] == [w.id]
    assert listed.workflows[0].trigger.cron == "00 30 02 * * ?"
    defs = list_definitions(live, p.id, name="ORDERS")
    assert defs.total_count == 1
    item = defs.workflow_definitions[0]
    assert (item.id, item.type, item.script.runtime.command) == (
        job.response,
        "CycleWorkflow",
        "WORKFLOW",
    )


def test_task_dependencies_come_from_outputs(live: LiveServer) -> None:
    p = project(live.store)
    job = import_(live, p.id, example(p))
    w = get_workflow(live, get_definition(live, job.response).workflow_id)
    body = ok_json(acs3(live, "GetWorkflow", query={"Id": w.id}, method="GET").send())["Workflow"]
    by_name = {t["Name"]: t for t in body["Tasks"]}
    ids = {name: t["Id"] for name, t in by_name.items()}
    assert by_name["ods_orders_extract"]["UpstreamTaskIds"] == []
    assert by_name["branch_weekday"]["UpstreamTaskIds"] == [ids["ods_orders_extract"]]
    assert by_name["ads_orders_report"]["UpstreamTaskIds"] == [ids["branch_weekday"]]
    assert by_name["weekend_note"]["UpstreamTaskIds"] == [ids["branch_weekday"]]


def test_dry_run_validates_and_deploys_nothing(live: LiveServer) -> None:
    p = project(live.store)
    job = import_(live, p.id, example(), dry_run=True)
    assert (job.status, job.response) == ("Success", "")
    assert list_definitions(live, p.id).total_count == 0
    assert list_workflows(live, p.id).total_count == 0


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    spec = example()
    target: Any = spec
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return spec


W = ["spec", "workflows", 0]
BROKEN = [
    (_broken([*W, "trigger", "cron"], "00 61 02 * * ?"), "$.spec.workflows[0].trigger.cron"),
    (_broken([*W, "trigger", "cron"], "0 2 * * *"), "$.spec.workflows[0].trigger.cron"),
    (_broken([*W, "trigger", "timezone"], "Mars/Olympus"), "$.spec.workflows[0].trigger.timezone"),
    (
        _broken([*W, "nodes", 1, "script", "runtime"], KeyError),
        "$.spec.workflows[0].nodes[1].script",
    ),
    (
        _broken([*W, "nodes", 2, "inputs", "nodeOutputs"], [{"data": "nope"}]),
        "$.spec.workflows[0].nodes[2].inputs.nodeOutputs[0].data",
    ),
    (
        _broken(
            [*W, "dependencies"],
            [
                {
                    "nodeId": "extract_orders",
                    "depends": [{"type": "Normal", "nodeId": "build_report"}],
                }
            ],
        ),
        "cycle",
    ),
    (
        _broken([*W, "dependencies"], [{"nodeId": "ghost", "depends": []}]),
        "$.spec.workflows[0].dependencies[0].nodeId",
    ),
    (_broken([*W, "nodes", 3, "id"], "extract_orders"), "$.spec.workflows[0].nodes[3].id"),
    (_broken([*W, "name"], KeyError), "$.spec.workflows[0]"),
    (_broken(["kind"], "Galaxy"), "$.kind"),
    (_broken([*W, "strategy", "instanceMode"], "Sometimes"), "instanceMode"),
    (
        _broken([*W, "parameters"], [{"name": "region", "value": "hz north"}]),
        "$.spec.workflows[0].parameters[0].value",
    ),
    (
        _broken([*W, "parameters"], [{"name": "a", "value": "1"}, {"name": "1st", "value": ""}]),
        "$.spec.workflows[0].parameters[1].name",
    ),
]


@pytest.mark.parametrize(("spec", "names"), BROKEN)
def test_invalid_specs_name_the_fault_and_change_nothing(
    live: LiveServer, spec: dict[str, Any], names: str
) -> None:
    p = project(live.store)
    for dry_run in (True, False):
        error = sdk_error(lambda d=dry_run: import_(live, p.id, spec, dry_run=d))
        assert_sdk_error(error, 400, "InvalidParameter", names)
        assert "Spec" in error.data["Message"]
    create = models.CreateWorkflowDefinitionRequest(project_id=p.id, spec=json.dumps(spec))
    error = sdk_error(lambda: live.sdk().create_workflow_definition(create))
    assert_sdk_error(error, 400, "InvalidParameter", names)
    assert list_definitions(live, p.id).total_count == 0


def test_not_json_and_missing_spec(live: LiveServer) -> None:
    p = project(live.store)
    request = models.ImportWorkflowDefinitionRequest(project_id=p.id, spec="{not json")
    assert_sdk_error(
        sdk_error(lambda: live.sdk().import_workflow_definition(request)),
        400,
        "InvalidParameter",
        "Spec",
    )
    request = models.ImportWorkflowDefinitionRequest(project_id=p.id)
    assert_sdk_error(
        sdk_error(lambda: live.sdk().import_workflow_definition(request)),
        400,
        "MissingParameter",
        "Spec",
    )


def test_create_update_reimport_and_delete(live: LiveServer) -> None:
    p = project(live.store)
    created = (
        live.sdk()
        .create_workflow_definition(
            models.CreateWorkflowDefinitionRequest(project_id=p.id, spec=json.dumps(example(p)))
        )
        .body
    )
    definition = get_definition(live, created.id, p.id)
    # Create deploys the workflow's own fields; its nodes come with Import.
    w = get_workflow(live, definition.workflow_id)
    assert w.tasks == [] and w.trigger.cron == "00 30 02 * * ?"

    job = import_(live, p.id, example(p))
    assert job.response == created.id  # the same name: overwritten, not duplicated
    w = get_workflow(live, definition.workflow_id)
    first_ids = {t.name: t.id for t in w.tasks}
    assert len(first_ids) == 4

    changed = example(
        p, trigger={**example()["spec"]["workflows"][0]["trigger"], "cron": "00 15 03 * * ?"}
    )
    done = (
        live.sdk()
        .update_workflow_definition(
            models.UpdateWorkflowDefinitionRequest(
                id=created.id, project_id=p.id, spec=json.dumps(changed)
            )
        )
        .body
    )
    assert done.success is True
    w = get_workflow(live, definition.workflow_id)
    assert w.trigger.cron == "00 15 03 * * ?"
    assert {t.name: t.id for t in w.tasks} == first_ids  # Update keeps the deployed nodes
    assert json.loads(get_definition(live, created.id).spec) == changed

    fewer = copy.deepcopy(changed)
    fewer["spec"]["workflows"][0]["nodes"].pop()  # weekend_note goes
    import_(live, p.id, fewer)
    w = get_workflow(live, definition.workflow_id)
    assert {t.name: t.id for t in w.tasks} == {
        k: v for k, v in first_ids.items() if k != "weekend_note"
    }

    deleted = (
        live.sdk()
        .delete_workflow_definition(
            models.DeleteWorkflowDefinitionRequest(id=created.id, project_id=p.id)
        )
        .body
    )
    assert deleted.success is True
    error = sdk_error(lambda: get_definition(live, created.id, p.id))
    assert_sdk_error(error, 404, "Invalid.WorkflowDefinition.NotExist", created.id)
    assert list_workflows(live, p.id).total_count == 0
    assert list_definitions(live, p.id).total_count == 0


def test_unknown_ids_and_projects(live: LiveServer) -> None:
    assert_sdk_error(
        sdk_error(lambda: get_workflow(live, 987_654_321)), 404, "Invalid.Workflow.NotExist"
    )
    assert_sdk_error(
        sdk_error(lambda: get_definition(live, "987654321")),
        404,
        "Invalid.WorkflowDefinition.NotExist",
    )
    assert_sdk_error(sdk_error(lambda: get_definition(live, "abc")), 400, "InvalidParameter", "Id")
    assert_sdk_error(
        sdk_error(lambda: import_(live, 987_654_321, example())),
        404,
        "Invalid.Tenant.ProjectNotExist",
    )
    p = project(live.store)
    other = project(live.store)
    job = import_(live, p.id, example(p))
    # A definition is found only in its own workspace.
    assert_sdk_error(
        sdk_error(lambda: get_definition(live, job.response, other.id)),
        404,
        "Invalid.WorkflowDefinition.NotExist",
    )


def test_list_workflows_filters_sorts_and_pages(live: LiveServer) -> None:
    p = project(live.store)
    ids = []
    for name in ("alpha_daily", "beta_daily", "gamma_hourly"):
        job = import_(live, p.id, example(p, name=name))
        ids.append(get_definition(live, job.response).workflow_id)
    manual = example(p, name="delta_manual")
    manual["kind"] = "ManualWorkflow"
    job = import_(live, p.id, manual)
    ids.append(get_definition(live, job.response).workflow_id)
    triggered = example(p, name="epsilon_triggered")
    triggered["spec"]["workflows"][0]["trigger"] = {"type": "TriggerWorkflow"}
    job = import_(live, p.id, triggered)
    ids.append(get_definition(live, job.response).workflow_id)

    assert [w.id for w in list_workflows(live, p.id).workflows] == ids[::-1]
    assert [w.id for w in list_workflows(live, p.id, sort_by="Id Asc").workflows] == ids
    assert [w.name for w in list_workflows(live, p.id, name="DAILY").workflows] == [
        "beta_daily",
        "alpha_daily",
    ]
    assert [w.id for w in list_workflows(live, p.id, trigger_type="Manual").workflows] == [ids[3]]
    assert list_workflows(live, p.id, trigger_type="Scheduler").total_count == 3
    found = list_workflows(live, p.id, trigger_type="TriggerWorkflow").workflows
    assert [(w.id, w.trigger.type) for w in found] == [(ids[4], "TriggerWorkflow")]
    page = list_workflows(live, p.id, page_size=2, page_number=2, sort_by="Id Asc")
    assert (page.total_count, [w.id for w in page.workflows]) == (5, ids[2:4])
    assert [w.id for w in list_workflows(live, p.id, ids=[ids[1], ids[2]]).workflows] == [
        ids[2],
        ids[1],
    ]
    assert list_workflows(live, p.id, env_type="Dev").total_count == 0
    error = sdk_error(lambda: list_workflows(live, p.id, sort_by="Name Asc"))
    assert_sdk_error(error, 400, "InvalidParameter", "SortBy")
    error = sdk_error(lambda: list_workflows(live, p.id, trigger_type="Cron"))
    assert_sdk_error(error, 400, "InvalidParameter", "TriggerType")


def test_the_workflows_cli(live: LiveServer, tmp_path: Path) -> None:
    p = project(live.store)
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": live.key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": live.secret,
        "DWSCHED_ENDPOINT": live.endpoint,
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(example(p, name="cli_flow")))
    out = ok(invoke("workflows", "apply", "--project", str(p.id), "--dry-run", str(path), env=env))
    assert "nothing deployed" in out.stdout
    assert list_workflows(live, p.id).total_count == 0
    out = ok(invoke("workflows", "apply", "--project", str(p.id), str(path), env=env)).stdout
    assert "deployed 'cli_flow'" in out
    workflow_id = list_workflows(live, p.id).workflows[0].id
    assert f"workflow {workflow_id}" in out
    listed = ok(invoke("workflows", "list", "--project", str(p.id), env=env)).stdout
    assert "cli_flow" in listed and "00 30 02 * * ?" in listed
    shown = ok(invoke("workflows", "show", str(workflow_id), env=env)).stdout
    for name in ("ods_orders_extract", "branch_weekday", "ads_orders_report", "DIDE_SHELL"):
        assert name in shown
    as_json = json.loads(
        ok(invoke("workflows", "show", str(workflow_id), "--json", env=env)).stdout
    )
    assert as_json["Id"] == workflow_id and len(as_json["Tasks"]) == 4

    path.write_text(json.dumps(_broken([*W, "trigger", "cron"], "bad")))
    failed = invoke("workflows", "apply", "--project", str(p.id), str(path), env=env)
    assert failed.exit_code != 0
    assert "$.spec.workflows[0].trigger.cron" in failed.output
    assert "Traceback" not in failed.output
