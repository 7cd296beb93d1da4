"""`dwsched instances logs`: a task instance's log, whole or followed as it grows."""

from __future__ import annotations

import time
from typing import Any

import click

from dwsched.cli.operations import INTERRUPTED
from dwsched.cli.options import client_options, option
from dwsched.cli.terminal import visible_log
from dwsched.client import Client
from dwsched.domain.models import Status
from dwsched.domain.transitions import FINISHED

POLL_S = 0.5


@click.command("logs")
@client_options
@click.argument("task_instance_id", type=int)
@option(
    "--run",
    "run_number",
    envvar="DWSCHED_INSTANCES_LOGS_RUN",
    type=click.IntRange(1),
    default=None,
    help="Attempt number (default: the latest).",
)
@option(
    "--follow",
    "-f",
    "follow_",
    envvar="DWSCHED_INSTANCES_LOGS_FOLLOW",
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
    """Print the log of task instance TASK_INSTANCE_ID.

    With --follow, print new output every half second until the run has ended: exit 0
    when it succeeded, 1 when it failed. Without --run, a retry that starts is followed
    too. Ctrl-C stops following (exit code 130). Control characters of the output (escape
    sequences, carriage returns) are shown as escapes such as \\x1b, never sent to the
    terminal."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        if not follow_:
            click.echo(visible_log(_log(client, task_instance_id, run_number)), nl=False)
            return
        try:
            status = _follow_log(client, task_instance_id, run_number)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(INTERRUPTED) from None
    if status != Status.SUCCESS:
        raise click.exceptions.Exit(1)


def _log(client: Client, task_instance_id: int, run_number: int | None) -> str:
    params = {"Id": task_instance_id, "RunNumber": run_number}
    return str(client.call("GetTaskInstanceLog", params, method="GET")["TaskInstanceLog"] or "")


def _follow_log(client: Client, task_instance_id: int, run_number: int | None) -> str:
    """Print run `run_number`'s log (default the latest run, then each retry) as it
    grows; the run's final status once it has ended."""
    explicit = run_number is not None
    run, printed = run_number, 0
    while True:
        # The status first: a log read after the run has ended is the whole log.
        ti = client.call("GetTaskInstance", {"Id": task_instance_id}, method="GET")["TaskInstance"]
        latest = int(ti["RunNumber"])
        run = latest if run is None else run
        text = _log(client, task_instance_id, run)
        if len(text) < printed:
            printed = 0  # the log was replaced: print it again
        click.echo(visible_log(text[printed:]), nl=False)
        printed = len(text)
        if latest == run and ti["Status"] in FINISHED:
            return str(ti["Status"])
        if latest > run:  # run `run` has ended and its log is printed whole
            if explicit:
                return _run_status(client, ti, run)
            run, printed = latest, 0
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
