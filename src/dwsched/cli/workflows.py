"""`dwsched workflows`: deploy FlowSpec workflows and look at them, through a running server."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dwsched.cli.options import client_options, option
from dwsched.cli.terminal import cell, json_text, visible
from dwsched.client import Client


def _console() -> Console:
    """A terminal's own width; piped output is not cut to 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


_project_option = option(
    "--project",
    "project_id",
    envvar="DWSCHED_WORKFLOWS_PROJECT",
    type=int,
    required=True,
    help="Workspace id.",
)


@click.group()
def workflows() -> None:
    """Workflows (FlowSpec) on a running server."""


@workflows.command("apply")
@client_options
@_project_option
@option("--dry-run", is_flag=True, help="Validate only; deploy nothing.")
@click.argument("file", type=click.File("rb"))
def apply(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    project_id: int,
    dry_run: bool,
    file: BinaryIO,
) -> None:
    """Create or update the workflow of FILE (FlowSpec JSON; - for standard input) and
    deploy it: a workflow with the same name (or the definition id as its spec id) is
    overwritten."""
    try:
        spec = file.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter("the file is not UTF-8 text", param_hint="FILE") from exc
    with Client(endpoint, access_key_id, access_key_secret) as client:
        params = {"ProjectId": project_id, "Spec": spec, "DryRun": dry_run}
        job = client.call("ImportWorkflowDefinition", params)["AsyncJob"]
        if dry_run:
            click.echo("valid: nothing deployed (--dry-run)")
            return
        definition_id = job["Response"]
        found = client.call(
            "GetWorkflowDefinition", {"Id": definition_id, "ProjectId": project_id}, method="GET"
        )["WorkflowDefinition"]
    click.echo(
        f"deployed '{visible(found['Name'])}': definition {definition_id}, "
        f"workflow {found['WorkflowId']}"
    )


@workflows.command("list")
@client_options
@_project_option
@option("--name", default=None, help="Name contains (case-insensitive).")
@option("--page", type=int, default=1, show_default=True, help="Page number.")
@option("--page-size", type=int, default=50, show_default=True, help="Rows per page (max 100).")
@option("--json", "as_json", is_flag=True, help="Print the raw JSON response.")
def list_(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    project_id: int,
    name: str | None,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    """List a workspace's deployed workflows."""
    params = {"ProjectId": project_id, "Name": name, "PageNumber": page, "PageSize": page_size}
    with Client(endpoint, access_key_id, access_key_secret) as client:
        data = client.call("ListWorkflows", params)
    if as_json:
        click.echo(json_text(data))
        return
    paging = data["PagingInfo"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for heading in ("Id", "Name", "Trigger", "Cron", "Owner"):
        table.add_column(heading, overflow="fold")
    for w in paging["Workflows"]:
        trigger = w["Trigger"]
        table.add_row(
            str(w["Id"]),
            cell(w["Name"]),
            cell(trigger["Type"]),
            cell(trigger["Cron"]),
            cell(w["Owner"]),
        )
    console = _console()
    console.print(table)
    console.print(f"{paging['TotalCount']} workflows")


@workflows.command("show")
@client_options
@click.argument("workflow_id", type=int)
@option("--json", "as_json", is_flag=True, help="Print the raw JSON response.")
def show(
    endpoint: str, access_key_id: str, access_key_secret: str, workflow_id: int, as_json: bool
) -> None:
    """Show one deployed workflow with its tasks and dependencies."""
    with Client(endpoint, access_key_id, access_key_secret) as client:
        w: dict[str, Any] = client.call("GetWorkflow", {"Id": workflow_id}, method="GET")[
            "Workflow"
        ]
    if as_json:
        click.echo(json_text(w, indent=2))
        return
    console = _console()
    trigger = w["Trigger"]
    # Names come from the FlowSpec (users' text): shown escaped, never as markup.
    console.print(
        Text.assemble(
            cell(w["Name"], "bold"),
            f" (workflow {w['Id']}, workspace {w['ProjectId']}) · ",
            cell(f"{trigger['Type']} {trigger['Cron']} · "),
            cell(_period(trigger.get("StartTime"), trigger.get("EndTime"))),
        )
    )
    names = {t["Id"]: t["Name"] for t in w["Tasks"]}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for heading in ("Task", "Name", "Type", "After", "Resource group", "Retries", "Timeout"):
        table.add_column(heading, overflow="fold")
    for t in w["Tasks"]:
        table.add_row(
            str(t["Id"]),
            cell(t["Name"]),
            cell(t["Type"]),
            cell(", ".join(names.get(u, str(u)) for u in t.get("UpstreamTaskIds", [])) or "-"),
            cell(t["RuntimeResource"]["ResourceGroupId"] or "-"),
            f"{t['RerunTimes']} ({t['RerunMode']})",
            f"{t['Timeout']}s" if t["Timeout"] else "-",
        )
    console.print(table)


# DataWorks' answer for a trigger without an effective period: from the epoch to 9999.
OPEN_START, OPEN_END = "1970-01-01 00:00:00", "9999-01-01 00:00:00"


def _period(start: str | None, end: str | None) -> str:
    """The trigger's effective period, as people read it: `always`, `from ...`, `until ...`."""
    opens = not start or start == OPEN_START
    never_ends = not end or end.startswith("9999-")
    if opens and never_ends:
        return "always in effect"
    if opens:
        return f"in effect until {end}"
    if never_ends:
        return f"in effect from {start}"
    return f"in effect {start} → {end}"
