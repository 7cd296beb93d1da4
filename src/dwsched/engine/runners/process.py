"""Task types run as a local process: shell, Python and the operator's configured runners.

`ProcessRunners` is the RunnerFactory of DIDE_SHELL and SHELL (bash runs the code), PYTHON
and every type the operator configured with DWSCHED_RUNNER_<TYPE> (engine.runner.command_for
says what each runs). It substitutes the parameters into the code as that type's language
reads a supplied value (engine.runner.render_for), refuses a value that cannot reach that
code safely, and for bash a value bash would re-read as code (TaskContext.bash_refusal).
`ProcessRunner` runs the command as an `Attempt`: its own process group, exactly the
context's environment, the task user, the sandbox, the timeout, a capped log.

`unknown_type` is the factory of a type nothing is registered for: it fails with how to
configure a runner for it (engine.runner.unconfigured).
"""

from __future__ import annotations

from collections.abc import Mapping

from dwsched.domain.parameters import BASH_TYPES
from dwsched.engine.runner import (
    Attempt,
    Command,
    Refusal,
    UnsafeValue,
    command_for,
    render_for,
    strict,
    unconfigured,
)
from dwsched.engine.runners.context import TaskContext
from dwsched.engine.runners.protocol import RunResult, TaskRunner
from dwsched.engine.runners.virtual import VirtualRunner


class ProcessRunner:
    """A TaskRunner that runs `command` as one Attempt with the context's environment,
    task user, sandbox, timeout and log cap (HOME is the attempt's directory)."""

    def __init__(self, context: TaskContext, command: Command) -> None:
        self._timeout_s = context.timeout_s
        self._attempt = Attempt(
            command,
            context.environment,
            self._timeout_s,
            log_cap=context.log_cap,
            user=context.task_user,
            home=True,
            sandbox=context.sandbox,
        )
        self._not_started: str | None = None

    def start(self) -> int | None:
        try:
            return self._attempt.start()
        except OSError as exc:
            self._not_started = f"dwsched: the task's process could not start: {exc}\n"
            return None

    def wait(self) -> RunResult:
        if self._not_started is not None:
            return RunResult(None, self._not_started)
        outcome = self._attempt.wait()
        text = outcome.log
        if outcome.timed_out:
            text += (
                f"\ndwsched: the attempt exceeded its timeout of {self._timeout_s:.0f}s "
                "and was killed.\n"
            )
        elif outcome.stopped:
            text += "\ndwsched: the attempt was stopped.\n"
        return RunResult(outcome.exit_code, text)

    def stop(self) -> None:
        self._attempt.stop()

    def log_so_far(self) -> str:
        return self._attempt.log_so_far()


class ProcessRunners:
    """The RunnerFactory of the process types; `configured` maps a task type to the
    operator's command line for it (DWSCHED_RUNNER_<TYPE>, with `{script}`)."""

    def __init__(self, configured: Mapping[str, str]) -> None:
        self.configured = dict(configured)

    def __call__(self, context: TaskContext) -> TaskRunner | Refusal:
        task_type = context.node.command
        if task_type in BASH_TYPES:
            refusal = context.bash_refusal()
            if refusal is not None:
                return refusal
        try:
            content = context.substitute(
                context.node.content, render_for(task_type, self.configured)
            )
        except UnsafeValue as refused:
            return Refusal(str(refused))
        command = command_for(task_type, content, self.configured)
        if command is None:
            return VirtualRunner()
        if isinstance(command, Refusal):
            return command
        return ProcessRunner(context, command.with_arguments(context.arguments))


def unknown_type(context: TaskContext) -> TaskRunner | Refusal:
    """The RunnerFactory of a type no runner is registered for: refused, saying how to
    configure one; a supplied value its code could not take safely is refused first."""
    task_type = context.node.command
    try:
        context.substitute(context.node.content, strict(task_type))
    except UnsafeValue as refused:
        return Refusal(str(refused))
    return unconfigured(task_type)
