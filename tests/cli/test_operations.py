"""`dwsched backfill`, `dwsched run`, `dwsched instances start|stop` and `dwsched tasks
rerun|stop|set-success|suspend|resume|logs` against a live server whose engine really runs
the tasks (SQLite, the system clock): workflows deployed through the official SDK, the
commands run in-process (and once as a real process, interrupted with Ctrl-C), the effects
read back over HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_dataworks_public20240518 import models
from click.testing import Result

from dwsched.client import Client
from dwsched.clock import SystemClock
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from tests.cli.helpers import (
    clean_error,
    cli_env,
    day_start,
    dwsched_process,
    invoke,
    ok,
    option_blocks,
    sdk_list,
)
from tests.engine.test_engine import until_exists
from tests.support.factories import project
from tests.support.server import LiveServer, running_server
from tests.support.specs import qualified

TZ = "Asia/Shanghai"
DAYS = [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)]
MISSING = 987_654_321  # an id no instance has


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the engine running beside it, as `dwsched serve` runs it; tests
    isolate themselves by workspace."""
    url = f"sqlite:///{tmp_path_factory.mktemp('operations') / 'ops.db'}"
    with running_server(url) as server:
        service = Service(server.store, SystemClock(), WorkerSettings(slots=8))
        service.start()
        try:
            yield server
        finally:
            service.stop()


def env(live: LiveServer) -> dict[str, str]:
    return {
        "DWSCHED_ENDPOINT": live.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": live.key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": live.secret,
    }


def dw(live: LiveServer, *args: str) -> Result:
    return invoke(*args, env=env(live))


def shell(node_id: str, content: str, after: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": node_id,
        "name": node_id,
        "script": {"runtime": {"command": "DIDE_SHELL"}, "content": content},
        "outputs": {"nodeOutputs": [{"data": f"{node_id}_out"}]},
    }
    if after is not None:
        found["inputs"] = {"nodeOutputs": [{"data": f"{after}_out"}]}
    return found


def deploy(
    live: LiveServer,
    project_id: int,
    nodes: list[dict[str, Any]],
    manual: bool = False,
    **strategy: Any,
) -> dict[str, Any]:
    """Deploy a daily (or manual) workflow of `nodes`, its outputs qualified with its name;
    GetWorkflow's Workflow."""
    spec = qualified(
        {
            "version": "1.1.0",
            "kind": "ManualWorkflow" if manual else "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": f"ops_{time.monotonic_ns()}",
                        "trigger": {"type": "Scheduler", "cron": "00 30 02 * * ?", "timezone": TZ},
                        "strategy": {"instanceMode": "T+1", "rerunTimes": 0, **strategy},
                        "nodes": nodes,
                    }
                ]
            },
        }
    )
    request = models.ImportWorkflowDefinitionRequest(project_id=project_id, spec=json.dumps(spec))
    job = live.sdk().import_workflow_definition(request).body.async_job
    assert job.status == "Success", job
    got = live.sdk().get_workflow_definition(models.GetWorkflowDefinitionRequest(id=job.response))
    with client(live) as c:
        workflow: dict[str, Any] = c.call(
            "GetWorkflow", {"Id": got.body.workflow_definition.workflow_id}, method="GET"
        )["Workflow"]
    return workflow


def client(live: LiveServer) -> Client:
    return Client(live.endpoint, live.key_id, live.secret)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def listed(live: LiveServer, project_id: int, day: date, **kw: Any) -> list[Any]:
    paging = sdk_list(live.sdk(), project_id, day_start(day, TZ), page_size=100, **kw)
    return list(paging.workflow_instances)


def task_instances(
    live: LiveServer, project_id: int, day: date, workflow_instance_id: int
) -> dict[str, dict[str, Any]]:
    """The task instances of one workflow instance, by task name."""
    params = {
        "ProjectId": project_id,
        "Bizdate": day_start(day, TZ),
        "WorkflowInstanceId": workflow_instance_id,
        "PageSize": 100,
    }
    with client(live) as c:
        items = c.call("ListTaskInstances", params)["PagingInfo"]["TaskInstances"]
    return {i["TaskName"]: i for i in items}


