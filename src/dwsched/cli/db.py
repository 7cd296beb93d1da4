"""`dwsched db`: the schema's migrations."""

from __future__ import annotations

import click

from dwsched.cli.options import db_option
from dwsched.store.connect import create_engine
from dwsched.store.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """Database schema (migrations also run on every start)."""


@db.command("upgrade")
@db_option()
def upgrade_(db_url: str) -> None:
    """Apply every pending migration."""
    engine = create_engine(db_url)
    upgrade(engine)
    click.echo(f"at revision {current_revision(engine)}")
    engine.dispose()


@db.command("current")
@db_option()
def current(db_url: str) -> None:
    """Print the database's revision and the newest one."""
    engine = create_engine(db_url)
    click.echo(f"database: {current_revision(engine)}  head: {head_revision()}")
    engine.dispose()
