"""The instance page's dependencies outside the instance, in a real browser (Debian's
Chromium, headless, driven by Playwright; skipped without it as tests/web/test_browser.py
is): upstreams in another workflow's instance (solid edges) and in a previous cycle
(dashed), each a box naming its task, workflow instance, BizDate and status that opens its
instance's page; "Remove dependency" on a waiting task's upstream, with a confirmation and
a comment, refused to a reader as other operations are. No engine runs: the task instances
stay waiting. Screenshots go under artifacts/console/ as the other browser tests' do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from alibabacloud_dataworks_public20240518 import models as M

from dwsched.web import passwords
from tests.cli.linked import Linked, make_linked
from tests.support.factories import project
from tests.support.server import LiveServer, running_server
from tests.web.test_browser import NOW, PASSWORD, browser, labelled, page, shot

__all__ = ["browser", "page"]  # the fixtures, with the module skipped without Chromium

from playwright.sync_api import Page, expect

XSS = "<img src=x onerror=alert(3)>"


@dataclass
class Site:
    live: LiveServer
    base: str
    project_id: int
    linked: Linked  # report is named XSS
    refused: Linked  # for the reader


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("browser-deps")
    with running_server(f"sqlite:///{folder / 'deps.db'}") as live:
        store = live.store
        pid = project(store, "shop").id
        linked = make_linked(live, pid, task_name=XSS)
        refused = make_linked(live, pid)
        for name, policy, role in (
            ("ops", "AdministratorAccess", None),
            ("viewer", "ReadOnlyAccess", "role_project_guest"),
        ):
            with store.write() as tx:
                user = tx.users.create(name, name, NOW)
            with store.write() as tx:
                tx.policies.attach(policy, "User", name, attach=True)
            with store.write() as tx:
                tx.users.set_password(name, passwords.hash_password(PASSWORD))
            if role:
                with store.write() as tx:
                    tx.members.add(pid, user.id, [role], NOW)
        yield Site(live, f"http://{live.endpoint}", pid, linked, refused)


def sign_in(page: Page, site: Site, user: str = "ops") -> None:
    page.goto(f"{site.base}/console/signin")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_have_text(user)


def open_instance(page: Page, site: Site, instance_id: int) -> None:
    page.goto(f"{site.base}/console/instances/{instance_id}?project={site.project_id}")
    expect(page.locator("#instance-status")).to_be_visible()


def test_upstreams_outside_the_instance_are_boxes_with_solid_and_dashed_edges(
    page: Page, site: Site
) -> None:
    linked = site.linked
    report, load = linked.task("report"), linked.task("load")
    previous = linked.task("report", later=False)
    sign_in(page, site)
    open_instance(page, site, linked.instance("downstream"))
    outside = page.locator("#dag [data-upstream-instance]")
    expect(outside).to_have_count(2)
    expect(page.locator("#dag [data-task-instance]")).to_have_count(2)  # report, tidy
    # The other workflow's instance, the same cycle: a solid edge.
    box = page.locator(f"#dag [data-upstream-instance='{load}']")
    for text in (
        "load",
        f"{linked.upstream_name} · instance {linked.instance('upstream')}",
        f"BizDate {linked.days[1]}",
        "NotRun",
        "other workflow",
    ):
        expect(box).to_contain_text(text)
    solid = page.locator("#dag path.edge.other-workflow")
    expect(solid).to_have_count(1)
    expect(solid).to_have_attribute("data-to", str(report))
    assert solid.evaluate("el => getComputedStyle(el).strokeDasharray") == "none"
    # Its own previous cycle: a dashed edge; the name is shown as text.
    before = page.locator(f"#dag [data-upstream-instance='{previous}']")
    expect(before).to_contain_text(f"BizDate {linked.days[0]}")
    expect(before).to_contain_text("previous cycle")
    expect(before).to_contain_text(f"instance {linked.instance('downstream', False)}")
    assert XSS in str(before.locator("title").text_content())
    dashed = page.locator("#dag path.edge.cross-cycle")
    expect(dashed).to_have_count(1)
    expect(dashed).to_have_attribute("data-from", str(previous))
    assert dashed.evaluate("el => getComputedStyle(el).strokeDasharray") != "none"
    assert page.locator("#main img").count() == 0
    expect(page.locator(".edge-legend")).to_be_visible()
    labelled(page)
    shot(page, "12-instance-upstreams")
    # A box opens its workflow instance's page; Enter does too.
    box.click()
    expect(page).to_have_url(re.compile(rf"/console/instances/{linked.instance('upstream')}\?"))
    expect(page.locator("h1")).to_have_text(linked.upstream_name)
    expect(page.locator("#dag [data-upstream-instance]")).to_have_count(0)
    page.go_back()
    expect(page.locator(f"#dag [data-upstream-instance='{previous}']")).to_be_visible()
    page.locator(f"#dag [data-upstream-instance='{previous}']").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(
        re.compile(rf"/console/instances/{linked.instance('downstream', False)}\?")
    )


def test_remove_dependency_asks_for_a_comment_then_the_task_stops_waiting(
    page: Page, site: Site
) -> None:
    linked = site.linked
    report, load = linked.task("report"), linked.task("load")
    sign_in(page, site)
    open_instance(page, site, linked.instance("downstream"))
    page.locator(f"#dag [data-task-instance='{report}']").click()
    deps = page.locator("#task-panel .deps")
    upstream = deps.locator("table").first
    expect(upstream.locator("tr[data-neighbour]")).to_have_count(2)
    row = upstream.locator(f"tr[data-neighbour='{load}']")
    expect(row).to_contain_text("Normal (other workflow)")
    expect(row.get_by_role("link")).to_have_attribute(
        "href", f"/console/instances/{linked.instance('upstream')}?project={site.project_id}"
    )
    expect(deps).to_contain_text("CrossCycle (previous cycle)")
    labelled(page)
    # Cancelled: nothing happens.
    row.get_by_role("button", name=re.compile("Remove the dependency")).click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text(f"will no longer wait for task instance {load} (load)")
    dialog.get_by_role("button", name="Cancel").click()
    expect(upstream.locator("tr[data-neighbour]")).to_have_count(2)
    row.get_by_role("button", name=re.compile("Remove the dependency")).click()
    page.fill("#dependency-comment", "load is late today")
    shot(page, "13-remove-dependency")
    page.locator("dialog[open]").get_by_role("button", name="Remove dependency").click()
    expect(page.locator("#task-panel .results")).to_contain_text(
        f"no longer waits for {load} (load)"
    )
    expect(page.locator("#dag [data-upstream-instance]")).to_have_count(1, timeout=10_000)
    expect(page.locator("#dag path.edge.other-workflow")).to_have_count(0)
    expect(deps.locator("table").first.locator("tr[data-neighbour]")).to_have_count(1)
    with site.live.store.read() as tx:
        ops = str(tx.users.get("ops").id)  # the operation log shows the user's id
    logs = (
        site.live.sdk()
        .list_task_instance_operation_logs(M.ListTaskInstanceOperationLogsRequest(id=report))
        .body.paging_info.operation_logs
    )
    assert [(e.operation_content, e.user) for e in logs] == [
        (f"RemoveTaskInstanceDependencies: no longer waits for {load} (load is late today)", ops)
    ]
    shot(page, "14-dependency-removed")


def test_a_reader_is_refused_and_a_task_that_ran_offers_no_removal(page: Page, site: Site) -> None:
    linked = site.refused
    report, load = linked.task("report"), linked.task("load")
    sign_in(page, site, "viewer")
    open_instance(page, site, linked.instance("downstream"))
    page.locator(f"#dag [data-task-instance='{report}']").click()
    page.locator(f"#task-panel button[data-remove='{load}']").click()
    page.locator("dialog[open]").get_by_role("button", name="Remove dependency").click()
    results = page.locator("#task-panel .results")
    expect(results).to_contain_text("was refused")
    expect(results).to_contain_text("not authorized")
    expect(page.locator("#dag [data-upstream-instance]")).to_have_count(2)
    # A task instance that no longer waits: the button is there, disabled, saying why.
    site.live.sdk().set_success_task_instances(M.SetSuccessTaskInstancesRequest(ids=[report]))
    button = page.locator(f"#task-panel button[data-remove='{load}']")
    expect(button).to_be_disabled(timeout=10_000)
    expect(button).to_have_attribute("title", re.compile("Success"))
