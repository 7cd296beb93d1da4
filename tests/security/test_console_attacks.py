"""Attacks on the web console over real HTTP (both databases): stored XSS through names
deployed with the official SDK, CSRF and cross-site use of the session cookie, session
fixation and sessions that outlive their sign-out.

Attack → test (a bare name is a test of this module):

- names with `<script>`, `"><img onerror>` shown by the console's JSON API as data (JSON content
  type, nosniff)
  → test_markup_in_names_is_returned_as_json_data
- a page's address reflected into the page
  → test_pages_do_not_reflect_their_address
- pages served with a CSP forbidding inline script, frames
  → tests/web/test_console_http.py::test_pages_are_served_with_a_content_security_policy
- the CSP also forbids eval, base and object injection, on every console response (pages, scripts,
  JSON, refusals)
  → test_every_console_response_carries_the_security_headers
- the page or its scripts building markup from data (innerHTML, eval, inline handlers)
  → test_the_page_and_its_scripts_never_build_markup
- console POST without the CSRF token, with a wrong one, from another Origin, as a form, sign-out
  without the token, no session
  → tests/web/test_console_http.py
    ::test_every_state_changing_request_needs_the_session_csrf_token_and_origin
- another session's CSRF token; the token in the body or query instead of the header
  → test_a_csrf_token_works_only_in_its_own_session_and_header
- Origin `null`, another port, scheme or host that merely starts like ours
  → test_lookalike_origins_are_refused
- a JSON body sent as text/plain (a "simple" cross-site request)
  → test_a_simple_cross_site_request_is_refused
- CORS preflight, or reading answers cross-site
  → test_no_cors_is_granted
- a GET that acts (cookies travel on top-level GETs)
  → test_a_get_does_not_act
- login CSRF (signing the victim in as the attacker) and sign-out from another site
  → test_sign_in_and_sign_out_from_another_site_are_refused
- the console's session cookie used against the signed RPC API
  → test_the_session_cookie_does_not_authenticate_rpc
- cookie flags HttpOnly, SameSite=Lax, Path=/console, Secure over TLS
  → tests/web/test_console_http.py::test_sign_in_sets_a_protected_cookie_and_refuses_wrong_passwords
- session fixation (a planted cookie survives sign-in)
  → test_a_planted_session_cookie_is_never_adopted
- a session cookie replayed after sign-out; a tampered cookie; cookie lifetime; token strength
  → test_a_signed_out_session_cannot_be_replayed
- password change and user deletion ending sessions
  → tests/web/test_console_http.py::test_sign_out_password_change_and_user_deletion_end_sessions
- password guessing (per user and per address), audited
  → tests/web/test_console_http.py
    ::test_repeated_failed_sign_ins_are_refused_for_a_while_and_audited
- actions the console does not serve (DeleteProject, members)
  → tests/web/test_console_http.py::test_console_refuses_actions_it_does_not_serve_and_bad_bodies
- malformed and deeply nested console bodies
  → tests/web/test_console_http.py::test_malformed_bodies_and_static_files
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx
import pytest
from alibabacloud_dataworks_public20240518 import models as M

from dwsched.clock import SystemClock
from dwsched.web import passwords
from tests.engine.test_engine import flow, node
from tests.support.factories import SHANGHAI_DAY_MS, project
from tests.support.server import LiveServer
from tests.support.specs import qualified
from tests.web.helpers import deploy

NOW = SystemClock().now_ms()
PASSWORD = "correct horse battery staple"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
CLOSE = "</script><script>alert(2)</script>"
SVG = "'><svg/onload=alert(3)>"


@dataclass
class Browser:
    http: httpx.Client
    csrf: str

    def call(
        self, action: str, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        return self.http.post(
            "/console/api/call",
            json={"Action": action, "Parameters": params},
            headers={"X-CSRF-Token": self.csrf, **(headers or {})},
        )

    @property
    def token(self) -> str:
        return str(self.http.cookies["dwsched_session"])


@pytest.fixture(scope="module")
def clients() -> Iterator[list[httpx.Client]]:
    made: list[httpx.Client] = []
    yield made
    for client in made:
        client.close()


@dataclass
class Console:
    live: LiveServer
    clients: list[httpx.Client]
    user: str
    project_id: int
    workflow_id: int
    instance_id: int

    @property
    def origin(self) -> str:
        return f"http://{self.live.endpoint}"

    def http(self) -> httpx.Client:
        client = httpx.Client(base_url=self.origin, timeout=30)
        self.clients.append(client)
        return client

    def sign_in(self) -> Browser:
        http = self.http()
        answer = http.post(
            "/console/api/signin", json={"UserName": self.user, "Password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        return Browser(http, answer.json()["CsrfToken"])


@pytest.fixture(scope="module")
def console(live: LiveServer, clients: list[httpx.Client]) -> Console:
    """A workspace whose workflow, task and instance names carry markup, all made through
    the official SDK; a console user (tenant administrator) to look at them."""
    store = live.store
    pid = project(store).id
    sdk = live.sdk()
    sdk.update_project(M.UpdateProjectRequest(id=pid, display_name=SCRIPT, description=IMG))
    first, second = node("a", "VIRTUAL"), node("b", "VIRTUAL", after="a")
    first["name"], second["name"] = IMG, SVG
    spec = flow([first, second])
    spec["spec"]["workflows"][0]["name"] = SCRIPT
    workflow_id = deploy(live, pid, spec)
    if workflow_id == 1:  # WorkflowId 1 means "the workflows of the tasks named" (DataWorks)
        spec["spec"]["workflows"][0]["name"] = SCRIPT + " "
        workflow_id = deploy(live, pid, qualified(spec, "again"))  # outputs of its own
    made = sdk.create_workflow_instances(
        M.CreateWorkflowInstancesRequest(
            project_id=pid,
            workflow_id=workflow_id,
            type="SupplementData",
            name=CLOSE,
            comment=SVG,
            periods=M.CreateWorkflowInstancesRequestPeriods(
                biz_dates=[
                    M.CreateWorkflowInstancesRequestPeriodsBizDates(
                        start_biz_date="2025-03-31", end_biz_date="2025-03-31"
                    )
                ]
            ),
        )
    ).body
    store.create_pending(SystemClock().now_ms())  # as the scheduler does each tick
    result = sdk.get_create_workflow_instances_result(
        M.GetCreateWorkflowInstancesResultRequest(operation_id=made.operation_id)
    ).body.result
    [instance_id] = result.workflow_instance_ids
    name = f"viewer_{pid}"
    with store.write() as tx:
        tx.users.create(name, name, NOW)
        tx.policies.attach("AdministratorAccess", "User", name, attach=True)
        tx.users.set_password(name, passwords.hash_password(PASSWORD))
    return Console(live, clients, name, pid, workflow_id, instance_id)


@pytest.fixture(scope="module")
def browser(console: Console) -> Browser:
    """One signed-in session shared by the tests that do not end it (an Argon2 check per
    sign-in is the slow part of these tests)."""
    return console.sign_in()


def _json_data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return response.json()


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def test_markup_in_names_is_returned_as_json_data(console: Console, browser: Browser) -> None:
    b = browser
    pid = console.project_id
    shown: set[str] = set()
    for action, params in (
        ("ListProjects", {"PageSize": 100}),
        ("GetProject", {"Id": pid}),
        ("ListWorkflowInstances", {"ProjectId": pid, "BizDate": SHANGHAI_DAY_MS}),
        ("GetWorkflowInstance", {"Id": console.instance_id}),
        ("ListTaskInstances", {"ProjectId": pid, "Bizdate": SHANGHAI_DAY_MS}),
        ("ListWorkflows", {"ProjectId": pid}),
        ("GetWorkflow", {"Id": console.workflow_id}),
        ("ListWorkflowsOverview", {"ProjectId": pid}),
    ):
        shown |= _strings(_json_data(b.call(action, **params)))
    # Exactly the characters deployed: neither escaped into entities nor stripped.
    for text in (SCRIPT, IMG, CLOSE, SVG):
        assert text in shown, text
    session = _json_data(b.http.get("/console/api/session"))
    assert SCRIPT in _strings(session)


@pytest.mark.parametrize(
    "path",
    [
        "/console/instances?project=%3Cscript%3Ealert(1)%3C/script%3E",
        "/console/%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
        "/console/instances/1?name=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
    ],
)
def test_pages_do_not_reflect_their_address(console: Console, path: str) -> None:
    http = console.http()
    home = http.get("/console/")
    page = http.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == home.text  # one static page; the address is read by its script
    assert "alert(1)" not in page.text and "onerror" not in page.text


CSP_MUST = [
    "default-src 'none'",
    "script-src 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
]


def _check_headers(response: httpx.Response, what: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    for directive in CSP_MUST:
        assert directive in csp, (what, directive, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (what, csp)
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split()[1:] == ["'self'"], (what, csp)  # no data:, no hosts, no *
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("x-frame-options") == "DENY", what
    assert response.headers.get("referrer-policy") in ("same-origin", "no-referrer"), what
    assert "access-control-allow-origin" not in response.headers, what


def test_every_console_response_carries_the_security_headers(
    console: Console, browser: Browser
) -> None:
    http = console.http()
    b = browser
    responses = {
        "page": http.get("/console/"),
        "deep page": http.get("/console/instances/1"),
        "script": http.get("/console/static/app.js"),
        "style": http.get("/console/static/console.css"),
        "no session": http.get("/console/api/session"),
        "refused call": http.post("/console/api/call", json={"Action": "ListProjects"}),
        "unknown api": http.get("/console/api/nothing"),
        "failed sign-in": http.post(
            "/console/api/signin", json={"UserName": "nobody_here", "Password": "x" * 9}
        ),
        "session": b.http.get("/console/api/session"),
        "call": b.call("ListProjects"),
        "call error": b.call("GetProject", Id="x"),
    }
    for what, response in responses.items():
        _check_headers(response, what)
        if "/api/" in str(response.url):
            assert response.headers["content-type"].startswith("application/json"), what


def test_the_page_and_its_scripts_never_build_markup(console: Console) -> None:
    """What the CSP stands behind: the page has no inline script or handler, and no script
    turns data into markup or code."""
    http = console.http()
    page = http.get("/console/").text
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S | re.I)
    assert scripts and all(not body.strip() for body in scripts)  # every script has a src
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", page, re.I))
    assert not re.search(r"\son[a-z]+\s*=", page, re.I)  # no inline event handlers
    assert "javascript:" not in page.lower()
    static = resources.files("dwsched.web") / "static"
    sources = [("", p) for p in static.iterdir() if p.name.endswith(".js")]
    sources += [("pages/", p) for p in (static / "pages").iterdir() if p.name.endswith(".js")]
    assert len(sources) >= 3
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function"
        r"|setTimeout\s*\(\s*['\"`]|setInterval\s*\(\s*['\"`]|createContextualFragment"
        r"|javascript:|\.srcdoc\b"
    )
    for folder, source in sources:
        text = source.read_text(encoding="utf-8")
        assert not sinks.search(text), (source.name, sinks.search(text))
        served = http.get(f"/console/static/{folder}{source.name}")
        assert served.text == text, source.name  # what the browser runs is what was checked


# CSRF and cross-site use


def _instance_status(console: Console) -> str:
    got = console.live.sdk().get_workflow_instance(
        M.GetWorkflowInstanceRequest(id=console.instance_id)
    )
    return str(got.body.workflow_instance.status)


def test_a_csrf_token_works_only_in_its_own_session_and_header(
    console: Console, browser: Browser
) -> None:
    mine, theirs = browser, console.sign_in()
    assert mine.csrf != theirs.csrf and mine.token != theirs.token
    status = _instance_status(console)
    stop = {"Action": "StopWorkflowInstances", "Parameters": {"Ids": [console.instance_id]}}
    crossed = mine.http.post("/console/api/call", json=stop, headers={"X-CSRF-Token": theirs.csrf})
    assert (crossed.status_code, crossed.json()["Code"]) == (403, "Forbidden.Csrf")
    in_body = mine.http.post("/console/api/call", json={**stop, "CsrfToken": mine.csrf})
    assert (in_body.status_code, in_body.json()["Code"]) == (403, "Forbidden.Csrf")
    in_query = mine.http.post(f"/console/api/call?X-CSRF-Token={mine.csrf}", json=stop)
    assert (in_query.status_code, in_query.json()["Code"]) == (403, "Forbidden.Csrf")
    as_cookie = mine.http.post(
        "/console/api/call",
        json=stop,
        headers={"Cookie": f"dwsched_session={mine.token}; X-CSRF-Token={mine.csrf}"},
    )
    assert as_cookie.status_code == 403
    empty = mine.http.post("/console/api/call", json=stop, headers={"X-CSRF-Token": ""})
    assert empty.status_code == 403
    assert _instance_status(console) == status  # nothing stopped


def test_lookalike_origins_are_refused(console: Console, browser: Browser) -> None:
    b = browser
    host = console.live.endpoint
    port = host.rsplit(":", 1)[1]
    for origin in (
        "null",
        f"https://{host}",
        f"http://127.0.0.1:{int(port) + 1}",
        f"http://localhost:{port}",
        f"http://{host}.evil.example",
        f"http://{host}@evil.example",
        f"http://{host}/",
        f"HTTP://{host.upper()}x",
        f"http://evil.example/http://{host}",
    ):
        answer = b.call("ListProjects", headers={"Origin": origin})
        assert (answer.status_code, answer.json()["Code"]) == (403, "Forbidden.Origin"), origin
    assert b.call("ListProjects", headers={"Origin": console.origin}).status_code == 200


def test_a_simple_cross_site_request_is_refused(console: Console, browser: Browser) -> None:
    """A page elsewhere can POST text/plain (or a form) with the cookie and no preflight; the
    console takes only JSON, and the token is still missing."""
    b = browser
    status = _instance_status(console)
    body = json.dumps(
        {"Action": "StopWorkflowInstances", "Parameters": {"Ids": [console.instance_id]}}
    )
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ):
        headers = {"content-type": content_type} if content_type else {}
        answer = b.http.post("/console/api/call", content=body, headers=headers)
        assert answer.status_code in (403, 415), (content_type, answer.text)
        with_token = b.http.post(
            "/console/api/call", content=body, headers={**headers, "X-CSRF-Token": b.csrf}
        )
        assert with_token.status_code == 415, (content_type, with_token.text)
    assert _instance_status(console) == status


def test_no_cors_is_granted(console: Console, browser: Browser) -> None:
    b = browser
    evil = {"Origin": "https://evil.example"}
    preflight = b.http.options(
        "/console/api/call",
        headers={
            **evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-csrf-token",
        },
    )
    assert preflight.status_code >= 400 or "access-control-allow-origin" not in preflight.headers
    assert not any(h.startswith("access-control-") for h in preflight.headers)
    # A cross-site GET with the cookie (SameSite=Lax lets top-level GETs carry it) gets no
    # permission to be read by that site.
    session = b.http.get("/console/api/session", headers=evil)
    assert not any(h.startswith("access-control-") for h in session.headers)
    assert session.headers["content-type"].startswith("application/json")
    assert session.headers["x-content-type-options"] == "nosniff"


def test_a_get_does_not_act(console: Console, browser: Browser) -> None:
    b = browser
    status = _instance_status(console)
    params = f"Action=StopWorkflowInstances&Ids=[{console.instance_id}]&X-CSRF-Token={b.csrf}"
    for path in ("/console/api/call", "/console/api/signout"):
        answer = b.http.get(f"{path}?{params}")
        assert answer.status_code in (404, 405), (path, answer.status_code)
    assert _instance_status(console) == status
    assert b.call("ListProjects").status_code == 200  # still signed in


def test_sign_in_and_sign_out_from_another_site_are_refused(
    console: Console, browser: Browser
) -> None:
    http = console.http()
    evil = {"Origin": "https://evil.example"}
    login = http.post(
        "/console/api/signin", json={"UserName": console.user, "Password": PASSWORD}, headers=evil
    )
    assert (login.status_code, login.json()["Code"]) == (403, "Forbidden.Origin")
    assert "set-cookie" not in login.headers
    as_text = http.post(
        "/console/api/signin",
        content=json.dumps({"UserName": console.user, "Password": PASSWORD}),
        headers={"content-type": "text/plain"},
    )
    assert as_text.status_code == 415 and "set-cookie" not in as_text.headers
    b = browser
    out = b.http.post("/console/api/signout", json={}, headers={**evil, "X-CSRF-Token": b.csrf})
    assert (out.status_code, out.json()["Code"]) == (403, "Forbidden.Origin")
    assert b.call("ListProjects").status_code == 200


def test_the_session_cookie_does_not_authenticate_rpc(console: Console, browser: Browser) -> None:
    b = browser
    for params in ({"Action": "ListProjects", "Version": "2024-05-18"}, {}):
        answer = b.http.post(
            "/",
            params=params,
            headers={
                "x-acs-action": "ListProjects",
                "x-acs-version": "2024-05-18",
                "Cookie": f"dwsched_session={b.token}",
                "X-CSRF-Token": b.csrf,
            },
        )
        assert (answer.status_code, answer.json()["Code"]) == (400, "IncompleteSignature")


# Sessions


def test_a_planted_session_cookie_is_never_adopted(console: Console) -> None:
    http = console.http()
    planted = "A" * 43
    http.cookies.set(
        "dwsched_session", planted, domain=console.live.endpoint.split(":")[0], path="/console"
    )
    assert http.get("/console/api/session").status_code == 401
    answer = http.post("/console/api/signin", json={"UserName": console.user, "Password": PASSWORD})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    issued = re.search(r"dwsched_session=([^;]+)", cookie)
    assert issued is not None and issued.group(1) != planted
    # The cookie's lifetime is the idle limit (8 hours), never longer; the JSON answer
    # carries the CSRF token, never the session token.
    age = re.search(r"Max-Age=(\d+)", cookie, re.I)
    assert age is not None and 0 < int(age.group(1)) <= 8 * 3600
    assert issued.group(1) not in answer.text and answer.json()["CsrfToken"] not in cookie
    stranger = console.http()
    stranger.cookies.set("dwsched_session", planted)
    assert stranger.get("/console/api/session").status_code == 401


def test_a_signed_out_session_cannot_be_replayed(console: Console) -> None:
    b = console.sign_in()
    token, csrf = b.token, b.csrf
    assert len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert token != csrf
    for value in (token[:-1] + ("A" if token[-1] != "A" else "B"), token + "x", token.lower()):
        if value == token:
            continue
        forged = console.http()
        forged.cookies.set("dwsched_session", value)
        assert forged.get("/console/api/session").status_code == 401, value
    out = b.http.post("/console/api/signout", json={}, headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    replay = console.http()
    replay.cookies.set("dwsched_session", token)
    assert replay.get("/console/api/session").status_code == 401
    stop = replay.post(
        "/console/api/call",
        json={"Action": "ListProjects", "Parameters": {}},
        headers={"X-CSRF-Token": csrf},
    )
    assert (stop.status_code, stop.json()["Code"]) == (401, "NotSignedIn")
