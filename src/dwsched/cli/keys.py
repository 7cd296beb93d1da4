"""`dwsched keys`: AccessKeys that sign API requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from dwsched.cli.options import db_option, open_store, option
from dwsched.clock import SystemClock
from dwsched.domain.models import KeyStatus
from dwsched.runtime.keys import create_key


@click.group()
def keys() -> None:
    """Create, list, disable and delete AccessKeys."""


@keys.command("create")
@db_option()
@option("--name", default="", help="A label for the key.")
@option(
    "--json",
    "as_json",
    envvar="DWSCHED_KEYS_CREATE_JSON",
    is_flag=True,
    help="Print one JSON line.",
)
def create(db_url: str, name: str, as_json: bool) -> None:
    """Create a key; its secret is shown this once."""
    with open_store(db_url) as store:
        key = create_key(store, name, SystemClock().now_ms())
    if as_json:
        click.echo(json.dumps({"AccessKeyId": key.id, "AccessKeySecret": key.secret}))
    else:
        click.echo(f"AccessKeyId:     {key.id}\nAccessKeySecret: {key.secret}")
        click.echo("Keep the secret now: it is not shown again.", err=True)


@keys.command("list")
@db_option()
def list_(db_url: str) -> None:
    """List keys (never their secrets)."""
    with open_store(db_url) as store:
        found = store.list_keys()
    table = Table("AccessKeyId", "Name", "Status", "Created (UTC)")
    for key in found:
        created = datetime.fromtimestamp(key.create_time / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(key.id, key.name, key.status.value, created)
    Console().print(table)


@keys.command("disable")
@db_option()
@click.argument("access_key_id")
def disable(db_url: str, access_key_id: str) -> None:
    """Disable a key: its requests get InvalidAccessKeyId.Inactive."""
    with open_store(db_url) as store:
        store.set_key_status(access_key_id, KeyStatus.DISABLED)
    click.echo(f"disabled {access_key_id}")


@keys.command("enable")
@db_option()
@click.argument("access_key_id")
def enable(db_url: str, access_key_id: str) -> None:
    """Enable a disabled key again."""
    with open_store(db_url) as store:
        store.set_key_status(access_key_id, KeyStatus.ENABLED)
    click.echo(f"enabled {access_key_id}")


@keys.command("delete")
@db_option()
@click.argument("access_key_id")
def delete(db_url: str, access_key_id: str) -> None:
    """Delete a key for good."""
    with open_store(db_url) as store:
        store.delete_key(access_key_id)
    click.echo(f"deleted {access_key_id}")
