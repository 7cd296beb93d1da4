"""How instances are shown on a terminal: statuses in colour, times in the workspace's
zone, and the tables of workflow instances and of task instances.

A table never cuts or splits an id, a status, a time or a duration, at 80 columns, on a
pipe or narrower: only a name folds. When the table does not fit with a name of
`NAME_FLOOR` columns, the task table shortens its types (`CONTROLLER_BRANCH` shows as
`BRANCH`); when it still does not fit, each row takes two lines, the name and type on the
second (`stacked`). A heading breaks between its ` · ` parts, never inside one.

Names are users' text: shown escaped, never as markup (cli/terminal.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dwsched.cli import ids as kinds
from dwsched.cli.terminal import cell, counted, visible
from dwsched.domain.models import Status

STATUS_STYLE = {
    Status.SUCCESS.value: "green",
    Status.FAILURE.value: "bold red",
    Status.RUNNING.value: "bold blue",
    Status.CHECKING.value: "blue",
    Status.WAIT_TIME.value: "yellow",
    Status.WAIT_RESOURCE.value: "yellow",
    Status.CHECKING_CONDITION.value: "cyan",
    Status.NOT_RUN.value: "dim",
}
DRY_RUN = " · dry run"  # after the status of a dry run
NAME_FLOOR = 12  # the least a name keeps in a one-line row
GAP = 2  # between columns
NAME, TYPE = 1, 2  # the columns that may give way
SHORT_PREFIX = "CONTROLLER_"  # dropped from a task type when the table must shorten types
COMPACT: dict[str, Any] = {
    "box": box.SIMPLE_HEAD,
    "show_edge": False,
    "pad_edge": False,
    "collapse_padding": True,
}


def moment(ms: int | None, tz: ZoneInfo, seconds: bool = False) -> str:
    """`06-10 02:30` (with `:05` when `seconds`), in the workspace's zone; `-` for none."""
    if ms is None:
        return "-"
    shown = "%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime(shown)


