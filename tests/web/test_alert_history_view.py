"""The console's alert history view (ListAlertHistory) over real HTTP, on both databases:
who may read it and how its parameters are checked. What it shows of real alerts is in the
browser test (tests/web/test_browser.py), where a failure raises one."""

from __future__ import annotations

from dwsched.clock import SystemClock
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
