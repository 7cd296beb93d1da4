"""The demo's live feed: one line per change of a task instance's status that a newcomer
wants to see (a task starts, checks, fails, retries, ends), read from the status events
(docs/events.md) under a cursor of its own.

    01:20:14  Running             flaky_load/ods_payments_load   cycle 01:10  attempt 1  task 2047
    01:20:15  Failure, retrying   flaky_load/ods_payments_load   cycle 01:10  attempt 1  task 2047

Times are the workspace's. A round reads what happened since the last one, once a second,
and prints at most `max_lines` lines (failures and retries first); the rest is counted in
one line, so a burst never floods the terminal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dwsched.cli.terminal import visible
from dwsched.clock import Clock
from dwsched.domain.calendar import zone
from dwsched.domain.errors import DwschedError
from dwsched.domain.models import Status
from dwsched.domain.transitions import Cause, Kind, StatusEvent
from dwsched.store import Store, Tx

log = logging.getLogger("dwsched.feed")

CONSUMER = "demo-feed"
BATCH = 1000
_NAMES_KEPT = 5000

# Operator actions and recoveries say why the status changed; the engine's steps need not.
_WHY = {
    Cause.STOP: " (stopped)",
    Cause.SET_SUCCESS: " (set by hand)",
    Cause.RERUN: " (rerun)",
    Cause.SUSPEND: " (suspended)",
    Cause.TRIGGER: " (triggered)",
}


@dataclass(frozen=True, slots=True)
class _Task:
    path: str  # workflow/task, printable
    cycle: int  # TriggerTime, ms
    timezone: str


def label(event: StatusEvent) -> str | None:
    """What the feed says of `event`; None for what it leaves out: workflow instances'
    derived statuses, events that change nothing, and planning (a task becoming ready, a
    dry run ending) unless it fails the task."""
    if event.kind is not Kind.TASK or event.old is event.new:
        return None
    if event.cause is Cause.PLAN and event.new is not Status.FAILURE:
        return None
    if event.cause is Cause.RETRY:
        return "Failure, retrying"
    if event.cause is Cause.RECOVERY:
        return "Failure (worker lost)" + ("" if event.new is Status.FAILURE else ", retrying")
    return f"{event.new.value}{_WHY.get(event.cause, '')}"


def shown(labels: list[str], max_lines: int) -> tuple[list[int], int]:
    """Which of a round's `labels` are printed (their indexes, in order) and how many are
    left out: all when they fit in `max_lines`, else failures first, then the earliest,
    leaving one line to count the rest."""
    if len(labels) <= max_lines:
        return list(range(len(labels))), 0
    failed = [text.startswith(Status.FAILURE.value) for text in labels]
    urgent = [i for i, f in enumerate(failed) if f]
    rest = [i for i, f in enumerate(failed) if not f]
    kept = sorted((urgent + rest)[: max(max_lines - 1, 0)])
    return kept, len(labels) - len(kept)


class Feed:
    """Prints the feed through `write` from a thread of its own, between `start` and
    `close`. Only what happens after `start` is told."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        write: Callable[[str], None],
        poll_seconds: float = 1.0,
        max_lines: int = 12,
    ) -> None:
        self.store = store
        self.clock = clock
        self.write = write
        self.poll_seconds = poll_seconds
        self.max_lines = max_lines
        self._tasks: dict[int, _Task | None] = {}
        self._zones: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dwsched-feed", daemon=True)

    def start(self) -> None:
        """Move the cursor past every event so far (those of an earlier demo on the same
        database), then follow from a thread."""
        while True:
            with self.store.write() as tx:
                now = self.clock.now_ms()
                backlog = tx.events.next(CONSUMER, now, BATCH)
                if backlog:
                    tx.events.advance(CONSUMER, backlog[-1].id, now)
            if len(backlog) < BATCH:
                break
        self._thread.start()

    def close(self) -> None:
        """Stop following, and drop the feed's cursor: a stopped demo holds no event back
        from the sweep."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        try:
            with self.store.write() as tx:
                tx.events.forget(CONSUMER)
        except Exception:  # the database may be closing with the demo: nothing is lost
            log.warning("the feed's cursor could not be dropped", exc_info=True)

    def __enter__(self) -> Feed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.poll_seconds):
            try:
                lines = self.round()
            except Exception:  # the feed is a view: it must never stop the demo
                if not failing:
                    log.warning("feed round failed; retrying every second", exc_info=True)
                failing = True
                continue
            failing = False
            for line in lines:
                self.write(line)

    def round(self) -> list[str]:
        """The lines of the events since the last round (which it marks read)."""
        with self.store.write() as tx:
            now = self.clock.now_ms()
            events = tx.events.next(CONSUMER, now, BATCH)
            if not events:
                return []
            told = [
                (event, text)
                for event in events
                if (text := label(event)) is not None
                and self._task(tx, event.instance_id) is not None
            ]
            tx.events.advance(CONSUMER, events[-1].id, now)
        return self._lines(told)

    def _lines(self, told: list[tuple[StatusEvent, str]]) -> list[str]:
        kept, left = shown([text for _, text in told], self.max_lines)
        lines = [self._line(*told[i]) for i in kept]
        if left:
            lines.append(f"          ... and {left} more changes (the console shows them all)")
        return lines

    def _line(self, event: StatusEvent, text: str) -> str:
        task = self._tasks[event.instance_id]
        assert task is not None
        tz = zone(task.timezone)
        at = datetime.fromtimestamp(event.at / 1000, tz).strftime("%H:%M:%S")
        cycle = datetime.fromtimestamp(task.cycle / 1000, tz).strftime("%H:%M")
        return (
            f"{at}  {text:<18}  {task.path:<32}  cycle {cycle}  "
            f"attempt {event.run_number or 0}  task {event.instance_id}"
        )

    def _task(self, tx: Tx, task_instance_id: int) -> _Task | None:
        if task_instance_id not in self._tasks:
            if len(self._tasks) >= _NAMES_KEPT:
                self._tasks.clear()
            try:
                found = tx.task_instances.get(task_instance_id)
            except DwschedError:  # gone since (a deleted workflow)
                self._tasks[task_instance_id] = None
            else:
                if found.project_id not in self._zones:
                    self._zones[found.project_id] = tx.projects.timezone(found.project_id)
                self._tasks[task_instance_id] = _Task(
                    visible(f"{found.workflow_name}/{found.name}"),
                    found.trigger_time,
                    self._zones[found.project_id],
                )
        return self._tasks[task_instance_id]