def clock(ms: int | None, tz: ZoneInfo) -> str:
    """`02:30`, in the workspace's zone; `-` for none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%H:%M")


def took(item: dict[str, Any]) -> str:
    """`0m04s`, `2h05m`; `-` until it has finished."""
    started, finished = item.get("StartedTime"), item.get("FinishedTime")
    if started is None or finished is None:
        return "-"
    seconds = (finished - started) // 1000
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def status_cell(status: str, dry: bool = False) -> Text:
    """The status in its colour; `Success · dry run` for a dry run."""
    text = cell(status, STATUS_STYLE.get(status, ""))
    if dry:
        text.append(DRY_RUN, style="dim")
    return text


def heading(parts: list[Text], width: int) -> Text:
    """`parts` joined by ` · `, broken into lines between parts to fit `width` columns (a
    part wider than `width`, a long name, folds when printed)."""
    lines: list[Text] = []
    for part in parts:
        if lines and lines[-1].cell_len + 3 + part.cell_len <= width:
            lines[-1].append(" · ").append_text(part)
        else:
            lines.append(part.copy())
    return Text("\n").join(lines)


def instance_table(
    items: list[dict[str, Any]],
    tz: ZoneInfo,
    project: str,
    day: date,
    width: int,
    dry: Collection[int] = (),
) -> RenderableType:
    """The workflow instances of a page, for a terminal `width` columns wide: the ones in
    `dry` (whose task instances are all dry runs) marked as dry runs; each one's cycle (its
    TriggerTime, HH:MM) tells apart the runs of a workflow."""
    # Names, owners and the workspace's name are users' text: shown escaped, never as markup.
    title = heading([cell(project), Text(f"BizDate {day}"), Text(tz.key)], width)
    rows = [
        [
            Text(str(item["Id"])),
            cell(item["Name"]),
            cell(item["Type"]),
            status_cell(item["Status"], int(item["Id"]) in dry),
            Text(clock(item.get("TriggerTime"), tz)),
            Text(moment(item.get("StartedTime"), tz)),
            Text(took(item)),
        ]
        for item in items
    ]
    headings = ["Id", "Name", "Type", "Status", "Cycle", "Started", "Took"]
    return Group(title, _table(headings, rows, width))


def short_type(kind: Text) -> Text:
    """`CONTROLLER_BRANCH` as `BRANCH`: a task type without its `CONTROLLER_` prefix."""
    if kind.plain.startswith(SHORT_PREFIX):
        return kind[len(SHORT_PREFIX) :]
    return kind


def task_table(tasks: list[dict[str, Any]], tz: ZoneInfo, width: int) -> RenderableType:
    """The task instances of a workflow instance, dry runs marked, for a terminal `width`
    columns wide."""
    rows = [
        [
            Text(str(t["Id"])),
            cell(t["TaskName"]),
            cell(t.get("TaskType") or ""),
            status_cell(t["Status"], kinds.dry_run(t)),
            Text(str(t["RunNumber"]) if t.get("StartedTime") is not None else "-"),
            Text(moment(t.get("StartedTime"), tz)),
            Text(took(t)),
        ]
        for t in tasks
    ]
    headings = ["Id", "Task", "Type", "Status", "Run", "Started", "Took"]
    return _table(headings, rows, width, short=short_type, right=(0, 4))


def _widths(headings: list[str], rows: list[list[Text]]) -> list[int]:
    return [max([len(h), *(r[k].cell_len for r in rows)]) for k, h in enumerate(headings)]


def _table(
    headings: list[str],
    rows: list[list[Text]],
    width: int,
    short: Callable[[Text], Text] | None = None,
    right: tuple[int, ...] = (0,),
) -> RenderableType:
    """Rows on one line each when a name keeps `NAME_FLOOR` columns (or all of its own),
    types shortened by `short` if that is what it takes; else `stacked`."""
    natural = _widths(headings, rows)
    fixed = sum(w for k, w in enumerate(natural) if k not in (NAME, TYPE))
    fixed += GAP * (len(headings) - 1)
    least = min(natural[NAME], NAME_FLOOR)
    tries = [rows]
    if short is not None:
        tries.append([[*r[:TYPE], short(r[TYPE]), *r[TYPE + 1 :]] for r in rows])
    for shown in tries:
        widths = _widths(headings, shown)
        room = width - fixed - widths[TYPE]
        if room >= least:
            widths[NAME] = min(widths[NAME], room)
            return _grid(headings, shown, widths, right)
    return _stacked(headings, rows, natural, right)


def _grid(
    headings: list[str], rows: list[list[Text]], widths: list[int], right: tuple[int, ...]
) -> Table:
    """A table of these column widths exactly: the name folds, nothing else does."""
    table = Table(**COMPACT)
    for k, heading_ in enumerate(headings):
        table.add_column(
            heading_,
            justify="right" if k in right else "left",
            width=widths[k],
            no_wrap=k != NAME,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*row)
    return table


def _stacked(
    headings: list[str], rows: list[list[Text]], widths: list[int], right: tuple[int, ...]
) -> Group:
    """Two lines a row for a narrow terminal: the columns that never fold, then the name
    and type, indented."""
    keep = [k for k in range(len(headings)) if k not in (NAME, TYPE)]

    def line(cells: list[Text]) -> Text:
        parts = []
        for k, c in zip(keep, cells, strict=True):
            c = c.copy()
            c.align("right" if k in right else "left", widths[k])
            parts.append(c)
        joined = Text(" " * GAP).join(parts)
        joined.rstrip()
        return joined

    head = line([Text(headings[k], style="bold") for k in keep])
    under = Text(f"  {headings[NAME]} · {headings[TYPE]}", style="bold")
    shown: list[Text] = [head, under, Text("─" * head.cell_len)]
    for row in rows:
        shown.append(line([row[k] for k in keep]))
        shown.append(Text("  ").append_text(row[NAME]).append(" · ").append_text(row[TYPE]))
    return Group(*shown)


def task_counts(tasks: list[dict[str, Any]]) -> str:
    """`3 task instances · 1 Failure, 2 Success (1 dry run)`."""
    statuses: dict[str, int] = {}
    for t in tasks:
        statuses[t["Status"]] = statuses.get(t["Status"], 0) + 1
    dry = sum(1 for t in tasks if kinds.dry_run(t))
    text = counted(len(tasks), "task instance")
    if statuses:
        text += " · " + ", ".join(f"{n} {visible(s)}" for s, n in sorted(statuses.items()))
    return text + (f" ({counted(dry, 'dry run')})" if dry else "")
