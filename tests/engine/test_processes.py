"""The engine's roles as real processes on one database (SQLite and PostgreSQL): two
`dwsched worker`s and a `dwsched scheduler` never run one attempt twice; a `dwsched serve`
killed with SIGKILL mid-run loses nothing, and after a restart the orphaned attempt's process
is found by its identity, killed, and the attempt failed with a log line that says so.

Instances are made through the store for a past run date, so that they are due at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dwsched.domain import flowspec
from dwsched.domain.models import EnvType
from dwsched.domain.queries import InstanceQuery, page
from dwsched.domain.task_instances import TaskInstanceQuery
from dwsched.engine.runner import process_alive
from dwsched.store import Store, definitions
from tests.cli.helpers import DWSCHED, Process, cli_env, dwsched_process
from tests.engine.helpers import TZ, deploy_due, wait
from tests.support.factories import project
from tests.support.server import free_port


def _statuses(store: Store, project_id: int, biz_ms: int) -> list[str]:
    _, found = store.list_instances(
        InstanceQuery(
            project_id=project_id, env_type=EnvType.PROD, biz_date_ms=biz_ms, page=page(1, 500)
        )
    )
    return [i.status.value for i in found.items]


def _interrupt_all(*processes: Process, timeout_s: float = 20) -> list[int]:
    """SIGINT (Ctrl-C) to every process at once, so that they stop side by side rather
    than one after the other; their exit codes. Fails if one does not end in time."""
    for process in processes:
        process.popen.send_signal(signal.SIGINT)
    codes: list[int] = []
    for process in processes:
        try:
            codes.append(process.popen.wait(timeout_s))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"dwsched did not stop within {timeout_s}s of SIGINT") from None
    time.sleep(0.1)  # let the readers drain (as Process.interrupt does)
    return codes


def test_two_workers_never_run_an_attempt_twice(store: Store, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    nodes = [
        {
            "id": "record",
            "script": {
                "runtime": {"command": "DIDE_SHELL"},
                "content": f'echo "$DWSCHED_TASK_INSTANCE_ID $DWSCHED_RUN_NUMBER" >> {out}',
            },
        }
    ]
    project_id, biz_ms, triggers = deploy_due(store, nodes, "0 0/30 * * * ?")
    assert len(triggers) == 48
    with (
        dwsched_process("scheduler", "--db", db_url) as scheduler,
        dwsched_process("worker", "--db", db_url, "--slots", "4") as first,
        dwsched_process("worker", "--db", db_url, "--slots", "4") as second,
    ):
        wait(
            lambda: _statuses(store, project_id, biz_ms).count("Success") == 48,
            "48 instances to succeed",
        )
        codes = _interrupt_all(first, second, scheduler)
    assert codes == [0, 0, 0], (first.stderr, second.stderr, scheduler.stderr)
    runs = out.read_text().split("\n")[:-1]
    assert len(runs) == 48
    assert len({r.split()[0] for r in runs}) == 48  # 48 task instances, one run each
    assert {r.split()[1] for r in runs} == {"1"}
    workers_seen = first.stdout + second.stdout
    assert "worker (4 slots)" in workers_seen


def test_kill_9_then_restart_recovers_the_orphaned_attempt(store: Store, db_url: str) -> None:
    nodes = [
        {"id": "long", "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "sleep 300"}}
    ]
    project_id, biz_ms, _ = deploy_due(store, nodes, "00 30 02 * * ?")
    port = free_port()
    popen = subprocess.Popen(
        [
            str(DWSCHED),
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    try:
        wait(lambda: _statuses(store, project_id, biz_ms) == ["Running"], "the attempt to run")
        found: list[tuple[int | None, str | None, str | None]] = []

        def recorded() -> bool:
            with store.read() as tx:
                found[:] = [tx.attempts.process(c.id) for c in tx.attempts.stale(2**62)]
            return bool(found) and found[0][1] is not None

        wait(recorded, "the attempt's process to be recorded")
        pid, identity, _worker = found[0]
        assert pid is not None and identity is not None
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(10)
    finally:
        if popen.poll() is None:
            popen.kill()
    # The server is gone; its task's process group lives on, orphaned; nothing is lost.
    assert process_alive(pid, identity)
    assert _statuses(store, project_id, biz_ms) == ["Running"]

    with dwsched_process("serve", "--db", db_url, "--port", str(free_port())) as again:
        wait(lambda: _statuses(store, project_id, biz_ms) == ["Failure"], "recovery")
        wait(lambda: not process_alive(pid, identity), "the orphan to be killed", 10)
        assert again.interrupt() == 0
    with store.read() as tx:
        log = tx.task_instances.log(_only_task(store, project_id, biz_ms), None)
    assert "is no longer running" in log and "was killed" in log, log


def _only_task(store: Store, project_id: int, biz_ms: int) -> int:
    with store.read() as tx:
        _, found = tx.task_instances.page(
            TaskInstanceQuery(project_id=project_id, biz_date_ms=biz_ms)
        )
    (only,) = found.items
    return only.id


def test_a_scheduler_killed_while_generating_loses_and_duplicates_nothing(
    store: Store, db_url: str
) -> None:
    """Many workflows deployed Immediately: `dwsched scheduler` makes today's instances in
    chunks of transactions; it is killed (SIGKILL) as soon as the first instances appear,
    restarted, and in the end every workflow has exactly its instances."""
    p = project(store)
    now = int(time.time() * 1000)
    count = 1200  # generated in 3 transactions (PLANS_PER_TRANSACTION 500)
    # The setup: 1200 deployments, written by the store's own functions as
    # Store.create_definition writes one, but in one transaction instead of 1200 (it takes a
    # third less time; the rows are the same).
    with store.write() as tx:
        for k in range(count):
            text = json.dumps(
                {
                    "version": "1.1.0",
                    "kind": "CycleWorkflow",
                    "spec": {
                        "workflows": [
                            {
                                "name": f"w{k}",
                                "trigger": {"cron": "0 0 0/8 * * ?", "timezone": TZ},
                                "strategy": {"instanceMode": "Immediately"},
                                "nodes": [
                                    {"id": "n", "script": {"runtime": {"command": "VIRTUAL"}}}
                                ],
                            }
                        ]
                    },
                }
            )
            spec = flowspec.parse(text, TZ)
            definition = definitions.insert_definition(tx.conn, p.id, text, spec, now)
            definitions.deploy(tx.conn, definition, spec, "t", now, with_nodes=True)
    with store.read() as tx:
        assert len(tx.workflows.scheduled()) == count
    today = datetime.fromtimestamp(now / 1000, ZoneInfo(TZ)).date()  # the deploy's day
    biz = datetime(today.year, today.month, today.day, tzinfo=ZoneInfo(TZ)) - timedelta(days=1)
    biz_ms = int(biz.timestamp() * 1000)

    def made() -> int:
        _, found = store.list_instances(
            InstanceQuery(
                project_id=p.id, env_type=EnvType.PROD, biz_date_ms=biz_ms, page=page(1, 1)
            )
        )
        return found.total

    popen = subprocess.Popen(
        [str(DWSCHED), "scheduler", "--db", db_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    try:
        wait(lambda: made() > 0, "the first instances")
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(10)
    finally:
        if popen.poll() is None:
            popen.kill()
    at_kill = made()
    with dwsched_process("scheduler", "--db", db_url) as again:
        wait(lambda: made() == 3 * count, f"{3 * count} instances (had {at_kill} at the kill)")
        time.sleep(0.5)  # nothing more comes
        assert made() == 3 * count
        assert again.interrupt() == 0
    _, found = store.list_instances(
        InstanceQuery(project_id=p.id, env_type=EnvType.PROD, biz_date_ms=biz_ms, page=page(1, 500))
    )
    assert len(found.items) == 500
