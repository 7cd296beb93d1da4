"""How instances are shown on a terminal: statuses in colour, times in the workspace's
zone, and the tables of workflow instances and of task instances, which keep a row on one
line at 80 columns (a long name or type folds; ids, statuses and times never do).

Names are users' text: shown escaped, never as markup (cli/terminal.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
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
NAME_FLOOR = 12  # the least a name keeps when the table must fold
TYPE_FLOOR = 6  # the least a type keeps while the name is shown whole
GAP = 2  # between columns
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


def instance_table(
    items: list[dict[str, Any]], tz: ZoneInfo, project: str, day: date, width: int
) -> Table:
    """The workflow instances of a page, for a terminal `width` columns wide."""
    # Names, owners and the workspace's name are users' text: shown escaped, never as markup.
    title = cell(f"{project} · BizDate {day} · {tz.key}")
    rows = [
        [
            Text(str(item["Id"])),
            cell(item["Name"]),
            cell(item["Type"]),
            cell(item["Status"], STATUS_STYLE.get(item["Status"], "")),
            Text(moment(item.get("StartedTime"), tz)),
            Text(took(item)),
        ]
        for item in items
    ]
    return _table(["Id", "Name", "Type", "Status", "Started", "Took"], rows, width, title)


def task_table(tasks: list[dict[str, Any]], tz: ZoneInfo, width: int) -> Table:
    """The task instances of a workflow instance, dry runs marked, for a terminal `width`
    columns wide."""
    rows = []
    for t in tasks:
        name = cell(t["TaskName"])
        if kinds.dry_run(t):
            name.append(" dry run", style="dim")
        rows.append(
            [
                Text(str(t["Id"])),
                name,
                cell(t.get("TaskType") or ""),
                cell(t["Status"], STATUS_STYLE.get(t["Status"], "")),
                Text(str(t["RunNumber"]) if t.get("StartedTime") is not None else "-"),
                Text(moment(t.get("StartedTime"), tz)),
                Text(took(t)),
            ]
        )
    headings = ["Id", "Task", "Type", "Status", "Run", "Started", "Took"]
    return _table(headings, rows, width, right=(0, 4))


def _table(
    headings: list[str],
    rows: list[list[Text]],
    width: int,
    title: Text | None = None,
    right: tuple[int, ...] = (0,),
) -> Table:
    """A table whose column 1 (a name) and 2 (a type) may fold and the others never do.
    The name stays whole while the others leave it room, the type folding first."""
    widths = [max([len(h), *(r[k].cell_len for r in rows)]) for k, h in enumerate(headings)]
    fixed = sum(widths) - widths[1] - widths[2] + GAP * (len(headings) - 1)
    name = max(NAME_FLOOR, min(widths[1], width - fixed - min(widths[2], TYPE_FLOOR)))
    table = Table(title=title, **COMPACT)
    for k, heading in enumerate(headings):
        table.add_column(
            heading,
            justify="right" if k in right else "left",
            no_wrap=k not in (1, 2),
            overflow="fold",
            min_width=name if k == 1 else None,
        )
    for row in rows:
        table.add_row(*row)
    return table


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
