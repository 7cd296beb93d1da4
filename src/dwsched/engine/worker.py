"""A worker: claims task instances whose resource group has a free slot and runs them.

Each claimed attempt runs on its own thread: a branch node evaluates its conditions
(`CheckingCondition`); VIRTUAL succeeds at once; other types run as a local process in its
own process group (engine.runner), with the scheduling parameters substituted, then the
node's quality check (`Checking`). A failed attempt is retried after `rerunInterval` while
the node's rerun policy allows; a timeout kills the process group.

A task's process sees only its own environment (`task_environment`): PATH, LANG, HOME (its
working directory), TZ (its workspace's zone), dwsched's task variables, its parameters as
DWSCHED_PARAM_<name>, and the server variables the operator passed on by name. The node's own
parameters are also its arguments. Values a run request supplied never become code
(domain.parameters, engine.runner.render_for).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dwsched.clock import Clock
from dwsched.domain.attempts import VIRTUAL_PER_CLAIM, Claimed
from dwsched.domain.execution import ConditionError, evaluate_condition, retry_allowed
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import Status
from dwsched.domain.parameters import (
    BASH_TYPES,
    PARAM_PREFIX,
    Render,
    bash_safe,
    parse_assignments,
    python_literal,
    resolve,
    substitute,
)
from dwsched.engine.runner import (
    Attempt,
    Command,
    TaskUser,
    UnsafeValue,
    command_for,
    process_alive,
    process_identity,
    render_for,
    shell_variable,
)
from dwsched.store import Store

log = logging.getLogger("dwsched.worker")
HEARTBEAT_MS = 5_000
LOG_CAP = 1_000_000
DEFAULT_GROUP_SLOTS = 4
DEFAULT_TASK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def worker_name() -> str:
    """host/pid:start-time/random: identifies this worker and lets another process of the
    same host tell whether it still lives (engine.runner.process_identity)."""
    identity = process_identity(os.getpid()) or str(os.getpid())
    return f"{socket.gethostname()}/{identity}/{uuid.uuid4().hex[:6]}"


def worker_dead(name: str | None) -> bool:
    """True when `name` is a worker of this host whose process no longer lives (False when
    it lives, or runs elsewhere: then only a missing heartbeat tells)."""
    if not name:
        return True
    host, _, rest = name.partition("/")
    identity = rest.rpartition("/")[0]
    pid_text = identity.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or ":" not in identity:
        return False
    return not process_alive(int(pid_text), identity)


@dataclass(frozen=True)
class WorkerSettings:
    slots: int = 4  # attempts this worker runs at once
    group_slots: Mapping[str, int] = field(default_factory=dict)  # per resource group, all workers
    default_group_slots: int = DEFAULT_GROUP_SLOTS
    runners: Mapping[str, str] = field(default_factory=dict)  # task type -> command with {script}
    log_cap: int = LOG_CAP
    task_user: TaskUser | None = None  # None: tasks run as this process's own user
    task_sandbox: bool = False  # run each attempt inside bubblewrap (engine.runner.sandboxed)
    # What every task's environment starts from: PATH, LANG and the variables the operator
    # passes on by name (runtime.isolation.task_base_environment); nothing else of ours.
    task_environment: Mapping[str, str] = field(
        default_factory=lambda: {"PATH": DEFAULT_TASK_PATH, "LANG": "C.UTF-8"}
    )


@dataclass(frozen=True, slots=True)
class _Inputs:
    """An attempt's parameters as written, the names a run request supplied, and each
    parameter's value in its cycle (what the environment and the arguments carry)."""

    params: dict[str, str]
    supplied: frozenset[str]
    values: dict[str, str]


