"""`dwsched tasks`: task instances through a running server. List a workflow instance's,
show one, and rerun, stop, set to Success, suspend or resume them (`logs`, `upstream`,
`downstream` and `remove-dependency` join the group from their own modules).

Every command reads its ids as task instances first and refuses one that names only a
workflow instance, naming the `dwsched instances` command that fits (cli/ids.py); those that
change something refuse one that names both unless --yes. Each operation says what it
acted on.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.text import Text

from dwsched.cli import ids as kinds
from dwsched.cli.instances import WORKFLOW_INSTANCE_ID, task_instances_of
from dwsched.cli.operations import RESULTS, comment_option, ids_argument, send_and_report
from dwsched.cli.options import client_options, option
from dwsched.cli.tables import STATUS_STYLE, heading, moment, task_counts, task_table, took
from dwsched.cli.terminal import cell, json_text
from dwsched.client import Client

TASK_INSTANCE_ID = "TASK_INSTANCE_ID"
# A task-instance command given a workflow instance's id: the command that fits it.
FITS = {
    "rerun": "use dwsched instances rerun {n}",
    "stop": "use dwsched instances stop {n}",
    "show": "use dwsched instances show {n}",
}
TASKS_OF = "its task instances: dwsched tasks list {n}"
# A task-instance command given an id that names both kinds: what fits the workflow instance.
OTHER = {
    "rerun": "`dwsched instances rerun {n}` for the workflow instance",
    "stop": "`dwsched instances stop {n}` for the workflow instance",
    "show": "`dwsched instances show {n}` for the workflow instance",
    "logs": "`dwsched instances show {n}` for the workflow instance",
    "upstream": "`dwsched instances show {n}` for the workflow instance",
    "downstream": "`dwsched instances show {n}` for the workflow instance",
}
TASKS_OF_OTHER = "`dwsched tasks list {n}` for the workflow instance's task instances"


def fits(command: str) -> kinds.Fits:
    """What to tell a user who gave `command` a workflow instance's id."""
    return lambda n: FITS.get(command, TASKS_OF).format(n=n)


def both(command: str, changes: bool, yes: bool = False) -> kinds.Both:
    """What `command` does with an id that names a workflow instance too."""
    return kinds.Both(
        lambda n: OTHER.get(command, TASKS_OF_OTHER).format(n=n), changes=changes, yes=yes
    )


def the_task_instance(
    client: Client,
    zones: kinds.Zones,
    task_instance_id: int,
    command: str,
    *,
    changes: bool = False,
    yes: bool = False,
) -> dict[str, Any]:
    """The task instance, or a clean error (naming the command that fits a workflow
    instance's id; for a command that `changes` something, refusing an id that names both
    kinds unless `yes`)."""
    found = kinds.task_instances(
        client, zones, [task_instance_id], fits(command), both(command, changes, yes)
    )
    task = found[task_instance_id]
    if task is None:
        raise click.ClickException(f"No task instance has the id {task_instance_id}.")
    return task


@click.group()
def tasks() -> None:
    """Task instances on a running server: the runs of a workflow instance's tasks, each
    with its own id (numbered apart from workflow instance ids). `dwsched tasks list
    WORKFLOW_INSTANCE_ID` lists a workflow instance's."""


