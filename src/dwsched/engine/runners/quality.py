"""A node's quality check (`qualityCheck.command`): a bash script run after the node
succeeded, while its attempt is Checking.

`quality_check` makes its runner (a ProcessRunner of the check's code, with the parameters
substituted as bash reads them, and the bash refusal); `checked` joins the node's run and
the check's: the check's log follows the node's, and a failed check fails the attempt when
it is blocking.
"""

from __future__ import annotations

from dwsched.engine.runner import SCRIPT, Command, Refusal, shell_variable
from dwsched.engine.runners.context import TaskContext
from dwsched.engine.runners.process import ProcessRunner
from dwsched.engine.runners.protocol import RunResult, TaskRunner


def quality_check(context: TaskContext) -> TaskRunner | Refusal:
    """The runner of the context's node's quality check (the node has one)."""
    check = context.node.quality_check
    if check is None:
        raise ValueError(f"The node {context.node.id} has no quality check.")
    refusal = context.bash_refusal()
    if refusal is not None:
        return refusal
    text = context.substitute(check.command, shell_variable)
    return ProcessRunner(context, Command(("bash", SCRIPT), text, "check.sh"))


def checked(run: RunResult, check: RunResult, blocking: bool) -> RunResult:
    """The attempt's result once its successful `run` has been checked."""
    log = f"{run.log}\n--- quality check (exit {check.exit_code}) ---\n{check.log}"
    if check.exit_code != 0 and blocking:
        return RunResult(check.exit_code, log)
    return RunResult(run.exit_code, log, run.unchosen_outputs)
