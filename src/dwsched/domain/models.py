"""Domain types: workspaces, workflow instances, access keys.

Times are epoch milliseconds (int) because that is the unit of every instant the system
stores and compares; `biz_day` is a calendar date, whose instant depends on the workspace's
time zone and is computed by `dwsched.domain.calendar`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date


class EnvType(enum.StrEnum):
    PROD = "Prod"
    DEV = "Dev"


class InstanceType(enum.StrEnum):
    NORMAL = "Normal"
    MANUAL = "Manual"
    SMOKE_TEST = "SmokeTest"
    SUPPLEMENT_DATA = "SupplementData"
    MANUAL_WORKFLOW = "ManualWorkflow"
    TRIGGER_WORKFLOW = "TriggerWorkflow"


class Status(enum.StrEnum):
    NOT_RUN = "NotRun"
    WAIT_TIME = "WaitTime"
    CHECKING_CONDITION = "CheckingCondition"
    WAIT_RESOURCE = "WaitResource"
    RUNNING = "Running"
    CHECKING = "Checking"
    SUCCESS = "Success"
    FAILURE = "Failure"
    WAIT_TRIGGER = "WaitTrigger"  # task instances only: an HTTP trigger node waits for its call


class ProjectStatus(enum.StrEnum):
    """DataWorks' workspace statuses; dwsched sets only Available and Forbidden (disabled)."""

    AVAILABLE = "Available"
    INITIALIZING = "Initializing"
    INIT_FAILED = "InitFailed"
    FORBIDDEN = "Forbidden"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"
    FROZEN = "Frozen"
    UPDATING = "Updating"
    UPDATE_FAILED = "UpdateFailed"


class KeyStatus(enum.StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Project:
    """A workspace. `timezone` is an IANA name; BizDates are calendar days in it."""

    id: int
    name: str
    display_name: str
    description: str
    owner: str
    status: ProjectStatus
    timezone: str
    dev_environment_enabled: bool
    create_time: int
    modify_time: int


@dataclass(frozen=True, slots=True)
class NewProject:
    name: str
    timezone: str
    display_name: str = ""
    description: str = ""
    owner: str = ""
    dev_environment_enabled: bool = True
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ProjectChanges:
    """Fields of a workspace to change; None means unchanged."""

    display_name: str | None = None
    description: str | None = None
    status: ProjectStatus | None = None
    timezone: str | None = None
    dev_environment_enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class WorkflowInstance:
    """One run of one workflow for one business date."""

    id: int
    project_id: int
    env_type: EnvType
    biz_day: date
    type: InstanceType
    status: Status
    workflow_id: int
    workflow_task_instance_id: int
    unified_workflow_instance_id: int
    name: str
    owner: str
    create_user: str
    modify_user: str
    trigger_time: int
    started_time: int | None
    finished_time: int | None
    create_time: int
    modify_time: int
    workflow_parameters: str = ""
    tags: tuple[Tag, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class AccessKey:
    id: str
    secret: str = field(repr=False)  # never in a log line by accident
    name: str
    status: KeyStatus
    create_time: int


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    """A Data Studio workflow definition: its FlowSpec text as given, and the workflow
    deployed from it (None once deleted, or before it was ever deployed)."""

    id: int
    project_id: int
    kind: str
    name: str
    owner: str
    description: str
    spec: str
    workflow_id: int | None
    create_time: int
    modify_time: int
