"""`dwsched serve` and `dwsched demo`."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
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
from dwsched.store import sqlite_file


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
    return _server_options_logging("info", "Log level.")(f)


def _server_options_logging(
    log_level: str, log_help: str
) -> Callable[[click.decorators.FC], click.decorators.FC]:
    return functools.partial(_with_server_options, log_level=log_level, log_help=log_help)


def _with_server_options(
    f: click.decorators.FC, log_level: str, log_help: str
) -> click.decorators.FC:
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
    f = log_level_option(f, log_level, log_help)
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
    claim = contextlib.ExitStack()
    claim.enter_context(database_claim(db_url, demo=False))
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
    with claim:
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
@_server_options_logging(
    "warning",
    "Log level of the lines on stderr (UTC); the live feed tells what runs, in the "
    "workspace's time zone.",
)
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
    check_free(db_url)
    check_listen(host, port, demo=True)
    claim = contextlib.ExitStack()
    claim.enter_context(database_claim(db_url, demo=True))
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
    with claim, contextlib.ExitStack() as feed:
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


def check_listen(host: str, port: int, demo: bool = False) -> None:
    """Fail, before anything is created or printed, when `host:port` cannot be listened
    on as the server will (uvicorn's socket, SO_REUSEADDR): a port in use names `--port`
    (and, to a demo, that a second demo needs a database of its own)."""
    try:
        _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            other = (
                "another dwsched? a second demo needs its own --db too"
                if demo
                else "another dwsched serve or demo?"
            )
            raise click.ClickException(
                f"{host}:{port} is already in use ({other}): stop it, "
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


# A running `serve` or `demo` holds an OS lock (flock) on its SQLite database file for its
# lifetime: shared for `serve` (several may share a database), exclusive for `demo` (which
# gives the console user a new password and runs its own engine). The lock is the file's
# own, released by the OS however the process ends, and no other file is written. It is
# not SQLite's: SQLite locks with fcntl() byte ranges, which flock() leaves alone on Linux.
# Closing a descriptor of the file drops this process's fcntl() locks, SQLite's included,
# so the lock's descriptor is closed only before the store opens or after it has closed.


def _plain_file(db_url: str) -> str:
    """The SQLite file of `db_url`; "" for another database, or SQLite in memory."""
    path = sqlite_file(db_url)
    return "" if path in ("", ":memory:") or path.startswith("file:") else path


def check_free(db_url: str) -> None:
    """Fail, before anything is created or printed, when a live `serve` or `demo` holds the
    demo's SQLite database: one line naming it, and the --db that would not clash."""
    path = _plain_file(db_url)
    if not path or not os.path.exists(path):
        return
    with database_claim(db_url, demo=True):
        pass


@contextlib.contextmanager
def database_claim(db_url: str, demo: bool) -> Iterator[None]:
    """Hold the lock on the SQLite database of `db_url` until the end of the block (nothing
    for another database), creating the file when missing as opening the store would (mode
    0600). A demo fails (ClickException) when any serve or demo holds it; a serve goes on
    without the lock when a demo holds it."""
    path = _plain_file(db_url)
    fd = -1
    if path:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_CREAT, 0o600)
        except OSError:
            fd = -1  # not to be opened (no such folder, another user's): the store says why
    if fd >= 0:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if demo else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            fd = -1
            if demo:
                raise click.ClickException(_in_use(path)) from exc
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def _in_use(path: str) -> str:
    shown = path if os.path.isabs(path) or path.startswith(".") else f"./{path}"
    return (
        f"{shown} is the database of a running {_holder(path)}: stop it, or give this demo "
        f"a database of its own with --db sqlite:///{_unused(path)}"
    )


def _holder(path: str) -> str:
    """Who holds the lock of `path`: `dwsched demo (pid 123)` from /proc/locks and the
    process's command line (Linux), else `dwsched serve or demo`."""
    try:
        inode = os.stat(path).st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        return "dwsched serve or demo"
    for line in locks.splitlines():
        # `1: FLOCK  ADVISORY  WRITE 9622 08:01:1234567 0 EOF` (a waiter's id ends in ->)
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or "->" in fields[0]:
            continue
        if fields[5].rsplit(":", 1)[-1] != str(inode):
            continue
        pid = fields[4]
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            args = []
        role = next((a.decode() for a in args[1:] if a in (b"demo", b"serve")), "serve or demo")
        return f"dwsched {role} (pid {pid})"
    return "dwsched serve or demo"


def _unused(path: str) -> str:
    """`dwsched-demo-2.db` beside `dwsched-demo.db`: the first such name without a file."""
    stem, dot, suffix = path.rpartition(".")
    if not dot or "/" in suffix:
        stem, dot, suffix = path, "", ""
    for n in range(2, 100):
        candidate = f"{stem}-{n}{dot}{suffix}"
        if not os.path.exists(candidate):
            return candidate
    return f"{stem}-new{dot}{suffix}"
