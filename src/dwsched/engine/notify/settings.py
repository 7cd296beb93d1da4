"""What the operator decides about delivery, built from configuration at the edge
(`dwsched.runtime`) and passed to `send`: the SMTP server for Mail, the outbound guard's
address ranges, and the bounds on every request made on a user's behalf."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dwsched.engine.notify.guard import OutboundPolicy, Resolve, system_resolve


class SmtpTls(StrEnum):
    """How the SMTP connection is secured: not at all, upgraded with STARTTLS, or TLS from
    the first byte (SMTPS, usually port 465)."""

    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The operator's mail server. `user`/`password` empty: no login."""

    host: str
    from_address: str
    port: int = 587
    tls: SmtpTls = SmtpTls.STARTTLS
    user: str = ""
    password: str = field(default="", repr=False)
    from_name: str = "dwsched"
    verify_certificate: bool = True
    timeout_s: float = 15.0


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Everything `send` needs besides the notice and its target. `smtp` None: Mail is not
    configured and Mail targets are refused. The HTTP bounds apply to each webhook request:
    `connect_timeout_s` to the connection, `total_timeout_s` to everything from resolving
    the name to the last byte read; bodies over `max_request_bytes` are not sent, and at
    most `max_response_bytes` of an answer are read. `resolve` is the name resolver (the
    system's; tests give their own)."""

    smtp: SmtpSettings | None = None
    guard: OutboundPolicy = field(default_factory=OutboundPolicy)
    connect_timeout_s: float = 5.0
    total_timeout_s: float = 15.0
    max_request_bytes: int = 256 * 1024
    max_response_bytes: int = 64 * 1024
    user_agent: str = "dwsched-alerts/1"
    resolve: Resolve = field(default=system_resolve, compare=False, repr=False)
