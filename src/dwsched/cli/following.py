"""Following created workflow instances until they end: the creation's result, then each
instance's status, shown live and summed up per BizDate.

`dwsched backfill` and `dwsched run --wait` use it. Instances are read with
ListWorkflowInstances, one BizDate at a time (the API answers one workspace and one day per
call); an instance not found on the days expected is read with GetWorkflowInstance.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from dwsched.cli.terminal import cell, visible
from dwsched.client import Client
from dwsched.domain.calendar import day_start_ms
from dwsched.domain.models import Status
from dwsched.domain.operations import CreationStatus
from dwsched.domain.transitions import FINISHED, RUNNING

# Seconds between two rounds of reads; a round that took longer is followed by as long a
# pause, so that following many BizDates never keeps the server busy more than half the time.
POLL_S = 0.5
PAGE_SIZE = 500  # ListWorkflowInstances' largest page
MAX_LISTED_IDS = 100  # ListWorkflowInstances' largest Ids filter
SHOWN_IDS = 5  # instance ids shown per BizDate in the summary


def _day_of(instant_ms: int, tz: str) -> date:
    return datetime.fromtimestamp(instant_ms / 1000, UTC).astimezone(ZoneInfo(tz)).date()


def console(stderr: bool = False) -> Console:
    """A terminal's own width; piped output is not cut to 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=200)


class CreateFailed(Exception):
    """CreateWorkflowInstances ended in CreateFailure; the message is the server's."""


@dataclass
class Created:
    """What GetCreateWorkflowInstancesResult returned once the instances were made."""

    workflow_instance_ids: list[int]
    unified_ids: list[int]


@dataclass
class Tracker:
    """The instances of one CreateWorkflowInstances operation, and their latest reads.

    `days` are the BizDates they are expected on (the workspace's zone is `tz`).
    """

    client: Client
    project_id: int
    workflow_id: int
    tz: str
    days: list[date]
    ids: list[int]
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    _listed: set[date] = field(default_factory=set)

    def poll(self) -> None:
        """Read every instance not known to be finished."""
        wanted = set(self.ids)
        for day in self.days:
            if day not in self._listed or self._open(day):
                for item in self._list(day, wanted):
                    self.items[int(item["Id"])] = item
                self._listed.add(day)
        for instance_id in self.ids:
            known = self.items.get(instance_id)
            if known is None or (
                known["Status"] not in FINISHED
                and _day_of(known["BizDate"], self.tz) not in self.days
            ):  # not on the days expected: read alone
                self.items[instance_id] = self.client.call(
                    "GetWorkflowInstance", {"Id": instance_id}, method="GET"
                )["WorkflowInstance"]

    def _open(self, day: date) -> bool:
        return any(
            item["Status"] not in FINISHED and _day_of(item["BizDate"], self.tz) == day
            for item in self.items.values()
        )

    def _list(self, day: date, wanted: set[int]) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "ProjectId": self.project_id,
            "BizDate": day_start_ms(day, self.tz),
            "WorkflowId": self.workflow_id,
            "PageSize": PAGE_SIZE,
        }
        if len(self.ids) <= MAX_LISTED_IDS:
            params["Ids"] = self.ids
        number, seen = 1, 0
        while True:
            paging = self.client.call("ListWorkflowInstances", {**params, "PageNumber": number})[
                "PagingInfo"
            ]
            page = paging["WorkflowInstances"]
            yield from (item for item in page if int(item["Id"]) in wanted)
            seen += len(page)
            if not page or seen >= paging["TotalCount"]:
                return
            number += 1

    @property
    def finished(self) -> bool:
        return len(self.items) >= len(set(self.ids)) and all(
            item["Status"] in FINISHED for item in self.items.values()
        )

    @property
    def failed(self) -> bool:
        return any(item["Status"] == Status.FAILURE for item in self.items.values())

    def counts(self) -> str:
        """`done 2 · running 1 · waiting 0 · failed 0 · Success 2, Running 1`."""
        statuses = Counter(item["Status"] for item in self.items.values())
        done, failed = statuses[Status.SUCCESS], statuses[Status.FAILURE]
        running = sum(statuses[s] for s in RUNNING)
        waiting = len(set(self.ids)) - done - failed - running
        totals = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
        return f"done {done} · running {running} · waiting {waiting} · failed {failed}" + (
            f" · {totals}" if totals else ""
        )

    def done(self) -> int:
        return sum(1 for item in self.items.values() if item["Status"] in FINISHED)

    def summary(self) -> Table:
        """One row per BizDate: its instances and their status."""
        by_day: dict[date, list[dict[str, Any]]] = {}
        for item in self.items.values():
            by_day.setdefault(_day_of(item["BizDate"], self.tz), []).append(item)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for heading in ("BizDate", "Instances", "Status"):
            table.add_column(heading, overflow="fold")
        for day in sorted(by_day):
            items = sorted(by_day[day], key=lambda i: int(i["Id"]))
            statuses = Counter(i["Status"] for i in items)
            status = ", ".join(
                s if len(statuses) == 1 else f"{s} {n}" for s, n in sorted(statuses.items())
            )
            style = (
                "red" if Status.FAILURE in statuses else "green" if status == Status.SUCCESS else ""
            )
            ids = ", ".join(str(i["Id"]) for i in items[:SHOWN_IDS])
            if len(items) > SHOWN_IDS:  # an hourly or minute workflow: many per BizDate
                ids = f"{len(items)}: {ids}, … {items[-1]['Id']}"
            table.add_row(day.isoformat(), ids, cell(status, style))
        return table


