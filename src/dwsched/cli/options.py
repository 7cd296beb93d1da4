"""Options shared by several commands, and the group that turns errors into clean messages."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from dwsched import config
from dwsched.domain.errors import DwschedError
from dwsched.domain.workers import parse_groups
from dwsched.store import Store, sqlite_file

F = TypeVar("F", bound=Callable[..., Any])
ENV_PREFIX = "DWSCHED"


def option(*names: str, **attrs: Any) -> Callable[[F], F]:
    """click.option whose --help names its environment variable (explicit, or DWSCHED_...)."""
    attrs.setdefault("show_envvar", True)
    return click.option(*names, **attrs)


class Group(click.Group):
    """A click group whose commands report DwschedError as `Error: ...`, exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DwschedError as exc:
            raise click.ClickException(exc.message) from exc


def db_option(default: str = config.DEFAULT_DATABASE_URL) -> Callable[[F], F]:
    return option(
        "--db",
        "db_url",
        envvar=config.DATABASE_URL_ENV,
        default=default,
        show_default=True,
        show_envvar=True,
        help="Database URL: sqlite:///FILE or postgresql://USER@HOST:PORT/DB.",
    )


def timezone_option(f: F) -> F:
    return option(
        "--default-timezone",
        envvar=config.TIMEZONE_ENV,
        default=config.DEFAULT_TIMEZONE,
        show_default=True,
        show_envvar=True,
        help="IANA time zone of workspaces created without one.",
    )(f)


def open_store(db_url: str, *, existing: bool = False) -> Store:
    """The database of `--db`, migrated. `existing`: refuse a SQLite file that is not there
    (require_database) instead of creating an empty database, as every command that only
    reads or changes what is there does; those that create something may create it."""
    if existing:
        require_database(db_url)
    return Store.open(db_url)


def require_database(db_url: str) -> None:
    """Fail in one line when `db_url`, the default or DWSCHED_DATABASE_URL's (not a --db
    typed on the command line, which may name a new file), is a SQLite file that does not
    exist: a command run in the wrong folder, or without the `--db` of the server it
    means, would otherwise create an empty database and show nothing."""
    path = sqlite_file(db_url)
    if path in ("", ":memory:") or path.startswith("file:") or os.path.exists(path):
        return
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.get_parameter_source("db_url") is ParameterSource.COMMANDLINE:
        return
    shown = path if os.path.isabs(path) or path.startswith(".") else f"./{path}"
    raise click.ClickException(
        f"no database at {shown}: give --db (or {config.DATABASE_URL_ENV}) the database's URL"
    )


def client_options(f: F) -> F:
    f = option(
        "--access-key-secret",
        envvar=config.ACCESS_KEY_SECRET_ENV,
        required=True,
        show_envvar=True,
        help="AccessKeySecret that signs the requests.",
    )(f)
    f = option(
        "--access-key-id",
        envvar=config.ACCESS_KEY_ID_ENV,
        required=True,
        show_envvar=True,
        help="AccessKeyId that signs the requests.",
    )(f)
    return option(
        "--endpoint",
        envvar=config.ENDPOINT_ENV,
        default=config.DEFAULT_ENDPOINT,
        show_default=True,
        show_envvar=True,
        help="A running dwsched server: host:port, a URL, or a port of this machine (8765 "
        "means 127.0.0.1:8765).",
    )(f)


def log_level_option(f: F, default: str = "info", help: str = "Log level.") -> F:
    return option(
        "--log-level",
        envvar=config.LOG_LEVEL_ENV,
        default=default,
        show_default=True,
        show_envvar=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
        help=help,
    )(f)


def _group_slots(_ctx: click.Context, _param: click.Parameter, text: str | None) -> dict[str, int]:
    """`etl=1,reports=2,*=4` → {group: slots}; `*` is every other group."""
    found: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit() or int(value) < 1:
            raise click.BadParameter(f"{item!r}: expected GROUP=N with N >= 1 (or *=N)")
        found[name.strip()] = int(value)
    return found


def slots_option(f: F) -> F:
    f = option(
        "--group-slots",
        envvar=config.GROUP_SLOTS_ENV,
        default=None,
        show_envvar=True,
        callback=_group_slots,
        help="Set, as this process starts, the attempts at once per resource group over "
        "every worker on the database: GROUP=N,... (`*=N` for groups without a limit of "
        "their own; default 4 each). The limits are shared rows (dwsched resource-groups "
        "set) and stay after this process stops; without this option it uses them as "
        "they are.",
    )(f)
    return option(
        "--slots",
        envvar=config.SLOTS_ENV,
        default=4,
        show_default=True,
        show_envvar=True,
        type=click.IntRange(1, 256),
        help="Task attempts run at once (task types other than shell, Python and virtual run "
        "through DWSCHED_RUNNER_<TYPE>='command {script}').",
    )(f)


def _served(
    _ctx: click.Context, _param: click.Parameter, text: str | None
) -> tuple[str, ...] | None:
    return parse_groups(text or "")


def groups_option(f: F) -> F:
    """`--groups`: the resource groups a worker claims from."""
    return option(
        "--groups",
        envvar=config.SERVED_GROUPS_ENV,
        default=None,
        show_envvar=True,
        metavar="GROUP,...",
        callback=_served,
        help="Claim only task instances of these resource groups (`-` names the group of "
        "nodes that name none). Default: every group.",
    )(f)


def _names(_ctx: click.Context, _param: click.Parameter, text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def task_options(f: F) -> F:
    """--task-user, --task-env and --task-sandbox: who tasks run as, what they get, and
    whether bubblewrap confines them (docs/security.md)."""
    f = option(
        "--task-sandbox/--no-task-sandbox",
        envvar=config.TASK_SANDBOX_ENV,
        default=False,
        show_default=True,
        show_envvar=True,
        help="Run each task inside bubblewrap (bwrap): the file system read-only but for its "
        "own directory and /tmp, and only its own processes in /proc.",
    )(f)
    f = option(
        "--task-env",
        envvar=config.TASK_ENV_ENV,
        default=None,
        show_envvar=True,
        metavar="NAMES",
        callback=_names,
        help="Variables of this process passed on to every task, comma-separated (e.g. the "
        "credentials a DWSCHED_RUNNER_<TYPE> client needs); tasks otherwise get only PATH, "
        "LANG, TZ, HOME and their own variables.",
    )(f)
    return option(
        "--task-user",
        envvar=config.TASK_USER_ENV,
        default=None,
        show_envvar=True,
        metavar="USER",
        help="OS user tasks run as. Default: dwsched-task (created when missing) when "
        "dwsched runs as root, else dwsched's own user, with a warning; `same`: dwsched's "
        "own user.",
    )(f)
