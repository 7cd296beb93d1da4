"""`dwsched serve` and `dwsched demo`."""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dwsched import config
from dwsched.api.throttle import ThrottleSettings, parse_throttle
from dwsched.cli.alerting import alert_options, served_alerts
from dwsched.cli.banner import Banner
from dwsched.cli.feed import Feed
from dwsched.cli.keys import key_file, secret_key_file_option, unlock_store
from dwsched.cli.monitoring import monitoring_options
from dwsched.cli.options import (
    db_option,
    log_level_option,
    open_store,
    option,
    slots_option,
    task_options,
    timezone_option,
)
from dwsched.cli.roles import task_settings
from dwsched.clock import SystemClock
from dwsched.domain.errors import InvalidArgument
from dwsched.engine.alerts import AlertSettings
from dwsched.runtime import demo as demo_data
from dwsched.runtime.connections import Transport
from dwsched.runtime.keys import create_key
from dwsched.runtime.monitoring import Monitoring
from dwsched.runtime.server import serve as run_server


def _throttle(_ctx: click.Context, param: click.Parameter, text: str) -> ThrottleSettings | None:
    """`read=50/100,write=10/20` → the limits; a class not named keeps its default."""
    try:
        return parse_throttle(text, parse_throttle(config.DEFAULT_THROTTLE))
    except InvalidArgument as exc:
        raise click.BadParameter(exc.message, param=param) from exc


def _trusted_proxies(_ctx: click.Context, param: click.Parameter, text: str) -> str:
    """uvicorn's format, checked (uvicorn would take a mistyped address as a name that
    never matches): comma-separated addresses and networks, or `*`."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["*"]:
        return "*"
    for item in items:
        try:
            ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
        except ValueError as exc:
            raise click.BadParameter(f"{item!r}: {exc}", param=param) from exc
    return ",".join(items)


def _transport_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the server's connections, handed to `command` as `transport`."""

    @functools.wraps(command)
    def with_transport(
        *args: Any,
        forwarded_allow_ips: str,
        max_connections: int,
        header_timeout: float,
        body_timeout: float,
        keep_alive_timeout: int,
        **kwargs: Any,
    ) -> Any:
        transport = Transport(
            forwarded_allow_ips, max_connections, header_timeout, body_timeout, keep_alive_timeout
        )
        return command(*args, transport=transport, **kwargs)

    f: Callable[..., Any] = with_transport
    f = option(
        "--keep-alive-timeout",
        envvar=config.KEEP_ALIVE_TIMEOUT_ENV,
        default=config.DEFAULT_KEEP_ALIVE_TIMEOUT,
        show_default=True,
        type=click.IntRange(1, 3600),
        metavar="SECONDS",
        help="Close a connection idle this long between requests.",
    )(f)
    f = option(
        "--body-timeout",
        envvar=config.BODY_TIMEOUT_ENV,
        default=config.DEFAULT_BODY_TIMEOUT,
        show_default=True,
        type=click.FloatRange(0.1, 3600),
        metavar="SECONDS",
        help="Answer 408 to a request whose whole body has not arrived this long after its "
        "headers.",
    )(f)
    f = option(
        "--header-timeout",
        envvar=config.HEADER_TIMEOUT_ENV,
        default=config.DEFAULT_HEADER_TIMEOUT,
        show_default=True,
        type=click.FloatRange(0.1, 3600),
        metavar="SECONDS",
        help="Close a connection whose request line and headers have not arrived this long "
        "after it opened (or after its previous response).",
    )(f)
    f = option(
        "--max-connections",
        envvar=config.MAX_CONNECTIONS_ENV,
        default=config.DEFAULT_MAX_CONNECTIONS,
        show_default=True,
        type=click.IntRange(16, 1_000_000),
        help="Open connections per server process (lowered to fit its file-descriptor "
        "limit); past it, a new connection closes the one waiting longest for its request.",
    )(f)
    return option(
        "--forwarded-allow-ips",
        envvar=config.FORWARDED_ALLOW_IPS_ENV,
        default=config.DEFAULT_FORWARDED_ALLOW_IPS,
        show_default=True,
        metavar="ADDRESSES",
        callback=_trusted_proxies,
        help="Reverse proxies (comma-separated addresses or networks, or *) whose "
        "X-Forwarded-For and X-Forwarded-Proto give the client's address and scheme; "
        "empty: believe nobody's (docs/deployment.md).",
    )(f)


