"""Invalid requests: HTTP 400 InvalidParameter / MissingParameter naming the parameter, 404 for
unknown workspaces and instances, and nothing changed by a refused request (DESIGN.md §2, §3).
"""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models

from dwsched.api.errors import status_and_code
from dwsched.domain import errors as e
from tests.api.sdk_helpers import (
    ALGORITHMS,
    acs3,
    assert_error,
    assert_sdk_error,
    list_instances,
    sdk_error,
)
from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put
from tests.support.server import LiveServer

# (request model fields, the parameter the message must name, a hint of what was expected)
INVALID_LIST: list[tuple[dict[str, Any], str, str | None]] = [
    ({"page_size": 0}, "PageSize", "500"),
    ({"page_size": 501}, "PageSize", "500"),
    ({"page_size": -1}, "PageSize", None),
    ({"page_size": "ten"}, "PageSize", None),
    ({"page_number": 0}, "PageNumber", None),
    ({"page_number": -3}, "PageNumber", None),
    ({"page_number": "1.5"}, "PageNumber", None),
    ({"type": "normal"}, "Type", "Normal"),
    ({"type": "Periodic"}, "Type", "SupplementData"),
    ({"type": ""}, "Type", None),
    ({"env_type": "prod"}, "EnvType", "Prod"),
    ({"env_type": "Test"}, "EnvType", "Dev"),
    ({"ids": list(range(1, 102))}, "Ids", "100"),
    ({"ids": ["a"]}, "Ids", None),
    ({"ids": ["1x"]}, "Ids", None),
    ({"ids": [1.5]}, "Ids", None),
    ({"ids": [0]}, "Ids", None),
    ({"ids": [True]}, "Ids", None),
    ({"ids": [[1]]}, "Ids", None),
    ({"ids": [None]}, "Ids", None),
    ({"filter": "not json"}, "Filter", None),
    ({"filter": "[1]"}, "Filter", None),
    ({"filter": '"Success"'}, "Filter", None),
    ({"filter": "null"}, "Filter", None),
    ({"filter": "{"}, "Filter", None),
    ({"filter": '{"Status":"Success"}'}, "Filter", None),
    ({"filter": '{"taskName":"x"}'}, "Filter", None),
    ({"filter": '{"status":"Bogus"}'}, "Filter", "Success"),
    ({"filter": '{"status":"success"}'}, "Filter", None),
    ({"filter": '{"status":["Success","Nope"]}'}, "Filter", None),
    ({"filter": '{"status":5}'}, "Filter", None),
    ({"filter": '{"status":{"a":1}}'}, "Filter", None),
    ({"filter": '{"executionDate":"tomorrow"}'}, "Filter", None),
    ({"filter": '{"executionDate":1.5e12}'}, "Filter", None),
    ({"filter": '{"executionDate":true}'}, "Filter", None),
    ({"filter": '{"executionDate":[1743350400000]}'}, "Filter", None),
    ({"sort_by": "Name Desc"}, "SortBy", "TriggerTime"),
    ({"sort_by": "Status"}, "SortBy", None),
    ({"sort_by": "Id Up"}, "SortBy", None),
    ({"sort_by": "Id Desc Please"}, "SortBy", None),
    ({"sort_by": "Id Desc,"}, "SortBy", None),
    ({"sort_by": ",Id"}, "SortBy", None),
    ({"sort_by": "Id, id Desc"}, "SortBy", None),
    ({"biz_date": "yesterday"}, "BizDate", None),
    ({"biz_date": "1743350400000.0"}, "BizDate", None),
    ({"biz_date": "1.7e12"}, "BizDate", None),
    ({"biz_date": -1}, "BizDate", None),
    ({"biz_date": 10**16}, "BizDate", None),
    ({"project_id": "abc"}, "ProjectId", None),
    ({"project_id": 0}, "ProjectId", None),
    ({"project_id": -7}, "ProjectId", None),
    ({"project_id": 2**63}, "ProjectId", None),
    ({"ids": [2**63]}, "Ids", None),
    ({"workflow_id": "x"}, "WorkflowId", None),
    ({"workflow_id": 0}, "WorkflowId", None),
    ({"unified_workflow_instance_id": -5}, "UnifiedWorkflowInstanceId", None),
    ({"tags": [":v"]}, "Tags", None),
    ({"tags": [1]}, "Tags", None),
    ({"tags": ["k:v"] * 21}, "Tags", None),
    ({"name": "x" * 513}, "Name", None),
    ({"owner": "x" * 65}, "Owner", None),
]


