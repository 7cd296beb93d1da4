"""Alerts in the engine (docs/alerts.md): the scheduler's round judges what happened
(Store.consume_alerts, every round; Store.check_alerts, every CHECK_EVERY_MS), and a
delivery loop on a thread of its own sends what the outbox holds: it leases due
deliveries, sends each with engine.notify (outside any transaction), and records the
outcome, retrying with backoff (domain.alerting.retry_delay_ms) what may get through later.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from dwsched import metrics
from dwsched.clock import Clock
from dwsched.domain import alerting
from dwsched.domain.alerting import Leased
from dwsched.domain.notices import (
    ChannelKind,
    DeliveryIds,
    Notice,
    NoticeFacts,
    Outcome,
    Target,
    WebhookFormat,
    compose,
)
from dwsched.engine.notify import NotifySettings, send
from dwsched.store import Store

log = logging.getLogger("dwsched.alerts")

CHECK_EVERY_MS = 15_000  # conditions (deadlines, timeouts, counts) are looked at this often
LEASE_MS = 120_000  # longer than any one send may take (NotifySettings' total timeout)
DELIVERIES_PER_LEASE = 1  # one at a time: a lease never outlives the send it covers
_notice = msgspec.json.Decoder(Notice).decode
_target = msgspec.json.Decoder(dict[str, object]).decode


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """How this process sends alerts: the channels' settings and the console's address
    (the links in the notices)."""

    notify: NotifySettings
    console_url: str


class Alerter:
    """Judge (on the scheduler's round) and deliver (on a thread of its own)."""

    def __init__(self, store: Store, clock: Clock, settings: AlertSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._last_check: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def evaluate(self) -> int:
        """The status changes since the last round, and every CHECK_EVERY_MS the
        conditions; how many alerts were recorded (the delivery loop is woken for them)."""
        now = self.clock.now_ms()
        made: list[str] = []
        try:
            made += self.store.consume_alerts(now, self.settings.console_url)
        except Exception:  # the conditions are still looked at
            log.exception("judging the status changes for alerts failed; retrying")
        if self._last_check is None or now - self._last_check >= CHECK_EVERY_MS:
            made += self.store.check_alerts(now, self.settings.console_url)
            self._last_check = now
        for trigger in made:
            metrics.alert_event(trigger)
        if made:
            self._wake.set()
        return len(made)

    def deliver(self) -> int:
        """Send the deliveries due now, a lease at a time; how many were tried."""
        tried = 0
        while not self._stop.is_set():
            leased = self.store.lease_deliveries(
                self.name, self.clock.now_ms(), DELIVERIES_PER_LEASE, LEASE_MS
            )
            for delivery in leased:
                self._send(delivery)
            tried += len(leased)
            if len(leased) < DELIVERIES_PER_LEASE:
                break
        return tried

    def _send(self, delivery: Leased) -> None:
        started = self.clock.now_ms()
        try:
            ids = DeliveryIds(delivery.id, delivery.event_id)
            notice = _notice(delivery.notice)
            outcome = send(notice, target_of(delivery), self.settings.notify, ids)
            delivered, detail, retryable = outcome.delivered, outcome.detail, outcome.retryable
        except Exception:  # a bug in a channel must not stop the others
            log.exception("alert delivery %s failed", delivery.id)
            delivered, detail, retryable = False, "internal error while sending", True
        now = self.clock.now_ms()
        retry_at = None
        if not delivered and retryable and delivery.attempt < alerting.MAX_DELIVERY_ATTEMPTS:
            retry_at = now + alerting.retry_delay_ms(delivery.attempt)
        outcome_name = "sent" if delivered else "failed"
        metrics.alert_delivery(delivery.channel, outcome_name if retry_at is None else "retrying")
        if not self.store.finish_delivery(
            delivery, self.name, outcome_name, detail, started, now, retry_at
        ):
            log.warning("alert delivery %s: the lease ran out while sending", delivery.id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dwsched-alerts", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver()
            except Exception:
                log.exception("alert deliveries failed; retrying")
            self._wake.wait(1.0)
            self._wake.clear()

    def stop(self, timeout_s: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def target_of(delivery: Leased) -> Target:
    """The Target a delivery's stored address holds."""
    value = _target(delivery.address.encode())
    return Target(
        ChannelKind(str(value["kind"])),
        str(value["address"]),
        WebhookFormat(str(value["format"])),
        at_all=bool(value["atAll"]),
    )


def send_test(
    store: Store, rule_id: int, rule_name: str, settings: AlertSettings, now_ms: int
) -> list[tuple[str, str, Outcome]]:
    """Send a sample notice through each receiver the rule reaches now (`dwsched alerts
    test`): (channel, receiver as shown, outcome) each, nothing recorded."""
    facts = NoticeFacts(
        rule_name=rule_name,
        trigger="Test",
        workspace="-",
        workflow="-",
        task_name="a test of this rule's receivers",
        occurred_at=datetime.fromtimestamp(now_ms / 1000, UTC),
    )
    notice = compose(facts, settings.console_url)
    sent = []
    for channel, receiver, address in store.alert_targets(rule_id):
        leased = Leased(0, 0, channel, receiver, address, 1, "")
        sent.append((channel, receiver, send(notice, target_of(leased), settings.notify)))
    return sent
