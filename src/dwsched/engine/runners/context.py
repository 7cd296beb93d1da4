"""What a task runner is given: the claimed attempt and everything it may use to run it.

`TaskContext` is built by the worker once per attempt: the attempt (`Claimed`), its
parameters and their values in its cycle (`Inputs`), the whole environment of its processes
(`task_environment`), the OS user and sandbox its processes run under, a resolver for
secrets, the log cap and the clock. A runner reads it and nothing else of the server's.

Values a run request supplied are data, never code (domain.parameters): `substitute` pastes
them as the runner's `Render` shows them, and `bash_refusal` is the run-time refusal of a
value bash would re-read as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from dwsched.clock import Clock
from dwsched.domain.attempts import Claimed
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.parameters import (
    PARAM_PREFIX,
    Render,
    bash_safe,
    parse_assignments,
    resolve,
    substitute,
)
from dwsched.engine.runner import Refusal, TaskUser


class Secrets(Protocol):
    """Resolves the secrets a task may name (for data sources, later)."""

    def secret(self, name: str) -> str | None:
        """The value of the secret `name`; None when there is no such secret."""
        ...


class NoSecrets:
    """The default: no secrets at all."""

    def secret(self, name: str) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Inputs:
    """An attempt's parameters as written, the names a run request supplied, and each
    parameter's value in its cycle (what the environment and the arguments carry)."""

    params: dict[str, str]
    supplied: frozenset[str]
    values: dict[str, str]

    @classmethod
    def of(cls, claimed: Claimed) -> Inputs:
        """The attempt's parameters (the workflow's, then the node's own, which rank above),
        the names of those a run request supplied, and each one's value in the cycle."""
        params = parse_assignments(claimed.parameters)
        params.update({k: v for k, v in claimed.node.parameters})
        declared = claimed.node.supplied
        supplied = frozenset(params if declared is None else declared)
        values = resolve(claimed.biz_day, claimed.trigger_time, claimed.timezone, params, supplied)
        return cls(params, supplied, values)


def task_environment(
    base: Mapping[str, str], claimed: Claimed, inputs: Inputs, user: TaskUser | None
) -> dict[str, str]:
    """The whole environment of an attempt's processes: `base` (PATH, LANG and what the
    operator passes on by name), its parameters as DWSCHED_PARAM_<name>, its zone as TZ,
    dwsched's task variables, and USER/LOGNAME of its task user."""
    env = dict(base)
    env.update({PARAM_PREFIX + k: v for k, v in inputs.values.items()})
    env.update(
        {
            "TZ": claimed.timezone,
            "DWSCHED_TASK_INSTANCE_ID": str(claimed.id),
            "DWSCHED_RUN_NUMBER": str(claimed.run_number),
            "DWSCHED_WORKFLOW_INSTANCE_ID": str(claimed.workflow_instance_id),
            "DWSCHED_BIZDATE": claimed.biz_day.strftime("%Y%m%d"),
        }
    )
    if user is not None:
        env["USER"] = env["LOGNAME"] = user.name
    return env


@dataclass(frozen=True, slots=True)
class TaskContext:
    """One attempt, as its runner sees it (see the module docstring)."""

    claimed: Claimed
    inputs: Inputs
    environment: Mapping[str, str]  # the whole environment of its processes
    task_user: TaskUser | None  # None: its processes run as the server's own user
    sandbox: bool  # its processes run inside bubblewrap (engine.runner.sandboxed)
    secrets: Secrets
    log_cap: int
    clock: Clock

    @property
    def node(self) -> NodeSpec:
        return self.claimed.node

    @property
    def timeout_s(self) -> float | None:
        """How long its processes may run; None: no limit."""
        return self.claimed.node.timeout_s or None

    @property
    def arguments(self) -> list[str]:
        """The node's own parameters' values, in order: `$1 ... $N` as DataWorks Shell nodes
        read them."""
        return [self.inputs.values[name] for name, _ in self.claimed.node.parameters]

    def substitute(self, text: str, render: Render) -> str:
        """`text` with its parameters substituted; supplied values as `render` shows them
        (engine.runner.UnsafeValue when `render` refuses one)."""
        claimed = self.claimed
        return substitute(
            text,
            claimed.biz_day,
            claimed.trigger_time,
            claimed.timezone,
            self.inputs.params,
            self.inputs.supplied,
            render,
        )

    def bash_refusal(self) -> Refusal | None:
        """Why bash may not run this attempt's code: a supplied value holding `$` or a
        backtick, which bash would re-read as code in an arithmetic context (requests are
        refused such values; instances made before that rule may still hold them)."""
        values = self.inputs.values
        for name in sorted(self.inputs.supplied):
            if name in values and not bash_safe(values[name]):
                return Refusal(
                    f"dwsched: the value of the parameter {name} came with the run request "
                    "and holds $ or a backtick, which bash reads as code in arithmetic "
                    "contexts whatever the quoting; the task was not run."
                )
        return None
