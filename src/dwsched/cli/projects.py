"""`dwsched projects`: workspaces and their time zones."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from dwsched.cli.options import db_option, open_store, option, timezone_option
from dwsched.cli.terminal import cell
from dwsched.clock import SystemClock
from dwsched.domain.calendar import zone
from dwsched.domain.models import NewProject, Project, ProjectChanges
from dwsched.domain.projects import check_project_name


@click.group()
def projects() -> None:
    """Create and inspect workspaces."""


def _table(found: list[Project]) -> Table:
    table = Table("Id", "Name", "Time zone", "Status", "Description")
    for p in found:
        table.add_row(str(p.id), p.name, p.timezone, p.status.value, cell(p.description))
    return table


@projects.command("create")
@db_option()
@option("--name", required=True, help="Workspace name (letters, digits, underscores).")
@option("--timezone", default=None, help="IANA time zone; default: --default-timezone.")
@option("--description", default="", help="Free text.")
@timezone_option
def create(
    db_url: str, name: str, timezone: str | None, description: str, default_timezone: str
) -> None:
    """Create a workspace and print its id."""
    check_project_name(name, "--name")
    tz = timezone or default_timezone
    zone(tz, "--timezone")
    with open_store(db_url) as store, store.write() as tx:
        project = tx.projects.create(
            NewProject(name=name, timezone=tz, description=description), SystemClock().now_ms()
        )
    click.echo(f"created workspace {project.id} ({project.name}, {project.timezone})")


@projects.command("list")
@db_option()
def list_(db_url: str) -> None:
    """List workspaces."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        Console().print(_table(tx.projects.all()))


@projects.command("show")
@db_option()
@click.argument("project_id", type=int)
def show(db_url: str, project_id: int) -> None:
    """Show one workspace."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        Console().print(_table([tx.projects.get(project_id)]))


@projects.command("set-timezone")
@db_option()
@click.argument("project_id", type=int)
@click.argument("timezone")
def set_timezone(db_url: str, project_id: int, timezone: str) -> None:
    """Change a workspace's time zone (BizDates keep their calendar days)."""
    zone(timezone, "TIMEZONE")
    with open_store(db_url, existing=True) as store, store.write() as tx:
        project = tx.projects.update(
            project_id, ProjectChanges(timezone=timezone), SystemClock().now_ms()
        )
    click.echo(f"workspace {project.id} now uses {project.timezone}")
