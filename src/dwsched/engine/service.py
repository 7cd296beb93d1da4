"""The engine service: the scheduler, the planner and one worker on a loop.

`dwsched serve` runs it beside the API (one process on one database). Each tick: recover
attempts whose worker stopped beating, generate due instances, plan, claim and start work,
beat for the attempts in progress.

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

from dwsched.clock import Clock
from dwsched.domain.workers import HEARTBEAT_MS, STALE_MS, WorkerRecord
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
# Time-driven moves (a TriggerTime reached, a retry's wait over) are planned this often; a
# task that ends plans its own instance at once.
PLAN_EVERY_MS = 1_000
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
    ) -> None:
        self.store = store
        self.clock = clock
        self.scheduler = Scheduler(store, clock)
        self._wake = threading.Event()
        self.worker = Worker(store, clock, settings or WorkerSettings(), on_finish=self._wake.set)
        self.tick_s = tick_s
        self.scheduling = scheduling
        self.working = working
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = 0
        self._last_stop_check = 0
        self._last_generation: int | None = None
        self._last_plan: int | None = None

    def tick(self) -> None:
        """One round of this process's roles (tests call it directly with a manual clock)."""
        if self.scheduling:
            now = self.clock.now_ms()
            if self._last_generation is None or now - self._last_generation >= GENERATE_EVERY_MS:
                self._last_generation = now
                _guarded("recovery", self.recover)
                _guarded("generation", self.scheduler.generate)
            if self._last_plan is None or now - self._last_plan >= PLAN_EVERY_MS:
                _guarded("creation", lambda: self.store.create_pending(now))
                _guarded("release", lambda: self.store.release_queued(now))
                _guarded("planning", lambda: self.store.plan(now))
                self._last_plan = now
        if self.working:
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
                recovered += 1
        return recovered

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dwsched-engine", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        last_tick = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_tick >= self.tick_s or not self.working:
                    last_tick = time.monotonic()
                    self.tick()
                else:
                    self.worker.claim_and_start()  # an attempt ended: its downstream may wait
            except Exception:
                log.exception("engine tick failed; retrying")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def stop(self, timeout_s: float = 10) -> None:
        """Stop ticking and stop the attempts in progress (they are recorded as stopped)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.working:
            _guarded("draining", lambda: self.worker.retire(draining=True))
        self.worker.stop_all()
        self.worker.wait_idle(timeout_s)
        if self.working:
            _guarded("stop", lambda: self.worker.retire(draining=False))
