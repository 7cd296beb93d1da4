"""Domain values as DataWorks JSON: PascalCase names, epoch milliseconds, PagingInfo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dwsched.domain.calendar import day_start_ms
from dwsched.domain.flowspec import DependencyType
from dwsched.domain.models import Project, WorkflowDefinition, WorkflowInstance
from dwsched.domain.parameters import format_assignments
from dwsched.domain.task_instances import TaskInstance
from dwsched.domain.workflows import DeployedTask, DeployedWorkflow


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
        "TriggerTime": i.trigger_time,  # a dwsched extension (the SDK ignores it)
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


def workflow_definition(d: WorkflowDefinition) -> dict[str, Any]:
    """The GetWorkflowDefinition item: the FlowSpec text as stored."""
    return {
        "Id": str(d.id),
        "Name": d.name,
        "Owner": d.owner,
        "ProjectId": d.project_id,
        "Spec": d.spec,
        "WorkflowId": d.workflow_id,
        "CreateTime": d.create_time,
        "ModifyTime": d.modify_time,
    }


def workflow_definition_item(d: WorkflowDefinition) -> dict[str, Any]:
    """The ListWorkflowDefinitions item."""
    return {
        "Id": str(d.id),
        "Name": d.name,
        "Owner": d.owner,
        "Description": d.description,
        "ProjectId": d.project_id,
        "Type": d.kind,
        "CreateTime": d.create_time,
        "ModifyTime": d.modify_time,
        "Script": {"Id": str(d.id), "Path": d.name, "Runtime": {"Command": "WORKFLOW"}},
    }


def workflow(
    w: DeployedWorkflow,
    with_tasks: bool = False,
    dependencies: Sequence[tuple[str, str, int]] = (),
) -> dict[str, Any]:
    """The ListWorkflows item; GetWorkflow adds Tasks, Dependencies (on other workflows'
    nodes: type, output, upstream task) and Outputs."""
    s = w.spec
    found: dict[str, Any] = {
        "Id": w.id,
        "Name": s.name,
        "ClientUniqueCode": s.client_id,
        "Description": s.description,
        "EnvType": w.env_type.value,
        "Owner": s.owner,
        "Parameters": format_assignments(s.parameters),
        "ProjectId": w.project_id,
        "Tags": [],
        "Trigger": {
            "Type": s.trigger.type.value,
            "Cron": s.trigger.cron or "",
            "StartTime": s.trigger.start_time,
            "EndTime": s.trigger.end_time,
            "Recurrence": "Normal",
        },
        "CreateTime": w.create_time,
        "ModifyTime": w.modify_time,
        "CreateUser": w.create_user,
        "ModifyUser": w.modify_user,
    }
    if not with_tasks:
        return found
    task_ids = {t.node.id: t.id for t in w.tasks}
    found["Tasks"] = [_task(w, t, task_ids) for t in w.tasks]
    # The workflow's dependencies on other workflows; the same-cycle edges between its own
    # tasks are each task's `UpstreamTaskIds` (a dwsched extension).
    found["Dependencies"] = [
        {"Type": kind, "UpstreamOutput": output, "UpstreamTaskId": task_id}
        for kind, output, task_id in dependencies
    ]
    found["Outputs"] = {"TaskOutputs": [{"Output": o} for o in s.outputs]}
    return found


def _task(w: DeployedWorkflow, t: DeployedTask, task_ids: dict[str, int]) -> dict[str, Any]:
    n = t.node
    return {
        "UpstreamTaskIds": [
            task_ids[u.node_id] for u in n.upstream if u.node_id in task_ids and u.same_cycle
        ],
        "Id": t.id,
        "Name": n.name,
        "Type": n.command,
        "ClientUniqueCode": n.id,
        "Description": "",
        "EnvType": w.env_type.value,
        "Owner": t.owner,
        "Priority": n.priority,
        "ProjectId": t.project_id,
        "RerunMode": n.rerun_mode.api,
        "RerunTimes": n.rerun_times,
        "RerunInterval": n.rerun_interval_ms // 1000,
        "Timeout": n.timeout_s,
        "TriggerRecurrence": n.recurrence.value,
        "RuntimeResource": {"ResourceGroupId": n.resource_group, "Cu": "", "Image": ""},
        "DataSource": {"Name": ""},
        "BaselineId": 0,
        "WorkflowId": w.id,
        "CreateTime": t.create_time,
        "ModifyTime": t.modify_time,
        "CreateUser": w.create_user,
        "ModifyUser": w.modify_user,
    }


def _task_instance_fields(t: TaskInstance, tz: str) -> dict[str, Any]:
    """The fields every task-instance item shares; Bizdate in the workspace's zone."""
    n = t.node
    return {
        "Id": t.id,
        "TaskId": t.task_id,
        "TaskName": t.name,
        "TaskType": t.type,
        "Status": t.status,
        "Bizdate": day_start_ms(t.biz_day, tz),
        "TriggerTime": t.trigger_time,
        "StartedTime": t.started_time,
        "FinishedTime": t.finished_time,
        "WaitingTriggerTime": t.waiting_trigger_time,
        "WaitingResourceTime": t.waiting_resource_time,
        "CreateTime": t.create_time,
        "ModifyTime": t.modify_time,
        "CreateUser": t.owner,
        "ModifyUser": t.owner,
        "Owner": t.owner,
        "ProjectId": t.project_id,
        "Priority": t.priority,
        # DataWorks counts runs from 1 ("default 1"): an instance not run yet shows run 1.
        "RunNumber": max(t.run_number, 1),
        "PeriodNumber": t.period_number,
        "TriggerType": t.trigger_type,
        "TriggerRecurrence": t.trigger_recurrence,
        "WorkflowId": t.workflow_id,
        "WorkflowName": t.workflow_name,
        "WorkflowInstanceId": t.workflow_instance_id,
        "WorkflowInstanceType": t.workflow_instance_type.value,
        "UnifiedWorkflowInstanceId": t.unified_workflow_instance_id,
        "RuntimeResource": {"ResourceGroupId": t.resource_group, "Cu": "", "Image": ""},
        "Runtime": {"Gateway": t.worker or "", "ProcessId": "" if t.pid is None else str(t.pid)},
        "DataSource": {"Name": ""},
        "BaselineId": 0,
        "Timeout": n.timeout_s,
        "RerunMode": n.rerun_mode.api,
        # The latest operator action; "Suspend" while the instance is frozen.
        "OperationType": t.operation_type,
        "Description": "",
    }


