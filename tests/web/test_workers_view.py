"""The console's Workers view (ListWorkers) over real HTTP, on both databases: what the
workers' and resource groups' rows hold, for administrators only."""

from __future__ import annotations

from dwsched.clock import SystemClock
from dwsched.domain.workers import WorkerRecord
from tests.support.server import LiveServer
from tests.web.test_console_http import console_answer, live, sign_in, user

__all__ = ["live"]  # the fixture: a server on each database


def test_the_workers_view_shows_the_rows_to_administrators_only(live: LiveServer) -> None:
    now = SystemClock().now_ms()
    with live.store.write() as tx:
        tx.workers.register(
            WorkerRecord("w-1", "node-1", 41, "41:7", ("etl", ""), 4, now - 2000, now - 1000)
        )
        tx.resource_groups.set_slots("etl", 1, now)
    user(live, "boss", "AdministratorAccess")
    user(live, "reader", "ReadOnlyAccess")
    answer = sign_in(live, "boss").call("ListWorkers").json()
    (shown,) = [w for w in answer["Workers"] if w["Name"] == "w-1"]
    assert shown["Host"] == "node-1" and shown["Pid"] == 41
    assert shown["Groups"] == ["etl", ""] and shown["State"] == "Alive"
    assert shown["HeartbeatTime"] == now - 1000 and shown["Running"] == 0
    assert answer["ResourceGroups"] == [{"Name": "etl", "Slots": 1}]
    assert answer["DefaultSlots"] == 4
    status, code, message = console_answer(sign_in(live, "reader"), "ListWorkers")
    assert (status, code) == (403, "Forbidden.RAM"), message
    assert "AdministerWorkers" in message
