"""The engine service: the scheduler (with the planner) and one worker, each on a loop of
its own thread.

`dwsched serve` runs it beside the API (one process on one database). The scheduler's
round: recover attempts whose worker stopped beating, generate due instances, plan. The
worker's: claim and start work, beat for the attempts in progress. Apart, a claim never
waits behind a day's generation or a planning pass over a large database (on SQLite, one
writer at a time, the two take turns on one thread).

Recovery: an attempt whose worker is dead by its row in `workers` (a process of this host
that no longer lives, or a worker that has stopped), or whose heartbeat is older than
STALE_MS, belonged to a worker that died (or to this process before a restart). If its
process still lives on this host (same pid and start time) it is killed; the attempt is
then failed, or retried as its rerun policy allows, with a log line that says so.

A worker registers its row on its first tick, beats it with its attempts' heartbeats, and
marks it draining, then stopped, as the service stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dwsched import metrics
from dwsched.clock import Clock
from dwsched.domain.workers import HEARTBEAT_MS, STALE_MS, WorkerRecord
from dwsched.engine.alerts import Alerter, AlertSettings
from dwsched.engine.runner import kill_group, process_alive
from dwsched.engine.scheduler import Scheduler
from dwsched.engine.worker import Worker, WorkerSettings, worker_dead
from dwsched.store import Store

log = logging.getLogger("dwsched.engine")


def _guarded(what: str, step: Callable[[], object]) -> None:
    """One step of a tick; its failure is logged and does not skip the others."""
    try:
        step()
    except Exception:
        log.exception("engine %s failed; retrying at the next tick", what)


# Planning and claiming run every tick; generation and recovery, which read every deployed
# workflow and every attempt in progress, run this often.
GENERATE_EVERY_MS = 5_000
# Time-driven moves (a TriggerTime reached, a retry's wait over) are planned this often, with
# the tasks changed lately; a task that ends plans its own instance, and the downstreams
# waiting for it elsewhere, at once. Every waiting task is looked at this often
# (Store.plan's thorough round).
PLAN_EVERY_MS = 1_000
THOROUGH_PLAN_EVERY_MS = 60_000
# How often a worker looks for its attempts stopped by an operator (StopTaskInstances):
# their process groups are killed within this time.
STOP_CHECK_MS = 500


class Service:
    """The loop of the roles this process plays: the scheduler (with the planner and
    recovery), a worker, or both (`dwsched serve`)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: WorkerSettings | None = None,
        tick_s: float = 0.1,
        scheduling: bool = True,
        working: bool = True,
        alerts: AlertSettings | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.scheduler = Scheduler(store, clock)
        self._wake = threading.Event()
        self.worker = Worker(store, clock, settings or WorkerSettings(), on_finish=self._wake.set)
        self.tick_s = tick_s
        self.scheduling = scheduling
        self.working = working
        # Alerts are judged on the scheduler's round and sent from a thread of their own.
        self.alerter = Alerter(store, clock, alerts) if alerts and scheduling else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_beat = 0
        self._last_stop_check = 0
        self._last_generation: int | None = None
        self._last_plan: int | None = None
        self._last_thorough: int | None = None

    def tick(self) -> None:
        """One round of this process's roles (tests call it directly with a manual clock)."""
        if self.scheduling:
            self.schedule()
        if self.working:
            self.work()

    def schedule(self) -> None:
        """The scheduler's round: recovery and generation now and then, creation, release
        and planning every PLAN_EVERY_MS (its time: dwsched.metrics)."""
        started = time.perf_counter()
        now = self.clock.now_ms()
        if self._last_generation is None or now - self._last_generation >= GENERATE_EVERY_MS:
            self._last_generation = now
            _guarded("recovery", self.recover)
            _guarded("generation", self.scheduler.generate)
        if self._last_plan is None or now - self._last_plan >= PLAN_EVERY_MS:
            _guarded("creation", lambda: self.store.create_pending(now))
            _guarded("release", lambda: self.store.release_queued(now))
            _guarded("planning", lambda: self._plan(now))
            self._last_plan = now
        if self.alerter is not None:
            _guarded("alerts", self.alerter.evaluate)
        metrics.engine_round("scheduler", time.perf_counter() - started)

    def _plan(self, now: int) -> None:
        """A planning round, thorough (every waiting task) every THOROUGH_PLAN_EVERY_MS;
        one that fails is thorough again next time."""
        last = self._last_thorough
        thorough = last is None or now - last >= THOROUGH_PLAN_EVERY_MS
        self.store.plan(now, thorough=thorough)
        if thorough:
            self._last_thorough = now

    def work(self) -> None:
        """The worker's round: register, claim and start what is ready, beat, and look for
        attempts stopped by an operator (its time: dwsched.metrics)."""
        started = time.perf_counter()
        if not self.worker.registered:
            _guarded("registration", self.worker.register)
        _guarded("claiming", self.worker.claim_and_start)
        now = self.clock.now_ms()
        if now - self._last_beat >= HEARTBEAT_MS:
            _guarded("heartbeat", self.worker.heartbeat)
            self._last_beat = now
        elif now - self._last_stop_check >= STOP_CHECK_MS:
            _guarded("stop check", self.worker.stop_taken)
            self._last_stop_check = now
        metrics.engine_round("worker", time.perf_counter() - started)

    def recover(self) -> int:
        """Fail (or retry) the attempts of dead workers: at once when the worker was a
        process of this host that no longer lives, else once it has not beaten for
        STALE_MS."""
        now = self.clock.now_ms()
        with self.store.read() as tx:
            stale = tx.attempts.stale(now + 1)
        recovered = 0
        records: dict[str, WorkerRecord | None] = {}
        for claimed in stale:
            with self.store.read() as tx:
                pid, identity, worker = tx.attempts.process(claimed.id)
            if worker is None or worker != claimed.worker:
                continue  # it ended (or was claimed again) since it was read
            if worker == self.worker.name and self.worker.running(claimed.id):
                continue  # our own, in progress
            if worker not in records:
                with self.store.read() as tx:
                    records[worker] = tx.workers.get(worker)
            dead = worker_dead(worker, records[worker])
            with self.store.read() as tx:
                heartbeat = tx.attempts.heartbeat_at(claimed.id)
            if not dead and heartbeat is not None and heartbeat >= now - STALE_MS:
                continue
            why = (
                "is no longer running"
                if dead
                else f"stopped beating (no heartbeat for over {STALE_MS // 1000}s)"
            )
            note = (
                f"dwsched: the worker {worker} running attempt {claimed.run_number} {why}; "
                "the attempt failed."
            )
            alive = pid is not None and identity is not None and process_alive(pid, identity)
            if alive:
                note += f" Its process group {pid} was still alive and was killed."
            # Ended first, killed after: a worker that was only silent sees its process
            # die and records nothing, since the attempt is no longer its own.
            if self.worker.fail_stale(claimed, note):
                if alive and pid is not None:
                    kill_group(pid)
                log.warning("recovered task_instance_id=%s: %s", claimed.id, note)
                metrics.recovered_attempt()
                recovered += 1
        return recovered

    def start(self) -> None:
        """Run the roles on threads of their own: the worker's claims never wait behind a
        day's generation or a planning pass (seconds on a large database). On SQLite, whose
        one writer at a time would have two threads queue at its write lock (sleeping in its
        busy handler), they take turns on one thread."""
        loops: list[tuple[str, Callable[[], None]]] = []
        if self.scheduling and self.working and self.store.is_sqlite:
            loops.append(("dwsched-engine", lambda: self._work_loop(self.tick)))
        else:
            if self.scheduling:
                loops.append(("dwsched-scheduler", self._schedule_loop))
            if self.working:
                loops.append(("dwsched-worker", lambda: self._work_loop(self.work)))
        for name, loop in loops:
            self._threads.append(threading.Thread(target=loop, name=name, daemon=True))
        for thread in self._threads:
            thread.start()
        if self.alerter is not None:
            self.alerter.start()

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.schedule()
            except Exception:
                log.exception("engine scheduling failed; retrying")
            self._stop.wait(self.tick_s)

    def _work_loop(self, round_: Callable[[], None]) -> None:
        """Every tick_s a round (the worker's, or both roles' when they share a thread);
        between rounds, a claim as soon as an attempt ends (its downstream may wait)."""
        last_round = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_round >= self.tick_s:
                    last_round = time.monotonic()
                    round_()
                else:
                    self.worker.claim_and_start()
            except Exception:
                log.exception("engine round failed; retrying")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def stop(self, timeout_s: float = 10) -> None:
        """Stop ticking and stop the attempts in progress (they are recorded as stopped)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s)
        if self.alerter is not None:
            self.alerter.stop(timeout_s)
        if self.working:
            _guarded("draining", lambda: self.worker.retire(draining=True))
        self.worker.stop_all()
        self.worker.wait_idle(timeout_s)
        if self.working:
            _guarded("stop", lambda: self.worker.retire(draining=False))
