"""`dwsched import` and `dwsched export`: JSON Lines of ListWorkflowInstances items."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date
from typing import BinaryIO

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dwsched.cli.options import db_option, open_store, option, timezone_option
from dwsched.clock import SystemClock
from dwsched.domain.calendar import day_key
from dwsched.domain.models import EnvType
from dwsched.runtime.transfer import export_lines, import_lines


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    yield from stream


@click.command("import")
@db_option()
@timezone_option
@option("--replace", is_flag=True, help="Replace instances whose Id exists already.")
@click.argument("file", type=click.File("rb"))
def import_(db_url: str, default_timezone: str, replace: bool, file: BinaryIO) -> None:
    """Import FILE (JSON Lines; - for standard input): all of it, or nothing."""
    with open_store(db_url) as store:
        show = sys.stderr.isatty()
        with Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(), disable=not show
        ) as progress:
            task = progress.add_task("import", total=None)
            result = import_lines(
                store,
                _lines(file),
                replace,
                default_timezone,
                SystemClock().now_ms(),
                lambda n: progress.advance(task, n),
            )
    created = f"; created workspaces {result.projects_created}" if result.projects_created else ""
    click.echo(f"imported {result.instances} instances{created}")


@click.command()
@db_option()
@option(
    "--project",
    "project_id",
    envvar="DWSCHED_EXPORT_PROJECT",
    type=int,
    required=True,
    help="Workspace id.",
)
@option("--biz-date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="One BizDate.")
@option(
    "--env", type=click.Choice([e.value for e in EnvType]), default=None, help="One environment."
)
@option("--output", "-o", type=click.File("wb"), default="-", help="File (default stdout).")
def export(
    db_url: str, project_id: int, biz_date: date | None, env: str | None, output: BinaryIO
) -> None:
    """Export a workspace's instances as JSON Lines (the import format)."""
    with open_store(db_url, existing=True) as store:
        key = None if biz_date is None else day_key(biz_date)
        for line in export_lines(store, project_id, None if env is None else EnvType(env), key):
            output.write(line)
