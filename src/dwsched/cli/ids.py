"""What an id names: a workflow instance or a task instance, and how each is described.

Task instance ids are allocated from 10**9 up (migration 0014), workflow instance ids below,
so an id the engine handed out names one instance of one kind; ids allocated before that
revision may name one of each. A command that takes ids reads each as the kind it acts on
(GetWorkflowInstance, GetTaskInstance) before it acts. When no instance of that kind has the
id but one of the other kind does, the command refuses, naming the command that fits, and
does nothing: it never acts on an instance the user did not mean. When an instance of each
kind has the id, a command that changes something refuses it too unless --yes is given
(before this release `dwsched instances stop 7` stopped task instances, and old scripts
still say so); a command that only reads acts on its own kind and notes the other on
standard error. Every operation then says what it acted on (the task, its workflow
instance, the BizDate), not the id alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from dwsched.cli.terminal import visible
from dwsched.client import ApiError, Client

WORKFLOW_INSTANCE_MISSING = "Invalid.WorkflowInstance.NotExist"
TASK_INSTANCE_MISSING = "Invalid.TaskInstance.NotExist"
DEFAULT_ZONE = "Asia/Shanghai"

# (a workflow instance id) -> the command line that fits it, e.g. `dwsched instances rerun 4`.
Fits = Callable[[int], str]
# (an id) -> what to use for the other kind's instance of that id, e.g.
# "`dwsched tasks stop 7` for the task instance".
Other = Callable[[int], str]

yes_option = click.option(
    "--yes",
    is_flag=True,
    allow_from_autoenv=False,  # a confirmation given on the command line only
    help="Go on when an id names both a workflow instance and a task instance (ids from "
    "before task instance ids were numbered apart): act on the kind this command acts on.",
)


@dataclass(frozen=True)
class Both:
    """What a command does with an id that names an instance of each kind.

    `other` says what to use for the other kind's instance. A command that changes
    something refuses such an id (with the others, nothing done) unless `yes`; one that
    only reads notes it on standard error and goes on."""

    other: Other
    changes: bool
    yes: bool = False


def workflow_instance(client: Client, instance_id: int) -> dict[str, Any] | None:
    """GetWorkflowInstance's WorkflowInstance, or None when no workflow instance has the id."""
    try:
        found: dict[str, Any] = client.call("GetWorkflowInstance", {"Id": instance_id}, "GET")[
            "WorkflowInstance"
        ]
    except ApiError as exc:
        if exc.code == WORKFLOW_INSTANCE_MISSING:
            return None
        raise
    return found


def task_instance(client: Client, task_instance_id: int) -> dict[str, Any] | None:
    """GetTaskInstance's TaskInstance, or None when no task instance has the id."""
    try:
        found: dict[str, Any] = client.call("GetTaskInstance", {"Id": task_instance_id}, "GET")[
            "TaskInstance"
        ]
    except ApiError as exc:
        if exc.code == TASK_INSTANCE_MISSING:
            return None
        raise
    return found


@dataclass
class Zones:
    """The workspaces' time zones, each read once (GetProject)."""

    client: Client
    found: dict[int, ZoneInfo] = field(default_factory=dict)

    def of(self, project_id: int) -> ZoneInfo:
        if project_id not in self.found:
            project = self.client.call("GetProject", {"Id": project_id}, "GET")["Project"]
            self.found[project_id] = ZoneInfo(project.get("TimeZone") or DEFAULT_ZONE)
        return self.found[project_id]


