"""`dwsched alerts history` after real alerts (both databases): a task fails in the engine,
two rules tell two real webhooks, one refusing the first try (500, then accepting the
retry) and one refusing for good (404); the table, whole at 80 columns, and `--json` show
each alert, its rule, and each delivery's outcome and tries."""

from __future__ import annotations

import json
from typing import Any

from dwsched.domain.alerting import retry_delay_ms
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.notify import DELIVERY_HEADER, NotifySettings
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from tests.cli.helpers import db_url_of, invoke, ok
from tests.engine.helpers import AheadClock, deploy_due, wait
from tests.engine.test_alerts import create_rule, shell
from tests.notify.receivers import HttpReceiver
from tests.support.server import LiveServer


def webhook_rule(live: LiveServer, project_id: int, name: str, url: str) -> int:
    return create_rule(
        live,
        {"Type": "Error", "Target": {"Type": "Project", "Ids": [project_id]}},
        {
            "Channels": ["Webhook"],
            "Receivers": [{"ReceiverType": "WebhookUrl", "ReceiverValues": [url]}],
        },
        name=name,
    )


def deliveries(live: LiveServer) -> dict[str, dict[str, Any]]:
    """The deliveries recorded so far, by the name of their alert's rule."""
    with live.store.read() as tx:
        events = tx.outbox.history(None, 10)
    return {
        json.loads(e["notice"])["facts"]["rule_name"]: d for e in events for d in e["deliveries"]
    }


def tried(live: LiveServer, rule: str, state: str, tries: int) -> bool:
    found = deliveries(live).get(rule)
    return found is not None and (found["state"], len(found["attempts_made"])) == (state, tries)


def test_history_shows_real_alerts_their_rules_and_each_deliverys_outcome_and_tries(
    live: LiveServer,
) -> None:
    receiver = HttpReceiver().start()
    try:
        project_id, _, _ = deploy_due(live.store, [shell("boom", "exit 3")], "00 00 01 * * ?")
        pager = webhook_rule(live, project_id, "pager", receiver.url("/pager?token=s3cr3t"))
        broken = webhook_rule(live, project_id, "broken", receiver.url("/status/404"))
        receiver.failing["/pager?token=s3cr3t"] = 1  # down for the first try
        clock = AheadClock()
        settings = AlertSettings(NotifySettings(), "http://console.example")
        service = Service(
            live.store, clock, WorkerSettings(slots=2, default_group_slots=2), alerts=settings
        )
        service.start()
        try:
            wait(
                lambda: tried(live, "pager", "pending", 1) and tried(live, "broken", "failed", 1),
                "a first try to each receiver, recorded",
                timeout_s=60,
            )
            waiting = invoke("alerts", "history", "--db", db_url_of(live.store))
            assert "WebhookUrl: pending, 1 try" in ok(waiting).output, waiting.output
            assert "127.0.0.1 answered HTTP 500" in waiting.output  # why it waits
            clock.skip(retry_delay_ms(1) + 1_000)  # the 500's retry is due
            wait(lambda: tried(live, "pager", "sent", 2), "the retry, recorded", timeout_s=30)
        finally:
            service.stop()
    finally:
        receiver.stop()
    db = db_url_of(live.store)

    listed = ok(invoke("alerts", "history", "--db", db, "--json")).output
    assert "s3cr3t" not in listed
    events = {e["rule_name"]: e for e in map(json.loads, listed.splitlines())}
    assert set(events) == {"pager", "broken"}
    ok_event, bad_event = events["pager"], events["broken"]
    assert (ok_event["rule_id"], ok_event["trigger"], ok_event["state"]) == (pager, "Error", "sent")
    assert (bad_event["rule_id"], bad_event["trigger"], bad_event["state"]) == (
        broken,
        "Error",
        "failed",
    )
    assert ok_event["task_instance_id"] == bad_event["task_instance_id"] is not None
    assert "boom" in ok_event["title"] and "boom" in bad_event["title"]
    (sent,) = ok_event["deliveries"]
    assert (sent["state"], sent["attempts"]) == ("sent", 2)
    assert [(a["attempt"], a["outcome"]) for a in sent["attempts_made"]] == [
        (1, "failed"),
        (2, "sent"),
    ]
    assert sent["attempts_made"][0]["detail"] == "127.0.0.1 answered HTTP 500"
    (failed,) = bad_event["deliveries"]
    assert (failed["state"], failed["attempts"], failed["detail"]) == (
        "failed",
        1,
        "127.0.0.1 answered HTTP 404",
    )
    # What the receiver saw: the two tries of one delivery, named alike, and the 404's one.
    names = {r.path: r.headers[DELIVERY_HEADER] for r in receiver.requests}
    assert len(receiver.requests) == 3
    assert [r.headers[DELIVERY_HEADER] for r in receiver.requests].count(str(sent["id"])) == 2
    assert names["/status/404"] == str(failed["id"])

    table = ok(invoke("alerts", "history", "--db", db, env={"COLUMNS": "80"})).output
    lines = table.splitlines()
    assert max(map(len, lines)) <= 80, table
    for whole in (
        f"pager ({pager})",
        f"broken ({broken})",
        "WebhookUrl: sent after 2 tries",
        "WebhookUrl: failed after 1 try",
        receiver.url("/status/****"),  # masked: the last segment may be a token
        "127.0.0.1 answered HTTP 404",
    ):
        assert whole in table, f"{whole!r} not whole in\n{table}"
    assert "s3cr3t" not in table
    row = {line.split()[0]: line.split() for line in lines if line[:1].isdigit()}
    assert row[str(ok_event["id"])][4:6] == ["Error", "sent"], table
    assert row[str(bad_event["id"])][4:6] == ["Error", "failed"], table
