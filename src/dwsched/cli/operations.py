"""`dwsched backfill` and `dwsched run` through a running server, and what the operations on
workflow and task instances share: their ids, their batches and their ✓/✗ lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from dwsched.cli.following import (
    CreateFailed,
    Display,
    Tracker,
    await_created,
    console,
    follow,
    shortened,
)
from dwsched.cli.options import F, client_options, option
from dwsched.cli.terminal import visible
from dwsched.client import Client
from dwsched.domain.flowspec import TriggerType
from dwsched.domain.models import InstanceType

# What `dwsched run` makes of each trigger type (a scheduled workflow: SmokeTest).
RUN_TYPES = {
    TriggerType.MANUAL.value: InstanceType.MANUAL_WORKFLOW.value,
    TriggerType.TRIGGER_WORKFLOW.value: InstanceType.TRIGGER_WORKFLOW.value,
}
# The exit code after Ctrl-C while following: the work goes on on the server.
INTERRUPTED = 130
BATCH_SIZE = 100  # ids per batch request


# Parsing ids and dates


def _integers(values: tuple[str, ...], what: str) -> list[int]:
    """`1,2 3` and `4` → [1, 2, 3, 4], each once, in order."""
    found: list[int] = []
    for value in values:
        for part in re.split(r"[\s,]+", value.strip()):
            if not part:
                continue
            if not re.fullmatch(r"[0-9]{1,19}", part) or int(part) < 1:
                raise click.BadParameter(f"{part!r} is not {what} (a positive integer)")
            found.append(int(part))
    return list(dict.fromkeys(found))


def _task_ids(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[int]:
    return _integers(values, "a task id")


def _iso_day(_ctx: click.Context, _param: click.Parameter, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: expected a date as YYYY-MM-DD") from exc


def _day_word(_ctx: click.Context, _param: click.Parameter, text: str | None) -> str | None:
    if text is not None and text not in ("today", "yesterday"):
        _iso_day(_ctx, _param, text)
    return text


def _resolve_day(text: str | None, tz: str) -> date | None:
    """YYYY-MM-DD, or today / yesterday in the workspace's zone."""
    if text is None:
        return None
    today = datetime.now(ZoneInfo(tz)).date()
    return {"today": today, "yesterday": today - timedelta(days=1)}.get(text) or (
        date.fromisoformat(text)
    )


# Creating instances and following them


@dataclass
class Workflow:
    id: int
    project_id: int
    name: str
    trigger: str  # Scheduler, Manual or TriggerWorkflow
    task_ids: list[int]
    tz: str


def _workflow(client: Client, workflow_id: int) -> Workflow:
    w = client.call("GetWorkflow", {"Id": workflow_id}, method="GET")["Workflow"]
    project = client.call("GetProject", {"Id": w["ProjectId"]}, method="GET")["Project"]
    trigger = w.get("Trigger") or {}
    return Workflow(
        id=int(w["Id"]),
        project_id=int(w["ProjectId"]),
        name=str(w["Name"]),
        trigger=str(trigger.get("Type") or w.get("TriggerType") or TriggerType.SCHEDULER.value),
        task_ids=[int(t["Id"]) for t in w.get("Tasks") or []],
        tz=str(project.get("TimeZone") or "Asia/Shanghai"),
    )


def _check_tasks(w: Workflow, tasks: list[int]) -> None:
    unknown = [t for t in tasks if t not in w.task_ids]
    if unknown:
        raise click.BadParameter(
            f"{shortened(unknown)} not in workflow {w.id} (its tasks: {shortened(w.task_ids)})",
            param_hint="'--tasks'",
        )


@dataclass
class Operation:
    """One CreateWorkflowInstances call: what to say when the user stops following it."""

    client: Client
    workflow: Workflow
    type: str
    days: list[date]
    operation_id: str
    what: str  # backfill, run
    ids: list[int] | None = None

    def watch(self, display: Display) -> bool:
        """Wait for the instances (unless known), then for their end; True when every one
        succeeded. The summary per BizDate is printed at the end."""
        with display.shown():
            if self.ids is None:
                self.ids = self.await_ids(display)
            tracker = Tracker(
                self.client,
                self.workflow.project_id,
                self.workflow.id,
                self.workflow.tz,
                self.days,
                self.ids,
            )
            follow(tracker, display)
        console().print(tracker.summary())
        return not tracker.failed

    def await_ids(self, display: Display) -> list[int]:
        try:
            return await_created(self.client, self.operation_id, display).workflow_instance_ids
        except CreateFailed as exc:
            raise click.ClickException(f"the instances were not created: {exc}") from exc

    def interrupted(self) -> None:
        """Ctrl-C: how to follow the work, which goes on."""
        out = console()
        out.print(f"\nStopped following; the {self.what} goes on on the server.", highlight=False)
        out.print(f"  operation  {self.operation_id}", highlight=False)
        if self.ids is not None:
            out.print(f"  instances  {shortened(self.ids)}", highlight=False)
        if self.days:
            last = f" (and each BizDate to {self.days[-1]})" if len(self.days) > 1 else ""
            out.print(
                f"  follow it  dwsched instances list --project {self.workflow.project_id} "
                f"--biz-date {self.days[0]} --type {self.type} --workflow {self.workflow.id}"
                + last,
                highlight=False,
                soft_wrap=True,
            )


