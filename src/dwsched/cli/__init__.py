"""The `dwsched` command."""

from __future__ import annotations

import signal

import click

from dwsched import __version__
from dwsched.cli import (
    access,
    alerts,
    db,
    dependencies,
    instances,
    keys,
    logs,
    operations,
    projects,
    roles,
    serve,
    tasks,
    transfer,
    workers,
    workflows,
)
from dwsched.cli.options import ENV_PREFIX, Group


@click.group(cls=Group, context_settings={"auto_envvar_prefix": ENV_PREFIX})
@click.version_option(__version__, prog_name="dwsched")
def cli() -> None:
    """dwsched: workflow instances, served the DataWorks way."""


cli.add_command(serve.serve)
cli.add_command(serve.demo)
cli.add_command(roles.scheduler)
cli.add_command(roles.worker)
cli.add_command(keys.keys)
cli.add_command(projects.projects)
cli.add_command(transfer.import_)
cli.add_command(transfer.export)
for command in (logs.logs, *dependencies.DEPENDENCY_COMMANDS):
    tasks.tasks.add_command(command)
cli.add_command(instances.instances)
cli.add_command(tasks.tasks)
cli.add_command(workflows.workflows)
cli.add_command(alerts.alerts)
cli.add_command(operations.backfill)
cli.add_command(operations.run_)
cli.add_command(db.db)
cli.add_command(access.users)
cli.add_command(access.groups)
cli.add_command(access.policies)
cli.add_command(access.audit)
cli.add_command(workers.workers)
cli.add_command(workers.resource_groups)


def main() -> None:
    # Ctrl-C (SIGINT) stops whatever the command follows, even when the process was started
    # with SIGINT ignored (a parent's setting that survives exec, and that keeps Python from
    # installing its own handler): `dwsched backfill` must end on an interrupt however run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli(prog_name="dwsched")
