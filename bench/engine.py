"""Engine benchmark (a measurement, not a test), on SQLite or PostgreSQL.

1. Generation: deploy N daily workflows (default 10,000; one node each), then time the
   scheduler making one run date's Normal instances for all of them (target <= 10 s).
2. Dispatch latency: chains of SHELL tasks (`true`) run by the engine in this process; for
   each task that waits for an upstream, the time from the upstream's finish to its own
   start (p50/p99; target p50 <= 100 ms).
3. Throughput: M workflow instances of one VIRTUAL node, then M of one SHELL node running
   `true`, all due at once; task runs per second until every one has succeeded (targets
   >= 200/s and >= 50/s).

    .venv/bin/python bench/engine.py [--db URL] [--workflows 10000] [--runs 1000]

Prints a table and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dwsched.clock import ManualClock, SystemClock
from dwsched.domain import flowspec
from dwsched.domain.models import NewProject
from dwsched.domain.schedule import Trigger, cycles_on, generation_time_ms
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.store import Store
from dwsched.store.schema import task_instances

TZ = "Asia/Shanghai"


def spec_text(name: str, nodes: list[dict[str, Any]], cron: str = "00 30 02 * * ?") -> str:
    return json.dumps(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": name,
                        "trigger": {"cron": cron, "timezone": TZ},
                        "strategy": {"rerunTimes": 0},
                        "nodes": nodes,
                    }
                ]
            },
        }
    )


def chain(kind: str, length: int, content: str = "") -> list[dict[str, Any]]:
    nodes = []
    for k in range(length):
        n: dict[str, Any] = {
            "id": f"n{k}",
            "script": {"runtime": {"command": kind}, "content": content},
            "outputs": {"nodeOutputs": [{"data": f"n{k}_out"}]},
        }
        if k:
            n["inputs"] = {"nodeOutputs": [{"data": f"n{k - 1}_out"}]}
        nodes.append(n)
    return nodes


def deploy(store: Store, project_id: int, text: str, now: int) -> Any:
    spec = flowspec.parse(text, TZ)
    with store.write() as tx:
        return tx.definitions.create(project_id, text, spec, "bench", now, nodes=True)[1]


def generation(store: Store, count: int) -> dict[str, float]:
    now = SystemClock().now_ms()
    with store.write() as tx:
        project = tx.projects.create(NewProject(name=f"gen_{now}", timezone=TZ), now)
    started = time.perf_counter()
    for k in range(count):
        deploy(store, project.id, spec_text(f"daily_{k}", chain("VIRTUAL", 1)), now)
    deploy_s = time.perf_counter() - started
    today = datetime.now(ZoneInfo(TZ)).date()
    first = today + timedelta(days=1)
    service = Service(store, ManualClock(generation_time_ms(first, TZ)), scheduling=True)
    started = time.perf_counter()
    made = service.scheduler.generate()
    seconds = time.perf_counter() - started
    if made < count:
        raise AssertionError(f"generated {made} instances for {count} workflows")
    print(f"deployed {count} workflows in {deploy_s:.1f} s; generated {made} in {seconds:.2f} s")
    return {"workflows": count, "seconds": round(seconds, 3)}


def due_now(store: Store, text: str, cycles: int) -> tuple[int, int]:
    """A workflow whose `cycles` cycles of yesterday's run date exist and are due now."""
    now = SystemClock().now_ms()
    with store.write() as tx:
        project = tx.projects.create(NewProject(name=f"run_{now}", timezone=TZ), now)
    deployed = deploy(store, project.id, text, now)
    run_date = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=1)
    spec = deployed.spec
    trigger = Trigger(spec.trigger.cron, TZ, spec.trigger.start_ms, spec.trigger.end_ms)
    chosen = cycles_on(trigger, run_date)[:cycles]
    store.generate(deployed, [(run_date, chosen)], None, now)
    return project.id, deployed.id


def run_all(store: Store, workflow_id: int, slots: int, timeout_s: float) -> float:
    """Run the engine until every task instance of the workflow has succeeded; seconds."""
    service = Service(store, SystemClock(), WorkerSettings(slots=slots, default_group_slots=slots))
    t = task_instances.c
    total_q = sa.select(sa.func.count()).where(t.workflow_id == workflow_id)
    done_q = total_q.where(t.status.in_(["Success", "Failure"]))
    with store.read() as tx:
        total = int(tx.conn.execute(total_q).scalar_one())
    started = time.perf_counter()
    service.start()
    try:
        while True:
            with store.read() as tx:
                done = int(tx.conn.execute(done_q).scalar_one())
            if done >= total:
                break
            if time.perf_counter() - started > timeout_s:
                raise AssertionError(f"{done} of {total} done after {timeout_s} s")
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    finally:
        service.stop()
    with store.read() as tx:
        failed = tx.conn.execute(
            sa.select(sa.func.count()).where(t.workflow_id == workflow_id, t.status == "Failure")
        ).scalar_one()
    if failed:
        raise AssertionError(f"{failed} task instances failed")
    return seconds


def dispatch_latency(store: Store, chains: int, length: int) -> dict[str, float]:
    text = spec_text("chain", chain("DIDE_SHELL", length, "true"), "0 */5 * * * ?")
    _, workflow_id = due_now(store, text, chains)
    run_all(store, workflow_id, slots=8, timeout_s=300)
    t = task_instances.c
    with store.read() as tx:
        rows = tx.conn.execute(
            sa.select(t.workflow_instance_id, t.position, t.started_time, t.finished_time)
            .where(t.workflow_id == workflow_id)
            .order_by(t.workflow_instance_id, t.position)
        ).all()
    latencies = []
    previous: dict[int, int] = {}
    for r in rows:
        if r.position > 0:
            latencies.append(r.started_time - previous[r.workflow_instance_id])
        previous[r.workflow_instance_id] = r.finished_time
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"dispatch latency over {len(latencies)} ready tasks: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    return {"p50_ms": p50, "p99_ms": p99, "samples": len(latencies)}


def throughput(store: Store, kind: str, content: str, runs: int, slots: int) -> float:
    _, workflow_id = due_now(store, spec_text(kind.lower(), chain(kind, 1), "0 * * * * ?"), runs)
    seconds = run_all(store, workflow_id, slots=slots, timeout_s=600)
    rate = runs / seconds
    print(f"{kind} task runs: {runs} in {seconds:.1f} s = {rate:.0f}/s ({slots} slots)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=8)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dwsched-engine-bench-"))
    url = args.db or f"sqlite:///{scratch / 'engine.db'}"
    store = Store.open(url)
    try:
        gen = generation(store, args.workflows)
        latency = dispatch_latency(store, chains=100, length=5)
        virtual = throughput(store, "VIRTUAL", "", args.runs, args.slots)
        shell = throughput(store, "DIDE_SHELL", "true", max(100, args.runs // 4), args.slots)
    finally:
        store.close()
    figures = {
        "db": url.split(":")[0],
        "generation_s": gen["seconds"],
        "generation_workflows": gen["workflows"],
        "dispatch_p50_ms": latency["p50_ms"],
        "dispatch_p99_ms": latency["p99_ms"],
        "virtual_per_s": round(virtual, 1),
        "shell_per_s": round(shell, 1),
    }
    targets = [
        ("generation <= 10 s", gen["seconds"] <= 10),
        ("dispatch p50 <= 100 ms", latency["p50_ms"] <= 100),
        ("VIRTUAL >= 200/s", virtual >= 200),
        ("SHELL true >= 50/s", shell >= 50),
    ]
    for label, met in targets:
        print(f"  {label}: {'meets' if met else 'MISSES'}")
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