def _request(project_id: int, fields: dict[str, Any]) -> models.ListWorkflowInstancesRequest:
    values: dict[str, Any] = {"project_id": project_id, "biz_date": SHANGHAI_DAY_MS, **fields}
    return models.ListWorkflowInstancesRequest(**values)


@pytest.mark.parametrize("param", sorted({param for _, param, _ in INVALID_LIST}))
def test_invalid_list_parameters_are_invalid_parameter(live: LiveServer, param: str) -> None:
    p = project(live.store)
    sdk = live.sdk()
    for fields, named, hint in INVALID_LIST:
        if named != param:
            continue
        error = sdk_error(lambda f=fields: sdk.list_workflow_instances(_request(p.id, f)))
        try:
            assert_sdk_error(error, 400, "InvalidParameter", param)
            if hint is not None:
                assert hint in error.data["Message"], error.data["Message"]
        except AssertionError as failure:
            raise AssertionError(f"{fields}: {failure}") from None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"page_size": 501}, "PageSize"),
        ({"filter": '{"unknown":1}'}, "Filter"),
        ({"sort_by": "Id Sideways"}, "SortBy"),
        ({"ids": ["a"]}, "Ids"),
    ],
)
def test_invalid_parameters_with_the_v1_signature(
    live: LiveServer, fields: dict[str, Any], param: str
) -> None:
    p = project(live.store)
    sdk = live.sdk("v2")
    error = sdk_error(lambda: sdk.list_workflow_instances(_request(p.id, fields)))
    assert_sdk_error(error, 400, "InvalidParameter", param)


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"Ids": "5"}, "Ids"),  # JSON, but not an array
        ({"Ids": "[1,"}, "Ids"),  # not JSON
        ({"Ids": '{"1":1}'}, "Ids"),
        ({"Ids.1": "7", "Ids.x": "8"}, "Ids"),  # a flat item with no index
        ({"Ids.1": "seven"}, "Ids"),
        ({"Ids.0": "7"}, "Ids"),
        ({"Tags": "k:v"}, "Tags"),  # not JSON
        ({"Tags": '"k:v"'}, "Tags"),  # JSON, but not an array
        ({"Tags": '{"k":"v"}'}, "Tags"),
        ({"Tags.1": ":v"}, "Tags"),
        ({"Filter": ""}, "Filter"),
        ({"Filter": "   "}, "Filter"),
    ],
)
def test_invalid_raw_arrays_and_objects(live: LiveServer, form: dict[str, str], param: str) -> None:
    p = project(live.store)
    sent = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS, **form}
    response = acs3(live, "ListWorkflowInstances", form=sent).send()
    assert_error(response, 400, "InvalidParameter", param)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"biz_date": None}, "BizDate"),
        ({"project_id": None}, "ProjectId"),
        ({"biz_date": None, "ids": [1, 2]}, "BizDate"),  # required also with Ids
        ({"biz_date": None, "unified_workflow_instance_id": 3}, "BizDate"),
    ],
)
def test_missing_required_list_parameters(
    live: LiveServer, algorithm: str, fields: dict[str, Any], param: str
) -> None:
    p = project(live.store)
    sdk = live.sdk(algorithm)
    error = sdk_error(lambda: sdk.list_workflow_instances(_request(p.id, fields)))
    assert_sdk_error(error, 400, "MissingParameter", param)


