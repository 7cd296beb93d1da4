"""Workflow-instance ids and task-instance ids cannot be confused in the CLI (issue 16):
`dwsched instances` acts on workflow instances, `dwsched tasks` on task instances; each
command refuses an id of the other kind, naming the command that fits, and changes nothing;
one that changes something refuses an id naming both kinds unless --yes, and one that reads
notes the other kind; each operation says what it acted on. The listing opens on what
happened and reads at 80 columns; an empty log or listing says why.

A live server with the engine beside it, on SQLite and PostgreSQL (one per backend for the
module; tests keep to workspaces of their own). The workflow instances the tests import
first have ids far above any task instance's, so that the engine's instances get ids that
no task instance has: the refusals are then certain, whatever else the database holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import Result

from dwsched.client import Client
from dwsched.clock import SystemClock
from dwsched.domain.models import InstanceType, Status
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from tests.cli.helpers import clean_error, invoke, ok
from tests.cli.test_operations import (
    TZ,
    deploy,
    shell,
    smoke_test,
    task_instance,
    wait_until,
)
from tests.support.databases import BACKENDS, new_database_url
from tests.support.factories import instance, project, put
from tests.support.server import LiveServer, running_server

# Workflow instances imported with these ids push the engine's own ids past them.
TASK_BASE = 10**9  # task instance ids start here (migration 0014)
LISTED = 800_000_000  # the listing test's own workflow instances
MISSING = 987_654_321


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server and engine per backend."""
    urls = new_database_url(request.param, tmp_path_factory.mktemp("ids"))
    try:
        with running_server(next(urls)) as server:
            service = Service(server.store, SystemClock(), WorkerSettings(slots=4), tick_s=0.05)
            service.start()
            try:
                yield server
            finally:
                service.stop()
    finally:
        urls.close()


def env(live: LiveServer, columns: int = 80) -> dict[str, str]:
    return {
        "DWSCHED_ENDPOINT": live.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": live.key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": live.secret,
        "COLUMNS": str(columns),
    }


def dw(live: LiveServer, *args: str, columns: int = 80) -> Result:
    return invoke(*args, env=env(live, columns))


