"""The scheduler: makes Normal instances from deployed schedules, and moves waiting task
instances along as time and upstreams allow (the planner). Work is claimed by workers.

Generation is idempotent (one instance per workflow and TriggerTime, kept by a unique key)
and catches up after downtime: each run date due since the last one made is made once.
"""

from __future__ import annotations

import logging
from datetime import date

from dwsched import metrics
from dwsched.clock import Clock
from dwsched.domain.generation import GenerationPlan
from dwsched.domain.schedule import (
    Cycle,
    InstanceMode,
    Trigger,
    cycles_on,
    due_run_dates,
    first_run_date,
    generation_time_ms,
    immediate_cycles,
)
from dwsched.store import Store

log = logging.getLogger("dwsched.scheduler")
DAYS_PER_TICK = 7  # run dates made per workflow per tick while catching up
PLANS_PER_TRANSACTION = 500  # workflows generated per write transaction


class Scheduler:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def generate(self) -> int:
        """Make the instances due now; how many. Records how late the oldest run date due
        was found (the generation lag, dwsched.metrics)."""
        now = self.clock.now_ms()
        plans: list[GenerationPlan] = []
        lag_ms = 0
        with self.store.read() as tx:
            scheduled_workflows = tx.workflows.scheduled()
        for scheduled in scheduled_workflows:
            w = scheduled.workflow
            t = w.spec.trigger
            if t.cron is None:
                continue
            trigger = Trigger(t.cron, t.timezone, t.start_ms, t.end_ms)
            mode = w.spec.strategy.instance_mode
            first = scheduled.first_run_day
            run_days: list[tuple[date, list[Cycle]]] = []
            new_first: date | None = None
            if first is None:
                first = new_first = first_run_date(t.timezone, w.deploy_time, mode)
                if mode is InstanceMode.IMMEDIATELY:
                    cycles = immediate_cycles(trigger, w.deploy_time, new_workflow=True)
                    run_days.append((first, cycles))
            last = run_days[-1][0] if run_days else scheduled.generated_through
            due = due_run_dates(t.timezone, first, last, now, DAYS_PER_TICK)
            if due:
                lag_ms = max(lag_ms, now - generation_time_ms(due[0], t.timezone))
            for day in due:
                run_days.append((day, cycles_on(trigger, day)))
            if run_days or new_first is not None:
                plans.append(GenerationPlan(w, run_days, new_first))
        made = 0
        for start in range(0, len(plans), PLANS_PER_TRANSACTION):
            chunk = plans[start : start + PLANS_PER_TRANSACTION]
            count = self.store.generate_many(chunk, now)
            if count:
                log.info("generated instances=%s for workflows=%s", count, len(chunk))
            made += count
        metrics.generation_lag(lag_ms / 1000)
        return made
