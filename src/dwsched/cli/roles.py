"""`dwsched scheduler` and `dwsched worker`: the engine's roles as separate processes.

`dwsched serve` runs both beside the API; these run them apart, on the same SQLite file or
the same PostgreSQL, as many workers as wanted (claims never give one attempt to two).
"""

from __future__ import annotations

import os

import click

from dwsched.cli.options import db_option, log_level_option, open_store, slots_option
from dwsched.runtime.server import engine_settings, run_roles


@click.command()
@db_option()
@log_level_option
def scheduler(db_url: str, log_level: str) -> None:
    """Make instances from deployed schedules, move them along, recover dead workers' work."""
    store = open_store(db_url)
    click.echo(f"dwsched scheduler on {store.engine.url.render_as_string()}")
    run_roles(store, log_level, scheduling=True, settings=None)


@click.command()
@db_option()
@log_level_option
@slots_option
def worker(db_url: str, log_level: str, slots: int, group_slots: dict[str, int]) -> None:
    """Claim and run task instances (DWSCHED_RUNNER_<TYPE> configures other task types)."""
    store = open_store(db_url)
    click.echo(f"dwsched worker ({slots} slots) on {store.engine.url.render_as_string()}")
    run_roles(
        store, log_level, scheduling=False, settings=engine_settings(slots, os.environ, group_slots)
    )
