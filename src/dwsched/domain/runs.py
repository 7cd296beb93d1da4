"""CreateWorkflowInstances: which workflow instances a request makes, and which of their
tasks run. Pure: the store passes the deployed workflows and the time.

Types (DataWorks' CreateWorkflowInstances):
- SupplementData (backfill): every cycle of each BizDate in `Periods` (at most 7 ranges;
  `StartTime`/`EndTime` keep the cycles of the day between them), for a scheduled cycle
  workflow, or (WorkflowId 1) for the cycle workflows holding the chosen tasks.
- SmokeTest: chosen tasks of a cycle workflow, for one BizDate, now.
- Manual: chosen tasks of manual workflows, now. ManualWorkflow: a manual workflow (all of
  it, or from its RootTaskIds), now. TriggerWorkflow: a TriggerWorkflow-triggered workflow
  (all of it, or its IncludeTaskIds), now.

Chosen tasks run; the other tasks of the instance are SkipUnchoose dry runs. All instances
of one BizDate share one UnifiedWorkflowInstanceId.

Bounded before expanded: a request is refused before any BizDate is enumerated when its
ranges cover more than MAX_INSTANCES BizDates (counted from the ranges' union, without
enumerating days), or more than MAX_INSTANCES (BizDate, workflow) pairs; each pair then
costs a few microseconds, however narrow the StartTime/EndTime window.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from dwsched.domain.errors import InvalidArgument
from dwsched.domain.flowspec import DependencyType, TriggerType, WorkflowKind
from dwsched.domain.models import EnvType, InstanceType
from dwsched.domain.parameters import (
    BASH_TYPES,
    bash_safe,
    check_supplied,
    format_assignments,
    is_plain,
    parse_assignments,
    substitute,
)
from dwsched.domain.schedule import Cycle, CycleKind, Trigger, cycles_over
from dwsched.domain.workflows import DeployedTask, DeployedWorkflow

DEFAULT_WORKFLOW = 1  # DataWorks' "WorkflowId of a scheduled task is always 1"
MAX_RANGES = 7
MAX_PARALLELISM = 10
MAX_INSTANCES = 20_000  # per call: a larger backfill is split into several


class Mode(enum.StrEnum):
    GENERAL = "General"
    MANUAL_SELECTION = "ManualSelection"
    CHAIN = "Chain"
    ALL_DOWNSTREAM = "AllDownstream"


class RunPolicy(msgspec.Struct, frozen=True):
    """When a backfill's BizDates may start: daily (or on weekends) between two local
    times; `immediately`: a BizDate whose cycles lie in the future runs now, not at them."""

    type: str = "Daily"  # Daily | Weekend
    start: str = "00:00:00"
    end: str = "23:59:59"
    immediately: bool = False


# DefaultRunProperties.Alert's values: when the user who made the instances hears of them,
# and how (a self-hosted dwsched has no SMS gateway: Sms and SmsMail are sent by Mail).
RUN_ALERT_TYPES = ("Success", "Failure", "SuccessFailure")
RUN_ALERT_NOTICES = ("Sms", "Mail", "SmsMail")


class RunRequest(msgspec.Struct, frozen=True):
    """A validated CreateWorkflowInstances request, as stored with its operation."""

    project_id: int
    name: str
    type: InstanceType
    workflow_id: int
    auto_start: bool = True
    comment: str = ""
    env_type: EnvType | None = None
    mode: Mode = Mode.MANUAL_SELECTION
    root_task_ids: tuple[int, ...] = ()
    include_task_ids: tuple[int, ...] = ()
    exclude_task_ids: tuple[int, ...] = ()
    parallelism: int = 1
    descending: bool = False
    priority: int | None = None
    resource_group: str | None = None
    run_policy: RunPolicy | None = None
    ranges: tuple[tuple[date, date], ...] = ()
    day_start: str = "00:00:00"
    day_end: str = "23:59:59"
    tags: tuple[tuple[str, str], ...] = ()
    overwrite_tags: bool = False
    task_parameters: tuple[tuple[int, str], ...] = ()
    workflow_parameters: str = ""
    # DefaultRunProperties.Alert: (Type, NoticeType); the instances it makes tell the user
    # who made them when they end (docs/alerts.md "A run's own alert").
    alert: tuple[str, str] | None = None

    @property
    def task_ids(self) -> set[int]:
        """Every task id the request names."""
        return {
            *self.root_task_ids,
            *self.include_task_ids,
            *self.exclude_task_ids,
            *(t for t, _ in self.task_parameters),
        }


@dataclass(frozen=True, slots=True)
class PlannedInstance:
    """One workflow instance to make."""

    workflow: DeployedWorkflow
    cycle: Cycle
    chosen: frozenset[int]  # ids of the tasks that run; the others are SkipUnchoose
    parameters: str  # the workflow's k=v parameters, as the instance has them
    task_parameters: Mapping[int, Mapping[str, str]]  # overrides of each task's parameters
    supplied: frozenset[str]  # names in `parameters` the request set (data, never code)


def merged_ranges(ranges: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """The union of the inclusive ranges [start, end] as disjoint ranges, ascending; a range
    that ends before it starts is empty. Adjacent ranges merge."""
    merged: list[tuple[date, date]] = []
    for start, end in sorted(r for r in ranges if r[0] <= r[1]):
        if merged and (start - merged[-1][1]).days <= 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def day_count(ranges: Iterable[tuple[date, date]]) -> int:
    """How many distinct days the ranges cover, by arithmetic: no day is enumerated."""
    return sum((end - start).days + 1 for start, end in merged_ranges(ranges))


def check_ranges(ranges: Sequence[tuple[date, date]]) -> None:
    """InvalidArgument Periods.BizDates when there are more than MAX_RANGES ranges or they
    cover more than MAX_INSTANCES BizDates (each BizDate makes an instance per workflow)."""
    if len(ranges) > MAX_RANGES:
        raise InvalidArgument(
            "Periods.BizDates",
            f"The parameter Periods.BizDates holds {len(ranges)} ranges; at most "
            f"{MAX_RANGES} are allowed.",
        )
    count = day_count(ranges)
    if count > MAX_INSTANCES:
        raise InvalidArgument(
            "Periods.BizDates",
            f"The parameter Periods.BizDates covers {count} BizDates; one call creates at "
            f"most {MAX_INSTANCES} workflow instances (one per BizDate and cycle): split it "
            "into several calls.",
        )


def biz_days(request: RunRequest) -> list[date]:
    """The request's BizDates in run order (Asc, or Desc), each once; InvalidArgument
    (check_ranges) before any is made when there are too many."""
    check_ranges(request.ranges)
    days = [
        date.fromordinal(n)
        for start, end in merged_ranges(request.ranges)
        for n in range(start.toordinal(), end.toordinal() + 1)
    ]
    return days[::-1] if request.descending else days


def plan_run(
    request: RunRequest,
    workflows: Mapping[int, DeployedWorkflow],
    timezone: str,
    now_ms: int,
) -> list[PlannedInstance]:
    """The instances `request` makes, in run order; InvalidArgument naming the parameter
    when it cannot be done. `workflows`: the request's workflow, or (WorkflowId 1) the
    workflows holding the tasks it names; `timezone`: the workspace's."""
    check_ranges(request.ranges)
    chosen = _chosen(request, workflows)
    merged = merged_ranges(request.ranges)
    count = day_count(merged)
    if request.type is InstanceType.SUPPLEMENT_DATA:
        if not count:
            raise InvalidArgument(
                "Periods", "The parameter Periods.BizDates is required for SupplementData."
            )
        today = _today(now_ms, timezone)
        if merged[-1][1] > today:
            raise InvalidArgument(
                "Periods",
                f"The parameter Periods.BizDates reaches {merged[-1][1]}, after today ({today}) "
                "in the workspace's time zone: a backfill's BizDate cannot be in the future.",
            )
        if count * len(chosen) > MAX_INSTANCES:
            raise InvalidArgument(
                "Periods.BizDates",
                f"The parameter Periods.BizDates covers {count} BizDates of {len(chosen)} "
                f"workflows: more than the {MAX_INSTANCES} (BizDate, workflow) pairs one call "
                "may plan; split it into several calls.",
            )
    elif count > 1:
        raise InvalidArgument(
            "Periods",
            f"The parameter Periods names {count} BizDates; a {request.type} instance "
            "runs for one BizDate.",
        )
    days = biz_days(request) or [_today(now_ms, timezone) - timedelta(days=1)]
    low, high = time.fromisoformat(request.day_start), time.fromisoformat(request.day_end)
    streams = [
        (
            workflows[w],
            tasks,
            _workflow_parameters(request, workflows[w]),
            _task_parameters(request, workflows[w]),
            _supplied(request, workflows[w]),
            _cycles(request, workflows[w], days, now_ms, low, high),
        )
        for w, tasks in chosen.items()
    ]
    planned: list[PlannedInstance] = []
    for _day in days:
        for workflow, tasks, params, overrides, supplied, cycles in streams:
            for cycle in next(cycles):
                planned.append(PlannedInstance(workflow, cycle, tasks, params, overrides, supplied))
                if len(planned) > MAX_INSTANCES:
                    raise InvalidArgument(
                        "Periods",
                        f"The request would create more than {MAX_INSTANCES} workflow "
                        "instances; split it into several calls.",
                    )
    if not planned:
        raise InvalidArgument(
            "Periods",
            "The request creates no instance: no cycle of the workflow falls between "
            f"Periods.StartTime {request.day_start} and EndTime {request.day_end}.",
        )
    return planned


