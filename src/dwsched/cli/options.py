"""Options shared by several commands, and the group that turns errors into clean messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dwsched import config
from dwsched.domain.errors import DwschedError
from dwsched.store import Store

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


def open_store(db_url: str) -> Store:
    return Store.open(db_url)


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
        help="host:port (or URL) of a running dwsched server.",
    )(f)


def log_level_option(f: F) -> F:
    return option(
        "--log-level",
        envvar=config.LOG_LEVEL_ENV,
        default="info",
        show_default=True,
        show_envvar=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
        help="Log level.",
    )(f)


def slots_option(f: F) -> F:
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
