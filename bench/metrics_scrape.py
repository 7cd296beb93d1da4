"""The cost of a /metrics scrape (a measurement, not a test).

Builds a database through the store: 100,000 workflow instances over 100 BizDates of
history (1,000 a day, so the scrape's window of the latest BizDates holds a few thousand),
starts `dwsched serve --no-engine` as a separate process, and times 200 scrapes of /metrics
and 200 of /healthz in the same run, one connection, one after another; then the database
read alone (Store.state_gauges) in this process.

    .venv/bin/python bench/metrics_scrape.py
    .venv/bin/python bench/metrics_scrape.py --db postgresql://postgres@127.0.0.1/bench_metrics

Prints one JSON line with the figures (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from dwsched.clock import SystemClock
from dwsched.domain.gauges import gauge_days
from dwsched.domain.models import EnvType, InstanceType, NewProject, Status, WorkflowInstance
from dwsched.store import Store
from list_instances import free_port, start, stop

STATUSES = (Status.SUCCESS,) * 17 + (Status.FAILURE, Status.RUNNING, Status.NOT_RUN)


def build(store: Store, days: int, per_day: int) -> None:
    now = SystemClock().now_ms()
    with store.write() as tx:
        project = tx.projects.create(NewProject(name="bench_metrics", timezone="UTC"), now)
    today = datetime.now(UTC).date()
    base = WorkflowInstance(
        id=0,
        project_id=project.id,
        env_type=EnvType.PROD,
        biz_day=today,
        type=InstanceType.NORMAL,
        status=Status.SUCCESS,
        workflow_id=1,
        workflow_task_instance_id=0,
        unified_workflow_instance_id=0,
        name="",
        owner="1000",
        create_user="1000",
        modify_user="1000",
        trigger_time=now,
        started_time=now,
        finished_time=now,
        create_time=now,
        modify_time=now,
        workflow_parameters="",
        tags=(),
    )
    n = 0
    for back in range(days):
        day = today - timedelta(days=back)
        items = []
        for i in range(per_day):
            n += 1
            items.append(
                replace(
                    base,
                    id=n,
                    biz_day=day,
                    status=STATUSES[n % len(STATUSES)],
                    workflow_id=1 + i,
                    workflow_task_instance_id=50_000_000 + n,
                    unified_workflow_instance_id=n,
                    name=f"wf_{i}",
                )
            )
        store.import_instances(items, [], replace=False, now_ms=now)


def timed(call: Callable[[], object], count: int) -> dict[str, float]:
    for _ in range(10):  # warm-up
        call()
    spent = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    spent.sort()
    return {
        "p50_ms": round(statistics.median(spent), 3),
        "p99_ms": round(spent[int(len(spent) * 0.99) - 1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'metrics.db'}"
    with Store.open(url) as store:
        build(store, args.days, args.per_day)
        state = timed(lambda: store.state_gauges(*gauge_days(SystemClock().now_ms())), 200)
    port = free_port()
    server = start(
        [
            *(sys.executable, "-m", "dwsched", "serve", "--db", url, "--port", str(port)),
            *("--no-engine", "--log-level", "warning"),
        ],
        port,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            size = len(client.get("/metrics").content)
            scrape = timed(lambda: client.get("/metrics").raise_for_status(), args.scrapes)
            healthz = timed(lambda: client.get("/healthz").raise_for_status(), args.scrapes)
    finally:
        stop(server)
    figures = {
        "instances": args.days * args.per_day,
        "scrape_bytes": size,
        "metrics": scrape,
        "healthz": healthz,
        "state_gauges_read": state,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