def task_instance(live: LiveServer, task_instance_id: int) -> dict[str, Any]:
    with client(live) as c:
        found: dict[str, Any] = c.call("GetTaskInstance", {"Id": task_instance_id}, method="GET")[
            "TaskInstance"
        ]
    return found


def smoke_test(
    live: LiveServer, workflow: dict[str, Any], day: date
) -> tuple[int, dict[str, dict[str, Any]]]:
    """`dwsched run` of a scheduled workflow for `day`: its instance id, its task instances."""
    out = ok(dw(live, "run", str(workflow["Id"]), "--biz-date", day.isoformat())).stdout
    m = re.search(r"^SmokeTest \S+: instances (\d+)$", out, re.MULTILINE)
    assert m, out
    instance_id = int(m.group(1))
    return instance_id, task_instances(live, workflow["ProjectId"], day, instance_id)


def summary(out: str) -> dict[str, str]:
    """The rows of the final summary table: BizDate → the rest of the row."""
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\s*(\d{4}-\d\d-\d\d)\s+(.*)$", out, re.MULTILINE)
    }


def results(out: str) -> dict[int, tuple[bool, str]]:
    """The ✓/✗ lines of a batch command: id → (success, message)."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^([✓✗]) (\d+)\s*(.*)$", line)
        assert m, f"not a result line: {line!r}\n{out}"
        found[int(m.group(2))] = (m.group(1) == "✓", m.group(3))
    return found


# backfill


def test_backfill_three_days_two_at_a_time(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(
        live,
        p.id,
        [shell("extract", "sleep 1; echo extract $bizdate"), shell("load", "echo load", "extract")],
    )
    started = time.monotonic()
    result = ok(
        dw(
            live,
            "backfill",
            str(w["Id"]),
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-03",
            "--parallelism",
            "2",
        )
    )
    assert time.monotonic() - started < 20
    assert re.search(r"^backfill \S+: ", result.stdout, re.MULTILINE), result.stdout
    # The summary: one row per BizDate, each Success.
    rows = summary(result.stdout)
    assert list(rows) == [d.isoformat() for d in DAYS], result.stdout
    assert all(re.fullmatch(r"\d+\s+Success", row) for row in rows.values()), result.stdout
    # The progress went to standard error, ending with every instance done.
    assert "done 3 · running 0 · waiting 0 · failed 0" in result.stderr, result.stderr

    found = {day: listed(live, p.id, day, type="SupplementData") for day in DAYS}
    assert all(len(items) == 1 for items in found.values()), found
    items = [found[day][0] for day in DAYS]
    assert {i.status for i in items} == {"Success"}
    assert {i.workflow_id for i in items} == {w["Id"]}
    # Two BizDates at a time, oldest first: the first two overlap, the third waits for one.
    first, second, third = items
    assert second.started_time < first.finished_time
    assert third.started_time >= min(first.finished_time, second.finished_time)


def test_backfill_with_a_failure_exits_1_and_says_which_day(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("check", '[ "$bizdate" != 20250102 ] || exit 3')])
    result = dw(
        live,
        "backfill",
        str(w["Id"]),
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-03",
        "--parallelism",
        "3",
        "--desc",
    )
    assert result.exit_code == 1, result.output
    rows = summary(result.stdout)
    assert [rows[d.isoformat()].split()[-1] for d in DAYS] == ["Success", "Failure", "Success"]
    assert "failed 1" in result.stderr
    assert [i.status for i in listed(live, p.id, DAYS[1], type="SupplementData")] == ["Failure"]


def test_backfill_of_chosen_tasks_no_wait(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(
        live, p.id, [shell("a", "echo a"), shell("b", "echo b", "a"), shell("c", "exit 1", "b")]
    )
    ids = {t["Name"]: t["Id"] for t in w["Tasks"]}
    result = ok(
        dw(
            live,
            "backfill",
            str(w["Id"]),
            "--from",
            "2025-02-01",
            "--to",
            "2025-02-01",
            "--tasks",
            f"{ids['a']},{ids['b']}",
            "--no-wait",
            "--name",
            "only_ab",
        )
    )
    m = re.fullmatch(r"backfill (\S+): \S+ from 2025-02-01 to 2025-02-01\n", result.stdout)
    assert m, result.stdout
    with client(live) as c:

        def created() -> bool:
            got = c.call(
                "GetCreateWorkflowInstancesResult", {"OperationId": m.group(1)}, method="GET"
            )
            return bool(got["Result"]["Status"] == "Created")

        wait_until(created, "the backfill to be created")
    day = date(2025, 2, 1)
    wait_until(
        lambda: [i.status for i in listed(live, p.id, day, type="SupplementData")] == ["Success"],
        "the backfill to succeed",
    )
    (item,) = listed(live, p.id, day, type="SupplementData")
    assert item.name == "only_ab"
    # c was not chosen: a dry run, so the failing command never ran.
    tasks = task_instances(live, p.id, day, item.id)
    assert {n: t["Status"] for n, t in tasks.items()} == {
        "a": "Success",
        "b": "Success",
        "c": "Success",
    }
    assert tasks["c"]["TriggerRecurrence"] == "SkipUnchoose"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--from", "2025-01-03", "--to", "2025-01-01"], ["--from", "after --to 2025-01-01"]),
        (["--from", "2025-13-01", "--to", "2025-01-01"], ["--from", "YYYY-MM-DD"]),
        (["--from", "2025-01-01", "--to", "2025-01-02", "--parallelism", "11"], ["--parallelism"]),
        (["--from", "2025-01-01", "--to", "2025-01-02", "--tasks", "1,x"], ["--tasks", "'x'"]),
    ],
)
def test_backfill_checks_its_options_locally(
    live: LiveServer, args: list[str], needles: list[str]
) -> None:
    clean_error(dw(live, "backfill", "1", *args), *needles)


def test_backfill_errors_are_clean(live: LiveServer) -> None:
    clean_error(
        dw(live, "backfill", str(MISSING), "--from", "2025-01-01", "--to", "2025-01-01"),
        "Error:",
        "NotExist",
    )
    p = project(live.store)
    w = deploy(live, p.id, [shell("a", "echo a")])
    clean_error(
        dw(
            live,
            "backfill",
            str(w["Id"]),
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-01",
            "--tasks",
            str(MISSING),
        ),
        "--tasks",
        f"{MISSING} not in workflow {w['Id']}",
    )
    # The server refuses a BizDate in the future: its message, one line, no traceback.
    future = (date.today() + timedelta(days=3)).isoformat()
    result = clean_error(
        dw(live, "backfill", str(w["Id"]), "--from", future, "--to", future), "Periods"
    )
    assert result.output.count("\n") <= 2, result.output


def test_backfill_interrupted_keeps_running(live: LiveServer, tmp_path: Path) -> None:
    p = project(live.store)
    go = tmp_path / "go"
    # The task runs until the test lets it go: the first day is Running when it is interrupted.
    w = deploy(live, p.id, [shell("slow", until_exists(go))])
    args = ["backfill", str(w["Id"]), "--from", "2025-03-01", "--to", "2025-03-02"]
    with dwsched_process(*args, env=cli_env(**env(live))) as proc:
        proc.wait_for(lambda: "running 1" in proc.stderr, "the first day to run")
        code = proc.interrupt()
    go.touch()
    assert code == 130, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Stopped following; the backfill goes on on the server." in out, out
    assert re.search(r"operation\s+\S+", out), out
    assert re.search(r"instances\s+\d+, \d+", out), out
    assert (
        f"dwsched instances list --project {p.id} --biz-date 2025-03-01 --type SupplementData "
        f"--workflow {w['Id']} (and each BizDate to 2025-03-02)"
    ) in out, out
    assert "Traceback" not in out + proc.stderr
    # The backfill goes on to its end.
    days = [date(2025, 3, 1), date(2025, 3, 2)]
    wait_until(
        lambda: all(
            [i.status for i in listed(live, p.id, d, type="SupplementData")] == ["Success"]
            for d in days
        ),
        "the backfill to finish after Ctrl-C",
    )


# run


def test_run_a_manual_workflow(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(
        live, p.id, [shell("hello", "echo hello"), shell("bye", "echo bye", "hello")], manual=True
    )
    # The server's default BizDate is yesterday in the workspace's zone (not the machine's).
    before = datetime.now(ZoneInfo(p.timezone)).date() - timedelta(days=1)
    result = ok(dw(live, "run", str(w["Id"]), "--wait"))
    m = re.search(r"^ManualWorkflow \S+: instances (\d+)$", result.stdout, re.MULTILINE)
    assert m, result.stdout
    after = datetime.now(ZoneInfo(p.timezone)).date() - timedelta(days=1)
    items = [
        i
        for day in sorted({before, after})
        for i in listed(live, p.id, day, type="ManualWorkflow")
        if i.id == int(m.group(1))
    ]
    assert [i.status for i in items] == ["Success"], items
    assert "Success" in result.stdout.split("instances", 1)[1]


def test_run_a_scheduled_workflow_is_a_smoke_test_of_chosen_tasks(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("a", "echo a"), shell("b", "exit 2", "a")])
    ids = {t["Name"]: t["Id"] for t in w["Tasks"]}
    day = date(2025, 4, 1)
    result = ok(
        dw(
            live,
            "run",
            str(w["Id"]),
            "--biz-date",
            day.isoformat(),
            "--tasks",
            str(ids["a"]),
            "--wait",
        )
    )
    assert re.search(r"^SmokeTest \S+: instances \d+$", result.stdout, re.MULTILINE), result.stdout
    (item,) = listed(live, p.id, day, type="SmokeTest")
    assert item.status == "Success"
    # Every task by default: b fails, and so does the run.
    result = dw(live, "run", str(w["Id"]), "--biz-date", day.isoformat(), "--wait")
    assert result.exit_code == 1, result.output
    assert "Failure" in result.stdout
    clean_error(dw(live, "run", str(w["Id"]), "--biz-date", "someday"), "--biz-date")


# batch operations


def test_set_success_and_rerun_report_each_id(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("fails", "echo attempt; exit 1")])
    day = date(2025, 5, 1)
    _, tasks = smoke_test(live, w, day)
    ti = tasks["fails"]["Id"]
    wait_until(lambda: task_instance(live, ti)["Status"] == "Failure", "the task to fail")

    result = dw(live, "tasks", "set-success", f"{ti},{MISSING}", "--comment", "fixed by hand")
    assert result.exit_code == 1, result.output
    found = results(result.stdout)
    assert found[ti][0] is True and found[MISSING][0] is False, result.stdout
    assert found[MISSING][1], "a refused id says why"
    assert list(found) == [ti, MISSING]
    assert task_instance(live, ti)["Status"] == "Success"

    result = ok(dw(live, "tasks", "rerun", str(ti), "--latest-config"))
    assert results(result.stdout)[ti][0] is True
    wait_until(
        lambda: (t := task_instance(live, ti))["RunNumber"] == 2 and t["Status"] == "Failure",
        "the rerun to fail again",
    )
    result = dw(live, "tasks", "rerun", str(MISSING), str(ti))
    assert result.exit_code == 1
    found = results(result.stdout)
    assert found[MISSING][0] is False and found[ti][0] is True


def test_stop_task_and_workflow_instances(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("long", "sleep 30")])
    instance_id, tasks = smoke_test(live, w, date(2025, 5, 2))
    ti = tasks["long"]["Id"]
    wait_until(lambda: task_instance(live, ti)["Status"] == "Running", "the task to run")
    result = dw(live, "tasks", "stop", str(ti), str(MISSING))
    assert result.exit_code == 1, result.output
    found = results(result.stdout)
    assert found[ti][0] is True and found[MISSING][0] is False
    wait_until(lambda: task_instance(live, ti)["Status"] == "Failure", "the task to stop")

    instance_id, tasks = smoke_test(live, w, date(2025, 5, 3))
    ti = tasks["long"]["Id"]
    wait_until(lambda: task_instance(live, ti)["Status"] == "Running", "the task to run")
    result = ok(dw(live, "instances", "stop", str(instance_id)))
    assert list(results(result.stdout)) == [instance_id]
    assert results(result.stdout)[instance_id][0] is True
    wait_until(
        lambda: task_instance(live, ti)["Status"] == "Failure", "the workflow instance to stop"
    )


def test_suspend_and_resume(live: LiveServer, tmp_path: Path) -> None:
    p = project(live.store)
    go = tmp_path / "go"
    # `first` runs until `then` is suspended, however slowly the machine answers.
    w = deploy(live, p.id, [shell("first", until_exists(go)), shell("then", "echo then", "first")])
    _, tasks = smoke_test(live, w, date(2025, 5, 4))
    first, then = tasks["first"]["Id"], tasks["then"]["Id"]
    result = dw(live, "tasks", "suspend", f"{then} {MISSING}")
    go.touch()
    assert result.exit_code == 1, result.output
    found = results(result.stdout)
    assert found[then][0] is True and found[MISSING][0] is False
    wait_until(lambda: task_instance(live, first)["Status"] == "Success", "the first task")
    time.sleep(1.5)
    assert task_instance(live, then)["Status"] not in ("Running", "Success", "Failure")
    result = ok(dw(live, "tasks", "resume", str(then)))
    assert results(result.stdout)[then][0] is True
    wait_until(lambda: task_instance(live, then)["Status"] == "Success", "the resumed task")
    result = dw(live, "tasks", "resume", str(MISSING))
    assert result.exit_code == 1 and results(result.stdout)[MISSING][0] is False


def test_start_instances_created_without_starting(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("a", "echo started")], manual=True)
    with client(live) as c:
        params = {
            "ProjectId": p.id,
            "WorkflowId": w["Id"],
            "Name": "later",
            "Type": "ManualWorkflow",
            "AutoStartEnabled": "false",
        }
        operation_id = c.call("CreateWorkflowInstances", params)["OperationId"]
        holder: dict[str, Any] = {}

        def created() -> bool:
            holder.update(
                c.call(
                    "GetCreateWorkflowInstancesResult", {"OperationId": operation_id}, method="GET"
                )["Result"]
            )
            return bool(holder["Status"] == "Created")

        wait_until(created, "the instance to be created")
        (instance_id,) = holder["WorkflowInstanceIds"]
        time.sleep(1)
        got = c.call("GetWorkflowInstance", {"Id": instance_id}, method="GET")["WorkflowInstance"]
        assert got["Status"] not in ("Running", "Success", "Failure"), got
        result = dw(live, "instances", "start", f"{instance_id},{MISSING}")
        assert result.exit_code == 1, result.output
        found = results(result.stdout)
        assert found[instance_id][0] is True and found[MISSING][0] is False

        def succeeded() -> bool:
            got = c.call("GetWorkflowInstance", {"Id": instance_id}, method="GET")
            return bool(got["WorkflowInstance"]["Status"] == "Success")

        wait_until(succeeded, "the started instance to succeed")


@pytest.mark.parametrize(
    ("group", "command"),
    [
        *(("instances", c) for c in ("start", "stop", "rerun")),
        *(("tasks", c) for c in ("stop", "rerun", "set-success", "suspend", "resume")),
    ],
)
def test_batch_commands_check_their_ids(live: LiveServer, group: str, command: str) -> None:
    clean_error(dw(live, group, command, "12,abc"), "'abc'", "positive integer")
    clean_error(dw(live, group, command, "0"), "'0'")
    kind = "WORKFLOW_INSTANCE_ID" if group == "instances" else "TASK_INSTANCE_ID"
    clean_error(dw(live, group, command), kind)


# logs


def test_logs_follow_prints_output_as_it_comes(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("talk", "for i in 1 2 3; do echo line $i; sleep 0.4; done")])
    _, tasks = smoke_test(live, w, date(2025, 6, 1))
    ti = tasks["talk"]["Id"]
    result = ok(dw(live, "tasks", "logs", str(ti), "--follow"))
    for i in (1, 2, 3):
        assert result.stdout.count(f"line {i}\n") == 1, result.stdout
    assert result.stdout.index("line 1") < result.stdout.index("line 3")
    # Without --follow: the whole log, as the server has it.
    with client(live) as c:
        whole = c.call("GetTaskInstanceLog", {"Id": ti}, method="GET")["TaskInstanceLog"]
    assert ok(dw(live, "tasks", "logs", str(ti))).stdout == whole
    assert ok(dw(live, "tasks", "logs", str(ti), "--run", "1")).stdout == whole


def test_logs_follow_of_a_failing_task_exits_1(live: LiveServer) -> None:
    p = project(live.store)
    w = deploy(live, p.id, [shell("oops", "echo about to fail; sleep 0.5; exit 4")])
    _, tasks = smoke_test(live, w, date(2025, 6, 2))
    result = dw(live, "tasks", "logs", str(tasks["oops"]["Id"]), "-f")
    assert result.exit_code == 1, result.output
    assert "about to fail" in result.stdout
    clean_error(dw(live, "tasks", "logs", str(MISSING)), "Error:")


def test_logs_follow_goes_on_to_a_retry(live: LiveServer) -> None:
    p = project(live.store)
    script = (
        'echo "attempt $DWSCHED_RUN_NUMBER"\n'
        '[ "$DWSCHED_RUN_NUMBER" -ge 2 ] || { sleep 1; exit 1; }'  # the first attempt fails
    )
    w = deploy(
        live,
        p.id,
        [shell("flaky", script)],
        rerunMode="Allowed",
        rerunTimes=1,
        rerunInterval=500,
    )
    _, tasks = smoke_test(live, w, date(2025, 6, 3))
    ti = str(tasks["flaky"]["Id"])
    out = ok(dw(live, "tasks", "logs", ti, "--follow")).stdout
    assert re.search(r"attempt 1\n(.*\n)*--- run 2 ---\n(.*\n)*attempt 2\n", out), out
    # One run alone: the first failed.
    first = dw(live, "tasks", "logs", ti, "--follow", "--run", "1")
    assert first.exit_code == 1, first.output
    assert "attempt 1" in first.stdout and "attempt 2" not in first.stdout
    assert "attempt 2" in ok(dw(live, "tasks", "logs", ti, "--run", "2")).stdout


# help


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            ("backfill",),
            ["--from", "--to", "--parallelism", "--desc", "--tasks", "--name", "--wait"],
        ),
        (("run",), ["--biz-date", "--tasks", "--name", "--wait"]),
        (("tasks", "logs"), ["--run", "--follow"]),
        (("instances", "rerun"), ["--comment", "--all", "--latest-config"]),
        (("tasks", "rerun"), ["--comment", "--latest-config"]),
        *((("instances", c), ["--comment"]) for c in ("start", "stop")),
        *((("tasks", c), ["--comment"]) for c in ("stop", "set-success", "suspend", "resume")),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_help_names_each_options_environment_variable(
    command: tuple[str, ...], options: list[str]
) -> None:
    blocks = option_blocks(ok(invoke(*command, "--help")).stdout)
    for name in [*options, "--endpoint", "--access-key-id", "--access-key-secret"]:
        assert name in blocks, f"{name} missing from {' '.join(command)} --help"
        assert "env var: " in blocks[name], blocks[name]
    assert "env var: ALIBABA_CLOUD_ACCESS_KEY_ID" in blocks["--access-key-id"]


def test_backfill_help_documents_the_exit_codes() -> None:
    text = " ".join(ok(invoke("backfill", "--help")).stdout.split())
    assert "exit code 130" in text and "exits 0 when all succeeded, 1 when one failed" in text