def _server_options(f: click.decorators.FC) -> click.decorators.FC:
    f = option(
        "--throttle",
        envvar=config.THROTTLE_ENV,
        default=config.DEFAULT_THROTTLE,
        show_default=True,
        show_envvar=True,
        metavar="LIMITS",
        callback=_throttle,
        help="Requests a second per AccessKey: RATE/BURST per action class (read: Get* and "
        "List*; write: the others), shared by every process on the database; a class left "
        "out keeps its default; CLASS=off or off: unthrottled.",
    )(f)
    f = slots_option(f)
    f = option(
        "--engine/--no-engine",
        envvar=config.ENGINE_ENV,
        default=True,
        show_default=True,
        show_envvar=True,
        help="Run the scheduler and a worker in this process beside the API.",
    )(f)
    f = option(
        "--workers",
        "processes",
        envvar=config.WORKERS_ENV,
        default=1,
        show_default=True,
        show_envvar=True,
        type=click.IntRange(1, 64),
        help="Server processes sharing the port, each serving the API (uvicorn's workers, "
        "not task workers); one per core is a good start.",
    )(f)
    f = log_level_option(f)
    f = option(
        "--port",
        envvar=config.PORT_ENV,
        default=config.DEFAULT_PORT,
        show_default=True,
        show_envvar=True,
        type=click.IntRange(1, 65535),
        help="TCP port to listen on.",
    )(f)
    f = option(
        "--host",
        envvar=config.HOST_ENV,
        default=config.DEFAULT_HOST,
        show_default=True,
        show_envvar=True,
        help="Address to listen on.",
    )(f)
    return timezone_option(f)


@click.command()
@db_option()
@secret_key_file_option
@_server_options
@_transport_options
@monitoring_options
@alert_options
@task_options
def serve(
    db_url: str,
    secret_key_file: Path | None,
    host: str,
    port: int,
    default_timezone: str,
    log_level: str,
    processes: int,
    engine: bool,
    slots: int,
    group_slots: dict[str, int],
    throttle: ThrottleSettings | None,
    transport: Transport,
    monitoring: Monitoring,
    alerts: AlertSettings,
    task_user: str | None,
    task_env: tuple[str, ...],
    task_sandbox: bool,
) -> None:
    """Serve the DataWorks API and run the engine (migrating the database first)."""
    check_listen(host, port)
    store = unlock_store(open_store(db_url), db_url, secret_key_file, quiet=False)
    click.echo(f"dwsched serving http://{host}:{port}/ on {store.database.url.render_as_string()}")
    settings = (
        task_settings(
            db_url,
            slots,
            group_slots,
            task_user,
            task_env,
            task_sandbox,
            str(key_file(db_url, secret_key_file)),
        )
        if engine
        else None
    )
    run_server(
        store,
        host,
        port,
        default_timezone,
        log_level,
        processes,
        settings,
        throttle,
        transport,
        monitoring,
        served_alerts(alerts, host, port),
    )


@click.command()
@db_option(config.DEMO_DATABASE_URL)
@secret_key_file_option
@_server_options
@_transport_options
@monitoring_options
@alert_options
@task_options
@option(
    "--quiet",
    "-q",
    is_flag=True,
    envvar=config.DEMO_QUIET_ENV,
    help="Print no live feed of the tasks that start, fail, retry and end after the banner "
    "(the console shows them).",
)
def demo(
    db_url: str,
    secret_key_file: Path | None,
    host: str,
    port: int,
    default_timezone: str,
    log_level: str,
    processes: int,
    engine: bool,
    slots: int,
    group_slots: dict[str, int],
    throttle: ThrottleSettings | None,
    transport: Transport,
    monitoring: Monitoring,
    alerts: AlertSettings,
    task_user: str | None,
    task_env: tuple[str, ...],
    task_sandbox: bool,
    quiet: bool,
) -> None:
    """Serve a demo database: example workflows that really run, and a fresh key; then
    print a line for each task that starts, fails, retries or ends."""
    check_listen(host, port)
    store = unlock_store(open_store(db_url), db_url, secret_key_file, quiet=False)
    now = SystemClock().now_ms()
    project = demo_data.find_demo_project(store) or demo_data.seed(store, now, default_timezone)
    key = create_key(store, "demo", now)
    password = demo_data.console_user(store, now)
    banner = Banner(
        project.id,
        project.timezone,
        db_url,
        f"{host}:{port}",
        demo_data.CONSOLE_USER,
        password,
        key.id,
        key.secret,
        feed=not quiet,
    )
    click.echo(banner.text())
    settings = (
        task_settings(
            db_url,
            slots,
            group_slots,
            task_user,
            task_env,
            task_sandbox,
            str(key_file(db_url, secret_key_file)),
        )
        if engine
        else None
    )
    with contextlib.ExitStack() as feed:
        if not quiet:
            feed.enter_context(Feed(store, SystemClock(), click.echo))
        run_server(
            store,
            host,
            port,
            default_timezone,
            log_level,
            processes,
            settings,
            throttle,
            transport,
            monitoring,
            served_alerts(alerts, host, port),
        )


def check_listen(host: str, port: int) -> None:
    """Fail, before anything is created or printed, when `host:port` cannot be listened
    on as the server will (uvicorn's socket, SO_REUSEADDR): a port in use names `--port`."""
    try:
        _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"{host}:{port} is already in use (another dwsched serve or demo?): stop it, "
                f"or listen on another port with --port {_free_port(host, port)}"
            ) from exc
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc


def _bind(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _free_port(host: str, port: int) -> str:
    """A port near `port` that is free now, to suggest (`N` when none of the next few is)."""
    for candidate in range(port + 1, min(port + 20, 65536)):
        try:
            _bind(host, candidate)
        except OSError:
            continue
        return str(candidate)
    return "N"
