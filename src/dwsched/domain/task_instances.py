"""Task instances as the read APIs show them, and the ListTaskInstances question.

A task instance is one node of one workflow instance; it keeps the node's settings as they
were deployed when the instance was made. A listing stays inside one (project, env,
BizDate) partition, like ListWorkflowInstances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from dwsched.domain.calendar import day_of
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.execution import Recurrence
from dwsched.domain.flowspec import NodeSpec, TriggerType
from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.queries import DEFAULT_SORT, MAX_IDS, Page, SortKey

# The task-instance statuses: a workflow instance's, plus WaitTrigger (an HTTP-trigger node
# waiting for its call; dwsched makes none, so a filter on it matches nothing).
TASK_STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Instants from `start` to `end`, both included; either end may be open (None).

    A range never matches an instance whose time is not set yet.
    """

    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InvalidArgument(
                "Filter", f"The parameter Filter has a range that ends before it starts: {self}."
            )

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


@dataclass(frozen=True, slots=True)
class TaskInstanceQuery:
    """One ListTaskInstances question, confined to one (project, env, day) partition."""

    project_id: int
    biz_date_ms: int  # any instant of the wanted day; the day is taken in the project's zone
    env_type: EnvType = EnvType.PROD
    id: int | None = None
    ids: tuple[int, ...] | None = None
    task_id: int | None = None
    task_ids: tuple[int, ...] | None = None
    task_name: str | None = None  # case-insensitive substring
    task_type: str | None = None
    owner: str | None = None
    resource_group: str | None = None
    status: str | None = None  # one of TASK_STATUSES
    trigger_type: TriggerType | None = None
    trigger_recurrence: Recurrence | None = None
    workflow_id: int | None = None
    workflow_instance_id: int | None = None
    workflow_instance_type: InstanceType | None = None
    unified_workflow_instance_id: int | None = None
    started: TimeRange = field(default_factory=TimeRange)
    finished: TimeRange = field(default_factory=TimeRange)
    created: TimeRange = field(default_factory=TimeRange)
    sort: tuple[SortKey, ...] = DEFAULT_SORT
    page: Page = field(default_factory=Page)

    def __post_init__(self) -> None:
        for name, ids in (("Ids", self.ids), ("TaskIds", self.task_ids)):
            if ids is not None and len(ids) > MAX_IDS:
                raise InvalidArgument(
                    name, f"The parameter {name} takes at most {MAX_IDS} ids, got {len(ids)}."
                )
        if self.status is not None and self.status not in TASK_STATUSES:
            raise InvalidArgument(
                "Status",
                f"The parameter Status must be one of {', '.join(TASK_STATUSES)}, "
                f"got {self.status!r}.",
            )

    def biz_day(self, tz: str) -> date:
        return day_of(self.biz_date_ms, tz, "Bizdate")


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """One node of one workflow instance. `run_number` is 0 until the first attempt."""

    id: int
    project_id: int
    env_type: EnvType
    biz_day: date
    workflow_id: int
    workflow_name: str
    workflow_instance_id: int
    workflow_instance_type: InstanceType
    unified_workflow_instance_id: int
    task_id: int
    upstream: tuple[int, ...]  # ids of its same-workflow-instance upstreams, ascending
    name: str
    type: str
    owner: str
    status: str
    trigger_type: str
    trigger_recurrence: str
    period_number: int
    trigger_time: int
    priority: int
    resource_group: str
    node: NodeSpec  # the node's settings as deployed when the instance was made
    run_number: int
    started_time: int | None
    finished_time: int | None
    waiting_trigger_time: int | None
    waiting_resource_time: int | None
    worker: str | None  # the attempt in progress: its worker and process
    pid: int | None
    create_time: int
    modify_time: int
    operation_type: str = ""  # the latest operator action (Rerun, Stop, Suspend, ...)
    suspended: bool = False  # frozen by SuspendTaskInstances


@dataclass(frozen=True, slots=True)
class TaskInstancePage:
    total: int
    items: tuple[TaskInstance, ...]
