"""Workspaces: CreateProject, GetProject, ListProjects, UpdateProject, DeleteProject through the
SDK models, and dwsched's `TimeZone` extension through raw signed requests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_tea_openapi import utils_models as open_api_util_models
from darabonba.core import DaraCore
from darabonba.runtime import RuntimeOptions

from dwsched.client import ApiError, Client
from tests.api.sdk_helpers import (
    ALGORITHMS,
    acs3,
    assert_error,
    assert_sdk_error,
    list_instances,
    listed_ids,
    ok_json,
    sdk_error,
)
from tests.support.factories import SHANGHAI_DAY_MS, instance, put
from tests.support.server import LiveServer

PROJECT_FIELDS = {
    "AliyunResourceGroupId": str,
    "AliyunResourceTags": list,
    "Description": str,
    "DevEnvironmentEnabled": bool,
    "DevRoleDisabled": bool,
    "DisplayName": str,
    "Id": int,
    "Name": str,
    "Owner": str,
    "PaiTaskEnabled": bool,
    "Status": str,
}


def unique(prefix: str = "ws") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def create(live: LiveServer, algorithm: str = "v3", **fields: Any) -> int:
    fields.setdefault("name", unique())
    body = live.sdk(algorithm).create_project(models.CreateProjectRequest(**fields)).body
    assert body.request_id
    assert body.id == body.project_id
    assert isinstance(body.id, int)
    return int(body.id)


def get(live: LiveServer, project_id: int, algorithm: str = "v3") -> Any:
    body = live.sdk(algorithm).get_project(models.GetProjectRequest(id=project_id)).body
    assert body.request_id
    return body.project


def client(live: LiveServer) -> Client:
    return Client(live.endpoint, live.key_id, live.secret)


def raw_project(live: LiveServer, project_id: int) -> dict[str, Any]:
    response = acs3(live, "GetProject", query={"Id": project_id}, method="GET").send()
    project: dict[str, Any] = ok_json(response)["Project"]
    return project


# Create and get


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_create_and_get(live: LiveServer, algorithm: str) -> None:
    name = unique("Sales")
    project_id = create(
        live,
        algorithm,
        name=name,
        display_name="Sales (prod)",
        description="Nightly sales pipelines",
        dev_environment_enabled=False,
    )
    got = get(live, project_id, algorithm)
    assert (got.id, got.name, got.display_name, got.description) == (
        project_id,
        name,
        "Sales (prod)",
        "Nightly sales pipelines",
    )
    assert got.status == "Available"
    assert got.dev_environment_enabled is False
    raw = raw_project(live, project_id)
    for field, kind in PROJECT_FIELDS.items():
        assert type(raw[field]) is kind, field
    assert raw["TimeZone"] == "Asia/Shanghai"  # the server's default zone


def test_create_with_defaults(live: LiveServer) -> None:
    name = unique()
    got = get(live, create(live, name=name))
    assert got.display_name == name  # the name, when no display name is given
    assert got.description == ""
    assert got.dev_environment_enabled is True
    assert got.status == "Available"


def test_names_are_unique(live: LiveServer) -> None:
    name = unique()
    first = create(live, name=name)
    sdk = live.sdk()
    error = sdk_error(lambda: sdk.create_project(models.CreateProjectRequest(name=name)))
    assert error.status_code == 409
    assert name in error.data["Message"]
    found = sdk.list_projects(models.ListProjectsRequest(names=[name])).body.paging_info
    assert [p.id for p in found.projects] == [first]


# List


def test_list_by_ids_names_status_and_pages(live: LiveServer) -> None:
    sdk = live.sdk()
    made = [create(live) for _ in range(5)]
    names = {pid: get(live, pid).name for pid in made}

    def listing(**fields: Any) -> Any:
        return sdk.list_projects(models.ListProjectsRequest(**fields)).body.paging_info

    everything = listing(ids=made, page_size=100)
    assert [p.id for p in everything.projects] == made  # by Id
    assert (everything.total_count, everything.page_number, everything.page_size) == (5, 1, 100)

    pages = [listing(ids=made, page_size=2, page_number=n) for n in (1, 2, 3, 4)]
    assert [[p.id for p in pg.projects] for pg in pages] == [made[:2], made[2:4], made[4:], []]
    assert {pg.total_count for pg in pages} == {5}

    default = listing(ids=made)
    assert (default.page_number, default.page_size) == (1, 10)

    wanted = [names[made[1]], names[made[3]], "no_such_workspace"]
    assert [p.id for p in listing(names=wanted).projects] == [made[1], made[3]]
    assert [p.id for p in listing(ids=made[:3], names=wanted).projects] == [made[1]]

    sdk.update_project(models.UpdateProjectRequest(id=made[2], status="Forbidden"))
    forbidden = listing(ids=made, status="Forbidden")
    assert [p.id for p in forbidden.projects] == [made[2]]
    assert forbidden.projects[0].status == "Forbidden"
    available = listing(ids=made, status="Available")
    assert [p.id for p in available.projects] == [made[0], made[1], made[3], made[4]]


def test_list_rejects_invalid_values(live: LiveServer) -> None:
    sdk = live.sdk()
    for fields, param in [
        ({"status": "Bogus"}, "Status"),
        ({"page_size": 0}, "PageSize"),
        ({"page_size": 101}, "PageSize"),
        ({"page_number": 0}, "PageNumber"),
        ({"ids": ["x"]}, "Ids"),
    ]:
        error = sdk_error(lambda f=fields: sdk.list_projects(models.ListProjectsRequest(**f)))
        assert_sdk_error(error, 400, "InvalidParameter", param)


# Update


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_update_display_name_description_and_status(live: LiveServer, algorithm: str) -> None:
    name = unique()
    project_id = create(live, name=name, display_name="before", description="old")
    sdk = live.sdk(algorithm)

    body = sdk.update_project(
        models.UpdateProjectRequest(id=project_id, display_name="after", description="new")
    ).body
    assert body.request_id
    got = get(live, project_id)
    assert (got.name, got.display_name, got.description) == (name, "after", "new")

    sdk.update_project(models.UpdateProjectRequest(id=project_id, description="newer"))
    got = get(live, project_id)
    assert (got.display_name, got.description) == ("after", "newer")  # the rest unchanged

    sdk.update_project(models.UpdateProjectRequest(id=project_id, status="Forbidden"))
    assert get(live, project_id).status == "Forbidden"
    sdk.update_project(models.UpdateProjectRequest(id=project_id, status="Available"))
    assert get(live, project_id).status == "Available"


@pytest.mark.parametrize("status", ["Bogus", "available", "Frozen", "Deleting", "Initializing"])
def test_update_to_an_invalid_status(live: LiveServer, status: str) -> None:
    project_id = create(live)
    sdk = live.sdk()
    error = sdk_error(
        lambda: sdk.update_project(models.UpdateProjectRequest(id=project_id, status=status))
    )
    assert_sdk_error(error, 400, "InvalidParameter", "Status")
    assert get(live, project_id).status == "Available"


# Delete


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_empty_workspace_is_deleted(live: LiveServer, algorithm: str) -> None:
    project_id = create(live)
    sdk = live.sdk(algorithm)
    assert sdk.delete_project(models.DeleteProjectRequest(id=project_id)).body.request_id
    error = sdk_error(lambda: sdk.get_project(models.GetProjectRequest(id=project_id)))
    assert_sdk_error(error, 404, "Invalid.Tenant.ProjectNotExist", str(project_id))
    again = sdk_error(lambda: sdk.delete_project(models.DeleteProjectRequest(id=project_id)))
    assert_sdk_error(again, 404, "Invalid.Tenant.ProjectNotExist", str(project_id))


def test_a_workspace_with_instances_is_deleted_only_once_disabled(live: LiveServer) -> None:
    project_id = create(live)
    keep = create(live)
    made = [instance(project_id) for _ in range(3)]
    kept = instance(keep)
    put(live.store, [*made, kept])
    sdk = live.sdk()

    def delete() -> Any:
        return sdk.delete_project(models.DeleteProjectRequest(id=project_id))

    error = sdk_error(delete)
    assert_sdk_error(error, 409, "OperationDenied.ProjectNotEmpty", str(project_id))
    assert get(live, project_id).status == "Available"
    assert len(listed_ids(live, project_id)) == 3  # nothing was deleted

    sdk.update_project(models.UpdateProjectRequest(id=project_id, status="Forbidden"))
    sdk.update_project(models.UpdateProjectRequest(id=project_id, status="Available"))
    assert_sdk_error(sdk_error(delete), 409, "OperationDenied.ProjectNotEmpty")  # enabled again

    sdk.update_project(models.UpdateProjectRequest(id=project_id, status="Forbidden"))
    assert delete().body.request_id
    gone = sdk_error(lambda: sdk.get_project(models.GetProjectRequest(id=project_id)))
    assert_sdk_error(gone, 404, "Invalid.Tenant.ProjectNotExist")
    listing = sdk_error(lambda: list_instances(live, project_id))
    assert_sdk_error(listing, 404, "Invalid.Tenant.ProjectNotExist")
    for i in made:
        missing = sdk_error(
            lambda i=i: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id=i.id))
        )
        assert_sdk_error(missing, 404, "Invalid.WorkflowInstance.NotExist")
    # Other workspaces keep theirs.
    assert listed_ids(live, keep) == [kept.id]


# The TimeZone extension (raw requests: the SDK models have no such field)


def test_time_zone_on_create_decides_the_biz_date(live: LiveServer) -> None:
    with client(live) as api:
        made = api.call("CreateProject", {"Name": unique("ny"), "TimeZone": "America/New_York"})
        project_id = int(made["Id"])
        assert made["ProjectId"] == project_id
        shown = api.call("GetProject", {"Id": project_id}, method="GET")["Project"]
        assert shown["TimeZone"] == "America/New_York"
        listed = api.call("ListProjects", {"Ids": [project_id]})["PagingInfo"]["Projects"]
        assert listed[0]["TimeZone"] == "America/New_York"

    one = instance(project_id, biz_day=date(2025, 3, 31))
    put(live.store, [one])
    ny_midnight = int(datetime(2025, 3, 31, 4, tzinfo=UTC).timestamp() * 1000)
    found = list_instances(live, project_id, ny_midnight + 20 * 3_600_000).workflow_instances
    assert [(i.id, i.biz_date) for i in found] == [(one.id, ny_midnight)]
    # 2025-03-31 00:00 in Shanghai is still 2025-03-30 in New York.
    assert listed_ids(live, project_id, SHANGHAI_DAY_MS) == []


def test_time_zone_defaults_to_the_server_zone(live: LiveServer) -> None:
    with client(live) as api:
        project_id = int(api.call("CreateProject", {"Name": unique()})["Id"])
    assert raw_project(live, project_id)["TimeZone"] == "Asia/Shanghai"


def test_time_zone_can_be_changed(live: LiveServer) -> None:
    project_id = create(live)
    one = instance(project_id, biz_day=date(2025, 3, 31))
    put(live.store, [one])
    assert list_instances(live, project_id).workflow_instances[0].biz_date == SHANGHAI_DAY_MS
    with client(live) as api:
        api.call("UpdateProject", {"Id": project_id, "TimeZone": "Pacific/Kiritimati"})
    assert raw_project(live, project_id)["TimeZone"] == "Pacific/Kiritimati"
    kiritimati_midnight = int(datetime(2025, 3, 30, 10, tzinfo=UTC).timestamp() * 1000)
    found = list_instances(live, project_id, kiritimati_midnight).workflow_instances
    assert [(i.id, i.biz_date) for i in found] == [(one.id, kiritimati_midnight)]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "UTC+8", "asia/shanghai", " UTC", "Asia/"])
def test_an_invalid_time_zone_is_invalid_parameter(live: LiveServer, zone: str) -> None:
    name = unique()
    response = acs3(live, "CreateProject", form={"Name": name, "TimeZone": zone}).send()
    assert_error(response, 400, "InvalidParameter", "TimeZone")
    project_id = create(live)
    response = acs3(live, "UpdateProject", form={"Id": project_id, "TimeZone": zone}).send()
    assert_error(response, 400, "InvalidParameter", "TimeZone")
    assert raw_project(live, project_id)["TimeZone"] == "Asia/Shanghai"
    with client(live) as api, pytest.raises(ApiError) as caught:
        api.call("CreateProject", {"Name": name, "TimeZone": zone})
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")


def list_by_name(live: LiveServer, name: str, **body: Any) -> Any:
    """ListProjects with `Name` through the SDK's own signing and transport (its
    ListProjectsRequest model has no `Name` field, so the request is built as the SDK builds
    the action's own)."""
    sdk = live.sdk()
    params = open_api_util_models.Params(
        action="ListProjects",
        version="2024-05-18",
        protocol="HTTPS",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    request = open_api_util_models.OpenApiRequest(body={"Name": name, "PageSize": 100, **body})
    answer = sdk.call_api(params, request, RuntimeOptions())
    response = DaraCore.from_map(models.ListProjectsResponse(), answer)
    return response.body.paging_info


def test_list_by_a_part_of_the_name(live: LiveServer) -> None:
    tag = uuid.uuid4().hex[:8]
    made = {
        key: create(live, name=name)
        for key, name in [
            ("under", f"Nm{tag}_x1"),
            ("plain", f"nm{tag}ax1"),
            ("other", f"zz{tag}q"),
        ]
    }
    ids = [made["under"], made["plain"], made["other"]]

    found = list_by_name(live, f"NM{tag}")  # a part, whatever the case
    assert [p.id for p in found.projects] == [made["under"], made["plain"]]
    assert found.total_count == 2
    assert [p.id for p in list_by_name(live, f"{tag}q").projects] == [made["other"]]

    # LIKE's wildcards and escape are plain characters: `_` is not "any one character"
    assert [p.id for p in list_by_name(live, f"{tag}_").projects] == [made["under"]]
    for text in ("%", f"{tag}%", "\\", f"{tag}\\_", "/", "_%"):
        assert list_by_name(live, text).projects == [], text
    assert list_by_name(live, f"{tag}a", Ids=f"[{ids[0]}]").projects == []


def test_name_is_checked(live: LiveServer) -> None:
    response = acs3(live, "ListProjects", form={"Name": "x" * 65}).send()
    assert_error(response, 400, "InvalidParameter", "Name")