def test_missing_required_parameters_of_other_actions(live: LiveServer) -> None:
    sdk = live.sdk()
    calls = [
        lambda: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest()),
        lambda: sdk.get_project(models.GetProjectRequest()),
        lambda: sdk.update_project(models.UpdateProjectRequest(display_name="x")),
        lambda: sdk.delete_project(models.DeleteProjectRequest()),
        lambda: sdk.create_project(models.CreateProjectRequest(display_name="x")),
    ]
    for call, param in zip(calls, ["Id", "Id", "Id", "Id", "Name"], strict=True):
        assert_sdk_error(sdk_error(call), 400, "MissingParameter", param)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"project_id": "--5"}, "ProjectId"),
        ({"page_size": "--5"}, "PageSize"),
        ({"page_number": "--1"}, "PageNumber"),
        ({"biz_date": "--1743350400000"}, "BizDate"),
        ({"workflow_id": "---3"}, "WorkflowId"),
        ({"ids": ["--1"]}, "Ids"),
        ({"filter": '{"executionDate":"--1743350400000"}'}, "Filter"),
    ],
)
def test_a_doubled_minus_sign_is_invalid_parameter(
    live: LiveServer, fields: dict[str, Any], param: str
) -> None:
    p = project(live.store)
    sdk = live.sdk()
    error = sdk_error(lambda: sdk.list_workflow_instances(_request(p.id, fields)))
    assert_sdk_error(error, 400, "InvalidParameter", param)


def _not_an_internal_error(response: Any, param: str) -> None:
    """A value the server cannot serve is the client's error, never a 500."""
    if response.status_code != 200:
        assert_error(response, 400, "InvalidParameter", param)


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Pacific/Kiritimati", "America/New_York"])
def test_extreme_instants_are_not_internal_errors(live: LiveServer, tz: str) -> None:
    p = project(live.store, tz=tz)
    last_ms = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
    for instant in (0, 1, last_ms - 86_400_000, last_ms):
        form = {"ProjectId": p.id, "BizDate": instant}
        _not_an_internal_error(acs3(live, "ListWorkflowInstances", form=form).send(), "BizDate")
        form = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS}
        form["Filter"] = f'{{"executionDate":{instant}}}'
        response = acs3(live, "ListWorkflowInstances", form=form).send()
        _not_an_internal_error(response, "Filter")


@pytest.mark.parametrize(
    ("action", "form", "param"),
    [
        ("ListWorkflowInstances", {"Name": "a\x00b"}, "Name"),
        ("ListWorkflowInstances", {"Owner": "10\x0000"}, "Owner"),
        ("ListWorkflowInstances", {"Tags": '["k\\u0000:v"]'}, "Tags"),
        ("ListWorkflowInstances", {"SortBy": "Id\x00"}, "SortBy"),
        ("UpdateProject", {"Description": "nul\x00here"}, "Description"),
        ("UpdateProject", {"DisplayName": "nul\x00here"}, "DisplayName"),
    ],
)
def test_a_nul_character_is_not_an_internal_error(
    live: LiveServer, action: str, form: dict[str, str], param: str
) -> None:
    p = project(live.store)
    put(live.store, [instance(p.id)])
    before = _project_view(live, p.id)
    sent = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS, "Id": p.id, **form}
    response = acs3(live, action, form=sent).send()
    _not_an_internal_error(response, param)
    if action == "ListWorkflowInstances" and response.status_code == 200:
        assert response.json()["PagingInfo"]["WorkflowInstances"] == []
    if action == "UpdateProject":
        expected = {**before, param: form[param]} if response.status_code == 200 else before
        assert _project_view(live, p.id) == expected


