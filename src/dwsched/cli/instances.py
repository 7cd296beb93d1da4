"""`dwsched instances`: workflow instances through a running server. List a BizDate's, show
one with its task instances, start, stop and rerun whole ones.

Task instances (the runs of a workflow instance's tasks) are numbered apart and have their
own commands, `dwsched tasks`. Each command here reads its ids as workflow instances first
and refuses one that names only a task instance (cli/ids.py); start, stop and rerun refuse
one that names both unless --yes. The task-instance commands that used to live here answer
with a one-line pointer to `dwsched tasks`.
"""

from __future__ import annotations

import shlex
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.text import Text

from dwsched.cli import ids as kinds
from dwsched.cli.operations import (
    RESULTS,
    comment_option,
    ids_argument,
    missing,
    report,
    send,
    send_and_report,
)
from dwsched.cli.options import client_options, option
from dwsched.cli.tables import (
    STATUS_STYLE,
    instance_table,
    moment,
    task_counts,
    task_table,
    took,
)
from dwsched.cli.terminal import cell, counted, json_text, visible
from dwsched.client import Client
from dwsched.domain.execution import Recurrence
from dwsched.domain.models import EnvType, InstanceType, Status

STATUSES = list(STATUS_STYLE)
TYPES = [t.value for t in InstanceType]
ENVS = [e.value for e in EnvType]
FINISHED = (Status.SUCCESS.value, Status.FAILURE.value)
# What the CLI lists first: what happened last (the API's own default stays Id Desc).
DEFAULT_SORT = "StartedTime Desc"
TASK_PAGE = 500  # ListTaskInstances' largest page
WORKFLOW_INSTANCE_ID = "WORKFLOW_INSTANCE_ID"
# A workflow instance whose task instances all dry-run ends Success, and waits as WaitTime.
DRY_STATUSES = (Status.SUCCESS.value, Status.WAIT_TIME.value)
DRY_PROBE = 50  # the task instances `dry_runs` reads of each
CYCLE_DRY = (Recurrence.SKIP_CYCLE.value, Recurrence.REALTIME_DEPRECATED.value)


def _check_day(_ctx: click.Context, _param: click.Parameter, text: str) -> str:
    if text not in ("today", "yesterday"):
        try:
            date.fromisoformat(text)
        except ValueError as exc:
            raise click.BadParameter(f"{text!r}: expected YYYY-MM-DD, today or yesterday") from exc
    return text


def _day(text: str, tz: ZoneInfo) -> date:
    today = datetime.now(tz).date()
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter("expected YYYY-MM-DD, today or yesterday") from exc


class _Instances(click.Group):
    """`dwsched instances`, whose former task-instance commands point to `dwsched tasks`."""

    MOVED = frozenset(
        ("logs", "set-success", "suspend", "resume", "upstream", "downstream", "remove-dependency")
    )

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in self.MOVED:
            return _moved(cmd_name)
        return found


class _Moved(click.ClickException):
    exit_code = 2  # a usage error, told in one line


def _moved(name: str) -> click.Command:
    def refuse() -> None:
        raise _Moved(
            f"`dwsched instances {name}` acts on task instances: use `dwsched tasks {name} "
            "TASK_INSTANCE_ID` (`dwsched instances` acts on workflow instances)."
        )

    settings = {"ignore_unknown_options": True, "allow_extra_args": True}
    return click.Command(name, callback=refuse, context_settings=settings, add_help_option=False)


@click.group(cls=_Instances)
def instances() -> None:
    """Workflow instances on a running server: one per run of a workflow, holding a task
    instance per task. Their task instances: `dwsched tasks` (task instance ids are
    numbered apart from workflow instance ids)."""