@tasks.command("list")
@client_options
@click.argument("instance_id", type=int, metavar=WORKFLOW_INSTANCE_ID)
@option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON on one line: WorkflowInstanceId, TotalCount, TaskInstances (every page).",
)
def list_(
    endpoint: str, access_key_id: str, access_key_secret: str, instance_id: int, as_json: bool
) -> None:
    """List the task instances of the workflow instance WORKFLOW_INSTANCE_ID (a workflow
    instance id, as `dwsched instances list` lists them): each one's task instance id,
    task, type, status, run (attempt) number, start and duration, dry runs marked."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        found = kinds.workflow_instances(
            client,
            zones,
            [instance_id],
            lambda n: _instance_of(client, n),
            kinds.Both(lambda n: f"`dwsched tasks show {n}` for the task instance", changes=False),
        )[instance_id]
        if found is None:
            raise click.ClickException(f"No workflow instance has the id {instance_id}.")
        items = task_instances_of(client, found)
        tz = zones.of(int(found["ProjectId"]))
    if as_json:
        data = {"WorkflowInstanceId": instance_id, "TotalCount": len(items), "TaskInstances": items}
        click.echo(json_text(data))
        return
    out = Console(highlight=False)
    out.print(_heading(found, tz, out.width))
    if not items:
        out.print("none (an imported record: the engine never ran it).")
        return
    out.print(task_table(items, tz, out.width))
    out.print(task_counts(items) + f" · times in {tz.key}")


def _instance_of(client: Client, task_instance_id: int) -> str:
    task = kinds.task_instance(client, task_instance_id)
    n = task["WorkflowInstanceId"] if task else "WORKFLOW_INSTANCE_ID"
    return f"its workflow instance's task instances: dwsched tasks list {n}"


def _heading(instance: dict[str, Any], tz: ZoneInfo, width: int) -> Text:
    """`Task instances of workflow instance 4 orders_daily (Success) · Normal · BizDate
    2025-06-09`, broken between its parts to fit `width`."""
    about = kinds.about_instance(instance, tz).rsplit(" · ", 2)
    first = f"Task instances of workflow instance {instance['Id']} {about[0]}"
    return heading([cell(part) for part in [first, *about[1:]]], width)


@tasks.command("show")
@client_options
@click.argument("task_instance_id", type=int, metavar=TASK_INSTANCE_ID)
@option("--json", "as_json", is_flag=True, help="Print GetTaskInstance's TaskInstance.")
def show(
    endpoint: str, access_key_id: str, access_key_secret: str, task_instance_id: int, as_json: bool
) -> None:
    """Show the task instance TASK_INSTANCE_ID (a task instance id, as `dwsched tasks list`
    lists them): its task, workflow instance, BizDate, status, attempts and times."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        t = the_task_instance(client, zones, task_instance_id, "show")
        tz = zones.of(int(t["ProjectId"]))
    if as_json:
        click.echo(json_text(t, indent=2))
        return
    out = Console(highlight=False)
    heading = Text(f"task instance {t['Id']} ", style="bold")
    out.print(heading.append_text(cell(t["TaskName"], "bold")))
    recurrence = t.get("TriggerRecurrence") or "Normal"
    dry = f" · dry run ({recurrence}): it does not run" if kinds.dry_run(t) else ""
    where = f"{t['WorkflowInstanceId']} {t.get('WorkflowName') or ''}"
    rows = [
        ("status", cell(t["Status"], STATUS_STYLE.get(t["Status"], "")).append(dry)),
        ("task", cell(f"{t['TaskId']} · {t.get('TaskType') or ''}")),
        ("workflow", cell(f"instance {where} ({t.get('WorkflowInstanceType') or ''})")),
        ("BizDate", Text(f"{kinds.day(t.get('Bizdate'), tz)} ({tz.key})")),
        ("triggered", Text(moment(t.get("TriggerTime"), tz, seconds=True))),
        ("run", Text(str(t["RunNumber"]) if t.get("StartedTime") is not None else "not yet")),
        (
            "ran",
            Text(
                f"{moment(t.get('StartedTime'), tz, seconds=True)} to "
                f"{moment(t.get('FinishedTime'), tz, seconds=True)} · took {took(t)}"
            ),
        ),
        ("owner", cell(t.get("Owner") or "-")),
    ]
    if t.get("OperationType"):
        rows.append(("operation", cell(t["OperationType"])))
    for label, value in rows:
        out.print(Text(f"  {label:<10} ").append_text(value))
    out.print(f"its log: dwsched tasks logs {t['Id']}")


# Operations


def _batch(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    command: str,
    action: str,
    ids: list[int],
    extra: dict[str, Any],
    verb: str,
    yes: bool,
) -> None:
    """Send `action` for the task instances `ids`; ✓/✗ per id with what it names."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        found = kinds.task_instances(
            client, zones, ids, fits(command), both(command, changes=True, yes=yes)
        )
        send_and_report(
            client,
            action,
            ids,
            extra,
            found,
            "task instance",
            verb,
            lambda t: "was " + kinds.about_task(t, zones.of(int(t["ProjectId"]))),
        )


_task_ids = ids_argument(TASK_INSTANCE_ID, "a task instance id")


@tasks.command("rerun")
@client_options
@comment_option
@option("--latest-config", is_flag=True, help="Run with the task's latest deployed settings.")
@kinds.yes_option
@_task_ids
def rerun(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    comment: str | None,
    latest_config: bool,
    yes: bool,
    ids: list[int],
) -> None:
    """Rerun finished task instances TASK_INSTANCE_ID... (task instance ids, space or comma
    separated). A whole workflow instance's failed ones: `dwsched instances rerun`."""
    extra = {"Comment": comment, "UseLatestConfig": "true" if latest_config else None}
    args = (endpoint, access_key_id, access_key_secret, "rerun", "RerunTaskInstances")
    _batch(*args, ids, extra, "rerun", yes)


def _simple(name: str, action: str, verb: str, doc: str) -> click.Command:
    """A `tasks` command that sends `action` for TASK_INSTANCE_ID... with a --comment."""

    def command(
        endpoint: str,
        access_key_id: str,
        access_key_secret: str,
        comment: str | None,
        yes: bool,
        ids: list[int],
    ) -> None:
        args = (endpoint, access_key_id, access_key_secret, name, action)
        _batch(*args, ids, {"Comment": comment}, verb, yes)

    command.__doc__ = (
        f"{doc} TASK_INSTANCE_ID... are task instance ids, space or comma separated.\n\n{RESULTS}"
    )
    return tasks.command(name)(client_options(comment_option(kinds.yes_option(_task_ids(command)))))


rerun.help = f"{rerun.help}\n\n{RESULTS}"
stop = _simple(
    "stop",
    "StopTaskInstances",
    "stopped",
    "Stop unfinished task instances: what runs is killed, and they end Failure. A whole "
    "workflow instance: `dwsched instances stop`.",
)
set_success = _simple(
    "set-success",
    "SetSuccessTaskInstances",
    "set to Success",
    "Mark task instances Success; what waits for them may run.",
)
suspend = _simple(
    "suspend",
    "SuspendTaskInstances",
    "suspended",
    "Suspend waiting task instances: neither they nor what waits for them run until resumed.",
)
resume = _simple("resume", "ResumeTaskInstances", "resumed", "Resume suspended task instances.")