def _today(now_ms: int, timezone: str) -> date:
    return datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(ZoneInfo(timezone)).date()


def named_workflow(request: RunRequest, found: DeployedWorkflow | None) -> DeployedWorkflow:
    """The deployed workflow the request's WorkflowId names (`found`: the workflow of that
    id, None when there is none); InvalidArgument WorkflowId unless it is one of the
    request's workspace."""
    if found is None or found.project_id != request.project_id:
        raise InvalidArgument(
            "WorkflowId",
            f"The parameter WorkflowId {request.workflow_id} names no deployed workflow "
            f"of the workspace {request.project_id}.",
        )
    return found


def check_workflow(request: RunRequest, workflow: DeployedWorkflow) -> None:
    """InvalidArgument WorkflowId when the workflow is not one `request.type` runs."""
    spec = workflow.spec
    kind = request.type
    problem = None
    if kind in (InstanceType.SUPPLEMENT_DATA, InstanceType.SMOKE_TEST) and not spec.scheduled:
        problem = f"{kind} needs a scheduled cycle workflow"
    elif kind in (InstanceType.MANUAL_WORKFLOW, InstanceType.MANUAL) and (
        spec.kind is not WorkflowKind.MANUAL
    ):
        problem = f"{kind} needs a manual workflow (kind ManualWorkflow)"
    elif kind is InstanceType.TRIGGER_WORKFLOW and (
        spec.trigger.type is not TriggerType.TRIGGER_WORKFLOW
    ):
        problem = f"{kind} needs a workflow whose trigger type is TriggerWorkflow"
    if problem is not None:
        raise InvalidArgument(
            "WorkflowId",
            f"The parameter WorkflowId {workflow.id} names the workflow {spec.name!r}, a "
            f"{spec.kind} triggered by {spec.trigger.type}; {problem}.",
        )


