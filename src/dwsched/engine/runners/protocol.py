"""The task runner protocol: how one attempt of a task type runs, and how it ended.

A `RunnerFactory` makes the `TaskRunner` of one attempt from its `TaskContext`, or refuses
(engine.runner.Refusal: the attempt fails with that message and nothing runs). The worker
then calls `start` once and `wait` once, on the attempt's thread; `stop` and `log_so_far` may
come from any thread at any time, also before `start` (the runner then ends as soon as it
starts) and after `wait` (nothing happens). A runner only runs: claiming, heartbeats,
retries and recording the outcome are the worker's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dwsched.engine.runner import Refusal
from dwsched.engine.runners.context import TaskContext


@dataclass(frozen=True, slots=True)
class RunResult:
    """How an attempt's run ended.

    `exit_code` 0 is success; None means it ended without one (a timeout, a stop, a process
    that could not start, a condition that could not be evaluated). `log` is what it wrote,
    with dwsched's notes. `unchosen_outputs` are a branch's outputs not taken (their
    downstream becomes a dry run). A failure that is not `retryable` is not retried whatever
    the node's rerun policy.
    """

    exit_code: int | None
    log: str
    unchosen_outputs: tuple[str, ...] = ()
    retryable: bool = True

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


class TaskRunner(Protocol):
    """One attempt's run (see the module docstring)."""

    def start(self) -> int | None:
        """Begin; the pid of the process (and process group) it started, which the worker
        records so that an engine that restarts can recognise and end it; None when it
        started none."""
        ...

    def wait(self) -> RunResult:
        """Block until the run ends; how it ended."""
        ...

    def stop(self) -> None:
        """End the run now; `wait` then returns."""
        ...

    def log_so_far(self) -> str:
        """What the run has written up to now."""
        ...


RunnerFactory = Callable[[TaskContext], "TaskRunner | Refusal"]
"""Makes the runner of one attempt, or refuses it."""