def _bash_refusal(node: NodeSpec, inputs: _Inputs) -> str | None:
    """Why bash may not run this attempt: a supplied value holding `$` or a backtick, which
    bash would re-read as code in an arithmetic context (requests are refused such values;
    instances made before that rule may still hold them)."""
    if node.command not in BASH_TYPES and node.quality_check is None:
        return None
    for name in sorted(inputs.supplied):
        if name in inputs.values and not bash_safe(inputs.values[name]):
            return (
                f"dwsched: the value of the parameter {name} came with the run request "
                "and holds $ or a backtick, which bash reads as code in arithmetic "
                "contexts whatever the quoting; the task was not run."
            )
    return None


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
        self._lock = threading.Lock()
        self._running: dict[int, tuple[threading.Thread, Attempt | None, Claimed]] = {}
        # (task instance, run) stopped before their process was made
        self._cancelled: set[tuple[int, int]] = set()

    @property
    def busy(self) -> int:
        with self._lock:
            self._running = {k: v for k, v in self._running.items() if v[0].is_alive()}
            return len(self._running)

    def claim_and_start(self) -> int:
        """Claim as many task instances as free slots allow and start them (VIRTUAL ones
        end as they are claimed); how many were claimed."""
        started = 0
        while True:
            free = self.settings.slots - self.busy
            if free <= 0:
                break
            claims, virtual = self.store.claim_tasks(
                self.name,
                self.settings.group_slots,
                self.settings.default_group_slots,
                free,
                self.clock.now_ms(),
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
                    if earlier is not None and earlier[0].is_alive():
                        if earlier[1] is not None:
                            earlier[1].stop()
                        else:
                            self._cancelled.add((claimed.id, earlier[2].run_number))
                    self._running[claimed.id] = (thread, None, claimed)
                thread.start()
            started += len(claims) + virtual
            if len(claims) < free and virtual < VIRTUAL_PER_CLAIM:
                break  # nothing more is waiting (or every group is full)
        return started

    def heartbeat(self) -> None:
        """Beat for the attempts in progress, and save what each has logged so far (so a
        running attempt's log can be followed)."""
        with self._lock:
            live = [v for v in self._running.values() if v[0].is_alive()]
        mine = self.store.heartbeat(self.name, [c.id for _, _, c in live], self.clock.now_ms())
        for _, attempt, claimed in live:
            if attempt is None:
                continue
            if claimed.id not in mine:
                if self.running(claimed.id) and attempt.pid is not None and not attempt.exited:
                    # Recovered by another engine (we were taken for dead): stop it.
                    log.warning("task_instance_id=%s was taken over; stopping it", claimed.id)
                    attempt.stop()
                continue
            self.store.save_log(claimed, attempt.log_so_far())

    def stop_taken(self) -> int:
        """Stop the processes of attempts that are no longer this worker's (an operator
        stopped them, or recovery took them over); how many were stopped."""
        with self._lock:
            live = [v for v in self._running.values() if v[0].is_alive()]
        if not live:
            return 0
        mine = self.store.attempts_of(self.name, [c.id for _, _, c in live])
        stopped = 0
        with self._lock:
            for _, _, claimed in live:
                found = self._running.get(claimed.id)
                if claimed.id in mine or found is None or not found[0].is_alive():
                    continue
                attempt = found[1]
                if attempt is None:  # its process is not made yet: stop it as it starts
                    self._cancelled.add((claimed.id, claimed.run_number))
                elif not attempt.exited:
                    attempt.stop()
                else:
                    continue
                log.info("task_instance_id=%s is no longer this worker's; stopping it", claimed.id)
                stopped += 1
        return stopped

    def wait_idle(self, timeout_s: float = 60) -> None:
        with self._lock:
            threads = [t for t, _, _ in self._running.values()]
        for thread in threads:
            thread.join(timeout_s)

    def running(self, task_instance_id: int) -> bool:
        """Whether this worker's thread for the attempt is alive."""
        with self._lock:
            found = self._running.get(task_instance_id)
        return found is not None and found[0].is_alive()

    def stop_all(self) -> None:
        """Shut down: stop the attempts in progress; they go back to wait for a resource
        (without using up a retry's wait) and run again after a restart."""
        self.stopping = True
        with self._lock:
            attempts = [a for _, a, _ in self._running.values() if a is not None]
        for attempt in attempts:
            attempt.stop()

    def fail_stale(self, claimed: Claimed, note: str) -> bool:
        """End an attempt whose worker died: failed, or retried as the node allows; False
        when it had ended meanwhile."""
        return self._done(claimed, Status.FAILURE, None, note + "\n")

    # One attempt

    def run_claimed(self, claimed: Claimed) -> None:
        """Run an attempt this worker has claimed (Store.claim_tasks) to its end."""
        try:
            if claimed.status is Status.CHECKING_CONDITION:
                self._branch(claimed)
            else:
                self._execute(claimed)
            self.on_finish()
        except Exception:
            log.exception(
                "task_instance_id=%s run_number=%s failed in the worker",
                claimed.id,
                claimed.run_number,
            )
            try:
                self.store.finish_task(
                    claimed,
                    Status.FAILURE,
                    None,
                    "dwsched: the worker failed (see its log)",
                    self.clock.now_ms(),
                )
            except Exception:
                # The database is unreachable too: recovery ends the attempt once this
                # thread is gone (Engine.recover).
                log.exception("task_instance_id=%s could not be ended", claimed.id)

    def _inputs(self, claimed: Claimed) -> _Inputs:
        """The attempt's parameters (the workflow's, then the node's own, which rank above),
        the names of those a run request supplied, and each one's value in the cycle."""
        params = parse_assignments(claimed.parameters)
        params.update({k: v for k, v in claimed.node.parameters})
        declared = claimed.node.supplied
        supplied = frozenset(params if declared is None else declared)
        values = resolve(claimed.biz_day, claimed.trigger_time, claimed.timezone, params, supplied)
        return _Inputs(params, supplied, values)

    def _text(self, claimed: Claimed, inputs: _Inputs, text: str, render: Render) -> str:
        """`text` with its parameters substituted; supplied values as `render` shows them."""
        return substitute(
            text,
            claimed.biz_day,
            claimed.trigger_time,
            claimed.timezone,
            inputs.params,
            inputs.supplied,
            render,
        )

    def _branch(self, claimed: Claimed) -> None:
        lines: list[str] = []
        chosen: list[str] = []
        unchosen: list[str] = []
        inputs = self._inputs(claimed)
        for branch in claimed.node.branches:
            # A condition is a Python expression: supplied values arrive as escaped text,
            # so inside quotes they compare as strings and elsewhere they are an error.
            condition = self._text(claimed, inputs, branch.when, python_literal)
            try:
                taken = evaluate_condition(condition)
            except ConditionError as exc:
                lines.append(f"branch {branch.output}: {exc}")
                self.store.finish_task(
                    claimed, Status.FAILURE, None, "\n".join(lines), self.clock.now_ms()
                )
                return
            lines.append(f"branch {branch.output}: {condition!r} is {taken}")
            (chosen if taken else unchosen).append(branch.output)
        unchosen = [o for o in unchosen if o not in chosen]
        self.store.finish_task(
            claimed,
            Status.SUCCESS,
            0,
            "\n".join(lines),
            self.clock.now_ms(),
            unchosen_outputs=unchosen,
        )

    def _execute(self, claimed: Claimed) -> None:
        node = claimed.node
        inputs = self._inputs(claimed)
        refusal = _bash_refusal(node, inputs)
        if refusal is not None:
            self._done(claimed, Status.FAILURE, None, refusal + "\n")
            return
        try:
            render = render_for(node.command, self.settings.runners)
            content = self._text(claimed, inputs, node.content, render)
            check_text = (
                None
                if node.quality_check is None
                else self._text(claimed, inputs, node.quality_check.command, shell_variable)
            )
        except UnsafeValue as refused:
            self._done(claimed, Status.FAILURE, None, f"{refused}\n")
            return
        command = command_for(node.command, content, self.settings.runners)
        if isinstance(command, str):
            self._done(claimed, Status.FAILURE, None, command + "\n")
            return
        log_text = ""
        exit_code: int | None = 0
        if command is not None:
            # The node's own parameters' values, in order: `$1 ... $N` as DataWorks Shell
            # nodes read them.
            arguments = [inputs.values[name] for name, _ in node.parameters]
            outcome = self._process(claimed, inputs, command.with_arguments(arguments))
            log_text, exit_code = outcome
            if exit_code != 0:
                self._done(claimed, Status.FAILURE, exit_code, log_text)
                return
        check = node.quality_check
        if check is not None and check_text is not None:
            self.store.set_checking(claimed, log_text, self.clock.now_ms())
            check_log, check_code = self._process(
                claimed, inputs, Command(("bash", "{script}"), check_text, "check.sh")
            )
            log_text += f"\n--- quality check (exit {check_code}) ---\n{check_log}"
            if check_code != 0 and check.blocking:
                self._done(claimed, Status.FAILURE, check_code, log_text)
                return
        self._done(claimed, Status.SUCCESS, exit_code, log_text)

    def task_environment(self, claimed: Claimed, inputs: _Inputs) -> dict[str, str]:
        """The whole environment of the attempt's process (see the module docstring)."""
        env = dict(self.settings.task_environment)
        env.update({PARAM_PREFIX + k: v for k, v in inputs.values.items()})
        env.update(
            {
                "TZ": claimed.timezone,
                "DWSCHED_TASK_INSTANCE_ID": str(claimed.id),
                "DWSCHED_RUN_NUMBER": str(claimed.run_number),
                "DWSCHED_WORKFLOW_INSTANCE_ID": str(claimed.workflow_instance_id),
                "DWSCHED_BIZDATE": claimed.biz_day.strftime("%Y%m%d"),
            }
        )
        user = self.settings.task_user
        if user is not None:
            env["USER"] = env["LOGNAME"] = user.name
        return env

    def _process(
        self, claimed: Claimed, inputs: _Inputs, command: Command
    ) -> tuple[str, int | None]:
        timeout_s = claimed.node.timeout_s or None
        env = self.task_environment(claimed, inputs)
        attempt = Attempt(
            command,
            env,
            timeout_s,
            log_cap=self.settings.log_cap,
            user=self.settings.task_user,
            home=True,
            sandbox=self.settings.task_sandbox,
        )
        with self._lock:
            # Registered before it starts: a stop noticed from now on stops it (Attempt.stop
            # before start kills it as it starts); one noticed earlier is in _cancelled.
            current = self._running.get(claimed.id)
            if current is not None and current[2].run_number > claimed.run_number:
                attempt.stop()  # a later run of this task instance has been claimed
            else:
                self._running[claimed.id] = (threading.current_thread(), attempt, claimed)
            if (claimed.id, claimed.run_number) in self._cancelled:
                self._cancelled.discard((claimed.id, claimed.run_number))
                attempt.stop()
        try:
            pid = attempt.start()
        except OSError as exc:
            return f"dwsched: the task's process could not start: {exc}\n", None
        self.store.record_process(claimed.id, pid, process_identity(pid))
        outcome = attempt.wait()
        text = outcome.log
        if outcome.timed_out:
            text += (
                f"\ndwsched: the attempt exceeded its timeout of {timeout_s:.0f}s and was killed.\n"
            )
        elif outcome.stopped:
            text += "\ndwsched: the attempt was stopped.\n"
        return text, outcome.exit_code

    def _done(self, claimed: Claimed, status: Status, exit_code: int | None, log_text: str) -> bool:
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
        return self.store.finish_task(claimed, status, exit_code, log_text, now, retry_at=retry_at)