def _create(client: Client, w: Workflow, params: dict[str, Any]) -> str:
    base = {"ProjectId": w.project_id, "WorkflowId": w.id}
    return str(client.call("CreateWorkflowInstances", {**base, **params})["OperationId"])


def _periods(start: date, end: date) -> dict[str, Any]:
    return {"BizDates": [{"StartBizDate": start.isoformat(), "EndBizDate": end.isoformat()}]}


def _follow_or_exit(op: Operation) -> None:
    """Follow `op` to its end; exit 1 when an instance failed, INTERRUPTED on Ctrl-C."""
    try:
        succeeded = op.watch(Display(op.what))
    except KeyboardInterrupt:
        op.interrupted()
        raise click.exceptions.Exit(INTERRUPTED) from None
    if not succeeded:
        raise click.exceptions.Exit(1)


def _tasks_option(help_text: str) -> Callable[[F], F]:
    return option(
        "--tasks", multiple=True, callback=_task_ids, metavar="ID[,ID...]", help=help_text
    )


@click.command()
@client_options
@click.argument("workflow_id", type=int)
@option(
    "--from",
    "start",
    envvar="DWSCHED_BACKFILL_FROM",
    required=True,
    callback=_iso_day,
    metavar="YYYY-MM-DD",
    help="First BizDate.",
)
@option(
    "--to",
    "end",
    envvar="DWSCHED_BACKFILL_TO",
    required=True,
    callback=_iso_day,
    metavar="YYYY-MM-DD",
    help="Last BizDate (included).",
)
@option(
    "--parallelism",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="BizDates run at once (1: one after another).",
)
@option("--desc", is_flag=True, help="Newest BizDate first (default: oldest first).")
@_tasks_option("Root tasks to run, comma separated or repeated (default: every task).")
@option("--name", default=None, help="Name of the backfill (default: WORKFLOW_backfill_FROM_TO).")
@option("--wait/--no-wait", default=True, show_default=True, help="Follow the backfill to its end.")
def backfill(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    workflow_id: int,
    start: date,
    end: date,
    parallelism: int,
    desc: bool,
    tasks: list[int],
    name: str | None,
    wait: bool,
) -> None:
    """Backfill WORKFLOW_ID: one SupplementData instance per BizDate from --from to --to.

    Shows the progress until every instance has finished; exits 0 when all succeeded, 1
    when one failed. Ctrl-C stops following (exit code 130) and leaves the backfill
    running: the command prints its operation, its instances and how to list them.
    --no-wait prints the operation id and returns.
    """
    if start > end:
        raise click.BadParameter(f"{start} is after --to {end}", param_hint="'--from'")
    with Client(endpoint, access_key_id, access_key_secret) as client:
        w = _workflow(client, workflow_id)
        _check_tasks(w, tasks)
        run = {
            "Mode": "ManualSelection",
            "Parallelism": parallelism,
            "Order": "Desc" if desc else "Asc",
        }
        if tasks:
            run["RootTaskIds"] = tasks
        params = {
            "Name": name or f"{w.name}_backfill_{start:%Y%m%d}_{end:%Y%m%d}",
            "Type": InstanceType.SUPPLEMENT_DATA.value,
            "DefaultRunProperties": run,
            "Periods": _periods(start, end),
        }
        operation_id = _create(client, w, params)
        click.echo(f"backfill {operation_id}: {visible(w.name)} from {start} to {end}")
        if not wait:
            return
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        op = Operation(
            client, w, InstanceType.SUPPLEMENT_DATA.value, days, operation_id, "backfill"
        )
        _follow_or_exit(op)