class Display:
    """The live line of a follow: a progress bar on a terminal, else one line per change
    (on standard error, so that standard output keeps only results)."""

    def __init__(self, what: str) -> None:
        self.console = console(stderr=True)
        self.what = what
        self.live = self.console.is_terminal
        self._last = ""
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            # The counts wrap on a narrow terminal rather than squeeze the bar.
            TextColumn("{task.fields[counts]}", table_column=Column(ratio=1, overflow="fold")),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task(what, total=None, counts="creating…")

    @contextmanager
    def shown(self) -> Iterator[Display]:
        if not self.live:
            yield self
            return
        with self._progress:
            yield self

    def show(self, counts: str, done: int | None = None, total: int | None = None) -> None:
        if self.live:
            self._progress.update(self._task, counts=counts, completed=done or 0, total=total)
            return
        line = f"{self.what}: {counts}" + ("" if total is None else f" ({done}/{total} finished)")
        if line != self._last:
            self._last = line
            self.console.print(line, highlight=False, soft_wrap=True)


def await_created(client: Client, operation_id: str, display: Display) -> Created:
    """Poll GetCreateWorkflowInstancesResult until the instances are made."""
    while True:
        result = client.call(
            "GetCreateWorkflowInstancesResult", {"OperationId": operation_id}, method="GET"
        )["Result"]
        status = result.get("Status")
        if status == CreationStatus.CREATE_FAILURE:
            # The server's message may quote names users gave: shown escaped.
            raise CreateFailed(visible(result.get("FailureMessage") or "no reason given"))
        if status == CreationStatus.CREATED:
            return Created(
                [int(i) for i in result.get("WorkflowInstanceIds") or []],
                [int(i) for i in result.get("UnifiedWorkflowInstanceIds") or []],
            )
        display.show("creating…")
        time.sleep(POLL_S)


def follow(tracker: Tracker, display: Display) -> None:
    """Poll until every instance of `tracker` has finished, showing the counts."""
    total = len(set(tracker.ids))
    while True:
        started = time.monotonic()
        tracker.poll()
        display.show(tracker.counts(), tracker.done(), total)
        if tracker.finished:
            return
        time.sleep(max(POLL_S, time.monotonic() - started))


def shortened(ids: Sequence[int], most: int = 20) -> str:
    """`1, 2, 3`, or the first `most` and how many in all."""
    text = ", ".join(str(i) for i in ids[:most])
    return text if len(ids) <= most else f"{text}, … ({len(ids)} in all)"
