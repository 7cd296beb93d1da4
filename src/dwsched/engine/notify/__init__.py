"""Alert delivery: `send(notice, target, settings) -> Outcome`, one notice to one target.

Mail goes through the operator's SMTP server with apprise (`mail.py`); every webhook kind
is a JSON POST made under the outbound guard (`guard.py`, `outbound.py`) with the body of
its kind (`bodies.py`). Docs: docs/alerts.md, "Delivery".
"""

from __future__ import annotations

from dwsched.engine.notify.bodies import DELIVERY_HEADER, EVENT_HEADER, SCHEMA, webhook_body
from dwsched.engine.notify.channels import send
from dwsched.engine.notify.guard import (
    DEFAULT_DENY,
    LINK_LOCAL,
    LOOPBACK,
    METADATA,
    PRIVATE,
    AddressRange,
    OutboundPolicy,
    Resolve,
    parse_ranges,
    system_resolve,
)
from dwsched.engine.notify.settings import NotifySettings, SmtpSettings, SmtpTls

__all__ = [
    "DEFAULT_DENY",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "LINK_LOCAL",
    "LOOPBACK",
    "METADATA",
    "PRIVATE",
    "SCHEMA",
    "AddressRange",
    "NotifySettings",
    "OutboundPolicy",
    "Resolve",
    "SmtpSettings",
    "SmtpTls",
    "parse_ranges",
    "send",
    "system_resolve",
    "webhook_body",
]
