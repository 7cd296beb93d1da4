"""`dwsched serve`: the API on uvicorn over one store (its connections: runtime.connections)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence

import uvicorn
from starlette.applications import Starlette

from dwsched import config, logs, metrics
from dwsched.api.app import create_app
from dwsched.api.calls import Calls
from dwsched.api.health import DEFAULT_ACCESS, MetricsAccess, parse_access
from dwsched.api.throttle import Throttle, ThrottleSettings, parse_throttle
from dwsched.clock import SystemClock
from dwsched.domain.calendar import zone
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.runner import TaskUser
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.runtime.connections import (
    DEFAULT_TRANSPORT,
    Transport,
    raise_fd_limit,
    uvicorn_options,
)
from dwsched.runtime.isolation import task_base_environment
from dwsched.runtime.keys import handover, take_over
from dwsched.runtime.monitoring import (
    DEFAULT_MONITORING,
    MetricsDirectory,
    MetricsListener,
    Monitoring,
)
from dwsched.store import Store
from dwsched.web.console import Console

log = logging.getLogger("dwsched.server")


def build_app(
    store: Store,
    default_timezone: str,
    throttle: ThrottleSettings | None = None,
    body_timeout: float = config.DEFAULT_BODY_TIMEOUT,
    metrics_access: MetricsAccess | None = DEFAULT_ACCESS,
) -> Starlette:
    zone(default_timezone, "--default-timezone")
    limiter = Throttle(store, throttle) if throttle is not None else None
    clock = SystemClock()
    calls = Calls(store, clock, default_timezone)
    console = Console(store, clock, calls, limiter, body_timeout)
    return create_app(
        store,
        clock,
        default_timezone,
        limiter,
        calls,
        console.routes(),
        body_timeout,
        metrics_access,
    )


# How `serve` hands its settings to its server processes (which import `process_app`).
_PROCESS_ENV = "_DWSCHED_SERVER_PROCESS"
_METRICS_TOKEN_ENV = "_DWSCHED_METRICS_TOKEN"
RUNNER_PREFIX = "DWSCHED_RUNNER_"


def worker_settings(
    slots: int,
    environ: Mapping[str, str],
    group_slots: Mapping[str, int] | None = None,
    task_user: TaskUser | None = None,
    task_env: Sequence[str] = (),
    task_sandbox: bool = False,
    groups: Sequence[str] | None = None,
) -> WorkerSettings:
    """Worker settings: `slots` attempts at once; `group_slots` the slot limits it sets
    for every worker as it starts (per resource group, `*` for the others); it claims from
    `groups` only (None: every group); DWSCHED_RUNNER_<TYPE> variables give the command
    that runs each other task type (with `{script}` for the code's file); tasks run as
    `task_user` (None: this process's user), get the variables named in `task_env`, and run
    inside bubblewrap with `task_sandbox` (runtime.isolation)."""
    runners = {
        name.removeprefix(RUNNER_PREFIX): value
        for name, value in environ.items()
        if name.startswith(RUNNER_PREFIX) and len(name) > len(RUNNER_PREFIX)
    }
    return WorkerSettings(
        slots=slots,
        groups=None if groups is None else tuple(groups),
        runners=runners,
        group_slots=dict(group_slots or {}),
        task_user=task_user,
        task_environment=task_base_environment(environ, task_env),
        task_sandbox=task_sandbox,
    )


def serve(
    store: Store,
    host: str,
    port: int,
    default_timezone: str,
    log_level: str = "info",
    processes: int = 1,
    service: WorkerSettings | None = None,
    throttle: ThrottleSettings | None = None,
    transport: Transport = DEFAULT_TRANSPORT,
    monitoring: Monitoring = DEFAULT_MONITORING,
    alerts: AlertSettings | None = None,
) -> None:
    """Serve until interrupted; the store is closed on the way out.

    With `service` settings, the engine service (scheduler, planner, one worker) runs in
    this process beside the API: the default, one process on one database. With `processes`
    > 1, that many processes accept on the same socket, each with its own connections to
    the database (migrated once, here, before they start); the service stays in this
    process.
    Nonces live in the database, so a request is accepted once whichever process receives
    it. `throttle`: the per-AccessKey request limits (None: unthrottled), one budget shared
    by every process on the database (api/throttle.py). `transport`: whom to believe about
    a request's origin, and the limits of connections. `monitoring`: the log format, and
    where and to whom metrics are served (runtime/monitoring.py); with `processes` > 1
    every process records its metrics in one directory of this server.
    """
    logs.configure(log_level, monitoring.log_format)
    directory = MetricsDirectory() if processes > 1 else None
    listener = None
    running = None
    try:
        if monitoring.listen is not None:
            listener = MetricsListener(store, monitoring, state=True)
            listener.start()
        if service is not None:
            running = Service(store, SystemClock(), service, alerts=alerts)
            running.start()
        _serve(
            store,
            host,
            port,
            default_timezone,
            log_level,
            processes,
            throttle,
            transport,
            monitoring,
        )
    finally:
        if running is not None:
            running.stop()
        if listener is not None:
            listener.close()
        if directory is not None:
            directory.close()
        store.close()


def _serve(
    store: Store,
    host: str,
    port: int,
    default_timezone: str,
    log_level: str,
    processes: int,
    throttle: ThrottleSettings | None = None,
    transport: Transport = DEFAULT_TRANSPORT,
    monitoring: Monitoring = DEFAULT_MONITORING,
) -> None:
    options = uvicorn_options(transport, raise_fd_limit())
    options.update(host=host, port=port, log_level=log_level)
    if monitoring.log_format == logs.JSON:
        options.update(log_config=None)  # uvicorn's lines go through ours, as JSON
    access = monitoring.api_access
    if processes > 1:
        build_app(store, default_timezone)  # validates the settings before any fork
        url = store.database.url.render_as_string(hide_password=False)
        limits = str(throttle) if throttle is not None else "off"
        os.environ[_PROCESS_ENV] = json.dumps(
            [
                url,
                default_timezone,
                log_level,
                limits,
                transport.body_timeout,
                monitoring.log_format,
                metrics.directory(),
                None if access is None else str(access),
            ]
        )
        if access is not None and access.token is not None:
            os.environ[_METRICS_TOKEN_ENV] = access.token
        os.environ.update(handover(store))  # where the server key is
        # The server processes are spawned with these options (the protocol's limits and
        # the trusted proxies included) and inherit the raised descriptor limit.
        uvicorn.run(f"{__name__}:process_app", factory=True, workers=processes, **options)
        return
    app = build_app(store, default_timezone, throttle, transport.body_timeout, access)
    uvicorn.run(app, **options)


def run_roles(
    store: Store,
    log_level: str,
    scheduling: bool,
    settings: WorkerSettings | None,
    monitoring: Monitoring = DEFAULT_MONITORING,
    alerts: AlertSettings | None = None,
) -> None:
    """Run the scheduler role, or a worker (with `settings`), until SIGINT or SIGTERM;
    with `monitoring.listen`, this process's metrics are served there (without the
    database's state, which the API's scrape says)."""
    logs.configure(log_level, monitoring.log_format)
    listener = None
    if monitoring.listen is not None:
        listener = MetricsListener(store, monitoring, state=False)
        listener.start()
    service = Service(
        store,
        SystemClock(),
        settings,
        scheduling=scheduling,
        working=settings is not None,
        alerts=alerts,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
        if listener is not None:
            listener.close()
        store.close()


def process_app() -> Starlette:
    """The app of one server process of `serve --workers N`."""
    (
        url,
        default_timezone,
        log_level,
        limits,
        body_timeout,
        log_format,
        directory,
        networks,
    ) = json.loads(os.environ[_PROCESS_ENV])
    logs.configure(log_level, log_format)
    metrics.use_directory(directory)
    access = None
    if networks is not None:
        access = parse_access(networks, os.environ.get(_METRICS_TOKEN_ENV))
    store = Store.open(url, migrate=False, secrets=take_over(os.environ))
    return build_app(store, default_timezone, parse_throttle(limits), body_timeout, access)