@instances.command("list")
@client_options
@option(
    "--project",
    "project_id",
    envvar="DWSCHED_INSTANCES_LIST_PROJECT",
    type=int,
    required=True,
    help="Workspace id.",
)
@option(
    "--biz-date",
    default="yesterday",
    show_default=True,
    callback=_check_day,
    help="YYYY-MM-DD (in the workspace's zone), today, yesterday. Scheduled runs carry the "
    "BizDate of the day before they run: today's are yesterday's (the default, as in "
    "DataWorks' Operation Center).",
)
@option("--env", type=click.Choice(ENVS), default=None, help="Environment.")
@option(
    "--type",
    "type_",
    envvar="DWSCHED_INSTANCES_LIST_TYPE",
    type=click.Choice(TYPES),
    default=None,
    help="Instance type.",
)
@option("--status", multiple=True, type=click.Choice(STATUSES), help="Status (repeatable).")
@option("--workflow", type=int, default=None, help="Workflow id.")
@option("--name", default=None, help="Name contains (case-insensitive).")
@option("--owner", default=None, help="Owner account id.")
@option("--tag", "tags", multiple=True, help="key:value, key: or key (repeatable; any).")
@option(
    "--sort",
    default=DEFAULT_SORT,
    show_default=True,
    help='The latest started first, those not started last; e.g. "TriggerTime,Id Desc" '
    '(the API\'s own default is "Id Desc").',
)
@option("--page", type=int, default=1, show_default=True, help="Page number.")
@option("--page-size", type=int, default=20, show_default=True, help="Rows per page.")
@option(
    "--json",
    "as_json",
    envvar="DWSCHED_INSTANCES_LIST_JSON",
    is_flag=True,
    help="Print the API's JSON answer on one line (the page asked for).",
)
def list_(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    project_id: int,
    biz_date: str,
    env: str | None,
    type_: str | None,
    status: tuple[str, ...],
    workflow: int | None,
    name: str | None,
    owner: str | None,
    tags: tuple[str, ...],
    sort: str,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    """List one workspace's workflow instances of one BizDate, the latest started first.

    `dwsched instances show WORKFLOW_INSTANCE_ID` shows one with its task instances."""
    filters: dict[str, Any] = {
        "EnvType": env,
        "Type": type_,
        "WorkflowId": workflow,
        "Name": name,
        "Owner": owner,
        "Tags": list(tags) or None,
        "Filter": {"status": list(status)} if status else None,
    }
    with Client(endpoint, access_key_id, access_key_secret) as client:
        project = client.call("GetProject", {"Id": project_id}, method="GET")["Project"]
        tz = ZoneInfo(project.get("TimeZone") or kinds.DEFAULT_ZONE)
        day = _day(biz_date, tz)
        biz_ms = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
        params: dict[str, Any] = {
            "ProjectId": project_id,
            "BizDate": biz_ms,
            **filters,
            "SortBy": sort,
            "PageNumber": page,
            "PageSize": page_size,
        }
        data = client.call("ListWorkflowInstances", params)
        if as_json:
            click.echo(json_text(data))
            return
        paging = data["PagingInfo"]
        number, size, total = paging["PageNumber"], paging["PageSize"], paging["TotalCount"]
        pages = max(1, -(-total // size))
        if total and not paging["WorkflowInstances"] and number > pages:
            only = "there is only 1 page" if pages == 1 else f"there are only {pages} pages"
            raise click.BadParameter(
                f"{only} ({counted(total, 'workflow instance')}, {size} a page).",
                param_hint="'--page'",
            )
        failed = 0
        if not status and total:
            failures = {**params, "Filter": {"status": [Status.FAILURE.value]}, "PageSize": 1}
            failed = client.call("ListWorkflowInstances", failures)["PagingInfo"]["TotalCount"]
        dry = dry_runs(client, paging["WorkflowInstances"])
    out = Console(highlight=False)
    if not total:
        _say_none(out, project_id, day, tz, filters)
        return
    out.print(
        instance_table(
            paging["WorkflowInstances"], tz, project.get("Name", ""), day, out.width, dry
        )
    )
    order = " · the latest started first" if sort == DEFAULT_SORT else ""
    out.print(f"page {number} of {pages} · {counted(total, 'workflow instance')}{order}")
    if failed:
        again = _command_line(project_id, day.isoformat(), {**filters, "Filter": None})
        out.print(
            f"{counted(failed, 'failed', 'failed')} · {again} --status Failure", soft_wrap=True
        )
    out.print("its task instances: dwsched instances show WORKFLOW_INSTANCE_ID")


def dry_runs(client: Client, items: list[dict[str, Any]]) -> set[int]:
    """The workflow instances of `items` whose task instances are all dry runs (none will
    run or ran): one ListTaskInstances per Success or WaitTime one (others cannot be), of
    its first task instances. It is one when they are all dry runs and they are all it has,
    or one of them is dry by its cycle (SkipCycle, RealtimeDeprecated: every task is)."""
    found = set()
    for item in items:
        if item["Status"] not in DRY_STATUSES:
            continue
        params = {
            "ProjectId": item["ProjectId"],
            "Bizdate": item["BizDate"],
            "ProjectEnv": item.get("EnvType"),
            "WorkflowInstanceId": item["Id"],
            "SortBy": "Id Asc",
            "PageSize": DRY_PROBE,
        }
        paging = client.call("ListTaskInstances", params)["PagingInfo"]
        tasks = paging.get("TaskInstances") or []
        if not tasks or not all(_dry(t) for t in tasks):
            continue
        whole = len(tasks) >= int(paging["TotalCount"])
        if whole or any(t.get("TriggerRecurrence") in CYCLE_DRY for t in tasks):
            found.add(int(item["Id"]))
    return found


def _dry(task: dict[str, Any]) -> bool:
    """A dry run: one that ends Success without running (a paused one ends Failure)."""
    return kinds.dry_run(task) and task.get("TriggerRecurrence") != Recurrence.PAUSE.value


def _say_none(
    out: Console, project_id: int, day: date, tz: ZoneInfo, filters: dict[str, Any]
) -> None:
    """Why an empty listing is empty, and what to list instead."""
    env = filters.get("EnvType") or EnvType.PROD.value
    out.print(f"No workflow instances with BizDate {day} ({env}) match.", soft_wrap=True)
    today = datetime.now(tz).date()
    if day == today:
        out.print(
            "Today's scheduled runs carry yesterday's BizDate (a run's BizDate is the day "
            "before it runs):",
            soft_wrap=True,
        )
        out.print("  " + _command_line(project_id, "yesterday", filters), soft_wrap=True)
    elif day > today:
        out.print(
            f"{day} is after today ({today}, {tz.key}): its instances are made the evening "
            "before they run, and runs carry the BizDate of the day before.",
            soft_wrap=True,
        )


def _command_line(project_id: int, day: str, filters: dict[str, Any]) -> str:
    """The `dwsched instances list` line of these filters (users' text escaped)."""
    words = ["dwsched", "instances", "list", "--project", str(project_id), "--biz-date", day]
    for option_name, key in (
        ("--env", "EnvType"),
        ("--type", "Type"),
        ("--workflow", "WorkflowId"),
        ("--name", "Name"),
        ("--owner", "Owner"),
    ):
        if filters.get(key) is not None:
            words += [option_name, str(filters[key])]
    for tag in filters.get("Tags") or ():
        words += ["--tag", tag]
    for status in (filters.get("Filter") or {}).get("status", ()):
        words += ["--status", status]
    return visible(shlex.join(words))


# One workflow instance and its task instances


def task_instances_of(client: Client, instance: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task instance of the workflow instance (ListTaskInstances, all pages), by id."""
    params = {
        "ProjectId": instance["ProjectId"],
        "Bizdate": instance["BizDate"],
        "ProjectEnv": instance.get("EnvType"),
        "WorkflowInstanceId": instance["Id"],
        "SortBy": "Id Asc",
        "PageSize": TASK_PAGE,
    }
    found: list[dict[str, Any]] = []
    number = 1
    while True:
        paging = client.call("ListTaskInstances", {**params, "PageNumber": number})["PagingInfo"]
        items = paging.get("TaskInstances") or []
        found.extend(items)
        if not items or len(found) >= int(paging["TotalCount"]):
            return found
        number += 1


def _show_instance(
    out: Console, instance: dict[str, Any], tasks: list[dict[str, Any]], tz: ZoneInfo
) -> None:
    i = instance
    heading = Text(f"workflow instance {i['Id']} ", style="bold")
    out.print(heading.append_text(cell(i["Name"], "bold")))
    status = cell(i["Status"], STATUS_STYLE.get(i["Status"], ""))
    if tasks and all(kinds.dry_run(t) for t in tasks):
        done = i["Status"] in FINISHED
        said = "none of its tasks ran" if done else "its tasks will not run"
        status.append(f" · dry run: {said}", style="dim")
    lines = [
        ("status", status),
        ("type", cell(f"{i['Type']} · workflow {i['WorkflowId']} · {i.get('EnvType') or ''}")),
        ("BizDate", Text(f"{kinds.day(i.get('BizDate'), tz)} ({tz.key})")),
        ("triggered", Text(moment(i.get("TriggerTime"), tz, seconds=True))),
        (
            "ran",
            Text(
                f"{moment(i.get('StartedTime'), tz, seconds=True)} to "
                f"{moment(i.get('FinishedTime'), tz, seconds=True)} · took {took(i)}"
            ),
        ),
        ("owner", cell(i.get("Owner") or "-")),
    ]
    for label, value in lines:
        out.print(Text(f"  {label:<10} ").append_text(value))
    if not tasks:
        out.print("No task instances (an imported record: the engine never ran it).")
        return
    out.print(task_table(tasks, tz, out.width))
    out.print(task_counts(tasks))
    failed = [t for t in tasks if t["Status"] == Status.FAILURE.value]
    if failed:
        out.print(f"the log of a failed task: dwsched tasks logs {failed[0]['Id']}")
    if i["Status"] == Status.FAILURE.value:
        out.print(f"rerun what failed: dwsched instances rerun {i['Id']}")


def _workflow_instance(client: Client, zones: kinds.Zones, instance_id: int) -> dict[str, Any]:
    """The workflow instance, or a clean error (naming `dwsched tasks show` for a task
    instance's id)."""
    found = kinds.workflow_instances(
        client,
        zones,
        [instance_id],
        lambda n: f"use dwsched tasks show {n}",
        kinds.Both(_for_task("dwsched tasks show"), changes=False),
    )[instance_id]
    if found is None:
        raise click.ClickException(f"No workflow instance has the id {instance_id}.")
    return found


@instances.command("show")
@client_options
@click.argument("instance_id", type=int, metavar=WORKFLOW_INSTANCE_ID)
@option("--json", "as_json", is_flag=True, help="Print the instance and its task instances.")
def show(
    endpoint: str, access_key_id: str, access_key_secret: str, instance_id: int, as_json: bool
) -> None:
    """Show the workflow instance WORKFLOW_INSTANCE_ID (a workflow instance id, as `dwsched
    instances list` lists them) with its task instances: each one's id, task, status, run
    (attempt) number, start and duration, dry runs marked. Times in the workspace's zone."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        instance = _workflow_instance(client, zones, instance_id)
        tasks = task_instances_of(client, instance)
        tz = zones.of(int(instance["ProjectId"]))
    if as_json:
        click.echo(json_text({"WorkflowInstance": instance, "TaskInstances": tasks}, indent=2))
        return
    _show_instance(Console(highlight=False), instance, tasks, tz)


@instances.command("get", hidden=True)
@client_options
@click.argument("instance_id", type=int, metavar=WORKFLOW_INSTANCE_ID)
def get(endpoint: str, access_key_id: str, access_key_secret: str, instance_id: int) -> None:
    """Print the workflow instance WORKFLOW_INSTANCE_ID as JSON (`show --json` adds its
    task instances)."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        instance = _workflow_instance(client, kinds.Zones(client), instance_id)
    click.echo(json_text(instance, indent=2))


# Operations on whole workflow instances


def _batch(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    action: str,
    ids: list[int],
    extra: dict[str, Any],
    verb: str,
    fits: str,
    yes: bool,
) -> None:
    """Send `action` for the workflow instances `ids`; ✓/✗ per id with what it names."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        both = kinds.Both(_for_task(fits), changes=True, yes=yes)
        found = kinds.workflow_instances(client, zones, ids, lambda n: f"use {fits} {n}", both)
        send_and_report(
            client,
            action,
            ids,
            extra,
            found,
            "workflow instance",
            verb,
            lambda instance: _about(instance, zones),
        )


def _for_task(command: str) -> kinds.Other:
    """What to use for the task instance of an id: `command` with it."""
    return lambda n: f"`{command} {n}` for the task instance"


def _about(instance: dict[str, Any], zones: kinds.Zones) -> str:
    return "was " + kinds.about_instance(instance, zones.of(int(instance["ProjectId"])))


_instance_ids = ids_argument(WORKFLOW_INSTANCE_ID, "a workflow instance id")


@instances.command("start")
@client_options
@comment_option
@kinds.yes_option
@_instance_ids
def start(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    comment: str | None,
    yes: bool,
    ids: list[int],
) -> None:
    """Start workflow instances created without starting (CreateWorkflowInstances with
    AutoStartEnabled=false): WORKFLOW_INSTANCE_ID... are workflow instance ids, space or
    comma separated."""
    extra = {"Comment": comment}
    args = (endpoint, access_key_id, access_key_secret, "StartWorkflowInstances", ids, extra)
    _batch(*args, "started", "dwsched tasks show", yes)


start.help = f"{start.help}\n\n{RESULTS}"


@instances.command("stop")
@client_options
@comment_option
@option("--workflow-instances", is_flag=True, hidden=True, help="What IDS always are now.")
@kinds.yes_option
@_instance_ids
def stop(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    comment: str | None,
    workflow_instances: bool,
    yes: bool,
    ids: list[int],
) -> None:
    """Stop whole workflow instances: every unfinished task instance of each is stopped
    (what runs is killed) and ends Failure, and so does the instance. WORKFLOW_INSTANCE_ID...
    are workflow instance ids, space or comma separated; one task instance: `dwsched tasks
    stop`."""
    extra = {"Comment": comment}
    args = (endpoint, access_key_id, access_key_secret, "StopWorkflowInstances", ids, extra)
    _batch(*args, "stopped", "dwsched tasks stop", yes)


stop.help = f"{stop.help}\n\n{RESULTS}"


@instances.command("rerun")
@client_options
@comment_option
@option(
    "--all",
    "every",
    envvar="DWSCHED_INSTANCES_RERUN_ALL",
    is_flag=True,
    help="Rerun every task instance, not only the failed.",
)
@option("--latest-config", is_flag=True, help="Run with the tasks' latest deployed settings.")
@kinds.yes_option
@_instance_ids
def rerun(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    comment: str | None,
    every: bool,
    latest_config: bool,
    yes: bool,
    ids: list[int],
) -> None:
    """Rerun finished workflow instances: the failed task instances of each (with --all,
    every one) run again, and what waits for them runs after. WORKFLOW_INSTANCE_ID... are
    workflow instance ids, space or comma separated; one task instance: `dwsched tasks
    rerun`.

    Prints ✓ or ✗ per id with the instance, the task instances rerun (or why not); exits 1
    if one was refused. Follow one with `dwsched instances show WORKFLOW_INSTANCE_ID`."""
    extra = {"Comment": comment, "UseLatestConfig": "true" if latest_config else None}
    failed = 0
    with Client(endpoint, access_key_id, access_key_secret) as client:
        zones = kinds.Zones(client)
        found = kinds.workflow_instances(
            client,
            zones,
            ids,
            lambda n: f"use dwsched tasks rerun {n}",
            kinds.Both(_for_task("dwsched tasks rerun"), changes=True, yes=yes),
        )
        for i in ids:
            instance = found[i]
            if instance is None:
                missing(i, "workflow instance")
                failed += 1
                continue
            failed += not _rerun_one(client, instance, _about(instance, zones), every, extra)
    if failed:
        raise click.exceptions.Exit(1)


def _rerun_one(
    client: Client, instance: dict[str, Any], about: str, every: bool, extra: dict[str, Any]
) -> bool:
    """Rerun one workflow instance's failed (or every) task instance: RerunTaskInstances,
    as RerunWorkflowInstances takes ManualWorkflow instances only. True when all were."""
    i = int(instance["Id"])
    if instance["Status"] not in FINISHED:
        why = f"only a finished one can be rerun (stop it first: dwsched instances stop {i})"
        report(False, i, "rerun", about, why)
        return False
    tasks = task_instances_of(client, instance)
    wanted = FINISHED if every else (Status.FAILURE.value,)
    chosen = [t for t in tasks if t["Status"] in wanted]
    if not chosen:
        why = (
            "it has no task instances (an imported record)"
            if not tasks
            else "no task instance failed (--all reruns every one)"
        )
        report(False, i, "rerun", about, why)
        return False
    results = send(client, "RerunTaskInstances", [int(t["Id"]) for t in chosen], extra)
    refused = [(t, results[int(t["Id"])][1]) for t in chosen if not results[int(t["Id"])][0]]
    rerun_ = [t for t in chosen if results[int(t["Id"])][0]]
    named = ", ".join(f"{visible(str(t['TaskName']))} ({t['Id']})" for t in rerun_)
    if not refused:
        report(True, i, "rerun", f"{about} · {counted(len(rerun_), 'task instance')}: {named}")
        return True
    why = "; ".join(f"{visible(str(t['TaskName']))} ({t['Id']}): {m}" for t, m in refused)
    done = f" ({counted(len(rerun_), 'task instance')} rerun: {named})" if rerun_ else ""
    report(False, i, "rerun", about + done, why)
    return False
