"""The options of how a long-running command is watched: --log-format, --metrics-listen,
--metrics-allow, --metrics-token (docs/metrics.md), handed to the command as `monitoring`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from dwsched import config, logs
from dwsched.api.health import parse_access
from dwsched.domain.errors import InvalidArgument
from dwsched.runtime.monitoring import Monitoring, parse_listen


def monitoring_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; the command receives them as one `monitoring: Monitoring`."""

    @functools.wraps(command)
    def with_monitoring(
        *args: Any,
        log_format: str,
        metrics_listen: str,
        metrics_allow: str,
        metrics_token: str | None,
        **kwargs: Any,
    ) -> Any:
        try:
            monitoring = Monitoring(
                log_format, parse_access(metrics_allow, metrics_token), parse_listen(metrics_listen)
            )
        except InvalidArgument as exc:
            raise click.BadParameter(exc.message, param_hint=exc.param) from exc
        return command(*args, monitoring=monitoring, **kwargs)

    f: Callable[..., Any] = with_monitoring
    f = click.option(
        "--metrics-token",
        envvar=config.METRICS_TOKEN_ENV,
        default=None,
        show_envvar=True,
        metavar="TOKEN",
        help="Serve /metrics only to requests with `Authorization: Bearer TOKEN` (besides "
        "--metrics-allow). Prefer the environment variable: a flag shows in `ps`.",
    )(f)
    f = click.option(
        "--metrics-allow",
        envvar=config.METRICS_ALLOW_ENV,
        default=config.DEFAULT_METRICS_ALLOW,
        show_default=True,
        show_envvar=True,
        metavar="NETWORKS",
        help="Client addresses or networks (comma-separated, or *) that may read /metrics; "
        "a request through a proxy (X-Forwarded-For, Forwarded, X-Real-IP) never may.",
    )(f)
    f = click.option(
        "--metrics-listen",
        envvar=config.METRICS_LISTEN_ENV,
        default="",
        show_envvar=True,
        metavar="HOST:PORT",
        help="Serve /metrics (with /healthz and /readyz) on a listener of its own; `serve` "
        "then no longer serves it on the API's port. `scheduler` and `worker` serve "
        "metrics only with it.",
    )(f)
    return click.option(
        "--log-format",
        envvar=config.LOG_FORMAT_ENV,
        default=logs.TEXT,
        show_default=True,
        show_envvar=True,
        type=click.Choice(list(logs.FORMATS)),
        help="Log lines as text, or as one JSON object each (with the request id of the "
        "request being served).",
    )(f)
