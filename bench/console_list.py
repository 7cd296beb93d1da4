"""Web console instance list: how soon the page is interactive (a measurement, not a test).

Stores one workspace-day of 2,000 instances (plus other days: 20,000 in all) through the
storage layer, starts `dwsched serve` as a separate process, signs in with Debian's
Chromium (headless, Playwright), and measures over many runs:
- `open`: from the test's call to navigate to /console/instances?...&bizdate=<day> until it
  sees the first page of rows in the table (a full page load: HTML, CSS, modules, session,
  the workspace list, the listing), as the driver sees it;
- `shown`: the same, by the browser's own clock: navigation start to the page's
  `dwsched:instances-shown` performance mark (the rows are in the table), without the
  driver's round trips;
- `filter`: from choosing a status in the filter to the table showing the filtered page
  (the page already loaded: one call and a redraw);
- `sort`: from clicking a column's sort button to the re-sorted rows;
- floor: navigation to a static page of the same server with no script (what the browser and
  the server cost for any page), measured in the same run.

    .venv/bin/python bench/console_list.py [--runs 40]

Prints a table and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from dwsched.clock import SystemClock
from dwsched.domain.calendar import day_start_ms
from dwsched.domain.models import EnvType, InstanceType, NewProject, Status, WorkflowInstance
from dwsched.store import Store
from dwsched.web import passwords

TZ = "Asia/Shanghai"
DAY = date(2026, 11, 20)
STATUSES = [Status.SUCCESS] * 6 + [Status.FAILURE, Status.RUNNING, Status.WAIT_TIME, Status.NOT_RUN]


def build(db: str, per_day: int, days: int) -> tuple[int, str]:
    store = Store.open(db)
    now = SystemClock().now_ms()
    with store.write() as tx:
        project = tx.projects.create(NewProject(name="bench", timezone=TZ), now)
    n = 0
    for d in range(days):
        day = DAY - timedelta(days=d)
        start = day_start_ms(day + timedelta(days=1), TZ)
        batch = []
        for i in range(per_day):
            n += 1
            status = STATUSES[i % len(STATUSES)]
            base = WorkflowInstance(
                id=n,
                project_id=project.id,
                env_type=EnvType.PROD,
                biz_day=day,
                type=InstanceType.NORMAL,
                status=status,
                workflow_id=1000 + i % 50,
                workflow_task_instance_id=10_000_000 + n,
                unified_workflow_instance_id=n,
                name=f"ods_orders_{i:04d}",
                owner="1000",
                create_user="1000",
                modify_user="1000",
                trigger_time=start + (i % 1440) * 60_000,
                started_time=start + (i % 1440) * 60_000 + 5000,
                finished_time=start + (i % 1440) * 60_000 + 65_000,
                create_time=start - 1_800_000,
                modify_time=start,
            )
            if status in (Status.WAIT_TIME, Status.NOT_RUN):
                base = replace(base, started_time=None, finished_time=None)
            elif status is Status.RUNNING:
                base = replace(base, finished_time=None)
            batch.append(base)
        store.import_instances(batch, [], replace=False, now_ms=now)
    with store.write() as tx:
        tx.users.create("bench", "bench", now)
        tx.policies.attach("AdministratorAccess", "User", "bench", attach=True)
    password = secrets.token_urlsafe(12)
    with store.write() as tx:
        tx.users.set_password("bench", passwords.hash_password(password))
    store.close()
    return project.id, password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rows_shown(page: Page) -> None:
    page.wait_for_selector("#instances tbody tr[data-id]", timeout=30_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dwsched-console-bench-"))
    db = f"sqlite:///{folder / 'bench.db'}"
    project_id, password = build(db, args.per_day, args.days)
    port = free_port()
    env = dict(os.environ)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dwsched",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--no-engine",
            "--throttle",
            "off",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
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
        figures = measure(base, project_id, password, args.runs)
    finally:
        server.terminate()
        server.wait(10)
    print(f"{'measure':<10} {'median ms':>10} {'p99 ms':>8}")
    for name, values in figures.items():
        print(f"{name:<10} {statistics.median(values):>10.1f} {percentile(values, 0.99):>8.1f}")
    print(
        json.dumps(
            {
                name: {
                    "median_ms": round(statistics.median(v), 1),
                    "p99_ms": round(percentile(v, 0.99), 1),
                    "runs": len(v),
                }
                for name, v in figures.items()
            }
            | {"instances_on_day": args.per_day, "instances_stored": args.per_day * args.days}
        )
    )


def measure(base: str, project_id: int, password: str, runs: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        "floor": [],
        "open": [],
        "shown": [],
        "filter": [],
        "sort": [],
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/console/signin")
        page.fill("#username", "bench")
        page.fill("#password", password)
        page.keyboard.press("Enter")
        page.wait_for_selector("#instances")
        url = f"{base}/console/instances?project={project_id}&bizdate={DAY.isoformat()}&size=20"
        for run in range(runs + 3):  # the first 3 warm up
            t = time.perf_counter()
            page.goto(f"{base}/console/static/console.css")
            floor = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            page.goto(url)
            rows_shown(page)
            opened = (time.perf_counter() - t) * 1000
            # The browser's own clock: from navigation start to the rows in the table.
            in_page = page.evaluate(
                "performance.getEntriesByName('dwsched:instances-shown')[0].startTime"
            )
            first = page.locator("#instances tbody tr[data-id]").first.get_attribute("data-id")
            t = time.perf_counter()
            status = page.locator("#filter-status")
            if status.count():
                status.select_option(["Failure"])
            else:
                page.get_by_label("Failure", exact=True).check()
            page.wait_for_function(
                "() => [...document.querySelectorAll('#instances tbody .chip')]"
                ".every(c => c.textContent.includes('Failure'))"
                " && document.querySelectorAll('#instances tbody tr[data-id]').length > 0"
            )
            filtered = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            page.locator("#instances th button", has_text="StartedTime").first.click()
            page.wait_for_function(
                "first => document.querySelector('#instances tbody tr[data-id]') &&"
                " document.querySelector('#instances tbody tr[data-id]').dataset.id !== first",
                arg=first,
            )
            sorted_ms = (time.perf_counter() - t) * 1000
            if run >= 3:
                figures["floor"].append(floor)
                figures["open"].append(opened)
                figures["shown"].append(float(in_page))
                figures["filter"].append(filtered)
                figures["sort"].append(sorted_ms)
        browser.close()
    return figures


if __name__ == "__main__":
    main()
