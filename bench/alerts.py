"""Alert delay benchmark (a measurement, not a test), on SQLite or PostgreSQL.

A workspace with one workflow of N cycles (default 96, every 15 minutes of yesterday's run
date, all due now), each a SHELL task that fails (`exit 1`, no rerun), and an Error rule on
the workspace sending to a webhook served here. The engine runs in this process; for each
alert, the time from the task's FinishedTime (database) to the webhook's arrival here
(p50/p99): the status events are read every scheduler round (about a second), the alert
recorded, then its delivery leased and sent.

    .venv/bin/python bench/alerts.py [--db URL] [--cycles 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dwsched.clock import SystemClock
from dwsched.domain import alerts as a, flowspec
from dwsched.domain.models import NewProject
from dwsched.domain.schedule import Trigger, cycles_on
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.notify import NotifySettings
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.store import Store
from dwsched.store.schema import task_instances

TZ = "Asia/Shanghai"


def receiver() -> tuple[ThreadingHTTPServer, list[tuple[float, dict[str, Any]]]]:
    arrived: list[tuple[float, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            at = time.time() * 1000
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived.append((at, json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, arrived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--cycles", type=int, default=96)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'alerts.db'}"
    store = Store.open(url)
    server, arrived = receiver()
    now = SystemClock().now_ms()
    minutes = max(1, 1440 // args.cycles)
    text = json.dumps(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": "fails",
                        "trigger": {"cron": f"0 0/{minutes} * * * ?", "timezone": TZ},
                        "strategy": {"rerunTimes": 0},
                        "nodes": [
                            {
                                "id": "boom",
                                "script": {
                                    "runtime": {"command": "DIDE_SHELL"},
                                    "content": "exit 1",
                                },
                            }
                        ],
                    }
                ]
            },
        }
    )
    with store.write() as tx:
        project = tx.projects.create(NewProject(name=f"alerts_{now}", timezone=TZ), now)
        spec = flowspec.parse(text, TZ)
        _, deployed = tx.definitions.create(project.id, text, spec, "bench", now, nodes=True)
        owner = tx.users.create(f"bench{now}", "bench", now)
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        tx.alerts.create(
            a.NewRule(
                "bench",
                owner.id,
                True,
                a.parse_trigger(
                    {"Type": "Error", "Target": {"Type": "Project", "Ids": [project.id]}}
                ),
                a.parse_notification(
                    {
                        "Channels": ["Webhook"],
                        "Receivers": [{"ReceiverType": "WebhookUrl", "ReceiverValues": [hook]}],
                    }
                ),
                {project.id: project.id},
            ),
            "bench",
            now,
        )
    settings = AlertSettings(NotifySettings(), "http://127.0.0.1:8765")
    service = Service(
        store, SystemClock(), WorkerSettings(slots=8, default_group_slots=8), alerts=settings
    )
    service.start()
    time.sleep(2)  # the alerts' cursor is registered before anything fails
    run_date = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=1)
    t = deployed.spec.trigger
    assert t.cron is not None
    cycles = cycles_on(Trigger(t.cron, TZ, t.start_ms, t.end_ms), run_date)[: args.cycles]
    store.generate(deployed, [(run_date, cycles)], None, SystemClock().now_ms())
    deadline = time.monotonic() + 300
    while len(arrived) < len(cycles) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)
    service.stop()
    server.shutdown()
    finished = {}
    with store.read() as tx:
        for tid, end in tx.conn.execute(
            sa.select(task_instances.c.id, task_instances.c.finished_time).where(
                task_instances.c.workflow_id == deployed.id
            )
        ):
            finished[int(tid)] = int(end or 0)
    delays = sorted(at - finished[int(body["taskInstanceId"])] for at, body in arrived)
    ids = [body["taskInstanceId"] for _, body in arrived]
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"{len(arrived)} alerts for {len(cycles)} failures ({len(set(ids))} distinct): "
        f"failure -> webhook p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    print(
        json.dumps(
            {
                "db": url.split(":")[0],
                "alerts": len(arrived),
                "failures": len(cycles),
                "p50_ms": round(p50),
                "p99_ms": round(p99),
            }
        )
    )
    store.close()


if __name__ == "__main__":
    main()
