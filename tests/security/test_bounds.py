"""Bounded before expanded, through the official SDK over real HTTP (both databases): a
request whose cost grows with its arguments is refused with InvalidParameter naming the
parameter before the work is done, and creates nothing; a request just under the bound is
still accepted (or planned, in the console); a cron firing more than once a minute is refused
at deploy, naming its JSON path.

No engine runs beside the server: an accepted CreateWorkflowInstances stays a Creating
operation, so a capped backfill costs its planning only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from alibabacloud_dataworks_public20240518 import models as M

from dwsched.clock import SystemClock
from dwsched.domain.calendar import day_start_ms
from dwsched.domain.runs import MAX_INSTANCES, MAX_RANGES
from dwsched.store import creation
from dwsched.web import passwords
from tests.api.sdk_helpers import sdk_error
from tests.engine.test_engine import flow, node
from tests.support.factories import project
from tests.support.server import LiveServer
from tests.web.helpers import deploy

TZ = "Asia/Shanghai"  # tests.engine.test_engine.flow's zone and the workspaces'
CRON_PATH = "$.spec.workflows[0].trigger.cron"
PASSWORD = "correct horse battery"


def yesterday() -> date:
    return datetime.now(ZoneInfo(TZ)).date() - timedelta(days=1)


def ranges(*pairs: tuple[date | str, date | str]) -> dict[str, Any]:
    return {"BizDates": [{"StartBizDate": str(a), "EndBizDate": str(b)} for a, b in pairs]}


def huge() -> dict[str, Any]:
    """The review's request: seven ranges from the years 1-7 to yesterday (~740,000 days)."""
    return ranges(*[(f"000{n}-01-01", yesterday()) for n in range(1, MAX_RANGES + 1)])


def capped(extra: int = 0) -> dict[str, Any]:
    """MAX_INSTANCES BizDates ending yesterday (+ `extra`), in two overlapping ranges."""
    last = yesterday()
    first = last - timedelta(days=MAX_INSTANCES - 1 + extra)
    return ranges((first, last - timedelta(days=100)), (last - timedelta(days=200), last))


class Space:
    """A workspace with a daily workflow (one cycle a day, one task)."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.sdk = live.sdk()
        self.project = project(live.store)
        self.workflow_id = deploy(live, self.project.id, flow([node("a", "VIRTUAL")]))

    def backfill(self, periods: dict[str, Any]) -> str:
        request = M.CreateWorkflowInstancesRequest(
            project_id=self.project.id,
            name="backfill",
            type="SupplementData",
            workflow_id=self.workflow_id,
            periods=M.CreateWorkflowInstancesRequestPeriods().from_map(periods),
        )
        return str(self.sdk.create_workflow_instances(request).body.operation_id)

    def created_nothing(self, *days: date) -> bool:
        for day in days:
            listed = self.sdk.list_workflow_instances(
                M.ListWorkflowInstancesRequest(
                    project_id=self.project.id, biz_date=day_start_ms(day, TZ), page_size=10
                )
            ).body.paging_info
            if listed.total_count:
                return False
        with self.live.store.read() as tx:
            pending = creation.creating(tx.conn)
        return all(request.project_id != self.project.id for _, request, _, _ in pending)


@pytest.fixture
def space(live: LiveServer) -> Space:
    return Space(live)


def test_a_huge_backfill_is_refused_naming_periods_and_creates_nothing(space: Space) -> None:
    error = sdk_error(lambda: space.backfill(huge()))
    assert error.code == "InvalidParameter", error
    assert "Periods.BizDates" in error.message
    assert f"at most {MAX_INSTANCES}" in error.message
    assert space.created_nothing(date(2025, 1, 1), yesterday())


def test_one_bizdate_past_the_cap_is_refused_and_the_cap_itself_accepted(space: Space) -> None:
    error = sdk_error(lambda: space.backfill(capped(extra=1)))
    assert error.code == "InvalidParameter" and "Periods.BizDates" in error.message, error
    assert f"{MAX_INSTANCES + 1} BizDates" in error.message
    assert space.created_nothing(yesterday())
    operation_id = space.backfill(capped())
    result = space.sdk.get_create_workflow_instances_result(
        M.GetCreateWorkflowInstancesResultRequest(operation_id=operation_id)
    ).body.result
    assert result.status == "Creating"  # accepted: the engine (not running here) makes them


def test_more_ranges_than_allowed_are_refused(space: Space) -> None:
    day = yesterday()
    error = sdk_error(lambda: space.backfill(ranges(*[(day, day)] * (MAX_RANGES + 1))))
    assert error.code == "InvalidParameter" and "Periods.BizDates" in error.message, error


# The console's backfill plan


@pytest.fixture
def console(live: LiveServer) -> Iterator[httpx.Client]:
    name = f"planner_{SystemClock().now_ms()}"
    store = live.store
    with store.write() as tx:
        tx.users.create(name, name, SystemClock().now_ms())
        tx.policies.attach("AdministratorAccess", "User", name, attach=True)
        tx.users.set_password(name, passwords.hash_password(PASSWORD))
    with httpx.Client(base_url=f"http://{live.endpoint}", timeout=60) as http:
        answer = http.post("/console/api/signin", json={"UserName": name, "Password": PASSWORD})
        assert answer.status_code == 200, answer.text
        http.headers["X-CSRF-Token"] = answer.json()["CsrfToken"]
        yield http


def plan(http: httpx.Client, space: Space, periods: dict[str, Any]) -> httpx.Response:
    parameters = {
        "ProjectId": space.project.id,
        "WorkflowId": space.workflow_id,
        "Type": "SupplementData",
        "Name": "plan",
        "Periods": periods,
    }
    return http.post(
        "/console/api/call",
        json={"Action": "GetCreateWorkflowInstancesPlan", "Parameters": parameters},
    )


def test_the_console_plan_refuses_a_huge_backfill_and_plans_the_cap(
    space: Space, console: httpx.Client
) -> None:
    refused = plan(console, space, huge())
    assert refused.status_code == 400, refused.text
    assert refused.json()["Code"] == "InvalidParameter"
    assert "Periods.BizDates" in refused.json()["Message"]
    planned = plan(console, space, capped())
    assert planned.status_code == 200, planned.text
    assert planned.json()["Count"] == MAX_INSTANCES  # one daily cycle per BizDate
    assert space.created_nothing(yesterday())


# Crons


@pytest.mark.parametrize("cron", ["* * * * * ?", "0/10 * * * * ?", "0,30 0 2 * * ?"])
def test_a_cron_firing_more_than_once_a_minute_is_refused_at_deploy(
    live: LiveServer, cron: str
) -> None:
    sdk = live.sdk()
    project_id = project(live.store).id
    spec = json.dumps(flow([node("a", "VIRTUAL")], cron))
    for call in (
        lambda: sdk.import_workflow_definition(
            M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=spec)
        ),
        lambda: sdk.create_workflow_definition(
            M.CreateWorkflowDefinitionRequest(project_id=project_id, spec=spec)
        ),
    ):
        error = sdk_error(call)
        assert error.code == "InvalidParameter", error
        assert CRON_PATH in error.message and "once a minute" in error.message, error.message
    workflows = sdk.list_workflows(M.ListWorkflowsRequest(project_id=project_id)).body
    assert workflows.paging_info.total_count == 0


def test_an_every_minute_cron_deploys(live: LiveServer) -> None:
    project_id = project(live.store).id
    assert deploy(live, project_id, flow([node("a", "VIRTUAL")], "0 * * * * ?")) > 0
