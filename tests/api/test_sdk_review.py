"""Findings of calling every action through the official SDK and comparing the raw answers
with its models (both databases): each field has the type its model declares, a run of a
workflow without tasks says so, and dwsched's extension fields are readable through the
SDK's own `call_api` (docs/semantics.md, "Extension fields").
"""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_dataworks_public20240518.client import Client as SdkClient
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

from tests.api.sdk_helpers import assert_sdk_error, sdk_error
from tests.engine.test_engine import flow, node
from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put
from tests.support.server import LiveServer


def raw(sdk: SdkClient, action: str, method: str = "POST", **params: Any) -> dict[str, Any]:
    """The whole JSON answer, as the server sent it, through the SDK's signed `call_api`
    (the typed models drop fields they do not declare)."""
    request = utils_models.OpenApiRequest(query=Utils.query(params))
    spec = utils_models.Params(
        action=action,
        version="2024-05-18",
        protocol="HTTP",
        pathname="/",
        method=method,
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    body: dict[str, Any] = sdk.call_api(spec, request, RuntimeOptions())["body"]
    return body


def test_project_roles_have_the_types_their_models_declare(live: LiveServer) -> None:
    sdk = live.sdk()
    p = project(live.store)
    one = raw(sdk, "GetProjectRole", ProjectId=p.id, Code="role_project_pe")["ProjectRole"]
    assert one["ModulePermissions"]
    assert all(isinstance(m["ModuleId"], int) for m in one["ModulePermissions"])
    paging = raw(sdk, "ListProjectRoles", ProjectId=p.id, PageSize=3)["PagingInfo"]
    assert (paging["PageNumber"], paging["PageSize"], paging["TotalCount"]) == ("1", "3", "10")
    for role in paging["ProjectRoles"]:
        assert all(isinstance(m["ModuleId"], int) for m in role["ModulePermissions"])
    # and the SDK's models read them as declared
    typed = sdk.list_project_roles(M.ListProjectRolesRequest(project_id=p.id)).body.paging_info
    assert typed.total_count == "10"
    module = typed.project_roles[0].module_permissions[0]
    assert isinstance(module.module_id, int) and module.module_name


def test_a_run_of_a_workflow_without_tasks_says_it_has_none(live: LiveServer) -> None:
    sdk = live.sdk()
    p = project(live.store)
    spec = flow([node("v", "VIRTUAL")])
    spec["spec"]["workflows"][0]["nodes"] = []
    job = sdk.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=p.id, spec=json.dumps(spec))
    ).body.async_job
    assert job.status == "Success", job.error
    workflow_id = sdk.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    for kind in ("SupplementData", "SmokeTest"):
        error = sdk_error(
            lambda kind=kind: sdk.create_workflow_instances(  # type: ignore[misc]
                M.CreateWorkflowInstancesRequest(
                    project_id=p.id,
                    name="nothing",
                    type=kind,
                    workflow_id=workflow_id,
                    periods=M.CreateWorkflowInstancesRequestPeriods(
                        biz_dates=[
                            M.CreateWorkflowInstancesRequestPeriodsBizDates(
                                start_biz_date="2025-01-01", end_biz_date="2025-01-01"
                            )
                        ]
                    ),
                )
            )
        )
        assert_sdk_error(error, 400, "InvalidParameter", "WorkflowId")
        assert f"the workflow {workflow_id}" in error.data["Message"]
        assert "has no tasks" in error.data["Message"]
        assert "ExcludeTaskIds" not in error.data["Message"]


def test_the_sdk_sets_a_workspaces_zone_with_a_resource_tag(live: LiveServer) -> None:
    sdk = live.sdk()
    made = sdk.create_project(
        M.CreateProjectRequest(
            name="berlin_tagged",
            aliyun_resource_tags=[
                M.CreateProjectRequestAliyunResourceTags(
                    key="dwsched:TimeZone", value="Europe/Berlin"
                )
            ],
        )
    ).body.id
    assert raw(sdk, "GetProject", method="GET", Id=made)["Project"]["TimeZone"] == "Europe/Berlin"
    for tags, words in (
        ([("dwsched:TimeZone", "Mars/Olympus")], "AliyunResourceTags (dwsched:TimeZone)"),
        ([("dwsched:TimeZone", "")], "AliyunResourceTags (dwsched:TimeZone)"),
    ):
        error = sdk_error(
            lambda tags=tags: sdk.create_project(  # type: ignore[misc]
                M.CreateProjectRequest(
                    name="refused_zone",
                    aliyun_resource_tags=[
                        M.CreateProjectRequestAliyunResourceTags(key=k, value=v) for k, v in tags
                    ],
                )
            )
        )
        assert_sdk_error(error, 400, "InvalidParameter", words)
    error = sdk_error(
        lambda: raw(
            sdk,
            "CreateProject",
            Name="both_zones",
            TimeZone="Asia/Tokyo",
            AliyunResourceTags=json.dumps([{"Key": "dwsched:TimeZone", "Value": "UTC"}]),
        )
    )
    assert_sdk_error(error, 400, "InvalidParameter", "differ")


def test_extension_fields_are_read_through_call_api(live: LiveServer) -> None:
    """The typed models drop what they do not declare; `call_api`'s body keeps it."""
    sdk = live.sdk()
    p = project(live.store)
    put(live.store, [instance(p.id)])
    typed = sdk.list_workflow_instances(
        M.ListWorkflowInstancesRequest(project_id=p.id, biz_date=SHANGHAI_DAY_MS)
    ).body
    assert "TriggerTime" not in typed.to_map()["PagingInfo"]["WorkflowInstances"][0]
    listed = raw(sdk, "ListWorkflowInstances", ProjectId=p.id, BizDate=SHANGHAI_DAY_MS)
    (item,) = listed["PagingInfo"]["WorkflowInstances"]
    assert item["TriggerTime"] == SHANGHAI_DAY_MS + 86_400_000 + 2 * 3_600_000
    assert raw(sdk, "GetProject", method="GET", Id=p.id)["Project"]["TimeZone"] == "Asia/Shanghai"
    spec = flow([node("a", "VIRTUAL"), node("b", "VIRTUAL", after="a")])
    job = sdk.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=p.id, spec=json.dumps(spec))
    ).body.async_job
    workflow_id = sdk.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    tasks = raw(sdk, "GetWorkflow", method="GET", Id=workflow_id)["Workflow"]["Tasks"]
    ids = {t["Name"]: t["Id"] for t in tasks}
    assert {t["Name"]: t["UpstreamTaskIds"] for t in tasks} == {"a": [], "b": [ids["a"]]}
