"""CONTROLLER_BRANCH: a branch node evaluates its conditions and chooses its outputs.

Its attempt holds CheckingCondition while it runs. Each branch's `when` is a Python
expression (domain.execution.evaluate_condition) with the parameters substituted; a value a
run request supplied arrives as escaped text, so inside quotes it compares as a string and
elsewhere it is an error. The outputs of the branches not taken are unchosen: their
downstream becomes a dry run. A condition that cannot be evaluated fails the attempt, which
is not retried (it would fail the same way). No process runs; no quality check follows.
"""

from __future__ import annotations

from dwsched.domain.execution import ConditionError, evaluate_condition
from dwsched.domain.parameters import python_literal
from dwsched.engine.runner import Refusal
from dwsched.engine.runners.context import TaskContext
from dwsched.engine.runners.protocol import RunResult, TaskRunner

BRANCH_TYPE = "CONTROLLER_BRANCH"


class BranchRunner:
    """A TaskRunner that evaluates a branch node's conditions in `wait` (at once; `stop`
    does not interrupt it)."""

    def __init__(self, context: TaskContext) -> None:
        self._context = context

    def start(self) -> int | None:
        return None

    def wait(self) -> RunResult:
        lines: list[str] = []
        chosen: list[str] = []
        unchosen: list[str] = []
        for branch in self._context.node.branches:
            condition = self._context.substitute(branch.when, python_literal)
            try:
                taken = evaluate_condition(condition)
            except ConditionError as exc:
                lines.append(f"branch {branch.output}: {exc}")
                return RunResult(None, "\n".join(lines), retryable=False)
            lines.append(f"branch {branch.output}: {condition!r} is {taken}")
            (chosen if taken else unchosen).append(branch.output)
        unchosen = [o for o in unchosen if o not in chosen]
        return RunResult(0, "\n".join(lines), unchosen_outputs=tuple(unchosen))

    def stop(self) -> None:
        pass

    def log_so_far(self) -> str:
        return ""


def branch(context: TaskContext) -> TaskRunner | Refusal:
    """The RunnerFactory of CONTROLLER_BRANCH."""
    return BranchRunner(context)