def workflow_instance(live: LiveServer, instance_id: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(ok(dw(live, "instances", "get", str(instance_id))).stdout)
    return found


@pytest.fixture(scope="module")
def failed(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workflow instance whose middle task failed (it needs a flag file): `extract`
    succeeded, `load` failed, `report` waits; `skipped` of another workflow is a dry run."""
    flag = tmp_path_factory.mktemp("flag") / "fixed"
    p = project(live.store)
    w = deploy(
        live,
        p.id,
        [
            shell("extract", "echo extracted"),
            shell("load", f'[ -e {flag} ] || {{ echo "no {flag.name}"; exit 1; }}', "extract"),
            shell("report", "echo reported", "load"),
        ],
    )
    day = date(2025, 8, 1)
    wi, tasks = smoke_test(live, w, day)
    load = tasks["load"]["Id"]
    wait_until(lambda: task_instance(live, load)["Status"] == "Failure", "load to fail")
    # The two kinds are numbered apart: no number names one of each.
    assert wi < TASK_BASE <= min(t["Id"] for t in tasks.values()), (wi, tasks)
    # Only `one` of two tasks chosen: the other is a SkipUnchoose dry run.
    other = deploy(live, p.id, [shell("one", "echo one"), shell("two", "echo two", "one")])
    ids = {t["Name"]: t["Id"] for t in other["Tasks"]}
    run = ok(
        dw(
            live,
            "run",
            str(other["Id"]),
            "--biz-date",
            day.isoformat(),
            "--tasks",
            str(ids["one"]),
            "--wait",
        )
    )
    m = re.search(r"^SmokeTest \S+: instances (\d+)$", run.stdout, re.MULTILINE)
    assert m, run.stdout
    listed = json.loads(ok(dw(live, "tasks", "list", m.group(1), "--json")).stdout)
    dry = {t["TaskName"]: t for t in listed["TaskInstances"]}["two"]
    return {
        "project": p.id,
        "flag": flag,
        "day": day,
        "instance": wi,
        "name": workflow_instance(live, wi)["Name"],
        "tasks": {n: t["Id"] for n, t in tasks.items()},
        "dry": dry["Id"],
    }


def test_a_workflow_instance_id_is_refused_by_tasks_rerun_then_instances_rerun_fixes_it(
    live: LiveServer, failed: dict[str, Any]
) -> None:
    wi, load = failed["instance"], failed["tasks"]["load"]
    assert workflow_instance(live, wi)["Status"] == "Failure"

    # The new user's mistake: the failed workflow instance's id given to a task command.
    refused = clean_error(dw(live, "tasks", "rerun", str(wi)))
    first = refused.output.splitlines()[0]
    assert f"{wi} is a workflow instance" in first, refused.output
    assert f"use dwsched instances rerun {wi}" in first, refused.output
    assert failed["name"] in first and "BizDate 2025-08-01" in first, refused.output
    # Nothing changed.
    assert (task_instance(live, load)["Status"], task_instance(live, load)["RunNumber"]) == (
        "Failure",
        1,
    )
    assert workflow_instance(live, wi)["Status"] == "Failure"
    # Among other ids too: none of them is acted on.
    both = clean_error(dw(live, "tasks", "rerun", str(load), str(wi)))
    assert "Nothing was done to any of the ids." in both.output, both.output
    assert task_instance(live, load)["RunNumber"] == 1

    # The cause fixed, the whole workflow instance is rerun: its failed task runs again,
    # and what waited for it runs after.
    failed["flag"].touch()
    out = ok(dw(live, "instances", "rerun", str(wi), "--comment", "flag fixed")).stdout
    assert re.fullmatch(
        rf"✓ {wi} rerun: was \S+ \(Failure\) · SmokeTest · BizDate 2025-08-01 · "
        rf"1 task instance: load \({load}\)\n",
        out,
    ), out
    wait_until(lambda: workflow_instance(live, wi)["Status"] == "Success", "the rerun to succeed")
    assert task_instance(live, load)["RunNumber"] == 2
    assert task_instance(live, failed["tasks"]["report"])["Status"] == "Success"

    # A finished, successful instance has nothing failed to rerun.
    again = dw(live, "instances", "rerun", str(wi))
    assert again.exit_code == 1, again.output
    assert "no task instance failed (--all reruns every one)" in again.output
    every = ok(dw(live, "instances", "rerun", str(wi), "--all")).stdout
    assert "· 3 task instances: extract (" in every, every
    wait_until(lambda: task_instance(live, failed["tasks"]["report"])["RunNumber"] == 2, "--all")
    wait_until(lambda: workflow_instance(live, wi)["Status"] == "Success", "the second rerun")


def test_a_task_instance_id_is_refused_by_instances_commands(
    live: LiveServer, failed: dict[str, Any]
) -> None:
    extract = failed["tasks"]["extract"]
    wi = failed["instance"]
    before = task_instance(live, extract)
    for command in ("rerun", "stop", "start"):
        result = clean_error(dw(live, "instances", command, str(extract)))
        assert f"{extract} is a task instance, not a workflow instance" in result.output
        assert f"workflow instance {wi}" in result.output, result.output
    assert (
        "use dwsched tasks rerun"
        in clean_error(dw(live, "instances", "rerun", str(extract))).output
    )
    shown = clean_error(dw(live, "instances", "show", str(extract)))
    assert f"use dwsched tasks show {extract}" in shown.output, shown.output
    listed = clean_error(dw(live, "tasks", "list", str(extract)))
    assert f"dwsched tasks list {wi}" in listed.output, listed.output
    logs = clean_error(dw(live, "tasks", "logs", str(wi)))
    assert f"its task instances: dwsched tasks list {wi}" in logs.output, logs.output
    assert task_instance(live, extract) == before
    # An id of neither kind: said per id, exit 1.
    gone = dw(live, "tasks", "set-success", str(MISSING))
    assert gone.exit_code == 1 and f"✗ {MISSING} no task instance has this id" in gone.output


def test_show_and_list_a_workflow_instances_task_instances(
    live: LiveServer, failed: dict[str, Any]
) -> None:
    wi, dry = failed["instance"], failed["dry"]
    wait_until(lambda: workflow_instance(live, wi)["Status"] in ("Success", "Failure"), "an end")
    out = ok(dw(live, "instances", "show", str(wi))).stdout
    assert f"workflow instance {wi} {failed['name']}" in out, out
    for name, task_id in failed["tasks"].items():
        assert re.search(rf"^\s*{task_id}\s+{name}\s+DIDE_SHELL\s+\w+", out, re.MULTILINE), out
    assert re.search(r"^3 task instances · ", out, re.MULTILINE), out
    data = json.loads(ok(dw(live, "tasks", "list", str(wi), "--json")).stdout)
    assert data["WorkflowInstanceId"] == wi and data["TotalCount"] == 3
    assert [t["Id"] for t in data["TaskInstances"]] == sorted(failed["tasks"].values())
    both = json.loads(ok(dw(live, "instances", "show", str(wi), "--json")).stdout)
    assert both["WorkflowInstance"]["Id"] == wi and len(both["TaskInstances"]) == 3
    # A dry run is marked as one, and its empty log says why, exit 0.
    dry_row = ok(dw(live, "tasks", "list", str(task_instance(live, dry)["WorkflowInstanceId"])))
    assert re.search(r"two\s+DIDE_SHELL\s+Success · dry run", dry_row.stdout), dry_row.stdout
    logs = ok(dw(live, "tasks", "logs", str(dry)))
    assert logs.stdout == ""
    assert "dry run (SkipUnchoose): nothing ran" in logs.stderr, logs.stderr
    followed = ok(dw(live, "tasks", "logs", str(dry), "--follow"))
    assert followed.stdout == "" and "nothing ran" in followed.stderr


def test_task_operations_say_what_they_acted_on(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("wait", "sleep 30"), shell("after", "echo after", "wait")])
    wi, tasks = smoke_test(live, w, date(2025, 8, 2))
    after = tasks["after"]["Id"]
    name = workflow_instance(live, wi)["Name"]
    # Not started yet: its log says so.
    logs = ok(dw(live, "tasks", "logs", str(after)))
    assert logs.stdout == "" and "not started yet (NotRun)" in logs.stderr, logs.stderr
    out = ok(dw(live, "tasks", "suspend", str(after))).stdout
    assert out == (
        f"✓ {after} suspended: was after (NotRun) · workflow instance {wi} {w['Name']} · "
        "BizDate 2025-08-02\n"
    ), out
    assert ok(dw(live, "instances", "stop", str(wi))).stdout.startswith(
        f"✓ {wi} stopped: was {name} ("
    )
    wait_until(lambda: workflow_instance(live, wi)["Status"] == "Failure", "the stop")


def test_moved_commands_point_to_dwsched_tasks() -> None:
    for command in ("logs", "set-success", "suspend", "resume", "upstream", "downstream"):
        result = invoke("instances", command, "12", "--follow")
        assert result.exit_code == 2, result.output
        assert result.output == (
            f"Error: `dwsched instances {command}` acts on task instances: use "
            f"`dwsched tasks {command} TASK_INSTANCE_ID` (`dwsched instances` acts on "
            "workflow instances).\n"
        )


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        *((("instances", c), "WORKFLOW_INSTANCE_ID") for c in ("show", "rerun", "stop", "start")),
        (("tasks", "list"), "WORKFLOW_INSTANCE_ID"),
        *(
            (("tasks", c), "TASK_INSTANCE_ID")
            for c in (
                "show",
                "logs",
                "rerun",
                "stop",
                "set-success",
                "suspend",
                "resume",
                "upstream",
                "downstream",
                "remove-dependency",
            )
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v,
)
def test_help_names_the_kind_of_id(command: tuple[str, ...], kind: str) -> None:
    text = ok(invoke(*command, "--help")).stdout
    usage = text.splitlines()[0]
    assert kind in usage, usage
    words = " ".join(text.split())
    assert kind.lower().replace("_id", " id").replace("_", " ") in words, text


# The listing


def test_the_listing_leads_with_what_happened_and_reads_at_80_columns(live: LiveServer) -> None:
    p = project(live.store)
    yesterday = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=1)
    base = int(datetime.now(ZoneInfo(TZ)).timestamp() * 1000) - 3_600_000
    rows = [
        instance(
            p.id,
            id=LISTED + 10,
            name="old_success",
            biz_day=yesterday,
            started_time=base,
            finished_time=base + 65_000,
        ),
        instance(
            p.id,
            id=LISTED + 11,
            name="recent_failure",
            biz_day=yesterday,
            status=Status.FAILURE,
            started_time=base + 600_000,
            finished_time=base + 605_000,
        ),
        instance(
            p.id,
            id=LISTED + 12,
            name="running_supplement",
            biz_day=yesterday,
            status=Status.CHECKING_CONDITION,
            type=InstanceType.SUPPLEMENT_DATA,
            started_time=base + 1_200_000,
            finished_time=None,
        ),
        instance(
            p.id,
            id=LISTED + 13,
            name="later_tonight",
            biz_day=yesterday,
            status=Status.WAIT_TIME,
            started_time=None,
            finished_time=None,
        ),
    ]
    put(live.store, rows)
    args = ("instances", "list", "--project", str(p.id), "--biz-date", "yesterday")
    out = ok(dw(live, *args)).stdout
    # The latest started first; what has not started (a future WaitTime) last.
    order = [r.name for r in rows]
    positions = [out.index(n) for n in ("running_supplement", "recent_failure", "old_success")]
    assert positions == sorted(positions) and out.index("later_tonight") > positions[-1], out
    # At 80 columns, with 9-digit ids, a long type and a long status, each instance takes
    # two lines: id, whole status, cycle and start time unsplit, then its name and type.
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines if "dwsched" not in line), out  # a command
    for row in rows:
        k = next(k for k, line in enumerate(lines) if line.lstrip().startswith(str(row.id)))
        assert row.status.value in lines[k] and re.search(r" \d\d:\d\d ", lines[k]), out
        if row.started_time is not None:
            assert re.search(r"\d\d-\d\d \d\d:\d\d", lines[k]), lines[k]
        assert lines[k + 1] == f"  {row.name} · {row.type.value}", out
    assert "page 1 of 1 · 4 workflow instances · the latest started first" in out, out
    assert "1 failed · dwsched instances list" in out and "--status Failure" in out, out
    assert len(order) == 4
    # --json: the API's answer, on one line, in the same order.
    data = json.loads(ok(dw(live, *args, "--json")).stdout)
    names = [i["Name"] for i in data["PagingInfo"]["WorkflowInstances"]]
    assert names == ["running_supplement", "recent_failure", "old_success", "later_tonight"]
    # One instance: singular.
    one = ok(dw(live, *args, "--name", "old_success")).stdout
    assert "page 1 of 1 · 1 workflow instance ·" in one, one
    # Without --biz-date: yesterday's, as DataWorks' Operation Center opens.
    assert ok(dw(live, "instances", "list", "--project", str(p.id))).stdout == out


def test_an_empty_listing_of_today_says_why(live: LiveServer) -> None:
    p = project(live.store)
    out = ok(
        dw(
            live,
            "instances",
            "list",
            "--project",
            str(p.id),
            "--biz-date",
            "today",
            "--type",
            "Normal",
        )
    ).stdout
    today = datetime.now(ZoneInfo(TZ)).date()
    assert f"No workflow instances with BizDate {today} (Prod) match." in out, out
    assert "Today's scheduled runs carry yesterday's BizDate" in out, out
    assert f"dwsched instances list --project {p.id} --biz-date yesterday --type Normal" in out, out


def test_an_instance_whose_tasks_all_dry_ran_says_so(live: LiveServer) -> None:
    """A smoke test of a workflow whose only node is set to Skip: the task dry-runs, and
    `instances show` says at instance level that nothing ran."""
    p = project(live.store)
    w = deploy(live, p.id, [{**shell("noop", "echo never"), "recurrence": "Skip"}])
    wi, tasks = smoke_test(live, w, date(2025, 8, 2))
    noop = tasks["noop"]["Id"]
    wait_until(lambda: task_instance(live, noop)["Status"] == "Success", "the dry run")
    shown = ok(dw(live, "instances", "show", str(wi))).stdout
    assert "dry run: none of its tasks ran" in shown, shown
    logs = dw(live, "tasks", "logs", str(noop))
    assert logs.exit_code == 0 and "dry run" in logs.output, logs.output


# Read on a pipe at 80 columns and narrower (nothing is cut), dry runs told apart


def _runs(live: LiveServer, project_id: int, nodes: list[dict[str, Any]], day: date) -> int:
    """A smoke test of a workflow of `nodes`, ended; its workflow instance's id."""
    wi, _ = smoke_test(live, deploy(live, project_id, nodes), day)
    wait_until(lambda: workflow_instance(live, wi)["Status"] in ("Success", "Failure"), "an end")
    return wi


def test_task_tables_cut_nothing_at_80_columns_or_narrower(live: LiveServer) -> None:
    p = project(live.store)
    yes, no = f"yes_{p.id}", f"no_{p.id}"
    branch = {
        "id": "route",
        "name": "route",
        "script": {"runtime": {"command": "CONTROLLER_BRANCH"}},
        "inputs": {"nodeOutputs": [{"data": "ods_orders_extract_out"}]},
        "branch": {
            "branches": [
                {"when": "1 == 1", "output": {"data": yes}},
                {"when": "1 == 2", "output": {"data": no}},
            ]
        },
    }
    nodes = [
        shell("ods_orders_extract", "echo extracted"),
        branch,
        {**shell("dws_orders_daily_report_quality_checked", "echo ok"), "inputs": {}},
        shell("not_taken", "echo never"),
    ]
    nodes[2]["inputs"] = {"nodeOutputs": [{"data": yes}]}
    nodes[3]["inputs"] = {"nodeOutputs": [{"data": no}]}
    wi = _runs(live, p.id, nodes, date(2025, 8, 4))
    tasks = json.loads(ok(dw(live, "tasks", "list", str(wi), "--json")).stdout)["TaskInstances"]
    assert len(tasks) == 4 and all(t["Id"] >= TASK_BASE for t in tasks), tasks
    assert {t["TaskType"] for t in tasks} >= {"CONTROLLER_BRANCH"}, tasks
    for columns in (80, 60):
        for command in (("tasks", "list", str(wi)), ("instances", "show", str(wi))):
            out = ok(dw(live, *command, columns=columns)).stdout
            lines = out.splitlines()
            assert all(len(line) <= columns for line in lines), out
            header = next(line for line in lines if line.lstrip().startswith("Id "))
            assert header.split()[-2:] == ["Started", "Took"], out
            assert re.search(r"BizDate +2025-08-04", out), out  # a heading breaks between parts
            for t in tasks:
                k = next(k for k, line in enumerate(lines) if f"{t['Id']}  " in line)
                row = lines[k] if columns == 80 else lines[k] + lines[k + 1]
                status = t["Status"] + (" · dry run" if t["TaskName"] == "not_taken" else "")
                assert f"  {status}  " in row, out
                assert re.search(r"\d\d-\d\d \d\d:\d\d  +\dm\d\ds", row), out
                kind = str(t["TaskType"])
                assert re.search(rf"\b({kind}|{kind.removeprefix('CONTROLLER_')})\b", row), out
            assert "CONTROLLER_BRANC\n" not in out and "Too\n" not in out, out
    # At 80 columns, the branch task's type shortened and each row on one line.
    at80 = ok(dw(live, "tasks", "list", str(wi))).stdout
    route = next(t for t in tasks if t["TaskName"] == "route")
    assert re.search(rf"^{route['Id']}  route +BRANCH  +Success ", at80, re.M), at80
    # At 60, two lines a row: what never folds, then the name and the type.
    at60 = ok(dw(live, "tasks", "list", str(wi), columns=60)).stdout
    assert "\n  route · CONTROLLER_BRANCH\n" in at60, at60
    # A task instance's id where a workflow instance's is wanted: the hint reads.
    refused = clean_error(dw(live, "tasks", "list", str(route["Id"])))
    assert f": its workflow instance's task instances: dwsched tasks list {wi}" in refused.output


def _make_waiting(live: LiveServer, wi: int, trigger_ms: int) -> None:
    """Turn the ended workflow instance `wi` and its task instances back to waiting for
    `trigger_ms` (the engine leaves them alone until then)."""
    with live.store.write() as tx:
        tx.conn.execute(
            sa.text(
                "UPDATE task_instances SET status = 'WaitTime', trigger_time = :t, "
                "started_time = NULL, finished_time = NULL, run_number = 0 "
                "WHERE workflow_instance_id = :wi"
            ),
            {"t": trigger_ms, "wi": wi},
        )
        tx.conn.execute(
            sa.text(
                "UPDATE workflow_instances SET status = 'WaitTime', trigger_time = :t, "
                "started_time = NULL, finished_time = NULL WHERE id = :wi"
            ),
            {"t": trigger_ms, "wi": wi},
        )


def test_dry_runs_are_told_apart_in_the_listing_and_logs(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project(live.store)
    day = date(2025, 8, 5)
    skip = [{**shell("noop", "echo never"), "recurrence": "Skip"}]
    dry = _runs(live, p.id, skip, day)
    waiting = _runs(live, p.id, skip, day)
    real = _runs(live, p.id, [shell("real", "echo real")], day)
    later = _runs(live, p.id, [shell("later", "echo later")], day)
    tomorrow = int(datetime.now(ZoneInfo(TZ)).timestamp() * 1000) + 86_400_000
    _make_waiting(live, waiting, tomorrow)
    _make_waiting(live, later, tomorrow)
    put(live.store, [instance(p.id, id=LISTED + 20, name="imported", biz_day=day)])

    calls: list[str] = []
    real_call = Client.call

    def counted(self: Client, action: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(action)
        return real_call(self, action, *args, **kwargs)

    monkeypatch.setattr(Client, "call", counted)
    args = ("instances", "list", "--project", str(p.id), "--biz-date", day.isoformat())
    out = ok(dw(live, *args)).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines if "dwsched" not in line), out

    def row(wi: int) -> str:
        return next(line for line in lines if line.lstrip().startswith(f"{wi} "))

    assert "Cycle" in out.splitlines()[1], out
    assert re.search(r"  Success · dry run  +\d\d:\d\d  ", row(dry)), out
    assert re.search(r"  WaitTime · dry run  +\d\d:\d\d  ", row(waiting)), out
    for plain in (real, later, LISTED + 20):
        assert "dry run" not in row(plain), out
    cycle = datetime.fromtimestamp(tomorrow / 1000, ZoneInfo(TZ)).strftime("%H:%M")
    assert f"  {cycle}  " in row(later), out
    # One ListTaskInstances per Success or WaitTime instance of the page, no more.
    assert calls.count("ListTaskInstances") <= 5, calls
    calls.clear()
    small = ok(dw(live, *args, "--page-size", "2")).stdout
    assert "page 1 of 3 · 5 workflow instances" in small, small
    assert calls.count("ListTaskInstances") <= 2, calls
    # --json: the API's answer, nothing added.
    data = json.loads(ok(dw(live, *args, "--json")).stdout)
    assert set(data["PagingInfo"]["WorkflowInstances"][0]) == set(workflow_instance(live, real))
    # A page past the last: a usage error, not an empty table.
    past = dw(live, *args, "--page-size", "2", "--page", "999")
    assert past.exit_code == 2 and past.stdout == "", past.output
    assert "there are only 3 pages" in past.stderr, past.stderr

    # A waiting dry run: its tasks will not run (not: did not).
    shown = ok(dw(live, "instances", "show", str(waiting))).stdout
    assert "dry run: its tasks will not run" in shown, shown
    assert "dry run: none of its tasks ran" in ok(dw(live, "instances", "show", str(dry))).stdout
    # Its log: the same message and exit code, followed or not.
    noop = json.loads(ok(dw(live, "tasks", "list", str(waiting), "--json")).stdout)
    noop_id = str(noop["TaskInstances"][0]["Id"])
    plain_logs = ok(dw(live, "tasks", "logs", noop_id))
    followed = ok(dw(live, "tasks", "logs", noop_id, "--follow"))
    assert plain_logs.stderr == followed.stderr == "(no log: dry run (Skip): it will not run)\n"

    # Following a task instance that waits for its time: said once, then it keeps following
    # (here until Ctrl-C).
    class Interrupting:
        @staticmethod
        def sleep(_: float) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr("dwsched.cli.logs.time", Interrupting)
    task = json.loads(ok(dw(live, "tasks", "list", str(later), "--json")).stdout)
    task_id = task["TaskInstances"][0]["Id"]
    stopped = dw(live, "tasks", "logs", str(task_id), "--follow")
    assert stopped.exit_code == 130, stopped.output
    when = datetime.fromtimestamp(tomorrow / 1000, ZoneInfo(TZ)).strftime("%m-%d %H:%M")
    assert stopped.stderr == (
        f"(following task instance {task_id}: WaitTime, it waits for its time, {when} "
        f"({TZ}); the log begins when it runs)\n"
    ), stopped.stderr


# Numbers that name both kinds, as a database from before migration 0014 holds them (its
# task instances were numbered from 1 too). An import may no longer give a workflow instance
# a task instance's id: the row is imported under another id and renumbered, as the old
# numbering would have made it. These tests come last: the commands above would refuse the
# numbers they share.


def legacy_instance(live: LiveServer, project_id: int, n: int, **fields: Any) -> None:
    """A workflow instance numbered `n`, the id of a task instance."""
    stand_in = 900_000_000 + n % 100_000_000
    put(live.store, [instance(project_id, id=stand_in, tags=(), **fields)])
    with live.store.write() as tx:
        tx.conn.execute(
            sa.text(
                "UPDATE workflow_instances SET id = :n, unified_workflow_instance_id = :n "
                "WHERE id = :old"
            ),
            {"n": n, "old": stand_in},
        )


def test_when_both_kinds_have_the_number_reading_commands_act_on_their_own_and_say_so(
    live: LiveServer, failed: dict[str, Any]
) -> None:
    extract, wi = failed["tasks"]["extract"], failed["instance"]
    legacy_instance(live, failed["project"], extract, name="same_number")
    task = ok(dw(live, "tasks", "show", str(extract)))
    assert "extract" in task.stdout and f"instance {wi}" in task.stdout, task.stdout
    assert task.stderr == (
        f"Note: {extract} also names workflow instance {extract} (same_number (Success) · "
        "Normal · BizDate 2025-03-31): this command reads the task instance; use "
        f"`dwsched instances show {extract}` for the workflow instance.\n"
    ), task.stderr
    whole = ok(dw(live, "instances", "show", str(extract)))
    assert "same_number" in whole.stdout and "No task instances" in whole.stdout, whole.stdout
    note = whole.stderr.splitlines()
    assert len(note) == 1, whole.stderr
    assert note[0].startswith(
        f"Note: {extract} also names task instance {extract} (extract (Success) · "
        f"workflow instance {wi} "
    ), whole.stderr
    assert note[0].endswith(
        "this command reads the workflow instance; use "
        f"`dwsched tasks show {extract}` for the task instance."
    ), whole.stderr
    # --json keeps standard output JSON alone.
    data = json.loads(ok(dw(live, "instances", "show", str(extract), "--json")).stdout)
    assert data["WorkflowInstance"]["Name"] == "same_number"
    for command in ("logs", "upstream", "downstream"):
        read = ok(dw(live, "tasks", command, str(extract)))
        assert f"Note: {extract} also names workflow instance" in read.stderr, read.stderr
    listed = ok(dw(live, "tasks", "list", str(extract)))
    assert f"use `dwsched tasks show {extract}` for the task instance" in listed.stderr


# Each command that changes something, with what it acts on.
CHANGING = [
    *(("instances", c) for c in ("rerun", "stop", "start")),
    *(("tasks", c) for c in ("rerun", "stop", "set-success", "suspend", "resume")),
]


def test_when_both_kinds_have_the_number_changing_commands_refuse_it_without_yes(
    live: LiveServer,
) -> None:
    """Old scripts say `dwsched instances stop 7` for task instance 7: on a database where
    workflow instance 7 exists too, nothing is stopped unless --yes says which is meant."""
    p = project(live.store)
    w = deploy(live, p.id, [shell("wait", "sleep 30"), shell("after", "echo after", "wait")])
    wi, tasks = smoke_test(live, w, date(2025, 8, 3))
    n, after = tasks["wait"]["Id"], tasks["after"]["Id"]
    wait_until(lambda: task_instance(live, n)["Status"] == "Running", "wait to run")
    legacy_instance(live, p.id, n, name="imported", status=Status.FAILURE)

    def statuses() -> tuple[str, str, str, int]:
        t = task_instance(live, n)
        return (
            workflow_instance(live, n)["Status"],
            t["Status"],
            task_instance(live, after)["Status"],
            t["RunNumber"],
        )

    assert statuses() == ("Failure", "Running", "NotRun", 1)
    both = (
        f"{n} names both workflow instance {n} (imported (Failure) · Normal · BizDate "
        f"2025-03-31) and task instance {n} (wait (Running) · workflow instance {wi} "
        f"{w['Name']} · BizDate 2025-08-03): this command acts on the "
    )
    stop = clean_error(dw(live, "instances", "stop", str(n)))
    assert stop.stdout == "" and stop.stderr == (
        f"Error: {both}workflow instance; add --yes to go on, or use `dwsched tasks stop {n}` "
        "for the task instance.\n"
    ), stop.output
    rerun = clean_error(dw(live, "tasks", "rerun", str(n)))
    assert rerun.stderr == (
        f"Error: {both}task instance; add --yes to go on, or use `dwsched instances rerun {n}` "
        "for the workflow instance.\n"
    ), rerun.output
    for command in CHANGING:
        clean_error(dw(live, *command, str(n)), both, "add --yes to go on")
    clean_error(dw(live, "tasks", "remove-dependency", str(n), str(after)), both)
    # In a batch: the whole batch is refused before anything is done.
    batch = clean_error(dw(live, "tasks", "suspend", str(after), str(n)))
    assert f"{n} names both " in batch.output and f"{after} names both " not in batch.output
    assert "Nothing was done to any of the ids." in batch.output, batch.output
    clean_error(dw(live, "instances", "stop", str(wi), str(n)), "Nothing was done")
    assert statuses() == ("Failure", "Running", "NotRun", 1)
    assert workflow_instance(live, wi)["Status"] == "Running"

    # --yes: each command acts on its own kind. The imported workflow instance has no task
    # instances to rerun (and the running task instance is not touched) ...
    whole = dw(live, "instances", "rerun", str(n), "--yes")
    assert whole.exit_code == 1 and whole.stdout == (
        f"✗ {n} not rerun: was imported (Failure) · Normal · BizDate 2025-03-31: it has no "
        "task instances (an imported record)\n"
    ), whole.output
    # ... and `tasks stop --yes` stops the task instance alone.
    out = ok(dw(live, "tasks", "stop", str(n), "--yes")).stdout
    assert out.startswith(f"✓ {n} stopped: was wait (Running) · workflow instance {wi} "), out
    wait_until(lambda: task_instance(live, n)["Status"] == "Failure", "the stop")
    assert statuses() == ("Failure", "Failure", "NotRun", 1)
