"""What the instance page reads and does about dependencies that leave a workflow instance,
over real HTTP on both databases, without a browser: ListUpstreamTaskInstances,
ListDownstreamTaskInstances and RemoveTaskInstanceDependencies through the console answer
exactly as the same user's signed requests (other workspaces' neighbours left out alike),
the removal is an audited, logged operation whose refusals carry the API's codes; and the
page's own logic (static/pages/links.js, run by Node when installed) turns the server's real
answers into the boxes, edges and fetches the page draws.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models as M

from dwsched.client import Client
from tests.cli.linked import make_linked
from tests.support.factories import project
from tests.support.server import LiveServer
from tests.web.test_console_http import (
    NOW,
    OPEN,
    Browser,
    console_answer,
    http_client,
    key_of,
    rpc_answer,
    sign_in,
    user,
)

STATIC = Path(__file__).resolve().parents[2] / "src" / "dwsched" / "web" / "static"
NODE = shutil.which("node")
SCRIPT = Path(__file__).with_name("links_check.mjs")  # runs links.js on the answers


@pytest.fixture(scope="module")
def served(live: LiveServer) -> Iterator[LiveServer]:
    try:
        yield live
    finally:
        while OPEN:
            OPEN.pop().close()


def member(live: LiveServer, policy: str, roles: dict[int, str]) -> str:
    """A new console user with a policy and a role in each of these workspaces."""
    name = f"u{uuid.uuid4().hex[:10]}"
    made = user(live, name, policy)
    for project_id, role in roles.items():
        with live.store.write() as tx:
            tx.members.add(project_id, made, [role], NOW)
    return name


def data(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "RequestId"}


def console_data(b: Browser, action: str, **params: Any) -> dict[str, Any]:
    answer = b.call(action, **params)
    assert answer.status_code == 200, answer.text
    return data(answer.json())


def upstream_ids(answer: dict[str, Any]) -> list[tuple[int, str]]:
    return [
        (i["TaskInstance"]["Id"], i["DependencyType"])
        for i in answer["PagingInfo"]["UpstreamTaskInstances"]
    ]


def test_the_console_answers_dependencies_as_the_rpc_api_for_the_same_user(
    served: LiveServer,
) -> None:
    live = served
    a, b = project(live.store).id, project(live.store).id
    made = make_linked(live, a, b)  # the upstream workflow in A, the downstream one in B
    report, load, tidy = made.task("report"), made.task("load"), made.task("tidy")
    previous = made.task("report", later=False)
    reader_b = member(live, "ReadOnlyAccess", {b: "role_project_guest"})
    reader_ab = member(live, "ReadOnlyAccess", {a: "role_project_guest", b: "role_project_guest"})
    operator_b = member(live, "WorkspaceOperatorAccess", {b: "role_project_pe"})
    nobody = member(live, "ReadOnlyAccess", {})
    reads: list[tuple[str, dict[str, Any]]] = [
        ("ListUpstreamTaskInstances", {"Id": report}),
        ("ListUpstreamTaskInstances", {"Id": report, "PageSize": 1, "PageNumber": 2}),
        ("ListUpstreamTaskInstances", {"Id": tidy}),
        ("ListDownstreamTaskInstances", {"Id": previous}),
        ("ListDownstreamTaskInstances", {"Id": load}),
    ]
    refusals: list[tuple[str, dict[str, Any]]] = [
        ("ListUpstreamTaskInstances", {"Id": 987_654_321}),
        ("ListUpstreamTaskInstances", {"Id": report, "PageSize": 501}),
        ("RemoveTaskInstanceDependencies", {"Id": report, "UpstreamTaskInstanceIds": [tidy]}),
        ("RemoveTaskInstanceDependencies", {"Id": report}),
        ("RemoveTaskInstanceDependencies", {"Id": report, "UpstreamTaskInstanceIds": "[x]"}),
        ("RemoveTaskInstanceDependencies", {"Id": load, "UpstreamTaskInstanceIds": [report]}),
    ]
    seen: dict[str, list[tuple[int, str]]] = {}
    for name in (reader_b, reader_ab, operator_b, nobody):
        browser, client = sign_in(live, name), key_of(live, name)
        for action, params in reads:
            expected = rpc_answer(client, action, **params)
            assert console_answer(browser, action, **params) == expected, (name, action)
            if expected[0] == 200:
                assert console_data(browser, action, **params) == data(
                    client.call(action, params)
                ), (name, action, params)
        for action, params in refusals:
            expected = rpc_answer(client, action, **params)
            assert expected[0] != 200, (name, action, params)
            assert console_answer(browser, action, **params) == expected, (name, action)
        if rpc_answer(client, "ListUpstreamTaskInstances", Id=report)[0] == 200:
            seen[name] = upstream_ids(console_data(browser, "ListUpstreamTaskInstances", Id=report))
    # What each may read: the upstream in workspace A is left out for B's reader and operator.
    assert seen == {
        reader_b: [(previous, "CrossCycle")],
        reader_ab: [(previous, "CrossCycle"), (load, "Normal")],
        operator_b: [(previous, "CrossCycle")],
    }
    # The operator is refused only for what the server refuses of anyone: no upstream.
    status, code, message = console_answer(
        sign_in(live, operator_b),
        "RemoveTaskInstanceDependencies",
        Id=report,
        UpstreamTaskInstanceIds=[tidy],
    )
    assert (status, code) == (400, "InvalidParameter") and "not an upstream" in message
    status, code, _ = console_answer(
        sign_in(live, reader_ab),
        "RemoveTaskInstanceDependencies",
        Id=report,
        UpstreamTaskInstanceIds=[load],
    )
    assert (status, code) == (403, "Forbidden.RAM")


def test_removing_a_dependency_from_the_console_is_an_audited_operation(
    served: LiveServer,
) -> None:
    live = served
    pid = project(live.store).id
    made = make_linked(live, pid)
    report, load = made.task("report"), made.task("load")
    operator = member(live, "WorkspaceOperatorAccess", {pid: "role_project_pe"})
    reader = member(live, "ReadOnlyAccess", {pid: "role_project_guest"})
    refused = sign_in(live, reader).call(
        "RemoveTaskInstanceDependencies", Id=report, UpstreamTaskInstanceIds=[load]
    )
    assert refused.status_code == 403 and refused.json()["Code"] == "Forbidden.RAM"
    b = sign_in(live, operator)
    answer = b.call(
        "RemoveTaskInstanceDependencies",
        Id=report,
        UpstreamTaskInstanceIds=[load],
        Comment="load is <b>late</b>",
    )
    assert answer.status_code == 200, answer.text
    assert data(answer.json()) == {"Success": True}
    after = console_data(b, "ListUpstreamTaskInstances", Id=report)
    assert upstream_ids(after) == [(made.task("report", later=False), "CrossCycle")]
    assert console_data(b, "ListDownstreamTaskInstances", Id=load)["PagingInfo"]["TotalCount"] == 0
    # Again: the page shows the server's refusal as it shows other operations' errors.
    again = b.call("RemoveTaskInstanceDependencies", Id=report, UpstreamTaskInstanceIds=[load])
    body = again.json()
    assert again.status_code == 400 and body["Code"] == "InvalidParameter"
    assert "not an upstream" in body["Message"] and body["RequestId"]
    with live.store.read() as tx:
        entries = [
            (e.user, e.access_key_id, e.result)
            for e in tx.audit.entries()
            if e.action == "RemoveTaskInstanceDependencies" and e.user in (operator, reader)
        ]
    assert sorted(entries) == sorted(
        [
            (reader, "console", "Forbidden.RAM"),
            (operator, "console", "OK"),
            (operator, "console", "InvalidParameter"),
        ]
    )
    logs = (
        live.sdk()
        .list_task_instance_operation_logs(M.ListTaskInstanceOperationLogsRequest(id=report))
        .body.paging_info.operation_logs
    )
    assert [(e.operation_content, e.user) for e in logs] == [
        (
            f"RemoveTaskInstanceDependencies: no longer waits for {load} (load is <b>late</b>)",
            _account(live, operator),  # the user's id (docs/access.md)
        )
    ]


# The page's logic on the server's answers, in Node


def run_links_js(given: dict[str, Any]) -> dict[str, Any]:
    module = (STATIC / "pages" / "links.js").as_uri()
    done = subprocess.run(
        [str(NODE), str(SCRIPT), module],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


@pytest.mark.skipif(NODE is None, reason="node is not installed: the page's logic is unchecked")
def test_the_page_draws_boxes_and_edges_from_the_answers(served: LiveServer) -> None:
    live = served
    pid = project(live.store).id
    made = make_linked(live, pid)
    admin = member(live, "AdministratorAccess", {})
    b = sign_in(live, admin)
    instance = made.instance("downstream")
    tasks = console_data(
        b,
        "ListTaskInstances",
        ProjectId=pid,
        Bizdate=_biz(live, instance),
        WorkflowInstanceId=instance,
    )["PagingInfo"]["TaskInstances"]
    tasks.sort(key=lambda t: t["Id"])  # report, then tidy: the page's DAG order
    assert [t["TaskName"] for t in tasks] == ["report", "tidy"]
    links = [
        [
            t["Id"],
            console_data(b, "ListUpstreamTaskInstances", Id=t["Id"], PageSize=100)["PagingInfo"][
                "UpstreamTaskInstances"
            ],
        ]
        for t in tasks
    ]
    report, tidy = (t["Id"] for t in tasks)
    load, previous = made.task("load"), made.task("report", later=False)
    found = run_links_js(
        {
            "tasks": tasks,
            "links": links,
            "instance": instance,
            "rows": {str(report): 0, str(tidy): 0},
            "tz": "Asia/Shanghai",
        },
    )
    # One box per upstream outside the instance, ordered by name on the same row; tidy's
    # upstream (report, inside the instance) makes none.
    later, earlier = made.days[1].isoformat(), made.days[0].isoformat()
    assert found["boxes"] == [
        {
            "id": load,
            "kinds": ["other-workflow"],
            "feeds": [report],
            "lines": [
                "load",
                f"{made.upstream_name} · instance {made.instance('upstream')}",
                f"BizDate {later} · {_trigger(made.days[1])}",
                "◷ NotRun · other workflow",
            ],
            "url": f"/console/instances/{made.instance('upstream')}?project={pid}",
        },
        {
            "id": previous,
            "kinds": ["cross-cycle"],
            "feeds": [report],
            "lines": [
                "report",
                f"{made.downstream_name} · instance {made.instance('downstream', False)}",
                f"BizDate {earlier} · {_trigger(made.days[0])}",
                "◷ NotRun · previous cycle",
            ],
            "url": f"/console/instances/{made.instance('downstream', False)}?project={pid}",
        },
    ]
    assert sorted(found["edges"], key=lambda e: e["from"]) == sorted(
        [
            {"from": load, "to": report, "kind": "other-workflow"},
            {"from": previous, "to": report, "kind": "cross-cycle"},
        ],
        key=lambda e: e["from"],
    )
    texts = {int(i): t for i, t in found["texts"]}
    assert sorted(texts[report]) == ["CrossCycle (previous cycle)", "Normal (other workflow)"]
    assert texts[tidy] == ["Normal"]
    # Every task read first; then only the one waiting outside the instance while it or
    # its upstreams are unfinished; the chosen one always; nothing once all have finished.
    assert found["fetchFirst"] == [report, tidy]
    assert found["fetchAgain"] == [report]
    assert found["fetchChosen"] == [report, tidy]
    assert found["fetchDone"] == []
    assert found["tooMany"] == [7]
    assert found["removable"] == ["NotRun", "WaitTime"]


def _biz(live: LiveServer, instance_id: int) -> int:
    with Client(live.endpoint, live.key_id, live.secret) as client:
        return int(
            client.call("GetWorkflowInstance", {"Id": instance_id}, method="GET")[
                "WorkflowInstance"
            ]["BizDate"]
        )


def _trigger(biz_day: date) -> str:
    """The trigger time of the cron's daily cycle, T+1, as the box shows it: MM-DD 02:30."""
    run = biz_day + timedelta(days=1)
    return f"{run:%m-%d} 02:30"


def test_the_page_scripts_are_served_with_the_csp_and_build_no_markup(served: LiveServer) -> None:
    http = http_client(served)
    for path in ("pages/instance.js", "pages/links.js", "detail.css"):
        answer = http.get(f"/console/static/{path}")
        assert answer.status_code == 200, path
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        source = (STATIC / path).read_text(encoding="utf-8")
        assert answer.text == source
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source
        assert "eval(" not in source and "new Function" not in source
    page = (STATIC / "pages" / "instance.js").read_text(encoding="utf-8")
    for action in (
        "ListUpstreamTaskInstances",
        "ListDownstreamTaskInstances",
        "RemoveTaskInstanceDependencies",
    ):
        assert f'"{action}"' in page
    assert "fetch(" not in page  # every call goes through api.js (the session's CSRF token)


def _account(live: LiveServer, name: str) -> str:
    with live.store.read() as tx:
        return str(tx.users.get(name).id)
