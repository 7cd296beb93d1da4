"""The JSON Lines format of `dwsched import` / `export`: one ListWorkflowInstances item a
line, plus `TriggerTime` (epoch ms). Decoding validates types and ranges; each error names
the field by its JSON path.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from dwsched.domain.calendar import MAX_MS, day_start_ms
from dwsched.domain.models import EnvType, InstanceType, Status, WorkflowInstance

PositiveId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Ms = Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)]
Short = Annotated[str, msgspec.Meta(max_length=64)]


class TagRecord(msgspec.Struct, forbid_unknown_fields=True):
    Key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    Value: Annotated[str, msgspec.Meta(max_length=256)]


class InstanceRecord(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    Id: PositiveId
    ProjectId: PositiveId
    WorkflowId: PositiveId
    WorkflowTaskInstanceId: PositiveId
    UnifiedWorkflowInstanceId: PositiveId
    Name: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    Type: InstanceType
    Status: Status
    EnvType: EnvType
    BizDate: Ms
    TriggerTime: Ms
    CreateTime: Ms
    ModifyTime: Ms
    Owner: Short
    CreateUser: Short
    ModifyUser: Short
    StartedTime: Ms | None = None
    FinishedTime: Ms | None = None
    Tags: list[TagRecord] = msgspec.field(default_factory=list)
    WorkflowParameters: str = ""


decoder = msgspec.json.Decoder(InstanceRecord)
encoder = msgspec.json.Encoder()


def from_instance(i: WorkflowInstance, tz: str) -> InstanceRecord:
    return InstanceRecord(
        Id=i.id,
        ProjectId=i.project_id,
        WorkflowId=i.workflow_id,
        WorkflowTaskInstanceId=i.workflow_task_instance_id,
        UnifiedWorkflowInstanceId=i.unified_workflow_instance_id,
        Name=i.name,
        Type=i.type,
        Status=i.status,
        EnvType=i.env_type,
        BizDate=day_start_ms(i.biz_day, tz),
        TriggerTime=i.trigger_time,
        CreateTime=i.create_time,
        ModifyTime=i.modify_time,
        Owner=i.owner,
        CreateUser=i.create_user,
        ModifyUser=i.modify_user,
        StartedTime=i.started_time,
        FinishedTime=i.finished_time,
        Tags=[TagRecord(t.key, t.value) for t in i.tags],
        WorkflowParameters=i.workflow_parameters,
    )
