"""`send`: one notice to one target, by the target's kind, answered by an `Outcome`."""

from __future__ import annotations

import logging

from dwsched.domain.notices import (
    NO_GATEWAY,
    UNSUPPORTED_KINDS,
    ChannelKind,
    DeliveryIds,
    Notice,
    Outcome,
    Target,
    redact,
)
from dwsched.engine.notify.bodies import identity_headers, payload, robot_refusal
from dwsched.engine.notify.errors import Undeliverable
from dwsched.engine.notify.mail import send_mail
from dwsched.engine.notify.outbound import post_json
from dwsched.engine.notify.settings import NotifySettings

log = logging.getLogger("dwsched.notify")


def send(
    notice: Notice, target: Target, settings: NotifySettings, ids: DeliveryIds | None = None
) -> Outcome:
    """Deliver `notice` to `target` once (no retry, no redirect), within the bounds and the
    outbound guard of `settings`, as the recorded delivery `ids` (a webhook names it in its
    headers, dwsched's JSON body in its fields; None: a sample notice, named nowhere).
    Never raises for a delivery problem: the `Outcome` says what happened, in words safe to
    store and show, and whether a retry may help."""
    try:
        outcome = _deliver(notice, target, settings, ids)
    except Undeliverable as exc:
        outcome = Outcome.failed(exc.detail, retryable=exc.retryable)
    log.info(
        "notice kind=%s target=%s delivered=%s retryable=%s detail=%s",
        target.kind.value,
        redact(target.address),
        outcome.delivered,
        outcome.retryable,
        outcome.detail,
    )
    return outcome


def _deliver(
    notice: Notice, target: Target, settings: NotifySettings, ids: DeliveryIds | None
) -> Outcome:
    if target.kind in UNSUPPORTED_KINDS:
        raise Undeliverable(NO_GATEWAY.format(kind=target.kind.value))
    if target.kind is ChannelKind.MAIL:
        return send_mail(notice, target.address, settings.smtp)
    body = payload(notice, target, ids)
    reply = post_json(target.address, body, settings, identity_headers(ids))
    refusal = robot_refusal(target.kind, reply.body)
    if refusal is not None:
        raise refusal
    where = redact(target.address)
    cut = " (answer cut)" if reply.cut else ""
    return Outcome.ok(f"{target.kind.value} {where} answered HTTP {reply.status}{cut}")
