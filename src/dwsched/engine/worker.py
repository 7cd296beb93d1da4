"""A worker: claims task instances whose resource group has a free slot and runs them.

Each claimed attempt runs on its own thread, by the runner its task type is registered with
(engine.runners: a branch node evaluates its conditions while `CheckingCondition`; VIRTUAL
succeeds at once; shell, Python and configured types run as a local process in its own
process group), then the node's quality check (`Checking`). The worker claims, beats,
notices stops, retries and records outcomes; a runner only runs. A failed attempt is
retried after `rerunInterval` while the node's rerun policy allows; a timeout kills the
process group.

A task's process sees only its own environment (engine.runners.task_environment): PATH,
LANG, HOME (its working directory), TZ (its workspace's zone), dwsched's task variables, its
parameters as DWSCHED_PARAM_<name>, and the server variables the operator passed on by name.
The node's own parameters are also its arguments. Values a run request supplied never become
code (domain.parameters, engine.runner.render_for).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dwsched import metrics
from dwsched.clock import Clock
from dwsched.domain.attempts import VIRTUAL_PER_CLAIM, Claimed
from dwsched.domain.execution import retry_allowed
from dwsched.domain.models import Status
from dwsched.domain.workers import (
    DEFAULT_GROUP_SLOTS,
    OTHER_GROUPS,
    WorkerRecord,
    group_label,
)
from dwsched.engine.runner import Refusal, TaskUser, process_alive, process_identity
from dwsched.engine.runners import (
    Inputs,
    NoSecrets,
    RunnerFactory,
    RunResult,
    Secrets,
    TaskContext,
    TaskRunner,
    builtin_runners,
    checked,
    quality_check,
    task_environment,
)
from dwsched.store import Store

log = logging.getLogger("dwsched.worker")
LOG_CAP = 1_000_000
OTHER_TYPE = "other"  # the metrics' label of a task type no runner is registered for
VIRTUAL_TYPE = "VIRTUAL"
DEFAULT_TASK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def worker_name() -> str:
    """host/pid:start-time/random: a name unique to this worker (what recovery needs of it
    is in its row: Worker.register)."""
    identity = process_identity(os.getpid()) or str(os.getpid())
    return f"{socket.gethostname()}/{identity}/{uuid.uuid4().hex[:6]}"


def worker_dead(name: str | None, record: WorkerRecord | None) -> bool:
    """True when the worker `name` is known dead from its row: none named, stopped, or a
    process of this host (its host, pid and start time) that no longer lives. False when it
    lives, runs elsewhere or has no row: then only a missing heartbeat tells."""
    if not name:
        return True
    if record is None:
        return False
    if record.stopped_at is not None:
        return True
    if record.host != socket.gethostname() or record.process is None:
        return False
    return not process_alive(record.pid, record.process)


@dataclass(frozen=True)
class WorkerSettings:
    slots: int = 4  # attempts this worker runs at once
    # The resource groups this worker claims from (None: every group; "" is the group of
    # nodes that name none).
    groups: tuple[str, ...] | None = None
    # Slot limits this worker writes to the shared `resource_groups` rows as it registers
    # (`--group-slots`; `*` for every group without a row); `default_group_slots` too, as
    # the `*` row. Limits are read from the rows, whoever set them.
    group_slots: Mapping[str, int] = field(default_factory=dict)
    default_group_slots: int | None = None
    runners: Mapping[str, str] = field(default_factory=dict)  # task type -> command with {script}
    log_cap: int = LOG_CAP
    task_user: TaskUser | None = None  # None: tasks run as this process's own user
    task_sandbox: bool = False  # run each attempt inside bubblewrap (engine.runner.sandboxed)
    # What every task's environment starts from: PATH, LANG and the variables the operator
    # passes on by name (runtime.isolation.task_base_environment); nothing else of ours.
    task_environment: Mapping[str, str] = field(
        default_factory=lambda: {"PATH": DEFAULT_TASK_PATH, "LANG": "C.UTF-8"}
    )
    # Runners of task types beyond (or instead of) the built-in ones (engine.runners).
    task_runners: Mapping[str, RunnerFactory] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=NoSecrets)  # what a task's runner may resolve


@dataclass(slots=True)
class _Running:
    """An attempt this worker runs: its thread, and its runner once made (`started` once
    its `start` returned, `ended` once its `wait` did)."""

    thread: threading.Thread
    claimed: Claimed
    runner: TaskRunner | None = None
    started: bool = False
    ended: bool = False

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


class Worker:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: WorkerSettings,
        name: str = "",
        on_finish: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.name = name or worker_name()
        self.on_finish = on_finish  # called after each attempt ends (the engine wakes up)
        self.stopping = False
        self.registered = False  # its row is written (register)
        self._lock = threading.Lock()
        self.runners = builtin_runners(settings.runners)
        for task_type, factory in settings.task_runners.items():
            self.runners.register(task_type, factory)
        self._running: dict[int, _Running] = {}
        # (task instance, run) stopped before their process was made
        self._cancelled: set[tuple[int, int]] = set()

    @property
    def busy(self) -> int:
        with self._lock:
            self._running = {k: v for k, v in self._running.items() if v.alive}
            return len(self._running)

    def claim_and_start(self) -> int:
        """Claim as many task instances as free slots allow and start them (VIRTUAL ones
        end as they are claimed); how many were claimed."""
        started = 0
        while not self.stopping:  # stop_all has run: nothing more starts here
            free = self.settings.slots - self.busy
            if free <= 0:
                break
            claims, virtual = self.store.claim_tasks(
                self.name, self.settings.groups, free, self.clock.now_ms()
            )
            for claimed in claims:
                thread = threading.Thread(
                    target=self.run_claimed,
                    args=(claimed,),
                    name=f"task-{claimed.id}",
                    daemon=True,
                )
                with self._lock:
                    # A rerun claimed before the stopped attempt of the same task instance
                    # was noticed: that attempt is no longer ours; stop it now.
                    earlier = self._running.get(claimed.id)
                    if earlier is not None and earlier.alive:
                        if earlier.runner is not None:
                            earlier.runner.stop()
                        else:
                            self._cancelled.add((claimed.id, earlier.claimed.run_number))
                    self._running[claimed.id] = _Running(thread, claimed)
                thread.start()
            for _ in range(virtual):  # ended in the claim: nothing ran
                metrics.task_run(VIRTUAL_TYPE, "success", 0.0)
            started += len(claims) + virtual
            if len(claims) < free and virtual < VIRTUAL_PER_CLAIM:
                break  # nothing more is waiting (or every group is full)
        return started

    def register(self) -> None:
        """Write this worker's row (where it runs, which process it is, the groups it
        serves), and the slot limits its settings give to the shared resource groups."""
        now = self.clock.now_ms()
        pid = os.getpid()
        with self.store.write() as tx:
            tx.workers.register(
                WorkerRecord(
                    name=self.name,
                    host=socket.gethostname(),
                    pid=pid,
                    process=process_identity(pid),
                    groups=self.settings.groups,
                    slots=self.settings.slots,
                    started_at=now,
                    heartbeat_at=now,
                )
            )
        limits = dict(self.settings.group_slots)
        if self.settings.default_group_slots is not None:
            limits[OTHER_GROUPS] = self.settings.default_group_slots
        for group, slots in limits.items():
            with self.store.write() as tx:
                before = tx.resource_groups.set_slots(group, slots, now)
            if before != slots:
                was = f"{DEFAULT_GROUP_SLOTS} (the default)" if before is None else before
                log.info(
                    "resource_group=%s slots=%s was=%s: set for every worker by this "
                    "worker's settings (--group-slots)",
                    group_label(group),
                    slots,
                    was,
                )
        self.registered = True
        log.info("worker=%s registered (groups=%s)", self.name, self._groups_text())

    def _groups_text(self) -> str:
        groups = self.settings.groups
        return "all" if groups is None else ",".join(group_label(g) for g in groups)

    def retire(self, draining: bool) -> None:
        """Mark this worker's row draining (it shuts down) or, once its attempts have
        ended, stopped."""
        if not self.registered:
            return
        stopped_at = None if draining else self.clock.now_ms()
        with self.store.write() as tx:
            tx.workers.mark(self.name, draining, stopped_at)

    def heartbeat(self) -> None:
        """Beat for the attempts in progress, and save what each has logged so far (so a
        running attempt's log can be followed)."""
        with self._lock:
            live = [v for v in self._running.values() if v.alive]
        now = self.clock.now_ms()
        with self.store.write() as tx:  # the worker's beat and its attempts' together
            known = tx.workers.beat(self.name, now)
            mine = tx.attempts.heartbeat(self.name, [r.claimed.id for r in live], now)
        if not known and not self.stopping:
            self.register()  # its row was never written, or was swept: write it again
        for running in live:
            runner, claimed = running.runner, running.claimed
            if runner is None:
                continue
            if claimed.id not in mine:
                if self.running(claimed.id) and running.started and not running.ended:
                    # Recovered by another engine (we were taken for dead): stop it.
                    log.warning("task_instance_id=%s was taken over; stopping it", claimed.id)
                    runner.stop()
                continue
            with self.store.write() as tx:
                tx.attempts.save_log(claimed, runner.log_so_far())

    def stop_taken(self) -> int:
        """Stop the processes of attempts that are no longer this worker's (an operator
        stopped them, or recovery took them over); how many were stopped."""
        with self._lock:
            live = [v for v in self._running.values() if v.alive]
        if not live:
            return 0
        with self.store.read() as tx:
            mine = tx.attempts.owned(self.name, [r.claimed.id for r in live])
        stopped = 0
        with self._lock:
            for claimed in [r.claimed for r in live]:
                found = self._running.get(claimed.id)
                if claimed.id in mine or found is None or not found.alive:
                    continue
                if found.runner is None:  # its runner is not made yet: stop it as it starts
                    self._cancelled.add((claimed.id, claimed.run_number))
                elif not found.ended:
                    found.runner.stop()
                else:
                    continue
                log.info("task_instance_id=%s is no longer this worker's; stopping it", claimed.id)
                stopped += 1
        return stopped

    def wait_idle(self, timeout_s: float = 60) -> None:
        with self._lock:
            threads = [r.thread for r in self._running.values()]
        for thread in threads:
            thread.join(timeout_s)

    def running(self, task_instance_id: int) -> bool:
        """Whether this worker's thread for the attempt is alive."""
        with self._lock:
            found = self._running.get(task_instance_id)
        return found is not None and found.alive

    def stop_all(self) -> None:
        """Shut down: stop the attempts in progress; they go back to wait for a resource
        (without using up a retry's wait) and run again after a restart."""
        self.stopping = True
        with self._lock:
            runners = [r.runner for r in self._running.values() if r.runner is not None]
        for runner in runners:
            runner.stop()

    def fail_stale(self, claimed: Claimed, note: str) -> bool:
        """End an attempt whose worker died: failed, or retried as the node allows; False
        when it had ended meanwhile."""
        return self._done(claimed, Status.FAILURE, None, note + "\n")

    # One attempt

    def run_claimed(self, claimed: Claimed) -> None:
        """Run an attempt this worker has claimed (Store.claim_tasks) to its end, on the
        calling thread (claim_and_start's, or a caller's own, which the attempt then holds
        only while it runs)."""
        caller = threading.current_thread()
        started = time.perf_counter()
        with self._lock:
            found = self._running.get(claimed.id)
            borrowed = found is None or found.thread is not caller
        try:
            self._execute(claimed, started)
            self.on_finish()
        except Exception:
            log.exception(
                "task_instance_id=%s run_number=%s failed in the worker",
                claimed.id,
                claimed.run_number,
            )
            try:
                recorded = self.store.finish_task(
                    claimed,
                    Status.FAILURE,
                    None,
                    "dwsched: the worker failed (see its log)",
                    self.clock.now_ms(),
                )
                self._count(claimed, Status.FAILURE, None, recorded, started)
            except Exception:
                # The database is unreachable too: recovery ends the attempt once this
                # thread is gone (Service.recover).
                log.exception("task_instance_id=%s could not be ended", claimed.id)
        finally:
            if borrowed:
                with self._lock:
                    found = self._running.get(claimed.id)
                    if found is not None and found.thread is caller:
                        del self._running[claimed.id]

    def context(self, claimed: Claimed) -> TaskContext:
        """What the runners of the attempt are given (engine.runners.TaskContext)."""
        settings = self.settings
        inputs = Inputs.of(claimed)
        environment = task_environment(
            settings.task_environment, claimed, inputs, settings.task_user
        )
        return TaskContext(
            claimed,
            inputs,
            environment,
            settings.task_user,
            settings.task_sandbox,
            settings.secrets,
            settings.log_cap,
            self.clock,
        )

    def _execute(self, claimed: Claimed, started: float) -> None:
        """Run the attempt by its type's runner, then the node's quality check, and record
        how it ended (and count it from `started`, perf_counter's time)."""
        node = claimed.node
        context = self.context(claimed)
        runner_type = self.runners.get(node.command)
        check: TaskRunner | None = None
        if runner_type.checked and node.quality_check is not None:
            # Made first: a value bash would re-read is refused before anything else,
            # whichever part of the attempt bash runs.
            made = quality_check(context)
            if isinstance(made, Refusal):
                self._done(claimed, Status.FAILURE, None, made.message + "\n", started)
                return
            check = made
        runner = runner_type.factory(context)
        if isinstance(runner, Refusal):
            self._done(claimed, Status.FAILURE, None, runner.message + "\n", started)
            return
        result = self._run(claimed, runner)
        if check is not None and node.quality_check is not None and result.succeeded:
            with self.store.write() as tx:
                tx.attempts.set_checking(claimed, result.log, self.clock.now_ms())
            result = checked(result, self._run(claimed, check), node.quality_check.blocking)
        self._record(claimed, result, started)

    def _run(self, claimed: Claimed, runner: TaskRunner) -> RunResult:
        """Run `runner` for the attempt: registered (so that stops reach it), started, its
        process recorded, waited for."""
        running = _Running(threading.current_thread(), claimed, runner)
        with self._lock:
            # Registered before it starts: a stop noticed from now on stops it (a runner
            # stopped before it starts ends as it starts); one noticed earlier is in _cancelled.
            current = self._running.get(claimed.id)
            if current is not None and current.claimed.run_number > claimed.run_number:
                runner.stop()  # a later run of this task instance has been claimed
            else:
                self._running[claimed.id] = running
            if (claimed.id, claimed.run_number) in self._cancelled:
                self._cancelled.discard((claimed.id, claimed.run_number))
                runner.stop()
        pid = runner.start()
        with self._lock:
            running.started = True
        if pid is not None:
            with self.store.write() as tx:
                tx.attempts.record_process(claimed.id, pid, process_identity(pid))
        result = runner.wait()
        with self._lock:
            running.ended = True
        return result

    def _record(self, claimed: Claimed, result: RunResult, started: float) -> bool:
        """Record how the attempt ended: a failure is retried as the node allows, unless it
        is not retryable."""
        if result.succeeded or not result.retryable:
            status = Status.SUCCESS if result.succeeded else Status.FAILURE
            recorded = self.store.finish_task(
                claimed,
                status,
                result.exit_code,
                result.log,
                self.clock.now_ms(),
                unchosen_outputs=result.unchosen_outputs,
            )
            self._count(claimed, status, None, recorded, started)
            return recorded
        return self._done(claimed, Status.FAILURE, result.exit_code, result.log, started)

    def _count(
        self,
        claimed: Claimed,
        status: Status,
        retry_at: int | None,
        recorded: bool,
        started: float,
    ) -> None:
        """Count the attempt's end (dwsched.metrics.task_run)."""
        if not recorded:
            outcome = "superseded"  # no longer ours: an operator stopped it, or recovery
        elif status is Status.SUCCESS:
            outcome = "success"
        elif retry_at is None:
            outcome = "failure"
        else:
            outcome = "interrupted" if self.stopping else "retry"
        task_type = claimed.node.command
        label = task_type if task_type in self.runners else OTHER_TYPE
        metrics.task_run(label, outcome, time.perf_counter() - started)

    def _done(
        self,
        claimed: Claimed,
        status: Status,
        exit_code: int | None,
        log_text: str,
        started: float | None = None,
    ) -> bool:
        """Record the attempt's end with its retry as the node allows; counted when
        `started` (recovery's ends are counted as recovered attempts instead)."""
        now = self.clock.now_ms()
        node = claimed.node
        retry_at = None
        if status is Status.FAILURE and self.stopping:
            retry_at = now
            log_text += "\ndwsched: the worker shut down; the task waits to run again.\n"
        elif status is Status.FAILURE and retry_allowed(
            node.rerun_mode.value, node.rerun_times, claimed.run_number, failed=True
        ):
            retry_at = now + node.rerun_interval_ms
            wait_s = node.rerun_interval_ms / 1000
            log_text += (
                f"\ndwsched: attempt {claimed.run_number} failed; retrying in {wait_s:g}s.\n"
            )
        recorded = self.store.finish_task(
            claimed, status, exit_code, log_text, now, retry_at=retry_at
        )
        if started is not None:
            self._count(claimed, status, retry_at, recorded, started)
        return recorded
