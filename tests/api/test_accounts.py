"""Owners, creators and operators are account ids, through the official SDK over real HTTP
(both databases): a user's id (the `UserId` members carry), or the tenant's account id `0`
for the tenant's own key; the `Owner` filter takes the account id, and still the AccessKeyId
or user name it took before.
"""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_dataworks_public20240518.client import Client as SdkClient

from dwsched.clock import SystemClock
from dwsched.domain.users import TENANT_ACCOUNT_ID
from dwsched.runtime.keys import create_key
from tests.engine.test_engine import flow, node
from tests.support.server import LiveServer

NOW = SystemClock().now_ms()


def _user(live: LiveServer, name: str) -> tuple[SdkClient, int, str]:
    """A tenant administrator `name` with a key: its client, its id and its AccessKeyId."""
    store = live.store
    with store.write() as tx:
        user = tx.users.create(name, name, NOW)
        tx.policies.attach("AdministratorAccess", "User", name, attach=True)
    key = create_key(store, f"{name}-key", NOW)
    with store.write() as tx:
        tx.users.set_key_user(key.id, name)
    return live.sdk(key_id=key.id, secret=key.secret), user.id, key.id


def _deploy(sdk: SdkClient, project_id: int, spec: dict[str, Any]) -> Any:
    job = sdk.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=json.dumps(spec))
    ).body.async_job
    assert job.status == "Success", job.error
    workflow_id = sdk.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    return sdk.get_workflow(M.GetWorkflowRequest(id=workflow_id)).body.workflow


def _owned(sdk: SdkClient, project_id: int, owner: str) -> list[int]:
    found = sdk.list_workflows(M.ListWorkflowsRequest(project_id=project_id, owner=owner))
    return [w.id for w in found.body.paging_info.workflows]


def test_the_tenants_own_key_acts_as_the_tenant_account(live: LiveServer) -> None:
    sdk = live.sdk()
    made = sdk.create_project(M.CreateProjectRequest(name="tenant_owned")).body.id
    assert sdk.get_project(M.GetProjectRequest(id=made)).body.project.owner == TENANT_ACCOUNT_ID
    workflow = _deploy(sdk, made, flow([node("v", "VIRTUAL")]))
    assert (workflow.owner, workflow.create_user, workflow.modify_user) == ("0", "0", "0")
    assert _owned(sdk, made, TENANT_ACCOUNT_ID) == [workflow.id]
    assert _owned(sdk, made, live.key_id) == [workflow.id]  # the filter it took before
    assert _owned(sdk, made, "nobody") == []


def test_a_users_requests_record_its_user_id(live: LiveServer) -> None:
    sdk, alice, key_id = _user(live, "alice_acc")
    made = sdk.create_project(M.CreateProjectRequest(name="alice_owned")).body.id
    assert sdk.get_project(M.GetProjectRequest(id=made)).body.project.owner == str(alice)
    members = sdk.list_project_members(M.ListProjectMembersRequest(project_id=made))
    member_ids = [m.user_id for m in members.body.paging_info.project_members]
    assert member_ids == [str(alice)]  # owners can be matched to members
    workflow = _deploy(sdk, made, flow([node("v", "VIRTUAL")]))
    assert workflow.owner == workflow.create_user == str(alice)
    definitions = sdk.list_workflow_definitions(
        M.ListWorkflowDefinitionsRequest(project_id=made, owner=str(alice))
    ).body.paging_info.workflow_definitions
    assert [d.owner for d in definitions] == [str(alice)]
    for owner in (str(alice), "alice_acc", key_id):
        assert _owned(sdk, made, owner) == [workflow.id], owner

    operation = sdk.create_workflow_instances(
        M.CreateWorkflowInstancesRequest(
            project_id=made,
            name="by alice",
            type="SmokeTest",
            workflow_id=workflow.id,
            default_run_properties=M.CreateWorkflowInstancesRequestDefaultRunProperties(
                root_task_ids=[workflow.tasks[0].id]
            ),
            auto_start_enabled=False,
        )
    ).body.operation_id
    live.store.create_pending(SystemClock().now_ms())
    result = sdk.get_create_workflow_instances_result(
        M.GetCreateWorkflowInstancesResultRequest(operation_id=operation)
    ).body.result
    assert result.status == "Created", result.failure_message
    (instance_id,) = result.workflow_instance_ids
    instance = sdk.get_workflow_instance(
        M.GetWorkflowInstanceRequest(id=instance_id)
    ).body.workflow_instance
    assert (instance.owner, instance.create_user, instance.modify_user) == (str(alice),) * 3
    for owner in (str(alice), "alice_acc", key_id):
        listed = sdk.list_workflow_instances(
            M.ListWorkflowInstancesRequest(project_id=made, biz_date=instance.biz_date, owner=owner)
        ).body.paging_info.workflow_instances
        assert [i.id for i in listed] == [instance_id], owner
    tasks = sdk.list_task_instances(
        M.ListTaskInstancesRequest(project_id=made, bizdate=instance.biz_date, owner=str(alice))
    ).body.paging_info.task_instances
    (task,) = tasks
    assert task.owner == str(alice)

    sdk.suspend_task_instances(M.SuspendTaskInstancesRequest(ids=[task.id]))
    live.sdk().resume_task_instances(M.ResumeTaskInstancesRequest(ids=[task.id]))
    logs = sdk.list_task_instance_operation_logs(
        M.ListTaskInstanceOperationLogsRequest(id=task.id)
    ).body.paging_info.operation_logs
    assert [(e.operation_content, e.user) for e in logs] == [
        ("suspended", str(alice)),
        ("resumed", TENANT_ACCOUNT_ID),
    ]