def _chosen(
    request: RunRequest, workflows: Mapping[int, DeployedWorkflow]
) -> dict[int, frozenset[int]]:
    """The tasks that run, per workflow (only workflows with some)."""
    for workflow in workflows.values():
        check_workflow(request, workflow)
    owner = {t.id: w.id for w in workflows.values() for t in w.tasks}
    if not owner and request.workflow_id != DEFAULT_WORKFLOW:
        # Nothing to choose from: say so, not what a selection would have left.
        empty = workflows.get(request.workflow_id)
        named = "" if empty is None else f" ({empty.spec.name!r})"
        raise InvalidArgument(
            "WorkflowId",
            f"The parameter WorkflowId names the workflow {request.workflow_id}{named}, which "
            "has no tasks: it was deployed without nodes, so there is nothing to run. Deploy "
            "it with nodes (ImportWorkflowDefinition) first.",
        )
    for param, ids in (
        ("DefaultRunProperties.RootTaskIds", request.root_task_ids),
        ("DefaultRunProperties.IncludeTaskIds", request.include_task_ids),
        ("DefaultRunProperties.ExcludeTaskIds", request.exclude_task_ids),
        ("TaskParameters", [t for t, _ in request.task_parameters]),
    ):
        for task_id in ids:
            if task_id not in owner:
                where = (
                    "a task of the workflows this type runs"
                    if request.workflow_id == DEFAULT_WORKFLOW
                    else f"a task of the workflow {request.workflow_id}"
                )
                raise InvalidArgument(param, f"The parameter {param}: {task_id} is not {where}.")
    roots, include = request.root_task_ids, request.include_task_ids
    mode = request.mode
    if mode in (Mode.GENERAL, Mode.ALL_DOWNSTREAM) and len(roots) != 1:
        raise InvalidArgument(
            "DefaultRunProperties.RootTaskIds",
            f"The parameter DefaultRunProperties.RootTaskIds must name exactly one task in "
            f"Mode {mode}; it names {len(roots)}.",
        )
    if mode is Mode.CHAIN and (roots or len(include) != 2):
        raise InvalidArgument(
            "DefaultRunProperties.IncludeTaskIds",
            "In Mode Chain, DefaultRunProperties.IncludeTaskIds must be exactly [start, end] "
            f"and RootTaskIds empty; got IncludeTaskIds {list(include)} and RootTaskIds "
            f"{list(roots)}.",
        )
    if not roots and not include:
        if request.workflow_id == DEFAULT_WORKFLOW or request.type in (
            InstanceType.MANUAL,
            InstanceType.SMOKE_TEST,
        ):
            raise InvalidArgument(
                "DefaultRunProperties.RootTaskIds",
                f"The parameter DefaultRunProperties.RootTaskIds is required: {request.type}"
                + (" with WorkflowId 1" if request.workflow_id == DEFAULT_WORKFLOW else "")
                + " runs the tasks it names.",
            )
        picked = set(owner)  # the whole workflow
    else:
        picked = _picked(mode, roots, include, owner, workflows)
    picked -= set(request.exclude_task_ids)
    if not picked:
        raise InvalidArgument(
            "DefaultRunProperties.ExcludeTaskIds",
            "The parameter DefaultRunProperties.ExcludeTaskIds leaves no task to run.",
        )
    found: dict[int, set[int]] = {}
    for task_id in picked:
        found.setdefault(owner[task_id], set()).add(task_id)
    return {w: frozenset(ids) for w, ids in sorted(found.items())}