@click.command("run")
@client_options
@click.argument("workflow_id", type=int)
@option(
    "--biz-date",
    default=None,
    callback=_day_word,
    help="YYYY-MM-DD, today or yesterday (default: yesterday, in the workspace's zone).",
)
@_tasks_option("Tasks to run, comma separated or repeated (default: every task).")
@option("--name", default=None, help="Name of the run (default: the workflow's).")
@option("--wait/--no-wait", default=False, show_default=True, help="Follow the run to its end.")
def run_(
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    workflow_id: int,
    biz_date: str | None,
    tasks: list[int],
    name: str | None,
    wait: bool,
) -> None:
    """Run WORKFLOW_ID now, for one BizDate: a ManualWorkflow instance of a manual
    workflow (a TriggerWorkflow instance of an event-triggered one), a SmokeTest instance
    of the chosen tasks (default all) of a scheduled one.

    Prints the operation and the instances made. With --wait, follows them to their end:
    exit 0 when all succeeded, 1 when one failed, 130 after Ctrl-C (the run goes on).
    """
    with Client(endpoint, access_key_id, access_key_secret) as client:
        w = _workflow(client, workflow_id)
        _check_tasks(w, tasks)
        day = _resolve_day(biz_date, w.tz)
        type_ = RUN_TYPES.get(w.trigger, InstanceType.SMOKE_TEST.value)
        params: dict[str, Any] = {"Name": name or w.name, "Type": type_}
        if type_ == InstanceType.SMOKE_TEST:  # the tasks to test are required
            run = {"RootTaskIds": tasks or w.task_ids}
        else:  # the whole workflow unless told
            run = {
                "IncludeTaskIds" if type_ == InstanceType.TRIGGER_WORKFLOW else "RootTaskIds": tasks
            }
        if tasks or type_ == InstanceType.SMOKE_TEST:
            params["DefaultRunProperties"] = {"Mode": "ManualSelection", **run}
        if day is not None:
            params["Periods"] = _periods(day, day)
        operation_id = _create(client, w, params)
        days = [day or datetime.now(ZoneInfo(w.tz)).date() - timedelta(days=1)]
        op = Operation(client, w, type_, days, operation_id, "run")
        display = Display("run")
        try:
            with display.shown():
                op.ids = op.await_ids(display)
        except KeyboardInterrupt:
            op.interrupted()
            raise click.exceptions.Exit(INTERRUPTED) from None
        click.echo(f"{type_} {operation_id}: instances {shortened(op.ids, 100)}")
        if wait:
            _follow_or_exit(op)


# Batch operations (the commands are `dwsched instances start|stop|rerun` and `dwsched tasks
# rerun|stop|set-success|suspend|resume`)


def ids_argument(metavar: str, what: str) -> Callable[[F], F]:
    """A required argument of ids (space or comma separated, each once) named METAVAR..."""

    def check(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[int]:
        found = _integers(values, what)
        if not found:
            raise click.BadParameter(f"give at least one {what}")
        return found

    return click.argument("ids", nargs=-1, required=True, callback=check, metavar=f"{metavar}...")


comment_option = option("--comment", default=None, help="Why (kept with the operation).")


def send(
    client: Client, action: str, ids: list[int], extra: dict[str, Any]
) -> dict[int, tuple[bool, str]]:
    """Send `action` for `ids` (in batches): each id's success and the server's message."""
    answers: dict[str, Any] = {}
    for begin in range(0, len(ids), BATCH_SIZE):
        batch = ids[begin : begin + BATCH_SIZE]
        answers.update(client.call(action, {"Ids": batch, **extra}).get("SuccessInfo") or {})
    found: dict[int, tuple[bool, str]] = {}
    for i in ids:
        answer = answers.get(str(i)) or {"Success": False, "Message": "no answer"}
        found[i] = (answer.get("Success") is True, visible(str(answer.get("Message") or "")))
    return found


def report(done: bool, instance_id: int, verb: str, about: str, why: str = "") -> None:
    """`✓ 12 rerun: load (was Failure) · ...`, or `✗ 12 not rerun: ...: why`."""
    if done:
        click.echo(f"{click.style('✓', fg='green')} {instance_id} {verb}: {about}")
        return
    reason = f": {why}" if why else ""
    click.echo(f"{click.style('✗', fg='red')} {instance_id} not {verb}: {about}{reason}")


def missing(instance_id: int, kind: str) -> None:
    """`✗ 12 no task instance has this id`."""
    click.echo(f"{click.style('✗', fg='red')} {instance_id} no {kind} has this id")


def send_and_report(
    client: Client,
    action: str,
    ids: list[int],
    extra: dict[str, Any],
    found: Mapping[int, dict[str, Any] | None],
    kind: str,
    verb: str,
    about: Callable[[dict[str, Any]], str],
) -> None:
    """Send `action` for the ids `found` names (each read beforehand as `kind`), and print
    ✓/✗ per id with `about` what it named; exit 1 when one was refused or names nothing."""
    known = [i for i in ids if found[i] is not None]
    results = send(client, action, known, extra) if known else {}
    failed = 0
    for i in ids:
        item = found[i]
        if item is None:
            missing(i, kind)
            failed += 1
            continue
        done, why = results[i]
        failed += not done
        report(done, i, verb, about(item), why)
    if failed:
        raise click.exceptions.Exit(1)


RESULTS = (
    "Prints ✓ or ✗ per id with what it names (and why it was refused); exits 1 if one was "
    "refused or names nothing."
)
