"""The console serves the actions api.registry allows it, as the registry declares them, in
process on both databases: every other action, and any unknown name, is refused before
authorisation (and recorded, unless it is known only to read); its views only read (never
audited, throttled as reads); its writes are audited and throttled as writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dwsched.api.calls import Calls
from dwsched.api.registry import ACTIONS, CONSOLE
from dwsched.api.throttle import WRITE, Limit, Throttle, ThrottleSettings
from dwsched.clock import ManualClock
from dwsched.domain.users import PrincipalType
from dwsched.store import Store
from dwsched.web import passwords, views
from dwsched.web.console import Console
from tests.support.factories import project

START = 1_800_000_000_000
PASSWORD = "correct horse battery"
UNKNOWN = ("NoSuchAction", "GetNoSuchThing")

Call = Callable[..., httpx.Response]


@pytest.fixture
def call(store: Store) -> Iterator[Call]:
    """A console call of a tenant administrator; reads are not throttled, writes are, one
    in a burst (and none refilled: the clock stands still)."""
    clock = ManualClock(START)
    limits = ThrottleSettings({WRITE: Limit(0.001, 1)})
    console = Console(store, clock, Calls(store, clock, "Asia/Shanghai"), Throttle(store, limits))
    with store.write() as tx:
        tx.users.create("ada", "ada", START)
        tx.policies.attach("AdministratorAccess", PrincipalType.USER, "ada", attach=True)
        tx.users.set_password("ada", passwords.hash_password(PASSWORD))
    transport = httpx.ASGITransport(Starlette(routes=console.routes()), client=("10.0.0.1", 50000))
    client = httpx.AsyncClient(transport=transport, base_url="http://console")
    loop = asyncio.new_event_loop()

    def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return loop.run_until_complete(client.post(path, json=body, headers=headers))

    signed_in = post("/console/api/signin", {"UserName": "ada", "Password": PASSWORD}, {})
    csrf = {"X-CSRF-Token": signed_in.json()["CsrfToken"]}
    try:
        yield lambda action, **params: post(
            "/console/api/call", {"Action": action, "Parameters": params}, csrf
        )
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def code(answer: httpx.Response) -> str:
    return str(answer.json().get("Code", "OK"))


def test_the_console_serves_actions_and_views_as_the_registry_declares(
    store: Store, call: Call
) -> None:
    pid = project(store).id
    for _ in range(3):
        for view in views.VIEWS:  # GetCreateWorkflowInstancesPlan too, authorised as a write
            assert code(call(view, ProjectId=pid)) != "Throttling.User", view
    refused = sorted(set(ACTIONS) - CONSOLE) + list(UNKNOWN)
    for name in refused:
        answer = call(name, ProjectId=pid)
        assert (answer.status_code, code(answer)) == (400, "InvalidAction.NotFound"), name
    for name in sorted(n for n in CONSOLE if ACTIONS[n].reads):
        assert code(call(name)) not in ("InvalidAction.NotFound", "Throttling.User"), name
    first, *others = sorted(n for n in CONSOLE if not ACTIONS[n].reads)
    assert code(call(first)) not in ("InvalidAction.NotFound", "Throttling.User")
    for name in others:
        answer = call(name)
        assert (answer.status_code, code(answer)) == (429, "Throttling.User"), name

    with store.read() as tx:
        recorded = {e.action for e in tx.audit.entries(user="ada")} - {"ConsoleSignIn"}
    refused_writes = {n for n in set(ACTIONS) - CONSOLE if ACTIONS[n].audited}
    assert recorded == refused_writes | set(UNKNOWN) | {first}
