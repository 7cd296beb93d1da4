"""Engine benchmark (a measurement, not a test), on SQLite or PostgreSQL.

1. Generation: deploy N daily workflows (default 10,000; one node each), then time the
   scheduler making one run date's Normal instances for all of them (target <= 10 s).
2. Dispatch latency: chains of SHELL tasks (`true`) run by the engine in this process; for
   each task that waits for an upstream, the time from the upstream's finish to its own
   start (p50/p99; target p50 <= 100 ms).
3. Throughput: M workflow instances of one VIRTUAL node, then M of one SHELL node running
   `true`, all due at once; task runs per second until every one has succeeded (targets
   >= 200/s and >= 50/s).
4. Width: one workflow instance of W independent VIRTUAL nodes (default 400), then one of W
   SHELL `true` nodes, each run R times (a fresh workflow each time); the seconds from the
   engine's start until every task has succeeded (median, p99), and the instance's span
   from its first task ready to its last done (database times). The floor, in the same run:
   the same measure for an instance of one node. Targets: W-wide VIRTUAL done in <= 0.3 s;
   W-wide SHELL at least as many tasks per second as W one-task instances (measured here
   too, after the wide runs). On a database of its own (beside --db), so that neither the
   generation shape's 10,000 workflows nor its own every-minute ones weigh on the other.

    .venv/bin/python bench/engine.py [--db URL] [--workflows 10000] [--runs 1000]
        [--width 400] [--shapes generation,dispatch,throughput,width]

Prints a table and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
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


def width(
    store: Store, kind: str, content: str, nodes: int, repeats: int, slots: int
) -> dict[str, float]:
    """One instance of `nodes` independent nodes, `repeats` times: the seconds from the
    engine's start until all have succeeded (median, p99), and the instance's own span from
    its first task ready to its last done (database times); the floor: the same for an
    instance of one node."""

    def once(count: int) -> tuple[float, float]:
        text = spec_text(
            f"wide_{kind.lower()}_{count}", chain_free(kind, count, content), "0 * * * * ?"
        )
        _, workflow_id = due_now(store, text, 1)
        seconds = run_all(store, workflow_id, slots=slots, timeout_s=600)
        t = task_instances.c
        with store.read() as tx:
            ready, done = tx.conn.execute(
                sa.select(sa.func.min(t.waiting_resource_time), sa.func.max(t.finished_time)).where(
                    t.workflow_id == workflow_id
                )
            ).one()
        return seconds, (done - ready) / 1000

    floor = [once(1) for _ in range(repeats)]
    wide = [once(nodes) for _ in range(repeats)]
    times = [w for w, _ in wide]
    spans = [s for _, s in wide]
    figures = {
        "median_s": round(statistics.median(times), 3),
        "p99_s": round(percentile(times, 0.99), 3),
        "span_median_s": round(statistics.median(spans), 3),
        "span_p99_s": round(percentile(spans, 0.99), 3),
        "floor_median_s": round(statistics.median(w for w, _ in floor), 3),
        "floor_p99_s": round(percentile([w for w, _ in floor], 0.99), 3),
        "per_s": round(nodes / statistics.median(times), 1),
    }
    print(
        f"{nodes}-wide {kind}: median {figures['median_s']:.3f} s, p99 {figures['p99_s']:.3f} s "
        f"({figures['per_s']:.0f} tasks/s; ready to done: median {figures['span_median_s']:.3f} s, "
        f"p99 {figures['span_p99_s']:.3f} s); floor (1 node) median "
        f"{figures['floor_median_s']:.3f} s, p99 {figures['floor_p99_s']:.3f} s"
    )
    return figures


def chain_free(kind: str, count: int, content: str) -> list[dict[str, Any]]:
    """`count` nodes with no dependency between them (one wide layer)."""
    return [
        {"id": f"n{k}", "script": {"runtime": {"command": kind}, "content": content}}
        for k in range(count)
    ]


@contextlib.contextmanager
def own_database(url: str, scratch: Path) -> Iterator[Store]:
    """A fresh database beside `url`'s (SQLite: another file; PostgreSQL: another database
    on the same server, dropped afterwards), at the schema's head."""
    made = sa.make_url(url)
    if made.get_backend_name() == "sqlite":
        with Store.open(f"sqlite:///{scratch / 'width.db'}") as store:
            yield store
        return
    name = f"{made.database}_width"
    admin = sa.create_engine(
        made.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        with Store.open(made.set(database=name).render_as_string(hide_password=False)) as store:
            yield store
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", default="generation,dispatch,throughput,width")
    args = parser.parse_args()
    shapes = set(args.shapes.split(","))
    scratch = Path(tempfile.mkdtemp(prefix="dwsched-engine-bench-"))
    url = args.db or f"sqlite:///{scratch / 'engine.db'}"
    store = Store.open(url)
    figures: dict[str, Any] = {"db": url.split(":")[0]}
    targets: list[tuple[str, bool]] = []
    try:
        if "generation" in shapes:
            gen = generation(store, args.workflows)
            figures |= {"generation_s": gen["seconds"], "generation_workflows": gen["workflows"]}
            targets.append(("generation <= 10 s", gen["seconds"] <= 10))
        if "dispatch" in shapes:
            latency = dispatch_latency(store, chains=100, length=5)
            figures |= {"dispatch_p50_ms": latency["p50_ms"], "dispatch_p99_ms": latency["p99_ms"]}
            targets.append(("dispatch p50 <= 100 ms", latency["p50_ms"] <= 100))
        if "throughput" in shapes:
            virtual = throughput(store, "VIRTUAL", "", args.runs, args.slots)
            shell = throughput(store, "DIDE_SHELL", "true", max(100, args.runs // 4), args.slots)
            figures |= {"virtual_per_s": round(virtual, 1), "shell_per_s": round(shell, 1)}
            targets.append(("VIRTUAL >= 200/s", virtual >= 200))
            targets.append(("SHELL true >= 50/s", shell >= 50))
        if "width" in shapes:
            # On a database of its own: a service's first tick generates for every deployed
            # workflow (0.5 s once the generation shape has deployed 10,000), which would
            # land in every instance measured, the floor too; and the width shape's
            # every-minute workflows must not swell the generation shape's catch-up.
            with own_database(url, scratch) as wide_store:
                wide_virtual = width(
                    wide_store, "VIRTUAL", "", args.width, args.repeats, args.slots
                )
                wide_shell = width(
                    wide_store,
                    "DIDE_SHELL",
                    "true",
                    args.width,
                    max(1, args.repeats // 2),
                    args.slots,
                )
                narrow = throughput(wide_store, "DIDE_SHELL", "true", args.width, args.slots)
                figures |= {
                    "wide_virtual": wide_virtual,
                    "wide_shell": wide_shell,
                    "one_task_shell_per_s": round(narrow, 1),
                }
                targets.append(
                    (f"{args.width}-wide VIRTUAL <= 0.3 s", wide_virtual["median_s"] <= 0.3)
                )
                targets.append(
                    (
                        f"{args.width}-wide SHELL >= one-task SHELL per task",
                        wide_shell["per_s"] >= narrow,
                    )
                )
    finally:
        store.close()
    for label, met in targets:
        print(f"  {label}: {'meets' if met else 'MISSES'}")
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
