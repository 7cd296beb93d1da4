"""/healthz under a burst of the most expensive backfill requests (a measurement, not a test).

Starts `dwsched serve` (API and engine, as deployed) on a temporary SQLite database, deploys
an every-minute workflow in a Europe/Berlin workspace (a minute cron has the most cycles a
day may have, and a zone with daylight saving has the slow days), then, while one thread
GETs /healthz every 10 ms, sends bursts of signed CreateWorkflowInstances from a few threads:
- `huge`: the security review's request: seven `Periods.BizDates` ranges from the years 1-7
  to today (about 740,000 days before the fix). Refused by arithmetic: InvalidParameter
  Periods.BizDates.
- `capped`: the most work a request may still cause: 20,000 BizDates (the cap) of that
  workflow with a one-second StartTime/EndTime window that no cycle falls in, so every
  BizDate is planned and the request is refused at the end as creating nothing (repeatable:
  nothing is stored).
The floor is /healthz polled the same way without a burst, in the same run.

    .venv/bin/python bench/burst.py [--requests 40] [--threads 4] [--rounds 3] [--kinds huge]

Prints a table and, last, one JSON line with the figures. Goal: /healthz p99 during a burst
within 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from dwsched.client import ApiError, Client
from dwsched.clock import SystemClock
from dwsched.domain.models import NewProject
from dwsched.domain.runs import MAX_INSTANCES, MAX_RANGES
from dwsched.runtime.keys import create_key
from dwsched.store import Store

TZ = "Europe/Berlin"
POLL_S = 0.010
FLOOR_S = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spec() -> str:
    return json.dumps(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": "every_minute",
                        "trigger": {"type": "Scheduler", "cron": "0 * * * * ?", "timezone": TZ},
                        "strategy": {"instanceMode": "T+1"},
                        "nodes": [
                            {"id": "a", "name": "a", "script": {"runtime": {"command": "VIRTUAL"}}}
                        ],
                    }
                ]
            },
        }
    )


def requests(project_id: int, workflow_id: int) -> dict[str, dict[str, Any]]:
    today = datetime.now(ZoneInfo(TZ)).date()
    last = today - timedelta(days=1)
    base = {"ProjectId": project_id, "Name": "burst", "Type": "SupplementData"}
    base["WorkflowId"] = workflow_id
    huge = [
        {"StartBizDate": f"000{n}-01-01", "EndBizDate": last.isoformat()}
        for n in range(1, MAX_RANGES + 1)
    ]
    first = last - timedelta(days=MAX_INSTANCES - 1)
    capped = [{"StartBizDate": first.isoformat(), "EndBizDate": last.isoformat()}]
    return {
        "huge": base | {"Periods": {"BizDates": huge}},
        "capped": base
        | {"Periods": {"BizDates": capped, "StartTime": "12:00:30", "EndTime": "12:00:31"}},
    }


class Poller:
    """GETs /healthz every POLL_S on one keep-alive connection; latencies in ms."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            response = self.http.get("/healthz")
            elapsed = time.perf_counter() - t
            assert response.status_code == 200, response.text
            self.samples.append(elapsed * 1000)
            self.stop.wait(max(0.0, POLL_S - elapsed))

    def during(self, work: Any) -> tuple[list[float], Any]:
        self.samples = []
        self.stop.clear()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        try:
            result = work()
        finally:
            self.stop.set()
            self.thread.join()
        return self.samples, result


def burst(
    endpoint: str, key: tuple[str, str], params: dict[str, Any], n: int, threads: int
) -> list[float]:
    """Send `n` requests from `threads` threads; each must be refused as InvalidParameter.
    Their durations in ms."""
    local = threading.local()

    def one(_: int) -> float:
        if not hasattr(local, "client"):
            local.client = Client(endpoint, *key, timeout=120)
        t = time.perf_counter()
        try:
            local.client.call("CreateWorkflowInstances", params)
        except ApiError as exc:
            assert exc.code == "InvalidParameter", (exc.code, str(exc))
        else:
            raise AssertionError("the request was accepted")
        return (time.perf_counter() - t) * 1000

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="bursts per kind, pooled")
    parser.add_argument("--kinds", default="huge,capped", help="which bursts, comma-separated")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dwsched-burst-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    now = SystemClock().now_ms()
    store = Store.open(url)
    with store.write() as tx:
        project = tx.projects.create(NewProject(name="burst", timezone=TZ), now)
    key = create_key(store, "bench", now)
    store.close()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dwsched",
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--throttle",
            "off",
            "--log-level",
            "warning",
        ],
        env=dict(os.environ),
    )
    endpoint = f"http://127.0.0.1:{port}"
    figures: dict[str, dict[str, float]] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with Client(endpoint, key.id, key.secret) as client:
            job = client.call("ImportWorkflowDefinition", {"ProjectId": project.id, "Spec": spec()})
            definition = client.call("GetWorkflowDefinition", {"Id": job["AsyncJob"]["Response"]})
            workflow_id = definition["WorkflowDefinition"]["WorkflowId"]
        poller = Poller(endpoint)
        floor, _ = poller.during(lambda: time.sleep(FLOOR_S))
        figures["floor"] = {"p50_ms": statistics.median(floor), "p99_ms": percentile(floor, 0.99)}
        for name, params in requests(project.id, workflow_id).items():
            if name not in args.kinds.split(","):
                continue
            samples: list[float] = []
            took: list[float] = []
            for _ in range(args.rounds):
                polled, sent = poller.during(
                    lambda p=params: burst(
                        endpoint, (key.id, key.secret), p, args.requests, args.threads
                    )
                )
                samples += polled
                took += sent
            figures[name] = {
                "p50_ms": statistics.median(samples),
                "p99_ms": percentile(samples, 0.99),
                "max_ms": max(samples),
                "request_p50_ms": statistics.median(took),
                "request_max_ms": max(took),
                "samples": len(samples),
            }
        poller.http.close()
    finally:
        server.terminate()
        server.wait(10)
    print(f"{'phase':<8} {'healthz p50':>12} {'healthz p99':>12} {'request p50':>12}")
    for name, f in figures.items():
        request = f"{f['request_p50_ms']:>12.1f}" if "request_p50_ms" in f else f"{'-':>12}"
        print(f"{name:<8} {f['p50_ms']:>12.1f} {f['p99_ms']:>12.1f} {request}")
    print(
        json.dumps(
            {
                "requests": args.requests,
                "threads": args.threads,
                "rounds": args.rounds,
                "date": date.today().isoformat(),
                **{k: {m: round(v, 1) for m, v in f.items()} for k, f in figures.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