def _picked(
    mode: Mode,
    roots: Sequence[int],
    include: Sequence[int],
    owner: Mapping[int, int],
    workflows: Mapping[int, DeployedWorkflow],
) -> set[int]:
    if mode is Mode.ALL_DOWNSTREAM:
        return _below(workflows[owner[roots[0]]], {roots[0]}) | set(include)
    if mode is Mode.CHAIN:
        start, end = include
        if owner[start] != owner[end]:
            raise InvalidArgument(
                "DefaultRunProperties.IncludeTaskIds",
                f"In Mode Chain, the tasks {start} and {end} belong to different workflows.",
            )
        workflow = workflows[owner[start]]
        on_path = _below(workflow, {start}) & _above(workflow, {end})
        if not on_path:
            raise InvalidArgument(
                "DefaultRunProperties.IncludeTaskIds",
                f"In Mode Chain, the task {end} is not downstream of the task {start}.",
            )
        return on_path
    if mode is Mode.GENERAL:
        root = roots[0]
        below = _below(workflows[owner[root]], {root})
        for task_id in include:
            if task_id not in below:
                raise InvalidArgument(
                    "DefaultRunProperties.IncludeTaskIds",
                    f"In Mode General, IncludeTaskIds must be the root task {root} or tasks "
                    f"downstream of it; {task_id} is not.",
                )
        return {root, *include}
    return {*roots, *include}


def _downstream(workflow: DeployedWorkflow) -> dict[int, set[int]]:
    by_node = {t.node.id: t.id for t in workflow.tasks}
    below: dict[int, set[int]] = {t.id: set() for t in workflow.tasks}
    for t in workflow.tasks:
        for u in _normal_upstream(t):
            if u in by_node:
                below[by_node[u]].add(t.id)
    return below


def _normal_upstream(task: DeployedTask) -> Iterable[str]:
    return (u.node_id for u in task.node.upstream if u.type is DependencyType.NORMAL)


def _below(workflow: DeployedWorkflow, start: set[int]) -> set[int]:
    """`start` and every task downstream of it."""
    return _closure(_downstream(workflow), start)


def _above(workflow: DeployedWorkflow, start: set[int]) -> set[int]:
    """`start` and every task upstream of it."""
    above: dict[int, set[int]] = {t.id: set() for t in workflow.tasks}
    for parent, children in _downstream(workflow).items():
        for child in children:
            above[child].add(parent)
    return _closure(above, start)


