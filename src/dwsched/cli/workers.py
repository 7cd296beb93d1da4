"""`dwsched workers` and `dwsched resource-groups`: the worker processes on a database and
the slot limits they share (docs/workers.md).

They work on the database directly, as `keys` and `users` do.
"""

from __future__ import annotations

import click
from rich import box
from rich.console import Console
from rich.table import Table

from dwsched.cli.options import db_option, open_store, option
from dwsched.cli.terminal import cell
from dwsched.clock import SystemClock
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.workers import (
    DEFAULT_GROUP_SLOTS,
    MAX_GROUP_SLOTS,
    OTHER_GROUPS,
    WorkerState,
    group_label,
)


def _age(ms: int) -> str:
    seconds = max(ms, 0) // 1000
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


@click.group()
def workers() -> None:
    """The worker processes registered on the database."""


@workers.command("list")
@db_option()
@option("--all", "show_all", is_flag=True, help="Show stopped workers too.")
def list_workers(db_url: str, show_all: bool) -> None:
    """List workers: where each runs, the groups it serves, its last heartbeat, its state
    (Alive, Draining, Stopped, Silent: no heartbeat for a minute) and its attempts running."""
    with open_store(db_url, existing=True) as store:
        with store.read() as tx:
            found = tx.workers.all()
    now = SystemClock().now_ms()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Name", overflow="fold")
    table.add_column("Host", overflow="fold")
    for heading in ("PID", "Groups", "Slots", "Heartbeat", "State", "Running"):
        table.add_column(heading, overflow="fold")
    for w in found:
        state = w.state(now)
        if state is WorkerState.STOPPED and not show_all:
            continue
        groups = "all" if w.groups is None else ",".join(group_label(g) for g in w.groups)
        table.add_row(
            cell(w.name),
            cell(w.host),
            str(w.pid),
            cell(groups),
            str(w.slots),
            _age(now - w.heartbeat_at),
            state.value,
            str(w.running),
        )
    Console().print(table)


@click.group("resource-groups")
def resource_groups() -> None:
    """Resource groups' slots: the attempts of a group that run at once over every worker."""


@resource_groups.command("list")
@db_option()
def list_groups(db_url: str) -> None:
    """List the groups with a slot limit of their own (`*`: every other group)."""
    with open_store(db_url, existing=True) as store:
        with store.read() as tx:
            found = tx.resource_groups.all()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Group", overflow="fold")
    table.add_column("Slots")
    for g in found:
        table.add_row(cell(group_label(g.name)), str(g.slots))
    if not any(g.name == OTHER_GROUPS for g in found):
        table.add_row(OTHER_GROUPS, f"{DEFAULT_GROUP_SLOTS} (default)")
    Console().print(table)


def _group_name(name: str) -> str:
    name = "" if name == "-" else name
    if len(name) > 128 or not name.isprintable():
        raise InvalidArgument("NAME", f"NAME {name[:64]!r} is not a resource group name.")
    return name


@resource_groups.command("set")
@db_option()
@click.argument("name")
@option(
    "--slots",
    required=True,
    envvar="DWSCHED_RESOURCE_GROUP_SLOTS",
    type=click.IntRange(1, MAX_GROUP_SLOTS),
    help="Attempts of the group that run at once, over every worker.",
)
def set_group(db_url: str, name: str, slots: int) -> None:
    """Give the group NAME (`*`: every group without a limit of its own; `-`: the group of
    nodes that name none) this many slots, for every worker at once."""
    group = _group_name(name)
    with open_store(db_url) as store:
        with store.write() as tx:
            before = tx.resource_groups.set_slots(group, slots, SystemClock().now_ms())
    was = f"{DEFAULT_GROUP_SLOTS}, the default" if before is None else str(before)
    click.echo(f"resource group {group_label(group)}: {slots} slots (was {was})")


@resource_groups.command("unset")
@db_option()
@click.argument("name")
def unset_group(db_url: str, name: str) -> None:
    """Remove the group's own limit: it takes the `*` limit (or the default) again."""
    group = _group_name(name)
    with open_store(db_url, existing=True) as store, store.write() as tx:
        if not tx.resource_groups.delete(group):
            raise InvalidArgument("NAME", f"The resource group {name!r} has no limit of its own.")
    click.echo(f"resource group {group_label(group)}: back to the default")
