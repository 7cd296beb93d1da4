"""VIRTUAL: nothing runs; the attempt succeeds at once, with no log.

The store usually ends a VIRTUAL node as it is claimed (store.claims.claim_many), taking no
slot and no thread; this runner serves an attempt that reaches a worker all the same.
"""

from __future__ import annotations

from dwsched.engine.runner import Refusal
from dwsched.engine.runners.context import TaskContext
from dwsched.engine.runners.protocol import RunResult, TaskRunner


class VirtualRunner:
    """A TaskRunner that runs nothing and succeeds."""

    def start(self) -> int | None:
        return None

    def wait(self) -> RunResult:
        return RunResult(0, "")

    def stop(self) -> None:
        pass

    def log_so_far(self) -> str:
        return ""


def virtual(context: TaskContext) -> TaskRunner | Refusal:
    """The RunnerFactory of VIRTUAL."""
    return VirtualRunner()
