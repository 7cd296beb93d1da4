"""Which runner runs each task type.

A `RunnerRegistry` maps a task type to its `RunnerType`: the factory of its runners, and
whether the node's quality check runs after it. `builtin_runners` registers what dwsched
runs itself: DIDE_SHELL, SHELL and PYTHON as processes, every type the operator configured
(DWSCHED_RUNNER_<TYPE>, which also overrides the built-in process types), VIRTUAL and
CONTROLLER_BRANCH (neither of which a configuration overrides). A type nothing is
registered for fails, saying how to configure it (process.unknown_type).

A new task type is a runner module and one `register` call (or an entry in
WorkerSettings.task_runners).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dwsched.engine.runner import PYTHON_TYPES, SHELL_TYPES, VIRTUAL_TYPES
from dwsched.engine.runners.branch import BRANCH_TYPE, branch
from dwsched.engine.runners.process import ProcessRunners, unknown_type
from dwsched.engine.runners.protocol import RunnerFactory
from dwsched.engine.runners.virtual import virtual


@dataclass(frozen=True, slots=True)
class RunnerType:
    """How the attempts of one task type run."""

    factory: RunnerFactory
    checked: bool = True  # the node's quality check (if any) runs after it succeeded


UNKNOWN = RunnerType(unknown_type)


class RunnerRegistry:
    """Task type -> RunnerType; UNKNOWN for a type nothing is registered for."""

    def __init__(self) -> None:
        self._types: dict[str, RunnerType] = {}

    def register(self, task_type: str, factory: RunnerFactory, *, checked: bool = True) -> None:
        """Run `task_type` with `factory` from now on (replacing what ran it before)."""
        self._types[task_type] = RunnerType(factory, checked)

    def get(self, task_type: str) -> RunnerType:
        return self._types.get(task_type, UNKNOWN)

    def __contains__(self, task_type: object) -> bool:
        return task_type in self._types


def builtin_runners(configured: Mapping[str, str]) -> RunnerRegistry:
    """dwsched's own runners, with the operator's `configured` command lines (task type ->
    shell command with `{script}`)."""
    registry = RunnerRegistry()
    processes = ProcessRunners(configured)
    for task_type in sorted(SHELL_TYPES | PYTHON_TYPES | set(configured)):
        registry.register(task_type, processes)
    for task_type in VIRTUAL_TYPES:
        registry.register(task_type, virtual)
    # A branch node's attempt evaluates its conditions; no quality check follows it.
    registry.register(BRANCH_TYPE, branch, checked=False)
    return registry
