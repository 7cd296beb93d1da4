"""`dwsched alerts rules|history|test` on a database: rules listed, a test notice sent to a
real webhook through the rule's receivers, and the history of real alerts with each
delivery's outcome."""

from __future__ import annotations

import json
import time
from pathlib import Path

from dwsched.domain import alerts as a
from dwsched.store import Store
from tests.cli.helpers import clean_error, invoke, ok
from tests.notify.receivers import HttpReceiver
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
