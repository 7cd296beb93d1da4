"""The legal changes of a task instance's status, each with the causes that may make it, and
the sets of statuses every layer names: the one table the transition writer
(store.transitions) checks each change against. Pure.

    cause         from                                              to
    plan          NotRun, WaitTime                                  WaitTime, WaitResource,
                                                                    WaitTrigger, Success, Failure
    claim         WaitResource                                      Running, CheckingCondition
    virtual       WaitResource                                      Success (nothing to run)
    checking      Running                                           Checking (a quality check)
    finish        Running, Checking, CheckingCondition              Success, Failure
    retry         Running, Checking, CheckingCondition              WaitResource (its wait)
    recovery      Running, Checking, CheckingCondition              Failure, WaitResource
    stop          every unfinished status                           Failure
    set_success   Failure and every waiting status                  Success
    rerun         Success, Failure                                  NotRun
    suspend       every waiting status                              NotRun (frozen)
    resume        every waiting status                              itself (no longer frozen)
    trigger       WaitTrigger                                       Success
                  every other waiting status                        itself (fired early)

Making a task instance (NotRun) is not a transition. A workflow instance's status is derived
from its task instances' (domain.execution.workflow_status): any change of it is legal, with
the cause of the task change that made it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dwsched.domain.models import Status

# The statuses, named once.
FINISHED = frozenset({Status.SUCCESS, Status.FAILURE})
# An attempt in progress: a worker holds it (and its resource group's slot).
RUNNING = frozenset({Status.RUNNING, Status.CHECKING, Status.CHECKING_CONDITION})
# Not run yet: what an operator may still suspend, set to success or trigger.
WAITING = frozenset({Status.NOT_RUN, Status.WAIT_TIME, Status.WAIT_RESOURCE, Status.WAIT_TRIGGER})
UNFINISHED = RUNNING | WAITING
# A workflow instance's status is its most advanced active task's, in this order.
ACTIVE_ORDER = (Status.RUNNING, Status.CHECKING, Status.CHECKING_CONDITION, Status.WAIT_RESOURCE)

FINISHED_VALUES = tuple(sorted(s.value for s in FINISHED))
RUNNING_VALUES = tuple(sorted(s.value for s in RUNNING))


class Kind(enum.StrEnum):
    """What a status event is about."""

    TASK = "task"
    WORKFLOW = "workflow"


class Cause(enum.StrEnum):
    """Why a status changed: the engine's steps and the operator's actions."""

    PLAN = "plan"  # upstreams done, trigger time reached (or a dry run ends at it)
    CLAIM = "claim"  # a worker took it
    VIRTUAL = "virtual"  # a VIRTUAL node: nothing runs, its attempt succeeds at once
    CHECKING = "checking"  # the process succeeded; its quality check runs
    FINISH = "finish"  # the attempt ended
    RETRY = "retry"  # the attempt failed (or its worker shut down): it waits to run again
    RECOVERY = "recovery"  # its worker died: failed, or retried as its node allows
    STOP = "stop"
    SET_SUCCESS = "set_success"
    RERUN = "rerun"
    SUSPEND = "suspend"
    RESUME = "resume"
    TRIGGER = "trigger"


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A recorded change of a task instance's status (kind task) or of a workflow
    instance's derived status (kind workflow: `instance_id` is the workflow instance's,
    `run_number` None). `id` orders the stream: a consumer's cursor is the last it read."""

    id: int
    kind: Kind
    instance_id: int
    workflow_instance_id: int
    project_id: int
    old: Status
    new: Status
    run_number: int | None
    at: int
    cause: Cause


class IllegalTransition(Exception):
    """A change the table does not allow: a programming error, never a user's."""


def _pairs(
    sources: Iterable[Status], targets: Iterable[Status]
) -> frozenset[tuple[Status, Status]]:
    return frozenset((s, t) for s in sources for t in targets)


_AFTER_RUN = (Status.SUCCESS, Status.FAILURE)

TASK_TRANSITIONS: Mapping[Cause, frozenset[tuple[Status, Status]]] = {
    Cause.PLAN: _pairs(
        (Status.NOT_RUN, Status.WAIT_TIME),
        (Status.WAIT_TIME, Status.WAIT_RESOURCE, Status.WAIT_TRIGGER, *_AFTER_RUN),
    )
    - {(Status.WAIT_TIME, Status.WAIT_TIME)},
    Cause.CLAIM: _pairs((Status.WAIT_RESOURCE,), (Status.RUNNING, Status.CHECKING_CONDITION)),
    Cause.VIRTUAL: _pairs((Status.WAIT_RESOURCE,), (Status.SUCCESS,)),
    Cause.CHECKING: _pairs((Status.RUNNING,), (Status.CHECKING,)),
    Cause.FINISH: _pairs(RUNNING, _AFTER_RUN),
    Cause.RETRY: _pairs(RUNNING, (Status.WAIT_RESOURCE,)),
    Cause.RECOVERY: _pairs(RUNNING, (Status.FAILURE, Status.WAIT_RESOURCE)),
    Cause.STOP: _pairs(UNFINISHED, (Status.FAILURE,)),
    Cause.SET_SUCCESS: _pairs(WAITING | {Status.FAILURE}, (Status.SUCCESS,)),
    Cause.RERUN: _pairs(FINISHED, (Status.NOT_RUN,)),
    Cause.SUSPEND: _pairs(WAITING, (Status.NOT_RUN,)),
    Cause.RESUME: frozenset((s, s) for s in WAITING),
    Cause.TRIGGER: frozenset((s, s) for s in WAITING - {Status.WAIT_TRIGGER})
    | {(Status.WAIT_TRIGGER, Status.SUCCESS)},
}


def legal(old: Status, new: Status, cause: Cause) -> bool:
    """Whether `cause` may move a task instance from `old` to `new`."""
    return (old, new) in TASK_TRANSITIONS[cause]


def check(old: Status, new: Status, cause: Cause) -> None:
    """IllegalTransition unless `cause` may move a task instance from `old` to `new`."""
    if not legal(old, new, cause):
        raise IllegalTransition(f"a task instance cannot go from {old} to {new} by {cause}")
