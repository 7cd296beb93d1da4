"""Domain values as DataWorks JSON: PascalCase names, epoch milliseconds, PagingInfo."""

from __future__ import annotations

from typing import Any

from dwsched.domain.calendar import day_start_ms
from dwsched.domain.models import Project, WorkflowInstance


def workflow_instance(i: WorkflowInstance, tz: str) -> dict[str, Any]:
    """The ListWorkflowInstances / GetWorkflowInstance item; BizDate in the workspace's zone."""
    return {
        "Id": i.id,
        "WorkflowId": i.workflow_id,
        "WorkflowTaskInstanceId": i.workflow_task_instance_id,
        "UnifiedWorkflowInstanceId": i.unified_workflow_instance_id,
        "Name": i.name,
        "Type": i.type.value,
        "Status": i.status.value,
        "EnvType": i.env_type.value,
        "BizDate": day_start_ms(i.biz_day, tz),
        "StartedTime": i.started_time,
        "FinishedTime": i.finished_time,
        "CreateTime": i.create_time,
        "ModifyTime": i.modify_time,
        "CreateUser": i.create_user,
        "ModifyUser": i.modify_user,
        "Owner": i.owner,
        "ProjectId": i.project_id,
        "Tags": [{"Key": t.key, "Value": t.value} for t in i.tags],
        "WorkflowParameters": i.workflow_parameters,
    }


def project(p: Project) -> dict[str, Any]:
    """The GetProject / ListProjects item, plus dwsched's `TimeZone` (ignored by the SDK)."""
    return {
        "Id": p.id,
        "Name": p.name,
        "DisplayName": p.display_name,
        "Description": p.description,
        "Owner": p.owner,
        "Status": p.status.value,
        "DevEnvironmentEnabled": p.dev_environment_enabled,
        "DevRoleDisabled": False,
        "PaiTaskEnabled": False,
        "AliyunResourceGroupId": "",
        "AliyunResourceTags": [],
        "TimeZone": p.timezone,
    }


def paging(number: int, size: int, total: int, name: str, items: list[Any]) -> dict[str, Any]:
    return {"PageNumber": number, "PageSize": size, "TotalCount": total, name: items}