def day(ms: int | None, tz: ZoneInfo) -> str:
    """A BizDate as YYYY-MM-DD in the workspace's zone."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%Y-%m-%d")


def dry_run(task: dict[str, Any]) -> bool:
    """A task instance that ends without running: TriggerRecurrence other than Normal."""
    return (task.get("TriggerRecurrence") or "Normal") != "Normal"


def about_task(task: dict[str, Any], tz: ZoneInfo) -> str:
    """`load (Failure) · workflow instance 4 orders_daily · BizDate 2025-06-09`, escaped."""
    dry = ", dry run" if dry_run(task) else ""
    return (
        f"{visible(str(task['TaskName']))} ({visible(str(task['Status']))}{dry}) · "
        f"workflow instance {task['WorkflowInstanceId']} "
        f"{visible(str(task.get('WorkflowName') or ''))} · BizDate {day(task.get('Bizdate'), tz)}"
    )


def about_instance(instance: dict[str, Any], tz: ZoneInfo) -> str:
    """`orders_daily (Failure) · SmokeTest · BizDate 2025-06-09`, escaped."""
    return (
        f"{visible(str(instance['Name']))} ({visible(str(instance['Status']))}) · "
        f"{visible(str(instance['Type']))} · BizDate {day(instance.get('BizDate'), tz)}"
    )


@dataclass(frozen=True, slots=True)
class _Kind:
    """How a command reads the ids of the kind it acts on, and of the other kind."""

    name: str
    other: str
    get: Callable[[Client, int], dict[str, Any] | None]
    get_other: Callable[[Client, int], dict[str, Any] | None]
    about: Callable[[dict[str, Any], ZoneInfo], str]
    about_other: Callable[[dict[str, Any], ZoneInfo], str]


def _read(
    kind: _Kind, client: Client, zones: Zones, ids: Sequence[int], fits: Fits, both: Both
) -> dict[int, dict[str, Any] | None]:
    found: dict[int, dict[str, Any] | None] = {}
    wrong: list[str] = []
    for i in ids:
        own = found[i] = kind.get(client, i)
        other = kind.get_other(client, i)
        if other is None:
            continue
        other_text = kind.about_other(other, zones.of(int(other["ProjectId"])))
        if own is None:
            wrong.append(f"{i} is a {kind.other}, not a {kind.name} ({other_text}): {fits(i)}")
            continue
        own_text = kind.about(own, zones.of(int(own["ProjectId"])))
        workflow, task = (other_text, own_text) if kind is _TASKS else (own_text, other_text)
        wrong += _both(i, workflow, task, kind.name, both)
    if wrong:
        raise click.ClickException(_refusal(wrong, len(ids)))
    return found


def task_instances(
    client: Client, zones: Zones, ids: Sequence[int], fits: Fits, both: Both
) -> dict[int, dict[str, Any] | None]:
    """Each id's task instance (None: no instance of either kind has it).

    Refuses (ClickException, nothing done) when an id names a workflow instance and no task
    instance (`fits` gives the command line for it), and as `both` says when it names one
    of each."""
    return _read(_TASKS, client, zones, ids, fits, both)


def workflow_instances(
    client: Client, zones: Zones, ids: Sequence[int], fits: Fits, both: Both
) -> dict[int, dict[str, Any] | None]:
    """Each id's workflow instance (None: no instance of either kind has it).

    Refuses (ClickException, nothing done) when an id names a task instance and no workflow
    instance (`fits` gives the command line for it), and as `both` says when it names one
    of each."""
    return _read(_WORKFLOWS, client, zones, ids, fits, both)


def _both(i: int, workflow: str, task: str, acts_on: str, both: Both) -> list[str]:
    """The refusal of an id that names the workflow instance and the task instance described
    (none when the command only reads, its note then on standard error, or --yes)."""
    if both.changes and both.yes:
        return []
    if both.changes:
        return [
            f"{i} names both workflow instance {i} ({workflow}) and task instance {i} ({task}): "
            f"this command acts on the {acts_on}; add --yes to go on, or use {both.other(i)}."
        ]
    other = task if acts_on == "workflow instance" else workflow
    kind = "task instance" if acts_on == "workflow instance" else "workflow instance"
    click.echo(
        f"Note: {i} also names {kind} {i} ({other}): this command reads the {acts_on}; "
        f"use {both.other(i)}.",
        err=True,
    )
    return []


def _refusal(lines: list[str], given: int) -> str:
    return "\n".join(lines if given == 1 else [*lines, "Nothing was done to any of the ids."])


_TASKS = _Kind(
    "task instance",
    "workflow instance",
    task_instance,
    workflow_instance,
    about_task,
    about_instance,
)
_WORKFLOWS = _Kind(
    "workflow instance",
    "task instance",
    workflow_instance,
    task_instance,
    about_instance,
    about_task,
)
