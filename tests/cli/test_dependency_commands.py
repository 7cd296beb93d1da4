"""`dwsched tasks upstream|downstream|remove-dependency` against a live server, on both
databases: two workflows deployed through the official SDK, the second's node waiting for
the first's (another workflow, the same cycle) and for its own previous cycle
(tests/cli/linked.py); the commands run in-process (and once as a real process), their
effects read back over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models as M
from click.testing import Result

from dwsched.cli import dependencies
from tests.cli.helpers import clean_error, cli_env, invoke, ok, option_blocks, run_cli
from tests.cli.linked import Linked, make_linked
from tests.support.factories import project
from tests.support.server import LiveServer

# A task name holding what a terminal would act on, and rich markup.
NASTY = "report\x1b[2J[red]x[/red]"


def env(live: LiveServer, columns: int = 80) -> dict[str, str]:
    return {
        "DWSCHED_ENDPOINT": live.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": live.key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": live.secret,
        "COLUMNS": str(columns),
    }


def dw(live: LiveServer, *args: str, columns: int = 80) -> Result:
    return invoke("tasks", *args, env=env(live, columns))


@pytest.fixture(scope="module")
def linked(live: LiveServer) -> Linked:
    return make_linked(live, project(live.store).id)


def listed(live: LiveServer, command: str, task_instance_id: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        ok(dw(live, command, str(task_instance_id), "--json")).stdout
    )
    return found


def rows(found: dict[str, Any], name: str) -> list[tuple[int, str, int, str]]:
    """(task instance, dependency type, workflow instance, status) of each neighbour."""
    return [
        (
            int(i["TaskInstance"]["Id"]),
            i["DependencyType"],
            int(i["TaskInstance"]["WorkflowInstanceId"]),
            i["TaskInstance"]["Status"],
        )
        for i in found[name]
    ]


def test_upstream_lists_other_workflows_and_previous_cycles_with_their_type(
    live: LiveServer, linked: Linked
) -> None:
    report = linked.task("report")
    found = listed(live, "upstream", report)
    assert found["Id"] == report and found["TotalCount"] == 2
    assert sorted(rows(found, "UpstreamTaskInstances")) == sorted(
        [
            # its own previous cycle, in yesterday's instance of its workflow
            (
                linked.task("report", later=False),
                "CrossCycle",
                linked.instance("downstream", False),
                "NotRun",
            ),
            # the other workflow's node, the same cycle
            (linked.task("load"), "Normal", linked.instance("upstream"), "NotRun"),
        ]
    )
    # Inside the workflow instance: tidy waits for report, Normal.
    tidy = listed(live, "upstream", linked.task("tidy"))
    assert rows(tidy, "UpstreamTaskInstances") == [
        (report, "Normal", linked.instance("downstream"), "NotRun")
    ]
    assert listed(live, "upstream", linked.task("load"))["UpstreamTaskInstances"] == []


def test_downstream_lists_who_waits_elsewhere(live: LiveServer, linked: Linked) -> None:
    earlier = linked.task("report", later=False)
    found = listed(live, "downstream", earlier)
    assert sorted(rows(found, "DownstreamTaskInstances")) == sorted(
        [
            (
                linked.task("tidy", later=False),
                "Normal",
                linked.instance("downstream", False),
                "NotRun",
            ),
            (linked.task("report"), "CrossCycle", linked.instance("downstream"), "NotRun"),
        ]
    )
    load = listed(live, "downstream", linked.task("load"))
    assert rows(load, "DownstreamTaskInstances") == [
        (linked.task("report"), "Normal", linked.instance("downstream"), "NotRun")
    ]


def test_the_table_is_readable_at_80_columns(live: LiveServer, linked: Linked) -> None:
    out = ok(dw(live, "upstream", str(linked.task("report")))).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    header = " ".join(lines[:2])
    assert f"task instance {linked.task('report')} report" in header
    assert f"workflow instance {linked.instance('downstream')}" in header
    assert linked.days[1].isoformat() in header
    for needle in (
        "CrossCycle",
        "Normal",
        linked.upstream_name,
        linked.downstream_name,
        linked.days[0].isoformat(),  # the previous cycle's BizDate
        "NotRun",
        "2 upstream task instances",
        "Asia/Shanghai",
    ):
        assert needle in out, (needle, out)
    # Each row: the task instance id first, its workflow instance below the task.
    row = next(line for line in lines if line.strip().startswith(str(linked.task("load"))))
    assert "load" in row and "Normal" in row and "NotRun" in row
    below = lines[lines.index(row) + 1]
    assert str(linked.instance("upstream")) in below
    # The task's own workflow instance is marked where it appears.
    down = ok(dw(live, "downstream", str(linked.task("report", later=False)))).stdout
    assert f"{linked.instance('downstream', False)} {linked.downstream_name} (own)" in down
    assert all(len(line) <= 80 for line in down.splitlines()), down
    none = ok(dw(live, "upstream", str(linked.task("load")))).stdout
    assert "waits for no other task instance" in none


def test_every_page_is_read(
    live: LiveServer, linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dependencies, "PAGE_SIZE", 1)
    found = listed(live, "upstream", linked.task("report"))
    assert found["TotalCount"] == 2 and len(found["UpstreamTaskInstances"]) == 2
    assert (
        "2 upstream task instances" in ok(dw(live, "upstream", str(linked.task("report")))).stdout
    )


def test_remove_dependency_echoes_what_it_did_and_the_task_stops_waiting(
    live: LiveServer,
) -> None:
    made = make_linked(live, project(live.store).id)
    report, load = made.task("report"), made.task("load")
    result = ok(
        dw(live, "remove-dependency", str(report), str(load), "--comment", "load is late today")
    )
    out = " ".join(result.stdout.split())  # lines are wrapped at 80 columns
    assert f"task instance {report} report" in out
    assert f"✓ no longer waits for Normal {load} load" in out
    assert f"workflow instance {made.instance('upstream')} {made.upstream_name}" in out
    assert "comment: load is late today" in out
    left = rows(listed(live, "upstream", report), "UpstreamTaskInstances")
    assert [r[0] for r in left] == [made.task("report", later=False)]
    assert listed(live, "downstream", load)["DownstreamTaskInstances"] == []
    logs = (
        live.sdk()
        .list_task_instance_operation_logs(M.ListTaskInstanceOperationLogsRequest(id=report))
        .body.paging_info.operation_logs
    )
    assert [e.operation_content for e in logs] == [
        f"RemoveTaskInstanceDependencies: no longer waits for {load} (load is late today)"
    ]
    # The previous cycle too, comma separated ids; refused ones change nothing.
    previous = made.task("report", later=False)
    clean_error(dw(live, "remove-dependency", str(report), f"{previous},{load}"), "not an upstream")
    assert [r[0] for r in rows(listed(live, "upstream", report), "UpstreamTaskInstances")] == [
        previous
    ]
    out = " ".join(ok(dw(live, "remove-dependency", str(report), str(previous))).stdout.split())
    assert f"✓ no longer waits for CrossCycle {previous} report" in out
    assert "comment" not in out
    assert listed(live, "upstream", report)["UpstreamTaskInstances"] == []


def test_remove_dependency_errors_are_clean(live: LiveServer) -> None:
    made = make_linked(live, project(live.store).id)
    report = str(made.task("report"))
    clean_error(dw(live, "remove-dependency", report, "987654321"), "not an upstream")
    clean_error(dw(live, "remove-dependency", report, "x1"), "not a task instance id")
    clean_error(dw(live, "remove-dependency", report, "0"), "not a task instance id")
    missing = dw(live, "remove-dependency", report)
    assert missing.exit_code == 2 and "UPSTREAM_IDS" in missing.output
    clean_error(dw(live, "remove-dependency", "987654321", "1"), "987654321")
    clean_error(dw(live, "upstream", "987654321"), "987654321")
    # A task that no longer waits keeps its dependencies.
    earlier = made.task("report", later=False)
    live.sdk().set_success_task_instances(M.SetSuccessTaskInstancesRequest(ids=[earlier]))
    up = str(made.task("load", later=False))
    clean_error(dw(live, "remove-dependency", str(earlier), up), "is Success")
    assert [r[0] for r in rows(listed(live, "upstream", earlier), "UpstreamTaskInstances")] == [
        int(up)
    ]


def test_names_reach_the_terminal_escaped(live: LiveServer) -> None:
    made = make_linked(live, project(live.store).id, task_name=NASTY)
    for command, task in (("upstream", made.task("report")), ("downstream", made.task("load"))):
        out = ok(dw(live, command, str(task), columns=200)).stdout
        assert "\x1b" not in out, out
        assert "\\x1b[2J[red]x[/red]" in out, out
    assert (
        "\x1b"
        not in ok(
            dw(live, "remove-dependency", str(made.task("report")), str(made.task("load")))
        ).stdout
    )


def test_help_says_the_ids_are_task_instance_ids() -> None:
    for command in ("upstream", "downstream", "remove-dependency"):
        text = ok(invoke("tasks", command, "--help")).stdout
        assert "task instance id" in " ".join(text.split()), text
        assert "--endpoint" in option_blocks(text)
    listing = " ".join(ok(invoke("tasks", "upstream", "--help")).stdout.split())
    assert "CrossCycle: a previous cycle" in listing and "--json" in listing
    group = ok(invoke("tasks", "--help")).stdout
    for command in ("upstream", "downstream", "remove-dependency"):
        assert command in group


def test_a_real_process_prints_json(live: LiveServer, linked: Linked) -> None:
    done = run_cli(
        "tasks",
        "upstream",
        str(linked.task("report")),
        "--json",
        env=cli_env(**env(live)),
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {i["DependencyType"] for i in found["UpstreamTaskInstances"]} == {
        "Normal",
        "CrossCycle",
    }
