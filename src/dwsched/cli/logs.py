"""`dwsched tasks logs`: a task instance's log, whole or followed as it grows; when there is
none, why (a dry run, not started yet, ...), on standard error."""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

import click

from dwsched.cli import ids as kinds
from dwsched.cli.operations import INTERRUPTED
from dwsched.cli.options import client_options, option
from dwsched.cli.tables import moment
from dwsched.cli.tasks import TASK_INSTANCE_ID, the_task_instance
from dwsched.cli.terminal import visible, visible_log
from dwsched.client import Client
from dwsched.domain.models import Status
from dwsched.domain.transitions import FINISHED

POLL_S = 0.5
WAITING = (Status.WAIT_TIME.value, Status.NOT_RUN.value)  # what --follow says it waits for


@click.command("logs")
@client_options
@click.argument("task_instance_id", type=int, metavar=TASK_INSTANCE_ID)
@option(
    "--run",
    "run_number",
    envvar="DWSCHED_TASKS_LOGS_RUN",
    type=click.IntRange(1),
    default=None,
    help="Attempt number (default: the latest).",
)
@option(
    "--follow",
    "-f",
    "follow_",
    envvar="DWSCHED_TASKS_LOGS_FOLLOW",
    is_flag=True,
    help="Print new output as it comes, until the run ends.",
)
def logs(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    task_instance_id: int,
    run_number: int | None,
    follow_: bool,
) -> None:
    """Print the log of the task instance TASK_INSTANCE_ID (a task instance id, as `dwsched
    tasks list` lists them). A task instance without a log (a dry run, one not started yet)
    prints nothing, and why on standard error.

    With --follow, print new output every half second until the run has ended: exit 0
    when it succeeded, 1 when it failed; while it waits (WaitTime, NotRun), say once on
    standard error what for. A dry run, which never runs, is not followed: as without
    --follow, why on standard error and exit 0. Without --run, a retry that starts is
    followed too. Ctrl-C stops following (exit code 130). Control characters of the output (escape
    sequences, carriage returns) are shown as escapes such as \\x1b, never sent to the
    terminal."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        task = the_task_instance(client, zones, task_instance_id, "logs")
        if not follow_ or _dry(task):  # a dry run never has a log to follow
            text = _log(client, task_instance_id, run_number)
            click.echo(visible_log(text), nl=False)
            if not text:
                _say_why_empty(client, task_instance_id)
            return
        tz = zones.of(int(task["ProjectId"]))
        try:
            status, printed = _follow_log(client, task_instance_id, run_number, tz)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(INTERRUPTED) from None
        if not printed:
            _say_why_empty(client, task_instance_id)
    if status != Status.SUCCESS:
        raise click.exceptions.Exit(1)


def _say_why_empty(client: Client, task_instance_id: int) -> None:
    task = kinds.task_instance(client, task_instance_id)
    if task is not None:
        click.echo(f"(no log: {why_no_log(task)})", err=True)


def why_no_log(task: dict[str, Any]) -> str:
    """Why a task instance's log is empty, from what GetTaskInstance says of it."""
    status, recurrence = str(task["Status"]), str(task.get("TriggerRecurrence") or "Normal")
    if recurrence == "Pause":
        return "paused (TriggerRecurrence Pause): it ends Failure without running"
    if kinds.dry_run(task):
        done = "nothing ran" if status in FINISHED else "it will not run"
        return f"dry run ({visible(recurrence)}): {done}"
    kind = str(task.get("TaskType") or "")
    if kind in ("VIRTUAL", "SCHEDULER_TRIGGER"):
        return f"a {visible(kind)} task runs nothing"
    if task.get("StartedTime") is None:
        if status in FINISHED:
            operation = task.get("OperationType")
            by = f", by {visible(str(operation))}" if operation else ""
            return f"it never ran: it ended {visible(status)} without running{by}"
        return f"not started yet ({visible(status)}): the log begins when it runs"
    if status not in FINISHED:
        return f"{visible(status)}: nothing printed yet"
    return "the run printed nothing"


def _log(client: Client, task_instance_id: int, run_number: int | None) -> str:
    params = {"Id": task_instance_id, "RunNumber": run_number}
    return str(client.call("GetTaskInstanceLog", params, method="GET")["TaskInstanceLog"] or "")


def _dry(task: dict[str, Any]) -> bool:
    """A dry run: it ends Success without running (a paused one ends Failure)."""
    return kinds.dry_run(task) and task.get("TriggerRecurrence") != "Pause"


def waiting(task: dict[str, Any], tz: ZoneInfo) -> str:
    """What a followed task instance that has not started waits for, in one line."""
    status = str(task["Status"])
    if status == Status.WAIT_TIME.value:
        when = f"{moment(task.get('TriggerTime'), tz)} ({tz.key})"
        why = f"it waits for its time, {when}"
    else:
        why = "it waits for its upstream task instances"
    about = f"following task instance {task['Id']}: {visible(status)}"
    return f"({about}, {why}; the log begins when it runs)"


def _follow_log(
    client: Client, task_instance_id: int, run_number: int | None, tz: ZoneInfo
) -> tuple[str, bool]:
    """Print run `run_number`'s log (default the latest run, then each retry) as it
    grows; the run's final status once it has ended, and whether anything was printed.
    While it waits (WaitTime, NotRun), say once, on standard error, what for."""
    explicit = run_number is not None
    run, printed, anything, told = run_number, 0, False, False
    while True:
        # The status first: a log read after the run has ended is the whole log.
        ti = client.call("GetTaskInstance", {"Id": task_instance_id}, method="GET")["TaskInstance"]
        if not told and ti["Status"] in WAITING:
            click.echo(waiting(ti, tz), err=True)
            told = True
        latest = int(ti["RunNumber"])
        run = latest if run is None else run
        text = _log(client, task_instance_id, run)
        if len(text) < printed:
            printed = 0  # the log was replaced: print it again
        click.echo(visible_log(text[printed:]), nl=False)
        anything = anything or len(text) > printed
        printed = len(text)
        if latest == run and ti["Status"] in FINISHED:
            return str(ti["Status"]), anything
        if latest > run:  # run `run` has ended and its log is printed whole
            if explicit:
                return _run_status(client, ti, run), anything
            run, printed, anything = latest, 0, True
            click.echo(f"--- run {run} ---")
            continue
        time.sleep(POLL_S)


def _run_status(client: Client, ti: dict[str, Any], run: int) -> str:
    """The status an earlier attempt ended with (ListTaskInstances' rerun history)."""
    params = {
        "ProjectId": ti["ProjectId"],
        "ProjectEnv": ti.get("ProjectEnv"),
        "Bizdate": ti["Bizdate"],
        "Id": ti["Id"],
        "PageSize": 100,
    }
    history = client.call("ListTaskInstances", params)["PagingInfo"]["TaskInstances"]
    return next(
        (str(h["Status"]) for h in history if int(h["RunNumber"]) == run), Status.FAILURE.value
    )
