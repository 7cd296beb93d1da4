"""Task runners: how an attempt of each task type runs (a protocol, one module per runner,
a registry by task type).

The worker claims an attempt, builds its `TaskContext`, asks the `RunnerRegistry` for the
runner of its task type, runs it (`TaskRunner`: start, wait, stop, log so far), then the
node's quality check when there is one, and records the `RunResult`.
"""

from __future__ import annotations

from dwsched.engine.runners.branch import BRANCH_TYPE, BranchRunner
from dwsched.engine.runners.context import (
    Inputs,
    NoSecrets,
    Secrets,
    TaskContext,
    task_environment,
)
from dwsched.engine.runners.process import ProcessRunner, ProcessRunners, unknown_type
from dwsched.engine.runners.protocol import RunnerFactory, RunResult, TaskRunner
from dwsched.engine.runners.quality import checked, quality_check
from dwsched.engine.runners.registry import RunnerRegistry, RunnerType, builtin_runners
from dwsched.engine.runners.virtual import VirtualRunner

__all__ = [
    "BRANCH_TYPE",
    "BranchRunner",
    "Inputs",
    "NoSecrets",
    "ProcessRunner",
    "ProcessRunners",
    "RunResult",
    "RunnerFactory",
    "RunnerRegistry",
    "RunnerType",
    "Secrets",
    "TaskContext",
    "TaskRunner",
    "VirtualRunner",
    "builtin_runners",
    "checked",
    "quality_check",
    "task_environment",
    "unknown_type",
]
