"""`dwsched instances`: list and show workflow instances through a running server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich import box
from rich.console import Console
from rich.table import Table

from dwsched.cli.options import client_options, option
from dwsched.cli.terminal import cell, json_text, visible
from dwsched.client import Client
from dwsched.domain.models import EnvType, InstanceType, Status

STATUS_STYLE = {
    Status.SUCCESS.value: "green",
    Status.FAILURE.value: "bold red",
    Status.RUNNING.value: "bold blue",
    Status.CHECKING.value: "blue",
    Status.WAIT_TIME.value: "yellow",
    Status.WAIT_RESOURCE.value: "yellow",
    Status.CHECKING_CONDITION.value: "cyan",
    Status.NOT_RUN.value: "dim",
}
STATUSES = list(STATUS_STYLE)
TYPES = [t.value for t in InstanceType]
ENVS = [e.value for e in EnvType]


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


def _time(ms: int | None, tz: ZoneInfo) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%m-%d %H:%M:%S")


def _duration(item: dict[str, Any]) -> str:
    started, finished = item.get("StartedTime"), item.get("FinishedTime")
    if started is None or finished is None:
        return "-"
    seconds = (finished - started) // 1000
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


@click.group()
def instances() -> None:
    """Workflow instances on a running server."""


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
    required=True,
    callback=_check_day,
    help="YYYY-MM-DD (in the workspace's zone), today, yesterday.",
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
@option("--sort", default=None, help='e.g. "StartedTime Desc" or "TriggerTime,Id Desc".')
@option("--page", type=int, default=1, show_default=True, help="Page number.")
@option("--page-size", type=int, default=20, show_default=True, help="Rows per page.")
@option(
    "--json",
    "as_json",
    envvar="DWSCHED_INSTANCES_LIST_JSON",
    is_flag=True,
    help="Print the raw JSON response.",
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
    sort: str | None,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    """List one workspace's instances of one BizDate."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        project = client.call("GetProject", {"Id": project_id}, method="GET")["Project"]
        tz = ZoneInfo(project.get("TimeZone") or "Asia/Shanghai")
        day = _day(biz_date, tz)
        biz_ms = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
        params: dict[str, Any] = {
            "ProjectId": project_id,
            "BizDate": biz_ms,
            "EnvType": env,
            "Type": type_,
            "WorkflowId": workflow,
            "Name": name,
            "Owner": owner,
            "Tags": list(tags) or None,
            "Filter": {"status": list(status)} if status else None,
            "SortBy": sort,
            "PageNumber": page,
            "PageSize": page_size,
        }
        data = client.call("ListWorkflowInstances", params)
    if as_json:
        click.echo(json_text(data))
        return
    _print_page(data["PagingInfo"], tz, project.get("Name", ""), day)


def _print_page(paging: dict[str, Any], tz: ZoneInfo, project: str, day: date) -> None:
    # Names, owners and the workspace's name are users' text: shown escaped, never as markup.
    title = cell(f"{project} · BizDate {day} · {tz.key}")
    items = paging["WorkflowInstances"]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Id", justify="right", overflow="fold")
    widest = max((len(visible(i["Name"])) for i in items), default=4)
    table.add_column("Name", no_wrap=True, min_width=min(widest, 60))
    for heading in ("Type", "Status", "Started", "Finished", "Took", "Owner"):
        table.add_column(heading, overflow="fold")
    for item in items:
        style = STATUS_STYLE.get(item["Status"], "")
        table.add_row(
            str(item["Id"]),
            cell(item["Name"]),
            cell(item["Type"]),
            cell(item["Status"], style),
            _time(item.get("StartedTime"), tz),
            _time(item.get("FinishedTime"), tz),
            _duration(item),
            cell(item["Owner"]),
        )
    console = Console()
    console.print(table)
    number, size, total = paging["PageNumber"], paging["PageSize"], paging["TotalCount"]
    pages = max(1, -(-total // size))
    console.print(f"page {number} of {pages} · {total} instances")


@instances.command("get")
@client_options
@click.argument("instance_id", type=int)
def get(endpoint: str, access_key_id: str, access_key_secret: str, instance_id: int) -> None:
    """Print one workflow instance as JSON."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        data = client.call("GetWorkflowInstance", {"Id": instance_id}, method="GET")
    click.echo(json_text(data["WorkflowInstance"], indent=2))
