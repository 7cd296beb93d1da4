"""How task instances move through the DataWorks statuses, and what that makes of their
workflow instance. Pure: the engine passes the time and the state, and writes the result.

    NotRun ──upstream done──▶ WaitTime ──TriggerTime──▶ WaitResource ──slot──▶ Running
      (a branch node is claimed into CheckingCondition instead of Running)
    Running ──exit 0──▶ Checking (if the node has a quality check) ──▶ Success | Failure
    Running ──fails──▶ WaitResource again (a retry, after rerunInterval) | Failure

An HTTP trigger node (SCHEDULER_TRIGGER) of a scheduled (Normal) instance waits in
WaitTrigger at its TriggerTime until TriggerSchedulerTaskInstance fires it (at once, if it was
fired earlier), then succeeds; in any other instance (a backfill, a smoke test, a manual run)
it succeeds at its TriggerTime without waiting. A
suspended (frozen) task does not move, so nothing below it runs.

A dry run (TriggerRecurrence other than Normal: SkipCycle, ConditionUnchoose, Skip,
RealtimeDeprecated, SkipUnchoose) turns Success at its TriggerTime without running; Pause
turns Failure. A task waits for every same-instance upstream to succeed; a failed upstream
leaves it NotRun.
"""

from __future__ import annotations

import ast
import enum
import operator
from collections.abc import Callable, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from dwsched.domain.models import Status
from dwsched.domain.transitions import ACTIVE_ORDER, FINISHED


class Recurrence(enum.StrEnum):
    """DataWorks' TriggerRecurrence: how a task instance runs when its time comes. A node
    declares Normal, Skip or Pause (flowspec.NodeRecurrence); the scheduler gives the
    others to instances (SkipCycle, RealtimeDeprecated, SkipUnchoose, ConditionUnchoose)."""

    NORMAL = "Normal"
    SKIP = "Skip"
    PAUSE = "Pause"
    SKIP_CYCLE = "SkipCycle"
    SKIP_UNCHOOSE = "SkipUnchoose"
    CONDITION_UNCHOOSE = "ConditionUnchoose"
    REALTIME_DEPRECATED = "RealtimeDeprecated"


@dataclass(frozen=True, slots=True)
class TaskState:
    id: int
    status: Status
    upstream: tuple[int, ...]
    trigger_time: int
    recurrence: Recurrence
    suspended: bool = False
    trigger_node: bool = False  # an HTTP trigger node (SCHEDULER_TRIGGER)
    triggered: bool = False  # fired by TriggerSchedulerTaskInstance already
    # Of a scheduled (Normal) instance: only there does a trigger node wait for its trigger.
    scheduled: bool = True
    # A task of another workflow instance that one of these waits for (another workflow, a
    # previous cycle): read for its status, never moved with them.
    elsewhere: bool = False


TRIGGER_NODE = "SCHEDULER_TRIGGER"
BRANCH_NODE = "CONTROLLER_BRANCH"


@dataclass(frozen=True, slots=True)
class Move:
    """Set the task instance's status (and, for a dry run, finish it at `at`)."""

    task_instance_id: int
    status: Status
    at: int
    dry_run: bool = False
    since: Status = Status.NOT_RUN  # applied only if the task is still in this status


def plan(tasks: Sequence[TaskState], now_ms: int) -> list[Move]:
    """The moves the time and the upstreams allow now (workers do the rest)."""
    by_id = {t.id: t for t in tasks}
    moves: list[Move] = []
    for t in tasks:
        if t.suspended or t.elsewhere:
            continue
        if t.status is Status.NOT_RUN:
            ups = [by_id[u] for u in t.upstream if u in by_id]
            if all(u.status is Status.SUCCESS for u in ups):
                moves.append(_after_upstream(t, now_ms))
        elif t.status is Status.WAIT_TIME and now_ms >= t.trigger_time:
            moves.append(_at_trigger_time(t, now_ms))
    return moves


def _after_upstream(t: TaskState, now_ms: int) -> Move:
    if now_ms < t.trigger_time:
        return Move(t.id, Status.WAIT_TIME, now_ms, since=t.status)
    return _at_trigger_time(t, now_ms)


def _at_trigger_time(t: TaskState, now_ms: int) -> Move:
    if t.recurrence is Recurrence.NORMAL and t.trigger_node:
        # TriggerSchedulerTaskInstance names a scheduled instance (task and scheduled time):
        # in a backfill, smoke test or manual run nothing could fire the node, which passes.
        if t.triggered or not t.scheduled:
            return Move(t.id, Status.SUCCESS, now_ms, dry_run=True, since=t.status)
        return Move(t.id, Status.WAIT_TRIGGER, now_ms, since=t.status)
    if t.recurrence is Recurrence.NORMAL:
        return Move(t.id, Status.WAIT_RESOURCE, now_ms, since=t.status)
    if t.recurrence is Recurrence.PAUSE:
        return Move(t.id, Status.FAILURE, now_ms, dry_run=True, since=t.status)
    return Move(t.id, Status.SUCCESS, now_ms, dry_run=True, since=t.status)