def _closure(edges: Mapping[int, set[int]], start: set[int]) -> set[int]:
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycles(
    request: RunRequest,
    workflow: DeployedWorkflow,
    days: Sequence[date],
    now_ms: int,
    low: time,
    high: time,
) -> Iterator[list[Cycle]]:
    """For each BizDate of `days` in turn, the cycles the request makes instances for: those
    of the run date whose local time lies in [low, high] (Periods.StartTime/EndTime)."""
    t = workflow.spec.trigger
    if request.type is not InstanceType.SUPPLEMENT_DATA or t.cron is None:
        return ([Cycle(now_ms, day, day + timedelta(days=1), 1, CycleKind.NORMAL)] for day in days)
    # A backfill runs past dates: the trigger's validity window does not apply.
    trigger = Trigger(t.cron, t.timezone, -(2**62), 2**62)
    return cycles_over(trigger, (date.fromordinal(d.toordinal() + 1) for d in days), low, high)


def _workflow_parameters(request: RunRequest, workflow: DeployedWorkflow) -> str:
    """The instance's k=v parameters: the workflow's, overridden (periodic and trigger
    workflows) by the request's WorkflowParameters."""
    values = dict(workflow.spec.parameters)
    if request.workflow_parameters and workflow.spec.kind is not WorkflowKind.MANUAL:
        values.update(parse_assignments(request.workflow_parameters, "WorkflowParameters"))
    return format_assignments(values.items())


def _supplied(request: RunRequest, workflow: DeployedWorkflow) -> frozenset[str]:
    """The names of the workflow-level parameters the request's WorkflowParameters set
    (a manual workflow's are task overrides)."""
    if not request.workflow_parameters or workflow.spec.kind is WorkflowKind.MANUAL:
        return frozenset()
    return frozenset(parse_assignments(request.workflow_parameters, "WorkflowParameters"))


def _task_parameters(request: RunRequest, workflow: DeployedWorkflow) -> dict[int, dict[str, str]]:
    """Each task's parameter overrides: TaskParameters, then (a manual workflow) the
    request's JSON WorkflowParameters, which rank above the task's own."""
    overrides: dict[int, dict[str, str]] = {}
    own = {t.id for t in workflow.tasks}
    for task_id, text in request.task_parameters:
        if task_id in own:
            overrides[task_id] = parse_assignments(text, "TaskParameters")
    if request.workflow_parameters and workflow.spec.kind is WorkflowKind.MANUAL:
        values = manual_workflow_parameters(request.workflow_parameters)
        for task in workflow.tasks:
            seen = {k: v for k, v in values.items() if k in _visible(workflow, task)}
            if seen:
                overrides[task.id] = {**overrides.get(task.id, {}), **seen}
    return overrides


def _visible(workflow: DeployedWorkflow, task: DeployedTask) -> set[str]:
    """The parameters a task's code may refer to: its node's and its workflow's."""
    return {n for n, _ in task.node.parameters} | {n for n, _ in workflow.spec.parameters}


def _runs_bash(task: DeployedTask) -> bool:
    return task.node.command in BASH_TYPES or task.node.quality_check is not None


