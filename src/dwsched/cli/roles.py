"""`dwsched scheduler` and `dwsched worker`: the engine's roles as separate processes.

`dwsched serve` runs both beside the API; these run them apart, on the same SQLite file or
the same PostgreSQL, as many workers as wanted (claims never give one attempt to two).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from dwsched import config
from dwsched.cli.alerting import alert_options, served_alerts
from dwsched.cli.keys import secret_key_file_option, unlock_store
from dwsched.cli.monitoring import monitoring_options
from dwsched.cli.options import (
    db_option,
    groups_option,
    log_level_option,
    open_store,
    slots_option,
    task_options,
)
from dwsched.domain.errors import DwschedError
from dwsched.domain.workers import group_label
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.worker import WorkerSettings
from dwsched.runtime import isolation
from dwsched.runtime.monitoring import Monitoring
from dwsched.runtime.server import run_roles, worker_settings
from dwsched.store import passwordless_postgresql, sqlite_file


@click.command()
@db_option()
@log_level_option
@secret_key_file_option
@monitoring_options
@alert_options
def scheduler(
    db_url: str,
    log_level: str,
    secret_key_file: Path | None,
    monitoring: Monitoring,
    alerts: AlertSettings,
) -> None:
    """Make instances from deployed schedules, move them along, recover dead workers' work,
    and send alerts (the server key opens the webhook URLs they go to)."""
    store = unlock_store(open_store(db_url), db_url, secret_key_file, quiet=True)
    click.echo(f"dwsched scheduler on {store.database.url.render_as_string()}")
    alerts = served_alerts(alerts, config.DEFAULT_HOST, config.DEFAULT_PORT)
    run_roles(
        store, log_level, scheduling=True, settings=None, monitoring=monitoring, alerts=alerts
    )


@click.command()
@db_option()
@log_level_option
@slots_option
@groups_option
@task_options
@monitoring_options
def worker(
    db_url: str,
    log_level: str,
    monitoring: Monitoring,
    slots: int,
    group_slots: dict[str, int],
    groups: tuple[str, ...] | None,
    task_user: str | None,
    task_env: tuple[str, ...],
    task_sandbox: bool,
) -> None:
    """Claim and run task instances (DWSCHED_RUNNER_<TYPE> configures other task types).

    It registers itself in the database (dwsched workers list) and claims within the
    resource groups' shared slot limits (dwsched resource-groups).
    """
    settings = task_settings(
        db_url, slots, group_slots, task_user, task_env, task_sandbox, groups=groups
    )
    store = open_store(db_url)
    served = "" if groups is None else f", groups {','.join(group_label(g) for g in groups)}"
    click.echo(f"dwsched worker ({slots} slots{served}) on {store.database.url.render_as_string()}")
    run_roles(store, log_level, scheduling=False, settings=settings, monitoring=monitoring)


def task_settings(
    db_url: str,
    slots: int,
    group_slots: dict[str, int],
    task_user: str | None,
    task_env: tuple[str, ...],
    task_sandbox: bool,
    key_file: str | None = None,
    groups: tuple[str, ...] | None = None,
) -> WorkerSettings:
    """The worker's settings, with the OS user its tasks run as (created when it is the
    default and missing); a loud warning on stderr when tasks share dwsched's user."""
    try:
        user = isolation.task_user(task_user)
        if task_sandbox:
            isolation.check_sandbox(user)
        settings = worker_settings(
            slots, os.environ, group_slots, user, task_env, task_sandbox, groups
        )
    except DwschedError as exc:
        raise click.ClickException(exc.message) from exc
    warning = isolation.shared_warning(user, [sqlite_file(db_url), key_file or ""])
    if warning:
        click.secho(warning, err=True, fg="yellow", bold=True)
    elif passwordless_postgresql(db_url):
        click.secho(
            "WARNING: dwsched reaches PostgreSQL without a password in its URL. If the server "
            "lets it in by trust (or a password file tasks can read), a task can connect the "
            "same way and own the database: require password authentication for dwsched's "
            "role (docs/security.md).",
            err=True,
            fg="yellow",
            bold=True,
        )
    return settings
