"""Alert rules firing on real runs (both databases): a rule made through the official SDK,
a task that really fails in the engine, a real HTTP receiver and a real SMTP server; the
outbox records each alert once however many rounds or processes look at it."""

from __future__ import annotations

import time
from typing import Any

from alibabacloud_dataworks_public20240518 import models as M

from dwsched.clock import SystemClock
from dwsched.domain.alerting import retry_delay_ms
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.notify import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    NotifySettings,
    SmtpSettings,
    SmtpTls,
)
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from tests.engine.helpers import AheadClock, deploy_due, wait
from tests.notify.conftest import receiver, smtp
from tests.notify.receivers import HttpReceiver, SmtpReceiver
from tests.support.server import LiveServer

NOW = int(time.time() * 1000)
__all__ = ["receiver", "smtp"]  # the real receivers' fixtures, shared with tests/notify


def shell(node_id: str, content: str) -> dict[str, Any]:
    return {"id": node_id, "script": {"runtime": {"command": "DIDE_SHELL"}, "content": content}}


def user(live: LiveServer, name: str, email: str | None = None) -> int:
    with live.store.write() as tx:
        found = next((u for u in tx.users.all() if u.name == name), None)
        if found is None:
            found = tx.users.create(name, name, NOW)
        if email is not None:
            tx.users.set_email(name, email)
        return found.id


def create_rule(
    live: LiveServer, trigger: dict[str, Any], notification: dict[str, Any], name: str = ""
) -> int:
    owner = user(live, "alert-owner")
    request = M.CreateAlertRuleRequest(
        name=name or f"rule-{time.monotonic_ns()}",
        owner=str(owner),
        enabled=True,
        trigger_condition=M.CreateAlertRuleRequestTriggerCondition().from_map(trigger),
        notification=M.CreateAlertRuleRequestNotification().from_map(notification),
    )
    rule_id = live.sdk().create_alert_rule(request).body.id
    assert isinstance(rule_id, int)
    return rule_id


def run_engine(live: LiveServer, settings: AlertSettings, until: Any, what: str) -> None:
    service = Service(
        live.store, SystemClock(), WorkerSettings(slots=4, default_group_slots=4), alerts=settings
    )
    service.start()
    try:
        wait(until, what, timeout_s=120)  # PostgreSQL: events wait for older transactions
        time.sleep(2.5)  # more rounds: nothing more may be sent
    finally:
        service.stop()


def test_a_failed_task_reaches_a_webhook_once_with_what_failed(
    live: LiveServer, receiver: HttpReceiver
) -> None:
    project_id, _, _ = deploy_due(
        live.store, [shell("boom", "echo first line; echo the error >&2; exit 3")], "00 00 01 * * ?"
    )
    create_rule(
        live,
        {"Type": "Error", "Target": {"Type": "Project", "Ids": [project_id]}},
        {
            "Channels": ["Webhook"],
            "Receivers": [
                {
                    "ReceiverType": "WebhookUrl",
                    "ReceiverValues": [receiver.url("/hook?access_token=s3cr3t")],
                }
            ],
        },
    )
    settings = AlertSettings(NotifySettings(), "http://console.example:8765")
    run_engine(live, settings, lambda: len(receiver.requests) >= 1, "the webhook")
    assert len(receiver.requests) == 1
    body = receiver.requests[0].json()
    assert body["trigger"] == "Error" and body["status"] == "Failure"
    assert body["task"]["name"] == "boom" and body["workspace"]["id"] == project_id
    assert any("the error" in line for line in body["logTail"])
    assert body["consoleUrl"].startswith(
        f"http://console.example:8765/console/instances/{body['workflowInstanceId']}"
    )
    with live.store.read() as tx:
        (event,) = [e for e in tx.outbox.history([project_id], 10)]
    assert event["state"] == "sent"
    (delivery,) = event["deliveries"]
    assert delivery["state"] == "sent" and len(delivery["attempts_made"]) == 1
    assert "s3cr3t" not in delivery["receiver"]  # shown masked


def test_a_retried_delivery_names_itself_alike_on_each_try(
    live: LiveServer, receiver: HttpReceiver
) -> None:
    """The receiver answers the first POST with 500: the delivery is tried again after its
    backoff (skipped on the clock) with the same X-Dwsched-Delivery and X-Dwsched-Event."""
    project_id, _, _ = deploy_due(live.store, [shell("boom", "exit 3")], "00 00 01 * * ?")
    create_rule(
        live,
        {"Type": "Error", "Target": {"Type": "Project", "Ids": [project_id]}},
        {
            "Channels": ["Webhook"],
            "Receivers": [{"ReceiverType": "WebhookUrl", "ReceiverValues": [receiver.url()]}],
        },
    )
    receiver.failing["/hook"] = 1
    clock = AheadClock()
    service = Service(
        live.store,
        clock,
        WorkerSettings(slots=4, default_group_slots=4),
        alerts=AlertSettings(NotifySettings(), "http://console.example"),
    )
    service.start()
    try:
        wait(lambda: len(receiver.requests) >= 1, "the first try", timeout_s=120)
        time.sleep(0.5)  # its outcome recorded: due again in retry_delay_ms(1)
        assert len(receiver.requests) == 1
        clock.skip(retry_delay_ms(1) + 1_000)
        wait(lambda: len(receiver.requests) >= 2, "the second try", timeout_s=30)
        time.sleep(1.5)  # more rounds: nothing more may be sent
    finally:
        service.stop()
    first, second = receiver.requests
    assert len(receiver.requests) == 2
    with live.store.read() as tx:
        (event,) = tx.outbox.history([project_id], 10)
    (delivery,) = event["deliveries"]
    for request in (first, second):
        assert request.headers[DELIVERY_HEADER] == str(delivery["id"])
        assert request.headers[EVENT_HEADER] == str(event["id"])
        body = request.json()
        assert (body["deliveryId"], body["eventId"]) == (delivery["id"], event["id"])
    assert first.body == second.body
    assert event["state"] == "sent" and delivery["state"] == "sent"
    assert [(a["attempt"], a["outcome"]) for a in delivery["attempts_made"]] == [
        (1, "failed"),
        (2, "sent"),
    ]
    assert "HTTP 500" in delivery["attempts_made"][0]["detail"]


def test_a_finished_task_is_mailed_to_its_owner_and_a_named_user(
    live: LiveServer, smtp: SmtpReceiver
) -> None:
    watcher = user(live, "watcher", "watcher@example.com")
    project_id, _, _ = deploy_due(live.store, [shell("fine", "echo done")], "00 00 01 * * ?")
    create_rule(
        live,
        {"Type": "Finished", "Target": {"Type": "Project", "Ids": [project_id]}},
        {
            "Channels": ["Mail"],
            "Receivers": [{"ReceiverType": "AliUid", "ReceiverValues": [str(watcher)]}],
        },
    )
    mail = SmtpSettings(
        host="127.0.0.1", port=smtp.port, from_address="dwsched@example.com", tls=SmtpTls.NONE
    )
    settings = AlertSettings(NotifySettings(smtp=mail), "http://console.example")
    run_engine(live, settings, lambda: len(smtp.messages) >= 1, "the mail")
    assert len(smtp.messages) == 1
    envelope, message = smtp.messages[0]
    assert envelope.rcpt_tos == ["watcher@example.com"]
    assert "Finished" in str(message["Subject"]) and "fine" in str(message["Subject"])
