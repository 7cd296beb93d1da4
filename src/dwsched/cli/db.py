"""`dwsched db`: the schema's migrations."""

from __future__ import annotations

import click

from dwsched.cli.options import db_option, open_store, require_database
from dwsched.store import Store, head_revision


@click.group()
def db() -> None:
    """Database schema (migrations also run on every start)."""


@db.command("upgrade")
@db_option()
def upgrade_(db_url: str) -> None:
    """Apply every pending migration."""
    with open_store(db_url) as store:
        click.echo(f"at revision {store.revision()}")


@db.command("current")
@db_option()
def current(db_url: str) -> None:
    """Print the database's revision and the newest one."""
    require_database(db_url)
    with Store.open(db_url, migrate=False) as store:
        click.echo(f"database: {store.revision()}  head: {head_revision()}")