def _script_parameters(t: TaskInstance) -> str:
    return format_assignments(t.node.parameters)


def task_instance(t: TaskInstance, tz: str) -> dict[str, Any]:
    """The ListTaskInstances item."""
    return {
        **_task_instance_fields(t, tz),
        "ProjectEnv": t.env_type.value,
        "ScriptParameters": _script_parameters(t),
        "Tags": [],
    }


def task_instance_detail(t: TaskInstance, tz: str) -> dict[str, Any]:
    """The GetTaskInstance item: the list item's fields, the script, inputs and outputs."""
    n = t.node
    outputs = [*n.outputs, *(b.output for b in n.branches)]
    return {
        **_task_instance_fields(t, tz),
        "ProjectEnv": t.env_type.value,
        "Script": {"Content": n.content, "Parameters": _script_parameters(t)},
        "Inputs": {"Variables": []},
        "Outputs": {"TaskOutputs": [{"Output": o} for o in outputs], "Variables": []},
        "Tags": [],
    }


def task_instance_neighbours(
    number: int,
    size: int,
    total: int,
    upstream: bool,
    items: list[tuple[TaskInstance, DependencyType]],
    tz: str,
) -> dict[str, Any]:
    """The PagingInfo of ListUpstreamTaskInstances / ListDownstreamTaskInstances: each
    neighbour with its DependencyType (Normal: the same cycle, of this workflow or another;
    CrossCycle: a previous cycle), and the deprecated flat list with StepType."""
    name = "UpstreamTaskInstances" if upstream else "DownstreamTaskInstances"
    linked = [
        {
            "DependencyType": _step(kind),
            "TaskInstance": {**_task_instance_fields(t, tz), "EnvType": t.env_type.value},
        }
        for t, kind in items
    ]
    found = paging(number, size, total, name, linked)
    found["TaskInstances"] = [
        {
            **_task_instance_fields(t, tz),
            "EnvType": t.env_type.value,
            "ProjectEnv": t.env_type.value,
            "StepType": _step(kind),
        }
        for t, kind in items
    ]
    return found


def _step(kind: DependencyType) -> str:
    return "Normal" if kind is DependencyType.NORMAL else "CrossCycle"
