"""Helpers of the tests that run the engine's roles against a store: a workflow whose cycles
of yesterday's run date are made at once (all due), and waiting for a condition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dwsched.domain import flowspec
from dwsched.domain.schedule import Trigger, cycles_on
from dwsched.store import Store
from tests.support.factories import project

TZ = "Asia/Shanghai"


def deploy_due(store: Store, nodes: list[dict[str, Any]], cron: str) -> tuple[int, int, list[int]]:
    """A workflow of `nodes` in a new workspace whose cycles of yesterday's run date exist
    now (all due): (its workspace, their BizDate in ms, their trigger times)."""
    p = project(store)
    text = json.dumps(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": "due_now",
                        "trigger": {"cron": cron, "timezone": TZ},
                        "strategy": {"rerunTimes": 0},
                        "nodes": nodes,
                    }
                ]
            },
        }
    )
    now = int(time.time() * 1000)
    spec = flowspec.parse(text, TZ)
    with store.write() as tx:
        _, deployed = tx.definitions.create(p.id, text, spec, "tester", now, nodes=True)
    run_date = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=1)
    assert spec.trigger.cron is not None
    trigger = Trigger(spec.trigger.cron, TZ, spec.trigger.start_ms, spec.trigger.end_ms)
    cycles = cycles_on(trigger, run_date)
    assert store.generate(deployed, [(run_date, cycles)], None, now) == len(cycles)
    biz = datetime(run_date.year, run_date.month, run_date.day, tzinfo=ZoneInfo(TZ)) - timedelta(
        days=1
    )
    return p.id, int(biz.timestamp() * 1000), [c.trigger_time for c in cycles]


def wait(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Until `check()` holds; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class AheadClock:
    """The system clock, moved ahead when a test says: a retry's backoff (10 s) passes at
    once instead of being waited for."""

    def __init__(self) -> None:
        self.ahead_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.ahead_ms

    def skip(self, ms: int) -> None:
        self.ahead_ms += ms
