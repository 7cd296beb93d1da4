"""`dwsched tasks upstream|downstream|remove-dependency`: a task instance's dependencies
(inside its workflow instance, on other workflows' instances, on previous cycles) and
making a waiting one stop waiting for chosen upstreams, through a running server.

Each neighbour is listed with its DependencyType as ListUpstreamTaskInstances and
ListDownstreamTaskInstances answer it: `Normal` (the same cycle, of this workflow or of
another) or `CrossCycle` (a previous cycle); neighbours in workspaces the caller may not
read are left out by the server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dwsched.cli import ids as kinds
from dwsched.cli.operations import _integers
from dwsched.cli.options import client_options, option
from dwsched.cli.tables import STATUS_STYLE
from dwsched.cli.tasks import TASK_INSTANCE_ID, the_task_instance
from dwsched.cli.terminal import cell, json_text, visible
from dwsched.client import Client

PAGE_SIZE = 100
MAX_NEIGHBOURS = 10_000  # more pages than any node's cycles of a day give
BATCH = 100  # RemoveTaskInstanceDependencies' largest UpstreamTaskInstanceIds
MEANING = "Normal: the same cycle · CrossCycle: a previous cycle"


def _day(ms: int | None, tz: ZoneInfo) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%Y-%m-%d")


def _time(ms: int | None, tz: ZoneInfo) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%m-%d %H:%M")


def _zone(client: Client, task: dict[str, Any]) -> ZoneInfo:
    project = client.call("GetProject", {"Id": task["ProjectId"]}, method="GET")["Project"]
    return ZoneInfo(project.get("TimeZone") or "Asia/Shanghai")


def _task(
    client: Client, task_instance_id: int, command: str, changes: bool = False, yes: bool = False
) -> dict[str, Any]:
    """The task instance; a clean error when the id names none (or a workflow instance, or
    both kinds for a command that changes something, without --yes)."""
    zones = kinds.Zones(client)
    return the_task_instance(client, zones, task_instance_id, command, changes=changes, yes=yes)


def neighbours(client: Client, task_instance_id: int, upstream: bool) -> list[dict[str, Any]]:
    """Every upstream (or downstream) of the task instance, each as the API gives it:
    {"DependencyType": ..., "TaskInstance": {...}}, all pages."""
    action = "ListUpstreamTaskInstances" if upstream else "ListDownstreamTaskInstances"
    name = "UpstreamTaskInstances" if upstream else "DownstreamTaskInstances"
    found: list[dict[str, Any]] = []
    number = 1
    while len(found) < MAX_NEIGHBOURS:
        params = {"Id": task_instance_id, "PageNumber": number, "PageSize": PAGE_SIZE}
        paging = client.call(action, params, method="GET")["PagingInfo"]
        items = paging.get(name) or []
        found.extend(items)
        if not items or len(found) >= int(paging["TotalCount"]):
            break
        number += 1
    return found


def _describe(task: dict[str, Any], tz: ZoneInfo) -> Text:
    """`5 report (NotRun), workflow instance 4 report_daily, BizDate 2025-06-09`."""
    text = Text()
    text.append(str(task["Id"]))
    text.append(" ")
    text.append_text(cell(task["TaskName"], "bold"))
    text.append(" (")
    text.append_text(cell(task["Status"], STATUS_STYLE.get(task["Status"], "")))
    text.append("), workflow instance ")
    text.append(str(task["WorkflowInstanceId"]))
    text.append(" ")
    text.append_text(cell(task.get("WorkflowName") or ""))
    text.append(f", BizDate {_day(task.get('Bizdate'), tz)}")
    return text


def _table(items: list[dict[str, Any]], own_instance: int, tz: ZoneInfo) -> Table:
    """Two lines a row, readable at 80 columns: the task over its workflow instance, the
    BizDate over the trigger time."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_lines=True)
    table.add_column("Id", justify="right", no_wrap=True)
    table.add_column("Task\nin workflow instance", overflow="fold")
    table.add_column("Dependency", no_wrap=True)
    table.add_column("BizDate\ntrigger", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    for item in items:
        t = item["TaskInstance"]
        instance = int(t["WorkflowInstanceId"])
        where = Text(f"{instance} ", style="dim")
        where.append_text(cell(t.get("WorkflowName") or "", "dim"))
        if instance == own_instance:
            where.append(" (own)", style="dim")
        table.add_row(
            str(t["Id"]),
            Text("\n").join([cell(t["TaskName"], "bold"), where]),
            cell(item["DependencyType"]),
            f"{_day(t.get('Bizdate'), tz)}\n{_time(t.get('TriggerTime'), tz)}",
            cell(t["Status"], STATUS_STYLE.get(t["Status"], "")),
        )
    return table


def _list(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    task_instance_id: int,
    as_json: bool,
    upstream: bool,
) -> None:
    with Client(endpoint, access_key_id, access_key_secret) as client:
        task = _task(client, task_instance_id, "upstream" if upstream else "downstream")
        tz = _zone(client, task)
        items = neighbours(client, task_instance_id, upstream)
    name = "UpstreamTaskInstances" if upstream else "DownstreamTaskInstances"
    if as_json:
        click.echo(json_text({"Id": task_instance_id, "TotalCount": len(items), name: items}))
        return
    out = Console(highlight=False)
    what = "Upstream" if upstream else "Downstream"
    out.print(Text(f"{what} of task instance ").append_text(_describe(task, tz)))
    if not items:
        out.print(f"none: it {'waits for no other task instance' if upstream else 'has none'}.")
        return
    out.print(_table(items, int(task["WorkflowInstanceId"]), tz))
    count = f"{len(items)} {what.lower()} task instance{'s' if len(items) != 1 else ''}"
    out.print(f"{count} · {MEANING} · times in {tz.key}")


_json_option = option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts (every page, as the API)."
)
_LIST_HELP = """

Lists each one's task instance id, task, dependency type (Normal: the same cycle, of this
workflow or another; CrossCycle: a previous cycle), workflow instance ((own): the task's
own), BizDate, trigger time and status, in the workspace's time zone. Those of workspaces
you may not read are left out."""


