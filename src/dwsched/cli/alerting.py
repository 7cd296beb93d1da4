"""The options of how alerts are sent (docs/alerts.md "Configuration"): the console address
the notices link to, the operator's SMTP server for Mail, and the outbound guard's address
ranges for webhooks; handed to the command as one `alerts: AlertSettings`."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from dwsched import config
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.notify import (
    NotifySettings,
    OutboundPolicy,
    SmtpSettings,
    SmtpTls,
    parse_ranges,
)


def alert_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; the command receives them as `alerts: AlertSettings`."""

    @functools.wraps(command)
    def with_alerts(
        *args: Any,
        console_url: str,
        smtp: str,
        smtp_from: str,
        smtp_user: str,
        smtp_tls: str,
        alert_deny: str,
        alert_allow: str,
        **kwargs: Any,
    ) -> Any:
        try:
            guard = OutboundPolicy(
                deny=parse_ranges(alert_deny, config.ALERT_DENY_ENV),
                allow=parse_ranges(alert_allow, config.ALERT_ALLOW_ENV),
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--alert-deny/--alert-allow") from exc
        mail = None
        if smtp:
            try:
                host, port = smtp_address(smtp)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--smtp") from exc
            if not smtp_from:
                raise click.BadParameter("Mail needs a sender address", param_hint="--smtp-from")
            tls = SmtpTls(smtp_tls)
            default_port = {SmtpTls.SSL: 465, SmtpTls.STARTTLS: 587}.get(tls, 25)
            mail = SmtpSettings(
                host=host,
                port=port or default_port,
                from_address=smtp_from,
                tls=tls,
                user=smtp_user,
                password=os.environ.get(config.SMTP_PASSWORD_ENV, ""),
            )
        settings = AlertSettings(NotifySettings(smtp=mail, guard=guard), console_url)
        return command(*args, alerts=settings, **kwargs)

    f: Callable[..., Any] = with_alerts
    f = click.option(
        "--alert-allow",
        envvar=config.ALERT_ALLOW_ENV,
        default="",
        show_envvar=True,
        metavar="RANGES",
        help="Webhooks may reach only these address ranges (CIDRs, or loopback, private); "
        "empty: any not denied.",
    )(f)
    f = click.option(
        "--alert-deny",
        envvar=config.ALERT_DENY_ENV,
        default="default",
        show_default=True,
        show_envvar=True,
        metavar="RANGES",
        help="Address ranges webhooks may never reach: `default` is link-local and the cloud "
        "metadata services; add `loopback`, `private` or CIDRs.",
    )(f)
    f = click.option(
        "--smtp-tls",
        envvar=config.SMTP_TLS_ENV,
        default=SmtpTls.STARTTLS.value,
        show_default=True,
        show_envvar=True,
        type=click.Choice([t.value for t in SmtpTls]),
        help="How the SMTP connection is secured.",
    )(f)
    f = click.option(
        "--smtp-user",
        envvar=config.SMTP_USER_ENV,
        default="",
        show_envvar=True,
        help=f"The SMTP login (its password: {config.SMTP_PASSWORD_ENV}, never a flag).",
    )(f)
    f = click.option(
        "--smtp-from",
        envvar=config.SMTP_FROM_ENV,
        default="",
        show_envvar=True,
        metavar="ADDRESS",
        help="The sender of alert mail.",
    )(f)
    f = click.option(
        "--smtp",
        envvar=config.SMTP_ENV,
        default="",
        show_envvar=True,
        metavar="HOST[:PORT]",
        help="The SMTP server alert mail goes through (none: Mail alerts are not sent, and "
        "say why in the alert history).",
    )(f)
    return click.option(
        "--console-url",
        envvar=config.CONSOLE_URL_ENV,
        default="",
        show_envvar=True,
        metavar="URL",
        help="The console's address as receivers reach it, for the links in alerts "
        "(default: the address served).",
    )(f)


def smtp_address(text: str) -> tuple[str, int | None]:
    """`HOST[:PORT]` as (host, port or None): a name or an IPv4 address, with a port after a
    colon; an IPv6 address in brackets, `[::1]:25` or `[::1]` (bare, `::1`, it is taken
    whole as the host: its last group is no port). ValueError saying what is wrong."""
    host, port = text, None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not HOST[:PORT] (IPv6: [ADDRESS]:PORT)")
        if not _is_ipv6(inside):
            raise ValueError(f"{inside!r} in brackets is not an IPv6 address")
        host, port = inside, (rest[1:] if rest else None)
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text and not _is_ipv6(text):
        raise ValueError(f"{text!r} is not HOST[:PORT] (IPv6: [ADDRESS]:PORT)")
    if not host:
        raise ValueError(f"{text!r} names no host")
    if port is None:
        return host, None
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def served_alerts(alerts: AlertSettings, host: str, port: int) -> AlertSettings:
    """The settings with the console's address defaulting to the one served."""
    if alerts.console_url:
        return alerts
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address, in a URL
    return replace(alerts, console_url=f"http://{shown}:{port}")
