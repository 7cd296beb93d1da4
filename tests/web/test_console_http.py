"""The web console's HTTP side over real HTTP, on both databases: sign-in with an Argon2id
password, the session cookie's flags, CSRF and origin checks, sign-out, and that every
console call is decided by the RPC API's own authorisation and validation (the same
answers as a signed request of the same user) and audited the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from dwsched.client import ApiError, Client
from dwsched.clock import SystemClock
from dwsched.domain.models import Status
from dwsched.runtime.keys import create_key
from dwsched.web import passwords
from tests.engine.test_engine import flow, node
from tests.support.factories import instance, project, put
from tests.support.server import LiveServer, running_server
from tests.web.helpers import deploy

NOW = SystemClock().now_ms()
DAY = 1_743_350_400_000  # 2025-03-31 00:00 +08:00
PASSWORD = "correct horse battery"


OPEN: list[httpx.Client | Client] = []


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with running_server(db_url) as server:
        try:
            yield server
        finally:
            while OPEN:
                OPEN.pop().close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[LiveServer]:
    """A server on SQLite only, for checks of the web layer that no database changes."""
    with running_server(f"sqlite:///{tmp_path / 'web.db'}") as server:
        try:
            yield server
        finally:
            while OPEN:
                OPEN.pop().close()


def http_client(live: LiveServer) -> httpx.Client:
    client = httpx.Client(base_url=f"http://{live.endpoint}", timeout=30)
    OPEN.append(client)
    return client


@dataclass
class Browser:
    """A console user's HTTP session: its cookie jar and CSRF token."""

    http: httpx.Client
    csrf: str = ""

    def call(self, action: str, **params: Any) -> httpx.Response:
        return self.http.post(
            "/console/api/call",
            json={"Action": action, "Parameters": params},
            headers={"X-CSRF-Token": self.csrf},
        )


def user(live: LiveServer, name: str, *policies: str, password: str = PASSWORD) -> int:
    store = live.store
    with store.write() as tx:
        made = tx.users.create(name, name, NOW)
    for policy in policies:
        with store.write() as tx:
            tx.policies.attach(policy, "User", name, attach=True)
    with store.write() as tx:
        tx.users.set_password(name, passwords.hash_password(password))
    return made.id


def sign_in(live: LiveServer, name: str, password: str = PASSWORD) -> Browser:
    http = http_client(live)
    answer = http.post("/console/api/signin", json={"UserName": name, "Password": password})
    assert answer.status_code == 200, answer.text
    return Browser(http, answer.json()["CsrfToken"])


def key_of(live: LiveServer, name: str) -> Client:
    key = create_key(live.store, f"{name}-key", NOW)
    with live.store.write() as tx:
        tx.users.set_key_user(key.id, name)
    client = Client(live.endpoint, key.id, key.secret)
    OPEN.append(client)
    return client


def rpc_answer(client: Client, action: str, **params: Any) -> tuple[int, str, str]:
    """(HTTP status, Code, Message) of a signed request ("OK" codes for a success)."""
    try:
        client.call(action, params)
    except ApiError as error:
        return error.status, error.code, str(error).split(": ", 1)[1].rsplit(" (HTTP", 1)[0]
    return 200, "OK", ""


def console_answer(browser: Browser, action: str, **params: Any) -> tuple[int, str, str]:
    answer = browser.call(action, **params)
    body = answer.json()
    if answer.status_code == 200:
        return 200, "OK", ""
    return answer.status_code, body["Code"], body["Message"]