def workflow_status(tasks: Sequence[TaskState]) -> Status:
    """A workflow instance's status from its task instances': the most advanced active one;
    else waiting for time, or not run yet, while some task can still run; else Failure if
    any failed (what is left waits below a failure, DataWorks leaves it NotRun), else
    Success."""
    present = {t.status for t in tasks}
    active = _most_active(present)
    if active is not None:
        return active
    blocked = blocked_tasks(tasks)
    pending = {t.status for t in tasks if t.status not in FINISHED and t.id not in blocked}
    return _settled(present, pending)


def status_from_present(present: AbstractSet[Status]) -> Status | None:
    """workflow_status from the set of statuses its tasks have alone; None when that is not
    enough: a failure beside unfinished tasks, which may wait below it (the graph decides)."""
    active = _most_active(present)
    if active is not None:
        return active
    pending = present - FINISHED
    if Status.FAILURE in present and pending:
        return None
    return _settled(present, pending)


def _most_active(present: AbstractSet[Status]) -> Status | None:
    return next((s for s in ACTIVE_ORDER if s in present), None)


def _settled(present: AbstractSet[Status], pending: AbstractSet[Status]) -> Status:
    """With no task active: waiting for time, or not run yet, while a `pending` task can
    still run; else Failure if any failed, else Success."""
    if Status.WAIT_TIME in pending or Status.WAIT_TRIGGER in pending:
        return Status.WAIT_TIME
    if Status.NOT_RUN in pending:
        return Status.NOT_RUN
    if Status.FAILURE in present:
        return Status.FAILURE
    return Status.SUCCESS if present else Status.NOT_RUN


def blocked_tasks(tasks: Sequence[TaskState]) -> set[int]:
    """Unfinished tasks that can never run: below a failed task (tasks come upstream first)."""
    failed = {t.id for t in tasks if t.status is Status.FAILURE}
    blocked: set[int] = set()
    for t in tasks:
        if t.status not in FINISHED and any(u in failed or u in blocked for u in t.upstream):
            blocked.add(t.id)
    return blocked


def retry_allowed(rerun_mode: str, rerun_times: int, attempts_made: int, failed: bool) -> bool:
    """Whether a failed attempt is retried automatically: the node allows reruns (after a
    failure), and fewer than `rerun_times` retries were made."""
    if rerun_mode == "Denied" or not failed:
        return False
    return attempts_made <= rerun_times


# Branch conditions: `when` expressions such as `${a} == 1` or `'$bizdate' > '20250101'`,
# evaluated after substitution by a small evaluator (literals, comparisons, and/or/not,
# + - * / %), never by eval().

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}


class ConditionError(ValueError):
    pass


def evaluate_condition(text: str, names: Mapping[str, Any] | None = None) -> bool:
    """The truth of a branch condition (already substituted); ConditionError if it is not
    one this evaluator understands."""
    source = text.strip().replace("&&", " and ").replace("||", " or ")
    try:
        tree = ast.parse(source, mode="eval")
        return bool(_value(tree.body, names or {}, text))
    except SyntaxError as exc:
        raise ConditionError(f"the condition {text!r} is not an expression: {exc.msg}") from exc
    except (RecursionError, MemoryError) as exc:
        raise ConditionError(f"the condition {text[:200]!r}... is too deeply nested") from exc


def _value(node: ast.AST, names: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return node.id == "true"
        if node.id in names:
            return names[node.id]
        raise ConditionError(f"the condition {text!r} names {node.id!r}, which has no value")
    if isinstance(node, ast.BoolOp):
        values = [bool(_value(v, names, text)) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _value(node.operand, names, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand, names, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _value(node.left, names, text), _value(node.right, names, text)
        try:
            return _ARITHMETIC[type(node.op)](left, right)
        except (TypeError, ZeroDivisionError) as exc:
            raise ConditionError(f"the condition {text!r} cannot be computed: {exc}") from exc
    if isinstance(node, ast.Compare):
        left = _value(node.left, names, text)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _value(right_node, names, text)
            compare = _COMPARE.get(type(op))
            if compare is None:
                raise ConditionError(f"the condition {text!r} uses an unsupported comparison")
            try:
                if not compare(left, right):
                    return False
            except TypeError as exc:
                raise ConditionError(f"the condition {text!r} compares unlike values") from exc
            left = right
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_value(e, names, text) for e in node.elts)
    raise ConditionError(f"the condition {text!r} uses something other than values and operators")
