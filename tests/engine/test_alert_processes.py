"""Alerts across real processes (both databases): a scheduler killed with SIGKILL before it
could deliver, then restarted, delivers once; two schedulers on one database never send
the same alert twice."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from dwsched.domain import alerts as a
from dwsched.domain.models import Status
from dwsched.store import Store
from tests.cli.helpers import cli_env, dwsched_process
from tests.engine.helpers import deploy_due, wait
from tests.notify.receivers import HttpReceiver

NOW = int(time.time() * 1000)


def failing_tasks(store: Store, count: int) -> tuple[int, list[int]]:
    """A workspace whose `count` task instances have failed (claimed and ended here, with
    no engine running): (the workspace, their ids)."""
    nodes = [
        {"id": f"t{k}", "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "exit 1"}}
        for k in range(count)
    ]
    project_id, _, _ = deploy_due(store, nodes, "00 00 01 * * ?")
    return project_id, []


def error_rule(store: Store, project_id: int, url: str) -> None:
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
        tx.alerts.create(
            a.NewRule("r", owner.id, True, trigger, notification, {project_id: project_id}),
            "test",
            NOW,
        )


def fail_all(store: Store, project_id: int, count: int) -> None:
    """Run the workspace's `count` due tasks to Failure in this process (no worker runs),
    as many at a time as the resource group's slots allow."""
    failed = 0
    deadline = time.monotonic() + 60
    while failed < count and time.monotonic() < deadline:
        now = int(time.time() * 1000)
        store.plan(now)
        claimed, _ = store.claim_tasks("test-worker", None, 100, now)
        for c in claimed:
            store.finish_task(c, Status.FAILURE, 1, "it failed\n", now + 1)
        failed += len(claimed)
        time.sleep(0.05)
    assert failed == count


def outbox_events(store: Store) -> int:
    with store.read() as tx:
        return int(tx.conn.execute(sa.text("SELECT count(*) FROM alert_events")).scalar_one())


def reading(store: Store) -> bool:
    """The alerts' cursor exists: a scheduler reads the events from there on (a consumer's
    first read starts at the newest event)."""
    with store.read() as tx:
        found = tx.conn.execute(
            sa.text("SELECT count(*) FROM event_cursors WHERE consumer = 'alerts'")
        ).scalar_one()
    return int(found) == 1


def tries(store: Store) -> int:
    with store.read() as tx:
        return int(
            tx.conn.execute(sa.text("SELECT count(*) FROM alert_delivery_attempts")).scalar_one()
        )


def test_a_scheduler_killed_before_delivering_delivers_once_after_restart(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    receiver = HttpReceiver()  # not listening yet: the first try is refused
    receiver.start()
    url = receiver.url("/hook")
    receiver.stop()  # the port is free: connections are refused
    project_id, _ = failing_tasks(store, 1)
    error_rule(store, project_id, url)
    env = cli_env(DWSCHED_SECRET_KEY_FILE=str(tmp_path / "key"))
    with dwsched_process("scheduler", "--db", db_url, env=env) as first:
        wait(lambda: reading(store), "the scheduler to read the status events")
        fail_all(store, project_id, 1)
        wait(
            lambda: tries(store) >= 1,
            "a first try, refused (nothing listens)",
            60,
        )
        os.kill(first.popen.pid, signal.SIGKILL)
        first.popen.wait(10)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    again = HttpReceiver()
    again.start(port)
    try:
        with dwsched_process("scheduler", "--db", db_url, env=env) as second:
            wait(lambda: len(again.requests) >= 1, "the delivery after restart", 90)
            time.sleep(3)  # nothing more comes
            second.popen.send_signal(signal.SIGINT)
            second.popen.wait(20)
        assert len(again.requests) == 1
        assert again.requests[0].json()["trigger"] == "Error"
    finally:
        again.stop()
    assert outbox_events(store) == 1


def test_two_schedulers_never_send_an_alert_twice(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    receiver = HttpReceiver().start()
    try:
        project_id, _ = failing_tasks(store, 12)
        error_rule(store, project_id, receiver.url("/hook"))
        env = cli_env(DWSCHED_SECRET_KEY_FILE=str(tmp_path / "key"))
        with (
            dwsched_process("scheduler", "--db", db_url, env=env) as first,
            dwsched_process("scheduler", "--db", db_url, env=env) as second,
        ):
            wait(lambda: reading(store), "the schedulers to read the status events")
            fail_all(store, project_id, 12)
            wait(lambda: len(receiver.requests) >= 12, "12 deliveries", 90)
            time.sleep(3)
            for p in (first, second):
                p.popen.send_signal(signal.SIGINT)
            for p in (first, second):
                p.popen.wait(20)
        tasks = [r.json()["taskInstanceId"] for r in receiver.requests]
        assert len(tasks) == 12 and len(set(tasks)) == 12
    finally:
        receiver.stop()
