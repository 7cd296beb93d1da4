"""`dwsched alerts rules|history|test` on a database: rules listed, a test notice sent to a
real webhook through the rule's receivers, and the history of real alerts with each
delivery's outcome."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dwsched.cli.alerting import served_alerts, smtp_address
from dwsched.domain import alerts as a
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.notify import NotifySettings
from dwsched.store import Store
from tests.cli.helpers import clean_error, invoke, ok
from tests.notify.receivers import HttpReceiver, SmtpReceiver
from tests.support.factories import project

NOW = int(time.time() * 1000)


def rule(store: Store, project_id: int, url: str) -> int:
    with store.write() as tx:
        owner = tx.users.create(f"owner{time.monotonic_ns()}", "owner", NOW)
        trigger = a.parse_trigger(
            {"Type": "Error", "Target": {"Type": "Project", "Ids": [project_id]}}
        )
        notification = a.parse_notification(
            {
                "Channels": ["Webhook"],
                "Receivers": [{"ReceiverType": "WebhookUrl", "ReceiverValues": [url]}],
            }
        )
        return tx.alerts.create(
            a.NewRule("nightly", owner.id, True, trigger, notification, {project_id: project_id}),
            "t",
            NOW,
        )


def test_rules_are_listed_tested_and_their_history_shown(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'alerts.db'}"
    receiver = HttpReceiver().start()
    try:
        with Store.open(db) as store:
            p = project(store)
            rule_id = rule(store, p.id, receiver.url("/hook?access_token=s3cr3t"))
        listed = [
            json.loads(line)
            for line in ok(invoke("alerts", "rules", "--db", db, "--json")).output.splitlines()
        ]
        assert [(r["Id"], r["Name"], r["Type"]) for r in listed] == [(rule_id, "nightly", "Error")]
        assert "s3cr3t" not in ok(invoke("alerts", "rules", "--db", db)).output
        assert "No alerts yet" in ok(invoke("alerts", "history", "--db", db)).output

        said = ok(invoke("alerts", "test", str(rule_id), "--db", db, env={"COLUMNS": "200"})).output
        assert said.startswith("✓ WebhookUrl") and "s3cr3t" not in said
        (request,) = receiver.requests
        assert request.json()["trigger"] == "Test" and request.json()["rule"] == "nightly"
        clean_error(invoke("alerts", "test", "999", "--db", db), "999")
    finally:
        receiver.stop()
    said = invoke("alerts", "test", str(rule_id), "--db", db)  # the receiver is gone
    assert said.exit_code == 1 and said.output.startswith("✗ WebhookUrl")


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("mail.example.com", "mail.example.com", None),
        ("mail.example.com:2525", "mail.example.com", 2525),
        ("10.0.0.7:25", "10.0.0.7", 25),
        ("[::1]:25", "::1", 25),
        ("[2001:db8::1]", "2001:db8::1", None),
        ("2001:db8::25", "2001:db8::25", None),  # bare: the whole address, no port
    ],
)
def test_smtp_takes_names_ipv4_and_ipv6_addresses(text: str, host: str, port: int | None):
    assert smtp_address(text) == (host, port)


@pytest.mark.parametrize(
    "text",
    ["host:", "host:x", "host:0", "host:65536", ":25", "[::1", "[::1]x", "[host]:25", "a:b:c"],
)
def test_smtp_refuses_what_is_not_host_and_port(text: str):
    with pytest.raises(ValueError):
        smtp_address(text)


def test_the_console_link_of_an_ipv6_address_is_bracketed():
    settings = AlertSettings(NotifySettings(), "")
    assert served_alerts(settings, "::1", 8765).console_url == "http://[::1]:8765"
    assert served_alerts(settings, "::", 8765).console_url == "http://127.0.0.1:8765"


def test_mail_goes_to_an_smtp_server_at_an_ipv6_address(tmp_path: Path) -> None:
    """`--smtp [::1]:PORT` reaches a real SMTP server listening on ::1 (it used to be
    split at the last colon: host `[::1]`, which does not resolve)."""
    db = f"sqlite:///{tmp_path / 'alerts.db'}"
    server = SmtpReceiver(host="::1").start()
    try:
        with Store.open(db) as store:
            p = project(store)
            with store.write() as tx:
                watcher = tx.users.create("watcher", "watcher", NOW)
                tx.users.set_email("watcher", "watcher@example.com")
                trigger = a.parse_trigger(
                    {"Type": "Error", "Target": {"Type": "Project", "Ids": [p.id]}}
                )
                notification = a.parse_notification(
                    {
                        "Channels": ["Mail"],
                        "Receivers": [
                            {"ReceiverType": "AliUid", "ReceiverValues": [str(watcher.id)]}
                        ],
                    }
                )
                rule_id = tx.alerts.create(
                    a.NewRule("mailed", watcher.id, True, trigger, notification, {p.id: p.id}),
                    "t",
                    NOW,
                )
        smtp = ["--smtp-from", "dwsched@example.com", "--smtp-tls", "none"]
        said = invoke(
            "alerts", "test", str(rule_id), "--db", db, "--smtp", f"[::1]:{server.port}", *smtp
        )
        assert ok(said).output.startswith("✓ Mail"), said.output
        assert f"[::1]:{server.port}" in said.output
        ((envelope, message),) = server.messages
        assert envelope.rcpt_tos == ["watcher@example.com"]
        assert str(message["Message-ID"]).endswith("@[::1]>")
        clean_error(invoke("alerts", "test", str(rule_id), "--db", db, "--smtp", "a:b:c", *smtp))
    finally:
        server.stop()