def manual_workflow_parameters(text: str) -> dict[str, str]:
    """A manual workflow's WorkflowParameters: a JSON object of names to values."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in value.items()
    ):
        raise InvalidArgument(
            "WorkflowParameters",
            "The parameter WorkflowParameters of a manual workflow must be a JSON object of "
            'names to values, e.g. {"region": "hz"}.',
        )
    parse_assignments(format_assignments((k, "x") for k in value), "WorkflowParameters")
    return {k: str(v) for k, v in value.items()}


def check_parameters(request: RunRequest, workflows: Iterable[DeployedWorkflow]) -> None:
    """InvalidArgument for parameters that do not fit the request's type or workflow.

    A run request may set only parameters the deployed code declares (a node's, or its
    workflow's): it supplies values, never new names (which would hide a date format such
    as `${yyyymmdd}`, or add arguments). A value bound for code bash runs (a Shell node, a
    quality check) may not hold `$` or a backtick: bash re-reads values as code in
    arithmetic contexts and array subscripts, where no quoting helps (docs/security.md)."""
    found = list(workflows)
    tasks = {t.id: (w, t) for w in found for t in w.tasks}
    if request.workflow_parameters:
        if request.workflow_id == DEFAULT_WORKFLOW:
            raise InvalidArgument(
                "WorkflowParameters",
                "The parameter WorkflowParameters applies to a workflow; with WorkflowId 1 "
                "set the parameters of each task in TaskParameters.",
            )
        for workflow in found:
            manual = workflow.spec.kind is WorkflowKind.MANUAL
            if manual:
                values = manual_workflow_parameters(request.workflow_parameters)
            else:
                values = parse_assignments(request.workflow_parameters, "WorkflowParameters")
            check_supplied(values, "WorkflowParameters")
            declared = {n for n, _ in workflow.spec.parameters}
            if manual:
                declared |= {n for t in workflow.tasks for n, _ in t.node.parameters}
            where = "its nodes or the workflow" if manual else "the workflow"
            _check_names(values, declared, "WorkflowParameters", f"{where} {workflow.id}")
            bash = [t for t in workflow.tasks if _runs_bash(t)]
            if bash:
                _check_bash(values, "WorkflowParameters", bash[0])
            for task in workflow.tasks:
                own = {n for n, _ in task.node.parameters}
                seen = {k: v for k, v in values.items() if manual or k not in own}
                _check_unknown_language(seen, workflow, task, "WorkflowParameters")
    for task_id, text in request.task_parameters:
        values = parse_assignments(text, "TaskParameters")
        check_supplied(values, "TaskParameters")
        if task_id in tasks:
            workflow, task = tasks[task_id]
            _check_names(values, _visible(workflow, task), "TaskParameters", f"task {task_id}")
            if _runs_bash(task):
                _check_bash(values, "TaskParameters", task)
            _check_unknown_language(values, workflow, task, "TaskParameters")


# Types whose code dwsched knows how to hand a supplied value (engine.runner.render_for);
# any other type's code takes plain values only.
KNOWN_LANGUAGES = BASH_TYPES | {"PYTHON", "VIRTUAL", "CONTROLLER_BRANCH", "SCHEDULER_TRIGGER"}
_ANY_DAY = date(2000, 1, 1)


def _check_unknown_language(
    values: Mapping[str, str], workflow: DeployedWorkflow, task: DeployedTask, param: str
) -> None:
    """InvalidArgument when a value that is not plain would be pasted into the code of a type
    dwsched does not know (e.g. ODPS_SQL): the attempt would refuse it (engine.runner)."""
    if task.node.command in KNOWN_LANGUAGES:
        return
    risky = {k for k, v in values.items() if not is_plain(v)}
    if not risky:
        return
    params = {**dict(workflow.spec.parameters), **dict(task.node.parameters), **values}

    def refuse(name: str, value: str) -> str:
        if name in risky:
            raise InvalidArgument(
                param,
                f"The parameter {param}: the value of {name} holds characters other than "
                f"letters, digits and _.:,+/%- and task {task.id} pastes it into "
                f"{task.node.command} code, whose quoting dwsched does not know; pass a plain "
                f"value (the task also reads any value from DWSCHED_PARAM_{name}).",
            )
        return value

    substitute(task.node.content, _ANY_DAY, 946_684_800_000, "UTC", params, risky, refuse)


def _check_names(values: Mapping[str, str], declared: set[str], param: str, where: str) -> None:
    for name in values:
        if name not in declared:
            shown = ", ".join(sorted(declared)) or "none"
            raise InvalidArgument(
                param,
                f"The parameter {param} sets {name!r}, which {where} does not declare "
                f"(declared: {shown}); a run supplies values of declared parameters only.",
            )


def _check_bash(values: Mapping[str, str], param: str, task: DeployedTask) -> None:
    for name, value in values.items():
        if not bash_safe(value):
            raise InvalidArgument(
                param,
                f"The parameter {param}: the value of {name} holds $ or a backtick, and task "
                f"{task.id} ({task.node.command}) runs it in bash, which reads these as code "
                "in arithmetic and array subscripts whatever the quoting.",
            )


def in_window(policy: RunPolicy | None, now_ms: int, timezone: str) -> bool:
    """Whether a backfill's next BizDate may start now under its RunPolicy."""
    if policy is None:
        return True
    local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(ZoneInfo(timezone))
    if policy.type == "Weekend" and local.weekday() < 5:
        return False
    low, high = time.fromisoformat(policy.start), time.fromisoformat(policy.end)
    now = local.time().replace(microsecond=0)
    if low <= high:
        return low <= now <= high
    return now >= low or now <= high  # a window across midnight
