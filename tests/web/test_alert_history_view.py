"""The console's alert history view (ListAlertHistory) over real HTTP, on both databases:
who may read it and how its parameters are checked. What it shows of real alerts is in the
browser test (tests/web/test_browser.py), where a failure raises one."""

from __future__ import annotations

from dwsched.clock import SystemClock
from dwsched.store.outbox import NewAlert, NewDelivery
from tests.support.factories import project
from tests.support.server import LiveServer
from tests.web.test_console_http import console_answer, live, sign_in, user

__all__ = ["live"]  # the fixture: a server on each database


def test_the_alert_history_is_shown_to_who_may_list_the_workspaces_instances(
    live: LiveServer,
) -> None:
    shop = project(live.store, "shop").id
    other = project(live.store, "other").id
    member = user(live, "member", "ReadOnlyAccess")
    user(live, "stranger", "ReadOnlyAccess")
    with live.store.write() as tx:
        tx.members.add(shop, member, ["role_project_guest"], SystemClock().now_ms())
    reader = sign_in(live, "member")
    answer = reader.call("ListAlertHistory", ProjectId=shop).json()
    assert answer["Alerts"] == [] and answer["More"] is False
    assert answer["TimeZone"]
    status, code, message = console_answer(reader, "ListAlertHistory", ProjectId=other)
    assert (status, code) == (403, "Forbidden.RAM"), message
    status, code, message = console_answer(
        sign_in(live, "stranger"), "ListAlertHistory", ProjectId=shop
    )
    assert status == 403, message
    status, code, message = console_answer(reader, "ListAlertHistory", ProjectId=shop, PageSize=0)
    assert (status, code) == (400, "InvalidParameter") and "PageSize" in message
    status, code, message = console_answer(reader, "ListAlertHistory")
    assert (status, code) == (400, "MissingParameter") and "ProjectId" in message


def test_the_history_names_users_without_addresses_and_masks_urls(live: LiveServer) -> None:
    """A reader of the workspace sees a mailed user by name (not their e-mail address) and a
    webhook masked as GetAlertRule masks it, however the label was recorded."""
    shop = project(live.store, "shop").id
    member = user(live, "member", "ReadOnlyAccess")
    now = SystemClock().now_ms()
    deliveries = (
        NewDelivery("Mail", "cfo <cfo.private@corp.example>", "cfo.private@corp.example"),
        NewDelivery("WebhookUrl", "https://hooks.example.com/T0KENsecret…", "https://x/y"),
        NewDelivery("WebhookUrl", "watcher: https://hooks.example.com/s3cr3t", "https://x/z"),
    )
    notice = '{"title": "t", "summary": "s", "facts": {"rule_name": "r", "task_name": "load"}}'
    with live.store.write() as tx:
        tx.members.add(shop, member, ["role_project_guest"], now)
        tx.outbox.record(
            NewAlert("k1", None, "Error", shop, None, None, notice, "pending", deliveries), now
        )
    (shown,) = sign_in(live, "member").call("ListAlertHistory", ProjectId=shop).json()["Alerts"]
    assert [d["Receiver"] for d in shown["Deliveries"]] == [
        "cfo",
        "https://hooks.example.com/****",
        "watcher: https://hooks.example.com/****",
    ]
    assert shown["TaskName"] == "load" and shown["State"] == "pending"