def test_sign_in_sets_a_protected_cookie_and_refuses_wrong_passwords(
    web: LiveServer, tmp_path: Path
) -> None:
    live = web
    db_url = f"sqlite:///{tmp_path / 'web.db'}"  # the `web` server's database
    user(live, "ana", "ReadOnlyAccess")
    http = http_client(live)
    for body in (
        {"UserName": "ana", "Password": "wrong password"},
        {"UserName": "nobody", "Password": PASSWORD},
    ):
        refused = http.post("/console/api/signin", json=body)
        assert refused.status_code == 401
        assert refused.json()["Code"] == "SignInFailed"
        assert "set-cookie" not in refused.headers
    missing = http.post("/console/api/signin", json={"UserName": "ana"})
    assert (missing.status_code, missing.json()["Code"]) == (400, "MissingPassword")
    not_json = http.post("/console/api/signin", data={"UserName": "ana", "Password": PASSWORD})
    assert not_json.status_code == 415

    answer = http.post("/console/api/signin", json={"UserName": "ana", "Password": PASSWORD})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    session = http.get("/console/api/session").json()
    assert session["UserName"] == "ana" and session["CsrfToken"] == answer.json()["CsrfToken"]

    # X-Forwarded-Proto from a proxy nobody named is not believed: no Secure.
    forged = http_client(live).post(
        "/console/api/signin",
        json={"UserName": "ana", "Password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "Secure" not in forged.headers["set-cookie"]
    # Behind a TLS proxy named by --forwarded-allow-ips, Secure is set.
    with running_server(db_url, forwarded_allow_ips="127.0.0.1") as proxied:
        behind = http_client(proxied).post(
            "/console/api/signin",
            json={"UserName": "ana", "Password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "Secure" in behind.headers["set-cookie"]

    # The password is stored as an Argon2id hash, never as itself.
    with live.store.read() as tx:
        stored = tx.users.password_of("ana")
    assert stored is not None and stored[1].startswith("$argon2id$")
    assert PASSWORD not in stored[1]


def test_every_state_changing_request_needs_the_session_csrf_token_and_origin(
    web: LiveServer,
) -> None:
    live = web
    pid = project(live.store).id
    user(live, "ops", "AdministratorAccess")
    b = sign_in(live, "ops")
    assert b.call("ListWorkflowInstances", ProjectId=pid, BizDate=DAY).status_code == 200

    no_token = b.http.post("/console/api/call", json={"Action": "ListProjects", "Parameters": {}})
    assert (no_token.status_code, no_token.json()["Code"]) == (403, "Forbidden.Csrf")
    wrong = b.http.post(
        "/console/api/call",
        json={"Action": "ListProjects", "Parameters": {}},
        headers={"X-CSRF-Token": b.csrf[:-2] + "xx"},
    )
    assert wrong.status_code == 403
    other_site = b.http.post(
        "/console/api/call",
        json={"Action": "ListProjects", "Parameters": {}},
        headers={"X-CSRF-Token": b.csrf, "Origin": "https://evil.example"},
    )
    assert (other_site.status_code, other_site.json()["Code"]) == (403, "Forbidden.Origin")
    form = b.http.post(
        "/console/api/call",
        data={"Action": "ListProjects"},
        headers={"X-CSRF-Token": b.csrf},
    )
    assert form.status_code == 415
    signout_without_token = b.http.post("/console/api/signout", json={})
    assert signout_without_token.status_code == 403
    assert b.call("ListProjects").status_code == 200  # still signed in

    anonymous = http_client(live)
    stranger = anonymous.post(
        "/console/api/call",
        json={"Action": "ListProjects", "Parameters": {}},
        headers={"X-CSRF-Token": b.csrf},
    )
    assert (stranger.status_code, stranger.json()["Code"]) == (401, "NotSignedIn")


def test_sign_out_password_change_and_user_deletion_end_sessions(live: LiveServer) -> None:
    user(live, "eve", "ReadOnlyAccess")
    first = sign_in(live, "eve")
    out = first.http.post("/console/api/signout", json={}, headers={"X-CSRF-Token": first.csrf})
    assert out.status_code == 200
    assert first.call("ListProjects").status_code == 401
    assert first.http.get("/console/api/session").status_code == 401

    second = sign_in(live, "eve")
    with live.store.write() as tx:
        tx.users.set_password("eve", passwords.hash_password("another good password"))
    assert second.call("ListProjects").status_code == 401
    third = sign_in(live, "eve", "another good password")
    with live.store.write() as tx:
        tx.users.delete("eve")
    assert third.call("ListProjects").status_code == 401


def test_console_calls_are_decided_by_the_rpc_rules_of_the_same_user(live: LiveServer) -> None:
    """For each request, the console's answer (status, Code, Message) equals the answer to
    the same request signed with the same user's AccessKey."""
    store = live.store
    a, b_ws = project(store).id, project(store).id
    in_a, in_b = instance(a), instance(b_ws)
    put(store, [in_a, in_b])
    reader_id = user(live, "reader", "ReadOnlyAccess")
    operator_id = user(live, "operator", "WorkspaceOperatorAccess")
    user(live, "nobody")
    with store.write() as tx:
        tx.members.add(a, reader_id, ["role_project_guest"], NOW)
        tx.members.add(a, operator_id, ["role_project_pe"], NOW)
    requests: list[tuple[str, dict[str, Any]]] = [
        ("ListWorkflowInstances", {"ProjectId": a, "BizDate": DAY}),
        ("ListWorkflowInstances", {"ProjectId": b_ws, "BizDate": DAY}),
        ("GetWorkflowInstance", {"Id": in_a.id}),
        ("GetWorkflowInstance", {"Id": in_b.id}),
        ("StopWorkflowInstances", {"Ids": [in_b.id]}),
        ("StopWorkflowInstances", {"Ids": [in_a.id, in_b.id]}),
        ("SetSuccessTaskInstances", {"Ids": ["1"]}),
        # Validation: the same errors, naming the same parameter.
        ("ListWorkflowInstances", {"ProjectId": a}),
        ("ListWorkflowInstances", {"ProjectId": a, "BizDate": DAY, "SortBy": "Name Desc"}),
        ("ListWorkflowInstances", {"ProjectId": a, "BizDate": DAY, "PageSize": 501}),
        ("ListWorkflowInstances", {"ProjectId": a, "BizDate": DAY, "Filter": {"x": 1}}),
    ]
    compared = 0
    for name in ("reader", "operator", "nobody"):
        browser, client = sign_in(live, name), key_of(live, name)
        for action, params in requests:
            expected = rpc_answer(client, action, **params)
            got = console_answer(browser, action, **params)
            assert got == expected, (name, action, params)
            compared += 1
    assert compared == 33
    # Listing workspaces leaks nothing: the reader sees only the workspace it is a member of.
    shown = sign_in(live, "reader").call("ListProjects", PageSize=100).json()["PagingInfo"]
    assert [p["Id"] for p in shown["Projects"]] == [a] and shown["TotalCount"] == 1
    # A denial carries the RPC's AccessDeniedDetail.
    denied = sign_in(live, "reader").call("StopWorkflowInstances", Ids=[in_a.id]).json()
    assert denied["Code"] == "Forbidden.RAM"
    assert denied["AccessDeniedDetail"]["AuthPrincipalDisplayName"] == "reader"


def test_console_actions_are_audited_under_the_user(live: LiveServer) -> None:
    pid = project(live.store).id
    done = instance(pid)
    put(live.store, [done])
    user(live, "olga", "AdministratorAccess")
    b = sign_in(live, "olga")
    answer = b.call("StopWorkflowInstances", Ids=[done.id], Comment="from the console")
    assert answer.status_code == 200
    reads = b.call("ListWorkflowInstances", ProjectId=pid, BizDate=DAY)
    assert reads.status_code == 200
    with live.store.read() as tx:
        entries = [e for e in tx.audit.entries(user="olga") if e.action.endswith("Instances")]
    assert [(e.action, e.access_key_id, e.result) for e in entries] == [
        ("StopWorkflowInstances", "console", "Refused (1 of 1 ids)")  # it had finished
    ]


def test_console_refuses_actions_it_does_not_serve_and_bad_bodies(web: LiveServer) -> None:
    live = web
    pid = project(live.store).id
    user(live, "root2", "AdministratorAccess")
    b = sign_in(live, "root2")
    for action in ("DeleteProject", "CreateProjectMember", "", None, 5):
        answer = b.http.post(
            "/console/api/call",
            json={"Action": action, "Parameters": {"Id": pid}},
            headers={"X-CSRF-Token": b.csrf},
        )
        assert (answer.status_code, answer.json()["Code"]) == (400, "InvalidAction.NotFound")
    with live.store.read() as tx:
        assert tx.projects.get(pid).id == pid  # nothing deleted
    bad = b.http.post(
        "/console/api/call",
        content=b"{not json",
        headers={"X-CSRF-Token": b.csrf, "content-type": "application/json"},
    )
    assert (bad.status_code, bad.json()["Code"]) == (400, "InvalidJson")
    odd = b.call("ListWorkflowInstances", **{"Project Id": 1})
    assert (odd.status_code, odd.json()["Code"]) == (400, "InvalidParameter")
    wrong_shape = b.http.post(
        "/console/api/call",
        json={"Action": "ListProjects", "Parameters": [1]},
        headers={"X-CSRF-Token": b.csrf},
    )
    assert wrong_shape.status_code == 400 and "Parameters" in wrong_shape.json()["Message"]


def test_pages_are_served_with_a_content_security_policy(web: LiveServer) -> None:
    live = web
    http = http_client(live)
    for path in ("/console/", "/console/instances?project=1", "/console/instances/5"):
        page = http.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert '<script type="module" src="/console/static/app.js">' in page.text
    assert http.get("/console", follow_redirects=False).status_code == 308
    script = http.get("/console/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert http.get("/console/api/nothing").status_code == 404
    assert http.get("/console/static/missing.js").status_code == 404


def test_console_views_agree_with_the_actions_they_summarise(live: LiveServer) -> None:
    store = live.store
    pid = project(store).id
    statuses = ["Success", "Success", "Failure", "Running", "NotRun"]
    put(store, [instance(pid, status=Status(s)) for s in statuses])
    user(live, "viewer", "ReadOnlyAccess")
    with store.write() as tx:
        viewer_id = tx.users.get("viewer").id
        tx.members.add(pid, viewer_id, ["role_project_guest"], NOW)
    b = sign_in(live, "viewer")
    counts = b.call("GetInstanceStatusCounts", ProjectId=pid, BizDate=DAY + 3_600_000, Days=3)
    assert counts.status_code == 200, counts.text
    days = counts.json()["Days"]
    assert [d["Date"] for d in days] == ["2025-03-29", "2025-03-30", "2025-03-31"]
    assert days[-1]["Counts"] == {"Success": 2, "Failure": 1, "Running": 1, "NotRun": 1}
    for status, n in days[-1]["Counts"].items():
        listed = b.call(
            "ListWorkflowInstances", ProjectId=pid, BizDate=DAY, Filter={"status": status}
        )
        assert listed.json()["PagingInfo"]["TotalCount"] == n
    assert days[0]["Total"] == 0
    # Authorised as ListWorkflowInstances: another workspace's counts are refused.
    other = project(store).id
    refused = b.call("GetInstanceStatusCounts", ProjectId=other, BizDate=DAY)
    assert (refused.status_code, refused.json()["Code"]) == (403, "Forbidden.RAM")
    bad = b.call("GetInstanceStatusCounts", ProjectId=pid, BizDate=DAY, Days=40)
    assert bad.status_code == 400 and "Days" in bad.json()["Message"]
    # A reader may not plan a backfill (authorised as CreateWorkflowInstances).
    plan = b.call(
        "GetCreateWorkflowInstancesPlan",
        ProjectId=pid,
        WorkflowId=5,
        Type="SupplementData",
        Name="x",
        Periods={"BizDates": [{"StartBizDate": "2025-03-01", "EndBizDate": "2025-03-02"}]},
    )
    assert (plan.status_code, plan.json()["Code"]) == (403, "Forbidden.RAM")


def test_a_backfill_plan_counts_what_creation_then_makes(live: LiveServer) -> None:
    store = live.store
    pid = project(store).id
    workflow_id = deploy(
        live, pid, flow([node("a", "VIRTUAL"), node("b", "VIRTUAL", after="a")], "0 0 */6 * * ?")
    )
    user(live, "boss", "AdministratorAccess")
    b = sign_in(live, "boss")
    request = {
        "ProjectId": pid,
        "WorkflowId": workflow_id,
        "Type": "SupplementData",
        "Name": "console backfill",
        "Periods": {
            "BizDates": [
                {"StartBizDate": "2025-03-01", "EndBizDate": "2025-03-02"},
                {"StartBizDate": "2025-03-10", "EndBizDate": "2025-03-10"},
            ]
        },
        "DefaultRunProperties": {"Parallelism": 2, "Order": "Desc"},
    }
    plan = b.call("GetCreateWorkflowInstancesPlan", **request)
    assert plan.status_code == 200, plan.text
    assert plan.json()["Count"] == 12  # 3 BizDates x 4 cycles
    assert plan.json()["BizDates"] == [
        {"Date": "2025-03-10", "Count": 4},
        {"Date": "2025-03-02", "Count": 4},
        {"Date": "2025-03-01", "Count": 4},
    ]
    with store.read() as tx:
        changes = [e for e in tx.audit.entries(user="boss") if e.action != "ConsoleSignIn"]
    assert changes == []  # a plan changes nothing
    future = {
        **request,
        "Periods": {"BizDates": [{"StartBizDate": "2999-01-01", "EndBizDate": "2999-01-01"}]},
    }
    refused = b.call("GetCreateWorkflowInstancesPlan", **future)
    assert refused.status_code == 400 and "Periods" in refused.json()["Message"]

    created = b.call("CreateWorkflowInstances", **request)
    assert created.status_code == 200, created.text
    store.create_pending(SystemClock().now_ms())  # what the scheduler does each tick
    result = b.call("GetCreateWorkflowInstancesResult", OperationId=created.json()["OperationId"])
    assert result.json()["Result"]["Status"] == "Created"
    assert len(result.json()["Result"]["WorkflowInstanceIds"]) == 12


def test_the_workflows_overview_shows_next_runs_and_latest_instances(live: LiveServer) -> None:
    store = live.store
    pid = project(store).id
    workflow_id = deploy(live, pid, flow([node("a", "VIRTUAL")], "0 15 * * * ?"))
    user(live, "wf", "AdministratorAccess")
    b = sign_in(live, "wf")
    before = SystemClock().now_ms()
    answer = b.call("ListWorkflowsOverview", ProjectId=pid)
    after = SystemClock().now_ms()
    assert answer.status_code == 200, answer.text
    [item] = answer.json()["PagingInfo"]["Workflows"]
    assert item["Id"] == workflow_id and item["Trigger"]["Cron"] == "0 15 * * * ?"
    runs = item["NextRunTimes"]
    assert len(runs) == 5 and runs == sorted(runs) and runs[0] > before
    assert all(r % 3_600_000 == 15 * 60_000 for r in runs)  # minute 15 of each hour
    assert runs[0] - after <= 3_600_000
    assert item["LatestInstances"] == []
    spec = b.call("GetWorkflowDefinition", Id=item["DefinitionId"], ProjectId=pid)
    flow_spec = json.loads(spec.json()["WorkflowDefinition"]["Spec"])
    assert flow_spec["spec"]["workflows"][0]["trigger"]["cron"] == "0 15 * * * ?"
    # A policy that denies reading workflow code: the overview shows no code, and the
    # FlowSpec is refused as it is to the user's AccessKey.
    with live.store.write() as tx:
        tx.policies.create(
            "NoCode",
            json.dumps(
                {
                    "Version": "1",
                    "Statement": [
                        {"Effect": "Allow", "Action": "dataworks:*", "Resource": "*"},
                        {
                            "Effect": "Deny",
                            "Action": "dataworks:GetWorkflowDefinition",
                            "Resource": "*",
                        },
                    ],
                }
            ),
            "",
            NOW,
        )
    user(live, "coder", "NoCode")
    with live.store.write() as tx:
        tx.members.add(pid, tx.users.get("coder").id, ["role_project_guest"], NOW)
    coder = sign_in(live, "coder")
    overview = coder.call("ListWorkflowsOverview", ProjectId=pid)
    assert overview.status_code == 200
    [shown] = overview.json()["PagingInfo"]["Workflows"]
    assert "Spec" not in shown and "VIRTUAL" not in overview.text  # no task code
    denied = coder.call("GetWorkflowDefinition", Id=item["DefinitionId"], ProjectId=pid)
    assert (denied.status_code, denied.json()["Code"]) == (403, "Forbidden.RAM")


def test_repeated_failed_sign_ins_are_refused_for_a_while_and_audited(web: LiveServer) -> None:
    live = web
    user(live, "target", "ReadOnlyAccess")
    http = http_client(live)
    # After three failures each one holds the next try for longer (1 s, 2 s, 4 s ...:
    # tests/web/test_signin_throttle.py follows them under a manual clock); here, on the
    # wall clock, until a hold outlasts the time a password check takes.
    statuses = []
    while len(statuses) < 10:
        wrong = http.post("/console/api/signin", json={"UserName": "target", "Password": "x" * 9})
        statuses.append(wrong.status_code)
        if wrong.status_code == 429 and int(wrong.headers["x-acs-retry-after"]) >= 1000:
            break
    assert statuses[:3] == [401] * 3 and statuses[-1] == 429, statuses
    # A held try is refused before any password check, the right password included.
    held = http.post("/console/api/signin", json={"UserName": "target", "Password": PASSWORD})
    assert (held.status_code, held.json()["Code"]) == (429, "Throttling.User")
    assert int(held.headers["x-acs-retry-after"]) > 0
    # Another user is not held up by it.
    user(live, "other", "ReadOnlyAccess")
    assert sign_in(live, "other").call("ListProjects").status_code == 200
    with live.store.read() as tx:
        results = [e.result for e in tx.audit.entries(user="target") if e.action == "ConsoleSignIn"]
    assert sorted(results) == sorted(
        ["SignInFailed" if s == 401 else "Throttling.User" for s in statuses] + ["Throttling.User"]
    )


def test_malformed_bodies_and_static_files(web: LiveServer) -> None:
    live = web
    http = http_client(live)
    for path in ("/console/api/signin", "/console/api/call"):
        for body in (b'{"UserName":"\xff"}', b"[" * 5000, b"\xff\xfe"):
            answer = http.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code in (400, 401), (path, body[:10], answer.text)
            assert answer.json()["Code"] in ("InvalidJson", "NotSignedIn")
    script = http.get("/console/static/util.js")
    assert "script-src 'self'" in script.headers["content-security-policy"]
    assert script.headers["x-frame-options"] == "DENY"
    assert http.get("/console/static/index.html").status_code == 404


def test_refusals_before_authorisation_are_audited_under_the_user(web: LiveServer) -> None:
    live = web
    pid = project(live.store).id
    done = instance(pid)
    put(live.store, [done])
    user(live, "root", "AdministratorAccess")  # a user may be called root
    b = sign_in(live, "root")
    assert b.call("DeleteProject", Id=pid).status_code == 400
    assert b.call("StopWorkflowInstances", Ids=[done.id]).status_code == 200
    with live.store.read() as tx:
        entries = {(e.action, e.result) for e in tx.audit.entries(user="root")}
    assert ("DeleteProject", "InvalidAction.NotFound") in entries
    assert ("StopWorkflowInstances", "Refused (1 of 1 ids)") in entries
    assert ("ConsoleSignIn", "OK") in entries


def test_dry_runs_are_told_apart_from_real_runs(live: LiveServer) -> None:
    """An instance whose task instances are all dry runs is marked `DryRun` in the list
    view and on the workflows page, and its success is counted apart (`DryRun`,
    `RecentDryRuns`); real runs and imported instances (no task instances) never are."""
    store = live.store
    pid = project(store).id
    skipped = deploy(
        live,
        pid,
        flow(
            [
                node("a", "VIRTUAL", recurrence="Skip"),
                node("b", "VIRTUAL", after="a", recurrence="Skip"),
            ]
        ),
    )
    real = deploy(live, pid, flow([node("c", "VIRTUAL"), node("d", "VIRTUAL", after="c")]))
    ops = str(user(live, "ops", "AdministratorAccess"))
    b = sign_in(live, "ops")
    now = SystemClock().now_ms()
    # Two days ago in the workspace's zone (Asia/Shanghai): its 02:30 cycle is due.
    day = (datetime.fromtimestamp(now / 1000, ZoneInfo("Asia/Shanghai")).date()) - timedelta(days=2)
    made: dict[int, int] = {}
    for workflow_id in (skipped, real):
        created = b.call(
            "CreateWorkflowInstances",
            ProjectId=pid,
            WorkflowId=workflow_id,
            Type="SupplementData",
            Name=f"backfill {workflow_id}",
            Periods={
                "BizDates": [{"StartBizDate": day.isoformat(), "EndBizDate": day.isoformat()}]
            },
        )
        assert created.status_code == 200, created.text
        store.create_pending(now)
        result = b.call(
            "GetCreateWorkflowInstancesResult", OperationId=created.json()["OperationId"]
        )
        [made[workflow_id]] = result.json()["Result"]["WorkflowInstanceIds"]
    store.release_queued(now)
    store.plan(now)  # the dry runs end at their time; the real one waits for a worker
    biz_date = int(
        datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000
    )
    imported = instance(pid, id=900_000_000 + made[real], biz_day=day, started_time=now, owner=ops)
    # A user who is no member of the workspace: an owner field naming them shows no name.
    outsider = str(user(live, "outsider_name"))
    foreign = instance(
        pid, id=900_000_001 + made[real], biz_day=day, started_time=now, owner=outsider
    )
    put(store, [imported, foreign])
    with store.write() as tx:
        tx.members.add(pid, int(ops), ["role_project_guest"], now)

    listed = b.call("ListWorkflowInstancesWithDryRuns", ProjectId=pid, BizDate=biz_date)
    assert listed.status_code == 200, listed.text
    items = listed.json()["PagingInfo"]["WorkflowInstances"]
    assert {i["Id"]: i["DryRun"] for i in items} == {
        made[skipped]: True,
        made[real]: False,
        imported.id: False,
        foreign.id: False,
    }
    statuses = {i["Id"]: i["Status"] for i in items}
    assert statuses[made[skipped]] == "Success" and statuses[made[real]] != "Success"
    # The owner, an account id, is shown by its user's name (the workflows' own: the
    # tenant's key deployed them).
    owners = {i["Id"]: (i["Owner"], i["OwnerName"]) for i in items}
    assert owners[made[skipped]] == owners[made[real]] == ("0", "tenant")
    assert owners[imported.id] == (ops, "ops")
    assert owners[foreign.id] == (outsider, None)
    # Otherwise the answer is ListWorkflowInstances' own, page and order included.
    plain = b.call(
        "ListWorkflowInstances", ProjectId=pid, BizDate=biz_date, SortBy="StartedTime Desc"
    )
    marked = b.call(
        "ListWorkflowInstancesWithDryRuns",
        ProjectId=pid,
        BizDate=biz_date,
        SortBy="StartedTime Desc",
    )
    unmarked = marked.json()["PagingInfo"]
    for item in unmarked["WorkflowInstances"]:
        del item["DryRun"], item["OwnerName"]
    assert unmarked == plain.json()["PagingInfo"]
    bad = b.call("ListWorkflowInstancesWithDryRuns", ProjectId=pid, BizDate=biz_date, SortBy="Nope")
    same = b.call("ListWorkflowInstances", ProjectId=pid, BizDate=biz_date, SortBy="Nope")
    assert bad.status_code == same.status_code == 400
    assert bad.json()["Code"] == same.json()["Code"]

    counts = b.call("GetInstanceStatusCounts", ProjectId=pid, BizDate=biz_date, Days=2)
    assert counts.status_code == 200, counts.text
    before, shown = counts.json()["Days"]
    assert shown["Date"] == day.isoformat()
    assert shown["Counts"]["Success"] == 3 and shown["DryRun"] == 1  # the imported ones are real
    assert before["DryRun"] == 0
    # A refresh asks for the last day's dry runs only: the others are not looked at (null).
    one = b.call("GetInstanceStatusCounts", ProjectId=pid, BizDate=biz_date, Days=2, DryRunDays=1)
    before, shown = one.json()["Days"]
    assert (before["DryRun"], shown["DryRun"]) == (None, 1)
    assert shown["Counts"] == counts.json()["Days"][1]["Counts"]
    bad = b.call("GetInstanceStatusCounts", ProjectId=pid, BizDate=biz_date, DryRunDays=99)
    assert bad.status_code == 400 and "DryRunDays" in bad.json()["Message"]

    overview = b.call("ListWorkflowsOverview", ProjectId=pid)
    assert overview.status_code == 200, overview.text
    by_id = {w["Id"]: w for w in overview.json()["PagingInfo"]["Workflows"]}
    [dry_latest] = by_id[skipped]["LatestInstances"]
    assert (dry_latest["Id"], dry_latest["Status"], dry_latest["DryRun"]) == (
        made[skipped],
        "Success",
        True,
    )
    assert by_id[skipped]["RecentCounts"] == {"Success": 1}
    assert by_id[skipped]["RecentDryRuns"] == 1
    [real_latest] = by_id[real]["LatestInstances"]
    assert real_latest["DryRun"] is False and by_id[real]["RecentDryRuns"] == 0

    # Authorised as ListWorkflowInstances: a guest of this workspace only is refused another.
    other = project(store).id
    user(live, "reader", "ReadOnlyAccess")
    with store.write() as tx:
        tx.members.add(pid, tx.users.get("reader").id, ["role_project_guest"], NOW)
    reader = sign_in(live, "reader")
    assert (
        reader.call("ListWorkflowInstancesWithDryRuns", ProjectId=pid, BizDate=biz_date).status_code
        == 200
    )
    denied = reader.call("ListWorkflowInstancesWithDryRuns", ProjectId=other, BizDate=biz_date)
    assert (denied.status_code, denied.json()["Code"]) == (403, "Forbidden.RAM")