def test_a_nul_character_in_a_new_project_is_not_an_internal_error(live: LiveServer) -> None:
    name = f"nul_{project(live.store).id}"
    response = acs3(live, "CreateProject", form={"Name": name, "DisplayName": "a\x00b"}).send()
    _not_an_internal_error(response, "DisplayName")
    listed = live.sdk().list_projects(models.ListProjectsRequest(names=[name])).body
    assert listed.paging_info.total_count == (1 if response.status_code == 200 else 0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_invalid_ids_of_other_actions(live: LiveServer, algorithm: str) -> None:
    sdk = live.sdk(algorithm)
    calls = [
        lambda: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id="abc")),
        lambda: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id=0)),
        lambda: sdk.get_project(models.GetProjectRequest(id="1; DROP TABLE projects")),
        lambda: sdk.delete_project(models.DeleteProjectRequest(id=-1)),
    ]
    for call in calls:
        assert_sdk_error(sdk_error(call), 400, "InvalidParameter", "Id")


def test_a_doubled_minus_sign_in_an_id_is_invalid_parameter(live: LiveServer) -> None:
    sdk = live.sdk()
    error = sdk_error(
        lambda: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id="--1"))
    )
    assert_sdk_error(error, 400, "InvalidParameter", "Id")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unknown_project_is_404(live: LiveServer, algorithm: str) -> None:
    p = project(live.store)
    missing = p.id + 1_000_000
    sdk = live.sdk(algorithm)
    error = sdk_error(lambda: sdk.list_workflow_instances(_request(missing, {})))
    assert_sdk_error(error, 404, "Invalid.Tenant.ProjectNotExist", str(missing))
    # Also when the other parameters would select nothing at all.
    error = sdk_error(
        lambda: sdk.list_workflow_instances(_request(missing, {"ids": [1], "name": "zzz"}))
    )
    assert_sdk_error(error, 404, "Invalid.Tenant.ProjectNotExist", str(missing))
    for call in (
        lambda: sdk.get_project(models.GetProjectRequest(id=missing)),
        lambda: sdk.update_project(models.UpdateProjectRequest(id=missing, display_name="x")),
        lambda: sdk.delete_project(models.DeleteProjectRequest(id=missing)),
    ):
        assert_sdk_error(sdk_error(call), 404, "Invalid.Tenant.ProjectNotExist", str(missing))


def test_unknown_instance_is_404(live: LiveServer) -> None:
    sdk = live.sdk()
    error = sdk_error(
        lambda: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id=987_654_321_012))
    )
    assert_sdk_error(error, 404, "Invalid.WorkflowInstance.NotExist", "987654321012")


# A refused request changes nothing


def _project_view(live: LiveServer, project_id: int) -> dict[str, Any]:
    body = live.sdk().get_project(models.GetProjectRequest(id=project_id)).body
    view: dict[str, Any] = body.project.to_map()
    return view


@pytest.mark.parametrize(
    "fields",
    [
        {"display_name": "changed", "status": "Bogus"},
        {"display_name": "changed", "status": "Frozen"},
        {"description": "changed", "status": "Forbidden", "dev_environment_enabled": "maybe"},
        {"display_name": "x" * 257},
    ],
)
def test_a_refused_update_changes_nothing(live: LiveServer, fields: dict[str, Any]) -> None:
    p = project(live.store)
    before = _project_view(live, p.id)
    sdk = live.sdk()
    error = sdk_error(lambda: sdk.update_project(models.UpdateProjectRequest(id=p.id, **fields)))
    assert (error.status_code, error.code) == (400, "InvalidParameter")
    assert _project_view(live, p.id) == before


def test_a_refused_time_zone_change_changes_nothing(live: LiveServer) -> None:
    p = project(live.store)
    before = _project_view(live, p.id)
    response = acs3(
        live,
        "UpdateProject",
        form={"Id": p.id, "DisplayName": "changed", "TimeZone": "Mars/Olympus_Mons"},
    ).send()
    assert_error(response, 400, "InvalidParameter", "TimeZone")
    assert _project_view(live, p.id) == before
    raw = acs3(live, "GetProject", query={"Id": p.id}, method="GET").send()
    assert raw.json()["Project"]["TimeZone"] == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"TimeZone": "Not/AZone"}, "TimeZone"),
        ({"TimeZone": "../../etc/passwd"}, "TimeZone"),
        ({"DevEnvironmentEnabled": "yes"}, "DevEnvironmentEnabled"),
        ({"DisplayName": "d" * 257}, "DisplayName"),
    ],
)
def test_a_refused_create_creates_nothing(
    live: LiveServer, form: dict[str, str], param: str
) -> None:
    name = f"refused_{project(live.store).id}"
    response = acs3(live, "CreateProject", form={"Name": name, **form}).send()
    assert_error(response, 400, "InvalidParameter", param)
    listed = live.sdk().list_projects(models.ListProjectsRequest(names=[name])).body
    assert listed.paging_info.total_count == 0


