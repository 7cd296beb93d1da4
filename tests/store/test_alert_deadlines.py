"""Deadlines checked on the scheduler's tick, under a manual clock (both databases): an
UnFinished rule fires when its time passes, once, again each IntervalInMinutes while the
instance stays unfinished, and no more once it succeeds; a silenced or over-Maximum alert
is recorded and not sent."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dwsched.domain import alerts as a
from dwsched.domain.models import InstanceType, Status
from dwsched.domain.runs import RunRequest
from dwsched.store import Store
from tests.store.test_dependencies_store import RUN, TZ, deploy, node, plan, tasks_of
from tests.support.factories import project

NOW = int(time.time() * 1000)
CONSOLE = "http://console.example"


def rule(
    store: Store,
    project_id: int,
    extension: dict[str, object],
    kind: str = "UnFinished",
    target: dict[str, object] | None = None,
    **notification: object,
) -> None:
    with store.write() as tx:
        owner = tx.users.create(f"owner{time.monotonic_ns()}", "owner", NOW)
        trigger = a.parse_trigger(
            {
                "Type": kind,
                "Target": target or {"Type": "Project", "Ids": [project_id]},
                "Extension": extension if kind != "UnFinished" else {"UnFinished": extension},
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
        spaces: dict[int | str, int | None] = (
            {project_id: project_id}
            if trigger.target.type is a.TargetType.PROJECT
            else dict.fromkeys(trigger.target.ids)
        )
        tx.alerts.create(a.NewRule("late", owner.id, True, trigger, found, spaces), "t", NOW)


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


def test_a_runs_own_alert_tells_its_maker_by_mail_when_an_instance_fails(store: Store) -> None:
    """CreateWorkflowInstances' DefaultRunProperties.Alert {Type: Failure, NoticeType: Sms}:
    the instance it made fails, the user who made it is told (by Mail: no SMS gateway)."""
    p = project(store)
    shell = {"script": {"runtime": {"command": "SHELL"}, "content": "exit 1"}}
    w = deploy(store, p.id, "00 00 01 * * ?", [{**node("boom"), **shell}])
    with store.write() as tx:
        tx.users.create("maker", "maker", NOW)
        tx.users.set_email("maker", "maker@example.com")
    request = RunRequest(
        project_id=p.id,
        name="by hand",
        type=InstanceType.SUPPLEMENT_DATA,
        workflow_id=w.id,
        root_task_ids=(w.tasks[0].id,),
        ranges=((RUN, RUN),),
        alert=("Failure", "Sms"),
    )
    store.submit_run(uuid.uuid4().hex, request, "maker", NOW)
    store.create_pending(NOW)
    store.release_queued(NOW)
    assert store.consume_alerts(NOW, CONSOLE) == []  # registers the alerts' cursor
    store.plan(NOW + 1000)
    claimed, _ = store.claim_tasks("w1", None, 10, NOW + 1000)
    assert len(claimed) == 1
    store.finish_task(claimed[0], Status.FAILURE, 1, "boom\n", NOW + 2000)
    assert store.consume_alerts(NOW + 3000, CONSOLE) == ["Failure"]
    assert store.consume_alerts(NOW + 4000, CONSOLE) == []
    with store.read() as tx:
        (event,) = tx.outbox.history([p.id], 10)
    assert event["rule_id"] is None and event["state"] == "pending"
    (delivery,) = event["deliveries"]
    assert delivery["channel"] == "Mail" and "maker@example.com" in delivery["receiver"]


def test_timeouts_error_counts_and_resource_group_queues_fire_on_the_tick(store: Store) -> None:
    """A task Running longer than TimeoutInMinutes; a workspace-day with Count failures; a
    resource group with Count tasks waiting: each fires once when it holds (under a manual
    clock), and not before."""
    p = project(store)
    shell = {"script": {"runtime": {"command": "SHELL"}, "content": "sleep 1"}}
    w = deploy(store, p.id, "00 00 01 * * ?", [{**node("slow"), **shell}])
    store.generate_many([plan(w, RUN)], NOW)
    rule(store, p.id, {"Timeout": {"TimeoutInMinutes": 30}}, kind="Timeout")
    rule(
        store,
        p.id,
        {"InstanceErrorCount": {"Count": 1}},
        kind="ResourceGroupWaitCount",
        target={"Type": "ResourceGroup", "Ids": ["etl"]},
    )
    due = tasks_of(store, w)[0].trigger_time
    store.plan(due)
    claimed, _ = store.claim_tasks("w1", None, 10, due)
    assert len(claimed) == 1
    assert store.check_alerts(due + 29 * 60_000, CONSOLE) == []
    assert store.check_alerts(due + 30 * 60_000, CONSOLE) == ["Timeout"]
    assert store.check_alerts(due + 31 * 60_000, CONSOLE) == []
    store.finish_task(claimed[0], Status.FAILURE, 1, "", due + 32 * 60_000)

    # A day with one failure in the workspace, and a task waiting for the group etl.
    rule(store, p.id, {"InstanceErrorCount": {"Count": 1}}, kind="InstanceErrorCount")
    busy = deploy(
        store,
        p.id,
        "00 00 01 * * ?",
        [{**node("queued"), **shell, "runtimeResource": {"resourceGroup": "etl"}}],
    )
    store.generate_many([plan(busy, RUN)], NOW)
    store.plan(due + 33 * 60_000)
    found = store.check_alerts(due + 33 * 60_000, CONSOLE)
    assert sorted(found) == ["InstanceErrorCount", "ResourceGroupWaitCount"]
    assert store.check_alerts(due + 34 * 60_000, CONSOLE) == []


def test_a_rule_that_no_longer_checks_out_holds_no_other_alert_back(store: Store) -> None:
    """A receiver whose extension the rule's check let through but the sender refuses: its
    alert is skipped (logged), the other rule's is recorded, the cursor moves on."""
    p = project(store)
    shell = {"script": {"runtime": {"command": "SHELL"}, "content": "exit 1"}}
    w = deploy(store, p.id, "00 00 01 * * ?", [{**node("boom"), **shell}])
    store.generate_many([plan(w, RUN)], NOW)
    for extension in ("{oops}", None):
        receiver: dict[str, object] = {
            "ReceiverType": "WebhookUrl",
            "ReceiverValues": ["http://127.0.0.1:9/hook"],
        }
        if extension is not None:
            receiver["Extension"] = extension
        with store.write() as tx:
            owner = tx.users.create(f"owner{time.monotonic_ns()}", "owner", NOW)
            trigger = a.parse_trigger(
                {"Type": "Error", "Target": {"Type": "Project", "Ids": [p.id]}}
            )
            found = a.parse_notification({"Channels": ["Webhook"], "Receivers": [receiver]})
            tx.alerts.create(a.NewRule("r", owner.id, True, trigger, found, {p.id: p.id}), "t", NOW)
    assert store.consume_alerts(NOW, CONSOLE) == []  # registers the alerts' cursor
    due = tasks_of(store, w)[0].trigger_time
    store.plan(due)
    claimed, _ = store.claim_tasks("w1", None, 10, due)
    store.finish_task(claimed[0], Status.FAILURE, 1, "", due + 1000)
    assert store.consume_alerts(due + 2000, CONSOLE) == ["Error"]
    assert store.consume_alerts(due + 3000, CONSOLE) == []
