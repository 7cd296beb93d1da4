"""Deadlines checked on the scheduler's tick, under a manual clock (both databases): an
UnFinished rule fires when its time passes, once, again each IntervalInMinutes while the
instance stays unfinished, and no more once it succeeds; a silenced or over-Maximum alert
is recorded and not sent."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dwsched.domain import alerts as a
from dwsched.store import Store
from tests.store.test_dependencies_store import RUN, TZ, deploy, node, plan, tasks_of
from tests.support.factories import project

NOW = int(time.time() * 1000)
CONSOLE = "http://console.example"


def rule(
    store: Store, project_id: int, extension: dict[str, object], **notification: object
) -> None:
    with store.write() as tx:
        owner = tx.users.create(f"owner{time.monotonic_ns()}", "owner", NOW)
        trigger = a.parse_trigger(
            {
                "Type": "UnFinished",
                "Target": {"Type": "Project", "Ids": [project_id]},
                "Extension": {"UnFinished": extension},
            }
        )
        found = a.parse_notification(
            {
                "Channels": ["Webhook"],
                "Receivers": [
                    {"ReceiverType": "WebhookUrl", "ReceiverValues": ["http://127.0.0.1:9/hook"]}
                ],
                **notification,
            }
        )
        tx.alerts.create(
            a.NewRule("late", owner.id, True, trigger, found, {project_id: project_id}), "t", NOW
        )


def states(store: Store) -> list[str]:
    with store.read() as tx:
        return [
            str(s)
            for s in tx.conn.execute(
                sa.text("SELECT state FROM alert_events ORDER BY id")
            ).scalars()
        ]


def local(hour: int, minute: int) -> int:
    """hh:mm of the run date RUN (the BizDate's next day) in the workspace's zone."""
    return int(
        datetime(RUN.year, RUN.month, RUN.day, hour, minute, tzinfo=ZoneInfo(TZ)).timestamp() * 1000
    )


def test_an_unfinished_instance_is_alerted_when_its_time_passes_and_every_interval(
    store: Store,
) -> None:
    p = project(store)
    w = deploy(store, p.id, "00 00 01 * * ?", [node("late")])
    store.generate_many([plan(w, RUN)], NOW)
    rule(store, p.id, {"UnFinishedTime": "01:30"}, IntervalInMinutes=30)
    deadline = local(1, 30)
    # The rule checks the BizDates of the last two days as seen from `now`.
    assert store.check_alerts(deadline - 1000, CONSOLE) == []
    assert store.check_alerts(deadline, CONSOLE) == ["UnFinished"]
    assert store.check_alerts(deadline + 60_000, CONSOLE) == []  # the same alert
    assert store.check_alerts(deadline + 30 * 60_000, CONSOLE) == ["UnFinished"]  # repeat 1
    assert states(store) == ["pending", "pending"]
    (task,) = tasks_of(store, w)
    with store.write() as tx:
        tx.conn.execute(
            sa.text(f"UPDATE task_instances SET status = 'Success' WHERE id = {task.id}")
        )
    assert store.check_alerts(deadline + 60 * 60_000, CONSOLE) == []


def test_silenced_and_over_maximum_alerts_are_recorded_not_sent(store: Store) -> None:
    p = project(store)
    w = deploy(store, p.id, "00 00 01 * * ?", [node("late")])
    store.generate_many([plan(w, RUN)], NOW)
    rule(
        store,
        p.id,
        {"UnFinishedTime": "02:00"},
        IntervalInMinutes=5,
        Maximum=1,
        SilenceStartTime="02:00",
        SilenceEndTime="02:10",
    )
    assert store.check_alerts(local(2, 0), CONSOLE) == ["UnFinished"]
    assert store.check_alerts(local(2, 10), CONSOLE) == ["UnFinished"]
    assert store.check_alerts(local(2, 15), CONSOLE) == ["UnFinished"]
    assert states(store) == ["silenced", "pending", "over_maximum"]
    with store.read() as tx:
        deliveries = tx.conn.execute(sa.text("SELECT count(*) FROM alert_deliveries")).scalar()
    assert deliveries == 1
