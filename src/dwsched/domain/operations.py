"""What an operator may do to a task instance in each status, and what it becomes: the one
place these rules live (docs/operations.md shows them as a table). Pure: the store reads the
instance, asks here, and writes the answer.

    operation     allowed from                                        becomes
    rerun         Success, Failure (as the node's RerunMode allows)   NotRun, run again
    stop          any unfinished status                               Failure
    set-success   Failure and every waiting status (not running)      Success
    suspend       NotRun, WaitTime, WaitResource, WaitTrigger         NotRun, frozen
    resume        a frozen (suspended) instance                       NotRun, runs on
    trigger       WaitTrigger (or earlier: kept until it gets there)  Success

A frozen instance does not run, nor does anything below it (its downstream waits for it
to succeed). An instance being run (Running, Checking, CheckingCondition) can only be
stopped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.transitions import FINISHED, RUNNING, Cause


# The kinds of the recorded asynchronous operations (GetCreateWorkflowInstancesResult,
# GetRerunWorkflowInstancesResult).
class CreationStatus(enum.StrEnum):
    """Where an asynchronous CreateWorkflowInstances stands (GetCreateWorkflowInstancesResult)."""

    CREATING = "Creating"
    CREATED = "Created"
    CREATE_FAILURE = "CreateFailure"


CREATE_KIND = "CreateWorkflowInstances"
RERUN_KIND = "RerunWorkflowInstances"


class Operation(enum.StrEnum):
    """The operations on a task instance, named as the API's OperationType shows them."""

    RERUN = "Rerun"
    STOP = "Stop"
    SET_SUCCESS = "SetSuccess"
    SUSPEND = "Suspend"
    RESUME = "Resume"
    TRIGGER = "Trigger"

    @property
    def cause(self) -> Cause:
        """The cause its status changes are recorded with (domain.transitions)."""
        return Cause(_CAUSES[self])


_CAUSES = {
    "Rerun": "rerun",
    "Stop": "stop",
    "SetSuccess": "set_success",
    "Suspend": "suspend",
    "Resume": "resume",
    "Trigger": "trigger",
}


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """A recorded asynchronous operation (its kind: CREATE_KIND, RERUN_KIND)."""

    id: str
    kind: str
    project_id: int
    status: str
    failure_message: str
    result: dict[str, Any]
    request: str


@dataclass(frozen=True, slots=True)
class OperationLog:
    """One action of an operator on a task instance, as its log shows it."""

    id: int
    task_instance_id: int
    create_time: int
    user: str
    content: str


@dataclass(frozen=True, slots=True)
class Result:
    """One instance's answer to an operator's action."""

    success: bool
    message: str


class TaskRow(Protocol):
    """What a rerun filter reads of a task instance."""

    @property
    def task_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """RerunWorkflowInstances' Filter: which tasks of each instance rerun."""

    task_ids: frozenset[int] | None = None
    statuses: frozenset[str] | None = None
    name: str | None = None
    types: frozenset[str] | None = None
    downstream: bool = False

    def matches(self, row: TaskRow) -> bool:
        return (
            (self.task_ids is None or row.task_id in self.task_ids)
            and (self.statuses is None or row.status in self.statuses)
            and (self.name is None or self.name.casefold() in row.name.casefold())
            and (self.types is None or row.type in self.types)
        )


@dataclass(frozen=True, slots=True)
class InstanceMatch:
    """RerunWorkflowInstances' choice of workflow instances: the workflow's instances of
    `kind`, narrowed by each criterion given (None: any)."""

    workflow_id: int
    kind: InstanceType
    env_type: EnvType | None = None
    ids: tuple[int, ...] | None = None
    biz_day: date | None = None
    trigger_range: tuple[int, int] | None = None  # trigger times, both included
    name: str | None = None  # a part of the name, in any case
    status: Status | None = None


@dataclass(frozen=True, slots=True)
class Current:
    """What the rules need of a task instance."""

    id: int
    status: Status
    suspended: bool
    rerun_mode: str  # FlowSpec's spelling: Allowed, FailureAllowed, Denied


@dataclass(frozen=True, slots=True)
class Outcome:
    """The operation is allowed: the instance's new status (None: unchanged) and whether
    it is frozen after it."""

    status: Status | None
    suspended: bool


class Refused(Exception):
    """The operation is not allowed in the instance's current status; the message says why
    and what would be allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def decide(op: Operation, t: Current) -> Outcome:
    """The outcome of `op` on `t`, or Refused."""
    name = f"The task instance {t.id}"
    if op is Operation.STOP:
        if t.status in FINISHED:
            raise Refused(f"{name} has already ended ({t.status}); there is nothing to stop.")
        return Outcome(Status.FAILURE, suspended=False)
    if t.status in RUNNING:
        raise Refused(
            f"{name} is {t.status}; it cannot be {_done(op)} while it runs: stop it first."
        )
    if op is Operation.RERUN:
        if t.status not in FINISHED:
            raise Refused(
                f"{name} has not finished ({_shown(t)}); only a Success or Failure instance "
                "can be rerun."
            )
        if t.rerun_mode == "Denied":
            raise Refused(f"{name} belongs to a node whose RerunMode is AllDenied.")
        if t.rerun_mode == "FailureAllowed" and t.status is Status.SUCCESS:
            raise Refused(
                f"{name} succeeded, and its node's RerunMode FailureAllowed allows a rerun "
                "only after a failure."
            )
        return Outcome(Status.NOT_RUN, suspended=False)
    if op is Operation.SET_SUCCESS:
        if t.status is Status.SUCCESS:
            raise Refused(f"{name} has already succeeded.")
        return Outcome(Status.SUCCESS, suspended=False)
    if op is Operation.SUSPEND:
        if t.suspended:
            raise Refused(f"{name} is already suspended.")
        if t.status in FINISHED:
            raise Refused(
                f"{name} has already ended ({t.status}); only an instance that has not run "
                "yet can be suspended."
            )
        return Outcome(Status.NOT_RUN, suspended=True)
    if op is Operation.RESUME:
        if not t.suspended:
            raise Refused(f"{name} is not suspended ({t.status}); there is nothing to resume.")
        return Outcome(None, suspended=False)
    # TRIGGER
    if t.status in FINISHED:
        raise Refused(f"{name} has already ended ({t.status}); it cannot be triggered again.")
    if t.status is Status.WAIT_TRIGGER:
        return Outcome(Status.SUCCESS, suspended=t.suspended)
    return Outcome(None, suspended=t.suspended)  # kept: it succeeds on reaching WaitTrigger


def _shown(t: Current) -> str:
    return f"{t.status}, suspended" if t.suspended else str(t.status)


def _done(op: Operation) -> str:
    return {
        Operation.RERUN: "rerun",
        Operation.SET_SUCCESS: "set to success",
        Operation.SUSPEND: "suspended",
        Operation.RESUME: "resumed",
        Operation.TRIGGER: "triggered",
    }.get(op, str(op))


def describe(op: Operation, comment: str) -> str:
    """The operation log's line for `op`."""
    text = {
        Operation.RERUN: "rerun",
        Operation.STOP: "stopped",
        Operation.SET_SUCCESS: "set to success",
        Operation.SUSPEND: "suspended",
        Operation.RESUME: "resumed",
        Operation.TRIGGER: "triggered",
    }[op]
    return f"{text}: {comment}" if comment else text