@pytest.mark.parametrize("name", ["1abc", "ab", "has space", "x" * 65, "dash-name", "点"])
def test_an_invalid_project_name_is_refused(live: LiveServer, name: str) -> None:
    sdk = live.sdk()
    error = sdk_error(lambda: sdk.create_project(models.CreateProjectRequest(name=name)))
    assert_sdk_error(error, 400, "InvalidParameter", "Name")
    listed = sdk.list_projects(models.ListProjectsRequest(names=[name])).body
    assert listed.paging_info.total_count == 0


def test_a_refused_list_leaves_the_data_as_it_was(live: LiveServer) -> None:
    p = project(live.store)
    put(live.store, [instance(p.id) for _ in range(3)])
    before = list_instances(live, p.id).to_map()
    sdk = live.sdk()
    sdk_error(lambda: sdk.list_workflow_instances(_request(p.id, {"filter": "{bad"})))
    assert list_instances(live, p.id).to_map() == before


def test_every_not_found_names_its_noun_in_an_invalid_notexist_code(live: LiveServer) -> None:
    """Unknown ids of every kind answer 404 `Invalid.<Noun>.NotExist`, as the workspace,
    instance, workflow and definition lookups always did (docs/semantics.md, Errors)."""
    sdk = live.sdk()
    p = project(live.store)
    M = models
    for call, code, hint in (
        (
            lambda: sdk.get_create_workflow_instances_result(
                M.GetCreateWorkflowInstancesResultRequest(operation_id="no-such-operation")
            ),
            "Invalid.Operation.NotExist",
            "no-such-operation",
        ),
        (
            lambda: sdk.get_rerun_workflow_instances_result(
                M.GetRerunWorkflowInstancesResultRequest(operation_id="no-such-rerun")
            ),
            "Invalid.Operation.NotExist",
            "no-such-rerun",
        ),
        (
            lambda: sdk.get_project_member(
                M.GetProjectMemberRequest(project_id=p.id, user_id="987654")
            ),
            "Invalid.ProjectMember.NotExist",
            "987654",
        ),
        (
            lambda: sdk.get_project_role(
                M.GetProjectRoleRequest(project_id=p.id, code="role_nobody")
            ),
            "Invalid.ProjectRole.NotExist",
            "role_nobody",
        ),
        (
            lambda: sdk.trigger_scheduler_task_instance(
                M.TriggerSchedulerTaskInstanceRequest(task_id=987654, trigger_time=SHANGHAI_DAY_MS)
            ),
            "Invalid.TaskInstance.NotExist",
            "no Prod instance",
        ),
    ):
        assert_sdk_error(sdk_error(call), 404, code, hint)


def test_only_the_commands_not_found_errors_fall_back_to_the_generic_code() -> None:
    """Each NotFound the API raises has a code of its own (api.errors.TABLE)."""
    for error in (
        e.OperationNotFound("x"),
        e.MemberNotFound(1, 2),
        e.RoleNotFound("r"),
        e.RunNotFound("r"),
        e.ScheduledInstanceNotFound(1, "Prod", 2),
        e.UserNotFound(user_id=3),
        e.InstanceNotFound(1),
        e.TaskInstanceNotFound(1),
        e.WorkflowNotFound(1),
        e.DefinitionNotFound("1"),
        e.AlertRuleNotFound(1),
    ):
        status, code = status_and_code(error)
        assert status == 404 and code.startswith("Invalid.") and code.endswith(".NotExist")