@click.command(
    "upstream",
    help="The task instances TASK_INSTANCE_ID (a task instance id) waits for: in its workflow "
    "instance, in other workflows' instances and in previous cycles." + _LIST_HELP,
)
@client_options
@click.argument("task_instance_id", type=int, metavar=TASK_INSTANCE_ID)
@_json_option
def upstream(
    endpoint: str, access_key_id: str, access_key_secret: str, task_instance_id: int, as_json: bool
) -> None:
    _list(endpoint, access_key_id, access_key_secret, task_instance_id, as_json, upstream=True)


@click.command(
    "downstream",
    help="The task instances that wait for TASK_INSTANCE_ID (a task instance id): in its "
    "workflow instance, in other workflows' instances and in later cycles." + _LIST_HELP,
)
@client_options
@click.argument("task_instance_id", type=int, metavar=TASK_INSTANCE_ID)
@_json_option
def downstream(
    endpoint: str, access_key_id: str, access_key_secret: str, task_instance_id: int, as_json: bool
) -> None:
    _list(endpoint, access_key_id, access_key_secret, task_instance_id, as_json, upstream=False)


def _upstream_ids(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[int]:
    found = _integers(values, "a task instance id")
    if not found:
        raise click.BadParameter("give at least one upstream task instance id")
    return found


@click.command("remove-dependency")
@client_options
@option("--comment", default=None, help="Why (kept with the operation).")
@kinds.yes_option
@click.argument("task_instance_id", type=int, metavar=TASK_INSTANCE_ID)
@click.argument("upstream_ids", nargs=-1, required=True, callback=_upstream_ids)
def remove_dependency(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    comment: str | None,
    yes: bool,
    task_instance_id: int,
    upstream_ids: list[int],
) -> None:
    """Make the waiting task instance TASK_INSTANCE_ID stop waiting for the task instances
    UPSTREAM_IDS (task instance ids, space or comma separated; see `dwsched tasks
    upstream`), of its own workflow instance, of other workflows or of previous cycles.

    Only a task instance that waits (NotRun or WaitTime) can have dependencies removed, and
    each id must be one of its upstreams: otherwise nothing is removed and the server's
    reason is shown (exit code 1). Prints the task instance and each upstream it no longer
    waits for. The operation is logged with the comment and audited."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        task = _task(client, task_instance_id, "remove-dependency", changes=True, yes=yes)
        tz = _zone(client, task)
        known = {
            int(item["TaskInstance"]["Id"]): item
            for item in neighbours(client, task_instance_id, upstream=True)
        }
        out = Console(highlight=False)
        out.print(Text("task instance ").append_text(_describe(task, tz)))
        for begin in range(0, len(upstream_ids), BATCH):
            batch = upstream_ids[begin : begin + BATCH]
            client.call(
                "RemoveTaskInstanceDependencies",
                {"Id": task_instance_id, "UpstreamTaskInstanceIds": batch, "Comment": comment},
            )
            for upstream_id in batch:
                line = Text("✓ no longer waits for ", style="green")
                item = known.get(upstream_id)
                if item is None:
                    line.append(str(upstream_id))
                else:
                    line.append(f"{item['DependencyType']} ")
                    line.append_text(_describe(item["TaskInstance"], tz))
                out.print(line)
    if comment:
        click.echo(f"comment: {visible(comment)}")


# The commands of `dwsched tasks` this module adds.
DEPENDENCY_COMMANDS = (upstream, downstream, remove_dependency)
