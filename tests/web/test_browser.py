"""The web console end to end in a real browser: Debian's Chromium, headless, driven by
Playwright, against a server (API, console and engine) this module starts on SQLite.

Sign in, filter, sort, page, open an instance, read a log, rerun a failure and see it
succeed, run a backfill, be refused what the policy denies, sign out. Names are shown as
text, never as markup. Each page's screenshot is saved under artifacts/console/ (or
$DWSCHED_ARTIFACTS/console/). Without /usr/bin/chromium the module is skipped, loudly,
unless DWSCHED_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_dataworks_public20240518 import models as M

from dwsched.clock import SystemClock
from dwsched.domain.models import InstanceType, Status
from dwsched.engine.alerts import AlertSettings
from dwsched.engine.notify import NotifySettings
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.web import passwords
from tests.engine.test_engine import flow, node
from tests.notify.receivers import HttpReceiver
from tests.support.factories import DAY, instance, project, put
from tests.support.server import LiveServer, running_server
from tests.web.helpers import deploy

CHROMIUM = "/usr/bin/chromium"
REQUIRE = os.environ.get("DWSCHED_REQUIRE_BROWSER") == "1"
if not Path(CHROMIUM).exists():
    if REQUIRE:
        raise RuntimeError(f"{CHROMIUM} is missing and DWSCHED_REQUIRE_BROWSER=1")
    pytest.skip(f"browser tests skipped: {CHROMIUM} is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

# Sign-in hashes a password and the first page loads modules and a listing: on a loaded
# 2-core machine that can take longer than Playwright's default 5 s.
expect.set_options(timeout=15_000)

ARTIFACTS = Path(os.environ.get("DWSCHED_ARTIFACTS", "artifacts")) / "console"
PASSWORD = "browser test password"
XSS = "<img src=x onerror=alert(1)>"
LOG_XSS = "<img src=x onerror=alert(2)>"
NOW = SystemClock().now_ms()
TZ = "Asia/Shanghai"


@dataclass
class Site:
    live: LiveServer
    base: str
    project_id: int
    failed_instance: int  # a backfill instance whose task failed (fixable by a flag)
    flag: Path
    daily_workflow: int
    listed_day: str  # a BizDate holding 45 listed instances
    running_instance: int  # one of them, Running
    hooks: HttpReceiver  # the webhook the alert rules made in the tests send to
    dry_day: str  # a BizDate holding one dry-run instance (every task skipped) and one real
    dry_instance: int
    dry_workflow: int
    real_instance: int


def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("browser")
    hooks = HttpReceiver().start()
    with running_server(f"sqlite:///{folder / 'console.db'}") as live:
        alerts = AlertSettings(NotifySettings(), f"http://{live.endpoint}")
        service = Service(
            live.store, SystemClock(), WorkerSettings(slots=4), tick_s=0.05, alerts=alerts
        )
        service.start()
        try:
            yield _populate(live, folder, hooks)
        finally:
            service.stop()
            hooks.stop()


def backfill(live: LiveServer, project_id: int, workflow: int, day: str) -> int:
    """Backfill `workflow` for the BizDate `day` through the SDK; the instance, once made."""
    operation = (
        live.sdk()
        .create_workflow_instances(
            M.CreateWorkflowInstancesRequest(
                project_id=project_id,
                workflow_id=workflow,
                type="SupplementData",
                name=f"backfill of {day}",
                periods=M.CreateWorkflowInstancesRequestPeriods(
                    biz_dates=[
                        M.CreateWorkflowInstancesRequestPeriodsBizDates(
                            start_biz_date=day, end_biz_date=day
                        )
                    ]
                ),
            )
        )
        .body.operation_id
    )

    def created() -> list[int]:
        result = (
            live.sdk()
            .get_create_workflow_instances_result(
                M.GetCreateWorkflowInstancesResultRequest(operation_id=operation)
            )
            .body.result
        )
        return list(result.workflow_instance_ids or []) if result.status == "Created" else []

    (made,) = wait_for(created)
    return int(made)


def _populate(live: LiveServer, folder: Path, hooks: HttpReceiver) -> Site:
    store = live.store
    pid = project(store, "shop", TZ).id
    flag = folder / "fixed"
    flaky = deploy(
        live,
        pid,
        flow(
            [
                node(
                    "load_orders",
                    "DIDE_SHELL",
                    f"echo loading '{LOG_XSS}'; test -f {flag} || exit 3",
                ),
                node("report", "DIDE_SHELL", "echo report done", after="load_orders"),
            ],
            rerunTimes=0,
        ),
    )
    daily = deploy(
        live,
        pid,
        flow([node("extract", "VIRTUAL"), node("publish", "VIRTUAL", after="extract")]),
    )
    # One real failure: a backfill of the flaky workflow for one past BizDate.
    day = (date.today() - timedelta(days=3)).isoformat()
    failed = backfill(live, pid, flaky, day)

    def ended() -> bool:
        found = live.sdk().get_workflow_instance(M.GetWorkflowInstanceRequest(id=failed))
        return found.body.workflow_instance.status == "Failure"

    wait_for(ended)
    # A dry run (a workflow whose tasks are all skipped) and a real run of one BizDate.
    skipped = deploy(
        live,
        pid,
        flow(
            [
                node("skipped_extract", "VIRTUAL", recurrence="Skip"),
                node("skipped_publish", "VIRTUAL", after="skipped_extract", recurrence="Skip"),
            ]
        ),
    )
    dry_day = (date.today() - timedelta(days=6)).isoformat()
    dry = backfill(live, pid, skipped, dry_day)
    real = backfill(live, pid, daily, dry_day)

    def succeeded() -> bool:
        return all(
            live.sdk()
            .get_workflow_instance(M.GetWorkflowInstanceRequest(id=i))
            .body.workflow_instance.status
            == "Success"
            for i in (dry, real)
        )

    wait_for(succeeded)
    # 45 listed instances on DAY: statuses, types and names to filter and sort by.
    statuses = [Status.SUCCESS, Status.FAILURE, Status.RUNNING, Status.WAIT_TIME, Status.NOT_RUN]
    items = [
        instance(
            pid,
            id=500_000 + n,
            status=statuses[n % 5],
            type=InstanceType.SUPPLEMENT_DATA if n % 3 == 0 else InstanceType.NORMAL,
            name=XSS if n == 7 else f"orders_{n:02d}",
            # started a minute apart, the smallest id the latest
            started_time=None
            if statuses[n % 5] in (Status.WAIT_TIME, Status.NOT_RUN)
            else NOW - n * 60_000,
            finished_time=NOW - n * 60_000 + 1000
            if statuses[n % 5] in (Status.SUCCESS, Status.FAILURE)
            else None,
        )
        for n in range(45)
    ]
    put(store, items)
    for name, policies, role in (
        ("ops", ("AdministratorAccess",), None),
        ("viewer", ("ReadOnlyAccess",), "role_project_guest"),
    ):
        with store.write() as tx:
            user = tx.users.create(name, name, NOW)
        for policy in policies:
            with store.write() as tx:
                tx.policies.attach(policy, "User", name, attach=True)
        with store.write() as tx:
            tx.users.set_password(name, passwords.hash_password(PASSWORD))
        if role:
            with store.write() as tx:
                tx.members.add(pid, user.id, [role], NOW)
    return Site(
        live,
        f"http://{live.endpoint}",
        pid,
        failed,
        flag,
        daily,
        DAY.isoformat(),
        items[2].id,
        hooks,
        dry_day,
        dry,
        skipped,
        real,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        # An API call the server refuses (a 403 the test provokes, a 404 of a workflow the
        # listed test instances do not have) is logged by the browser as a failed resource;
        # any other console error (a script error, a CSP violation, a missing file) fails.
        refused_call = "/console/api/" in (message.location or {}).get("url", "")
        if message.type == "error" and not refused_call:
            problems.append(f"console {message.type}: {message.text}")

    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.on("console", on_console)
    opened.on("dialog", lambda d: problems.append(f"a dialog opened: {d.message}"))
    try:
        yield opened
    finally:
        context.close()
    assert problems == []


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, site: Site, user: str = "ops", then: str = "") -> None:
    page.goto(f"{site.base}/console/signin" + (f"?next={then}" if then else ""))
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_have_text(user)


def labelled(page: Page) -> None:
    """Every visible control has an accessible name (a label, aria-label or text)."""
    unnamed = page.locator("input, select, textarea, button").evaluate_all(
        """els => els.filter(e => e.offsetParent !== null).filter(e => !(
            (e.labels && e.labels.length) || e.getAttribute('aria-label') ||
            e.getAttribute('aria-labelledby') || (e.textContent || '').trim() || e.title
        )).map(e => e.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []


def rows(page: Page) -> list[str]:
    return [
        str(r.get_attribute("data-id")) for r in page.locator("#instances tbody tr[data-id]").all()
    ]


# The tests


def test_sign_in_refuses_a_wrong_password_then_lands_on_the_list(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/console/instances?project={site.project_id}")
    expect(page).to_have_url(
        f"{site.base}/console/signin?next=%2Fconsole%2Finstances%3Fproject%3D{site.project_id}"
    )
    page.fill("#username", "ops")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("form .error")).to_contain_text("wrong")
    shot(page, "01-sign-in")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(
        re.compile(re.escape(f"{site.base}/console/instances?project={site.project_id}&")),
        timeout=10_000,
    )
    expect(page.locator("#instances")).to_be_visible()


def test_list_filters_sorts_pages_and_keeps_the_query_in_the_address(
    page: Page, site: Site
) -> None:
    sign_in(page, site)
    page.goto(
        f"{site.base}/console/instances?project={site.project_id}&bizdate={site.listed_day}&size=50"
    )
    expect(page.locator("#total")).to_have_text("45")
    expect(page.locator("#instances tbody tr[data-id]")).to_have_count(45)
    # Recent activity first (StartedTime Desc), not the API's Id Desc: the 27 started
    # instances, the latest started first, then the 18 that wait (Id Desc would lead
    # with those).
    expect(page).to_have_url(re.compile(r"[?&]sort=StartedTime\+Desc(&|$)"))
    expect(page.locator("#instances th[aria-sort]")).to_have_attribute("data-sort", "StartedTime")
    listed = [int(i) for i in rows(page)]
    started = [500_000 + n for n in range(45) if n % 5 in (0, 1, 2)]
    assert listed[:27] == started  # started a minute apart, the smallest id the latest
    assert set(listed[27:]) == {500_000 + n for n in range(45) if n % 5 in (3, 4)}
    assert page.locator("#bizdate").get_attribute("type") == "text"
    assert page.locator("#bizdate").input_value() == site.listed_day  # ISO, not mm/dd/yyyy
    # The injected name is text: no image, no alert (the page fixture fails on a dialog).
    expect(page.get_by_text(XSS, exact=True)).to_be_visible()
    assert page.locator("#instances img").count() == 0
    labelled(page)
    shot(page, "02-instances")
    # Page size and pages.
    page.select_option("#page-size", "10")
    expect(page.locator("#instances tbody tr[data-id]")).to_have_count(10)
    first_page = rows(page)
    page.get_by_label("Next page").click()
    expect(page.locator("#instances tbody tr[data-id]").first).not_to_have_attribute(
        "data-id", first_page[0]
    )
    assert set(rows(page)).isdisjoint(first_page)
    page.get_by_label("Last page").click()
    expect(page.locator("#instances tbody tr[data-id]")).to_have_count(5)
    # Sort: a click on Id sorts by it, newest first; a second click turns it ascending.
    page.get_by_label("First page").click()
    page.locator("#instances th button", has_text="Id").first.click()
    expect(page).to_have_url(re.compile(r"[?&]sort=Id\+Desc(&|$)"))
    expect(page.locator("#instances")).not_to_have_attribute("aria-busy", "true")
    first_page = rows(page)
    assert first_page == [str(500_044 - n) for n in range(10)]
    page.locator("#instances th button", has_text="Id").first.click()
    expect(page.locator("#instances th[aria-sort]").first).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page).to_have_url(re.compile(r"[?&]sort=Id\+Asc(&|$)"))
    # The header turns at once; the rows come with the answer, when the table is no longer busy.
    expect(page.locator("#instances")).not_to_have_attribute("aria-busy", "true")
    ascending = [int(i) for i in rows(page)]
    assert len(ascending) == 10 and ascending == sorted(ascending)
    assert ascending[0] < min(int(i) for i in first_page)  # the smallest ids of the day
    # Filter: failures only.
    status = page.locator("#filter-status")
    if status.count():
        status.select_option(["Failure"])
    else:
        page.get_by_label("Failure", exact=True).check()
    expect(page.locator("#total")).to_have_text("9")
    chips = page.locator("#instances tbody .chip").all_inner_texts()
    assert chips and all("Failure" in c for c in chips)
    # The address holds the query: a reload shows the same view.
    url = page.url
    assert "Failure" in url and "size=10" in url
    page.reload()
    expect(page.locator("#total")).to_have_text("9")
    assert page.url == url
    page.fill("#filter-name", "orders_1")
    expect(page.locator("#total")).to_have_text("2")  # orders_11 and orders_16 failed
    expect(page.locator("#instances tbody tr[data-id]")).to_have_count(2)
    names = page.locator("#instances tbody tr[data-id]").all_inner_texts()
    assert all("orders_1" in n for n in names)
    shot(page, "03-instances-filtered")


def test_overview_charts_fourteen_days_and_lists_failures_first(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.goto(f"{site.base}/console/overview?project={site.project_id}&bizdate={site.listed_day}")
    chart = page.locator("#status-chart")
    expect(chart).to_be_visible()
    expect(page.locator("#failures tbody tr")).to_have_count(9)
    # Failures are told apart by texture too, not by colour alone.
    failure = chart.locator("rect.seg-failure").first
    assert "#pat-failure" in failure.evaluate("el => getComputedStyle(el).fill")
    expect(chart.locator("pattern#pat-failure path")).to_have_count(1)
    shot(page, "04-overview")


def test_instance_detail_log_and_rerun_of_a_failure(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.goto(f"{site.base}/console/instances/{site.failed_instance}?project={site.project_id}")
    expect(page.locator("#instance-status")).to_contain_text("Failure")
    failed = page.locator("#dag [data-status=Failure]")
    expect(failed).to_have_count(1)
    expect(page.locator("#dag [data-task-instance]")).to_have_count(2)
    expect(page.locator("#gantt")).to_be_visible()
    # Owner and creator, account ids, named (the tenant's own key deployed and backfilled).
    expect(page.locator("dd", has_text="tenant (0)")).to_have_count(2)
    failed.click()
    expect(page.locator("#log")).to_contain_text(f"loading {LOG_XSS}", timeout=10_000)
    assert page.locator("#log img").count() == 0
    labelled(page)
    shot(page, "05-instance-failed")
    site.flag.write_text("")
    page.get_by_role("button", name="Rerun", exact=True).click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Rerun")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#instance-status")).to_contain_text("Success", timeout=30_000)
    expect(page.locator("#dag [data-status=Success]")).to_have_count(2, timeout=10_000)
    shot(page, "06-instance-rerun")
    # A task instance's id in a workflow instance's address: said, and linked to its instance.
    task_id = page.locator("#dag [data-task-instance]").first.get_attribute("data-task-instance")
    page.goto(f"{site.base}/console/instances/{task_id}?project={site.project_id}")
    other = page.locator(".other-kind")
    expect(other).to_contain_text(f"{task_id} is a task instance, not a workflow instance")
    other.get_by_role("link").click()
    expect(page).to_have_url(
        re.compile(rf"/console/instances/{site.failed_instance}\?task={task_id}")
    )
    expect(page.locator("#instance-status")).to_contain_text("Success")


def test_a_backfill_from_the_workflows_page(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.goto(f"{site.base}/console/workflows?project={site.project_id}")
    row = page.locator(f"#workflows [data-workflow-id='{site.daily_workflow}']")
    expect(row).to_be_visible()
    # The FlowSpec is shown as text: the flaky workflow's script with its markup.
    for summary in page.locator("#workflows details summary").all():
        summary.click()
    expect(page.locator("#workflows details pre", has_text=LOG_XSS)).to_have_count(1)
    assert page.locator("#workflows img").count() == 0
    labelled(page)
    shot(page, "07-workflows")
    row.get_by_role("button", name="Backfill…").click()
    dialog = page.locator("#backfill")
    expect(dialog).to_be_visible()
    start = (date.today() - timedelta(days=5)).isoformat()
    end = (date.today() - timedelta(days=3)).isoformat()
    # Dates are ISO (YYYY-MM-DD), as everywhere in the console, not the browser's locale.
    for field in ("#range-start-0", "#range-end-0"):
        assert page.locator(field).get_attribute("type") == "text"
        assert page.locator(field).get_attribute("placeholder") == "YYYY-MM-DD"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", page.locator(field).input_value())
    page.fill("#range-start-0", "03/01/2025")
    expect(page.locator("#range-start-0")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#plan")).to_contain_text("YYYY-MM-DD")
    expect(dialog.get_by_role("button", name="Create backfill")).to_be_disabled()
    page.fill("#range-end-0", "2999-01-01")  # after today
    expect(page.locator("#range-end-0")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#plan")).to_contain_text("YYYY-MM-DD")
    shot(page, "08-backfill-bad-dates")
    page.fill("#range-start-0", start)
    page.fill("#range-end-0", end)
    page.fill("#parallelism", "2")
    expect(page.locator("#plan")).to_contain_text("will create 3 instance", timeout=10_000)
    expect(page.locator("#range-start-0")).not_to_have_attribute("aria-invalid", "true")
    labelled(page)
    shot(page, "08-backfill-plan")
    dialog.get_by_role("button", name="Create backfill").click()
    expect(page.locator("#backfill-progress")).to_contain_text("3/3 done", timeout=60_000)
    shot(page, "09-backfill-done")


def test_a_reader_is_refused_an_operation_and_signs_out(page: Page, site: Site) -> None:
    sign_in(page, site, "viewer")
    page.goto(f"{site.base}/console/instances/{site.running_instance}?project={site.project_id}")
    expect(page.locator("#instance-status")).to_be_visible()
    page.get_by_role("button", name="Stop instance").click()
    page.locator("dialog[open]").get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("not authorized", exact=False).first).to_be_visible(timeout=10_000)
    shot(page, "10-refused")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{site.base}/console/signin")
    page.goto(f"{site.base}/console/instances?project={site.project_id}")
    expect(page).to_have_url(re.compile(r"/console/signin\?next="))


def test_the_workers_page_shows_the_engines_worker_to_administrators(
    page: Page, site: Site
) -> None:
    sign_in(page, site)
    page.goto(f"{site.base}/console/workers?project={site.project_id}")
    workers = page.locator("table").first
    expect(workers.locator("tbody tr").first).to_contain_text("Alive")
    expect(page.locator("nav a[data-page=workers]")).to_have_attribute("aria-current", "page")
    labelled(page)
    shot(page, "11-workers")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{site.base}/console/signin")
    sign_in(page, site, "viewer")
    page.goto(f"{site.base}/console/workers?project={site.project_id}")
    expect(page.locator("#main")).to_contain_text("AdministerWorkers")


def test_alert_rules_are_checked_made_switched_edited_and_their_alerts_shown(
    page: Page, site: Site
) -> None:
    sign_in(page, site, then=f"/console/alerts?project={site.project_id}")
    expect(page.locator("h1")).to_have_text("Alerts")
    expect(page.locator("nav a[data-page=alerts]")).to_have_attribute("aria-current", "page")
    page.get_by_role("button", name="New rule…").click()
    editor = page.locator("dialog.rule-editor")
    page.fill("#rule-name", "shop failures")
    page.select_option("#rule-type", "Timeout")
    page.fill("#rule-timeout", "0")
    page.check("#channel-Webhook")
    page.fill("#receiver-WebhookUrl", site.hooks.url("/hook?access_token=s3cr3t"))
    labelled(page)
    editor.get_by_role("button", name="Create").click()
    # The server's own check: the field is named and marked, the editor stays, nothing made.
    problem = editor.locator(".rule-problem")
    expect(problem).to_contain_text("InvalidParameter")
    expect(problem).to_contain_text("TriggerCondition.Extension.Timeout.TimeoutInMinutes")
    expect(page.locator("#rule-timeout")).to_have_attribute("aria-invalid", "true")
    shot(page, "12-alert-rule-refused")
    sdk = site.live.sdk()
    assert sdk.list_alert_rules(M.ListAlertRulesRequest()).body.paging_info.total_count == 0
    page.select_option("#rule-type", "Error")
    expect(page.locator("#rule-timeout")).to_be_hidden()
    editor.get_by_role("button", name="Create").click()
    expect(editor).to_have_count(0)
    row = page.locator("#rules tbody tr[data-id]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("shop failures")
    expect(row).to_contain_text(f"Project {site.project_id}")
    rule_id = int(str(row.get_attribute("data-id")))

    def enabled() -> bool:
        got = sdk.get_alert_rule(M.GetAlertRuleRequest(id=rule_id)).body.alert_rule
        return bool(got.enabled)

    assert enabled()
    row.get_by_role("button", name="Disable shop failures").click()
    expect(row.locator(".rule-toggle")).to_have_text("Disabled")
    assert not enabled()
    row.get_by_role("button", name="Enable shop failures").click()
    expect(row.locator(".rule-toggle")).to_have_text("Enabled")
    assert enabled()
    # Editing shows the webhook masked and keeps the stored one when it comes back unchanged.
    row.get_by_role("button", name="Edit shop failures").click()
    shown = page.locator("#receiver-WebhookUrl").input_value()
    assert "s3cr3t" not in shown and "****" in shown
    page.fill("#rule-name", "shop failures (on call)")
    editor.get_by_role("button", name="Save").click()
    expect(editor).to_have_count(0)
    expect(row).to_contain_text("shop failures (on call)")
    # A real failure raises an alert, delivered to the stored (unmasked) address.
    doomed = deploy(
        site.live,
        site.project_id,
        flow([node("doomed_load", "DIDE_SHELL", "echo loading; exit 4")], rerunTimes=0),
    )
    backfill(site.live, site.project_id, doomed, (date.today() - timedelta(days=2)).isoformat())

    def about_doomed() -> list[Any]:
        return [r for r in site.hooks.requests if b"doomed_load" in r.body]

    (received,) = wait_for(about_doomed, timeout=60)
    assert "access_token=s3cr3t" in received.path
    page.reload()
    history = page.locator("#history tbody tr[data-id]", has_text="doomed_load")
    expect(history).to_have_count(1)
    expect(history).to_contain_text("shop failures (on call)")
    expect(history).to_contain_text("Error")
    expect(history.locator("li.delivery-sent")).to_contain_text("Webhook")
    expect(history.locator("li.delivery-sent")).to_contain_text("(1 try)")
    assert "s3cr3t" not in history.inner_text()
    shot(page, "13-alerts")
    # The editor's delete asks first.
    row.get_by_role("button", name="Delete shop failures (on call)").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    expect(page.locator("#rules tbody tr[data-id]")).to_have_count(0)
    expect(history).to_have_count(1)  # the alerts raised stay


def test_dry_runs_are_marked_and_counted_apart_from_real_runs(page: Page, site: Site) -> None:
    sign_in(page, site)
    # The list marks the instance whose tasks were all dry runs, not the real one.
    page.goto(f"{site.base}/console/instances?project={site.project_id}&bizdate={site.dry_day}")
    dry_row = page.locator(f"#instances tbody tr[data-id='{site.dry_instance}']")
    real_row = page.locator(f"#instances tbody tr[data-id='{site.real_instance}']")
    expect(dry_row.locator(".dry-mark")).to_have_text("dry run")
    expect(dry_row.locator(".chip")).to_contain_text("Success")
    expect(real_row.locator(".chip")).to_contain_text("Success")
    expect(real_row.locator(".dry-mark")).to_have_count(0)
    shot(page, "14-instances-dry-run")
    # So does its page; its timeline shows the attempts that took no time.
    dry_row.locator("a").first.click()
    expect(page.locator("#instance-status .dry-mark")).to_have_text("dry run")
    expect(page.locator("#instance-status .dry-mark")).to_have_attribute(
        "title", re.compile("Skip")
    )
    marks = page.locator("#gantt rect.bar")
    expect(marks).to_have_count(2)
    widths = marks.evaluate_all("els => els.map(e => e.getBBox().width)")
    assert all(w >= 8 for w in widths), widths  # not slivers
    # Drawn as dry runs, not as successful runs: nothing ran.
    expect(page.locator("#gantt .bar-label").first).to_contain_text("dry run")
    assert "nothing ran" in str(marks.first.locator("title").text_content())
    assert marks.evaluate_all("els => els.every(e => e.classList.contains('bar-dry'))")
    shot(page, "15-instance-dry-run")
    # The overview counts the dry run apart from the real success.
    page.goto(f"{site.base}/console/overview?project={site.project_id}&bizdate={site.dry_day}")
    counts = page.locator("#day-counts")
    expect(counts.locator("li[data-status=DryRun]")).to_contain_text("dry run")
    expect(counts.locator("li[data-status=DryRun] a")).to_have_text("1")
    expect(counts.locator("li[data-status=Success] a")).to_have_text("1")
    expect(page.locator("#status-chart rect.seg-dry")).to_have_count(1)
    expect(page.locator("#status-chart rect.seg-dry title")).to_have_text(
        f"{site.dry_day} Dry run: 1"
    )
    assert page.locator("#bizdate").get_attribute("type") == "text"
    assert page.locator("#bizdate").input_value() == site.dry_day
    shot(page, "16-overview-dry-runs")
    # The workflows page marks the dry run among the latest instances and counts it apart.
    page.goto(f"{site.base}/console/workflows?project={site.project_id}")
    row = page.locator(f"#workflows [data-workflow-id='{site.dry_workflow}']")
    expect(row.locator(f"a[href*='/instances/{site.dry_instance}?'] .dry-mark")).to_have_count(1)
    expect(row.locator(".recent-tally")).to_have_text("7 days: 0 ✓ success · 1 dry run")
    daily = page.locator(f"#workflows [data-workflow-id='{site.daily_workflow}']")
    expect(daily.locator(f"a[href*='/instances/{site.real_instance}?']")).to_have_attribute(
        "data-dry-run", "false"
    )
    shot(page, "17-workflows-dry-runs")


def test_an_empty_list_for_today_explains_t_minus_1_and_offers_yesterday(
    page: Page, site: Site
) -> None:
    sign_in(page, site)
    today = datetime.now(ZoneInfo(TZ)).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    # Dev holds nothing: today's BizDate is empty there whatever the clock's hour.
    page.goto(f"{site.base}/console/instances?project={site.project_id}&env=Dev&bizdate={today}")
    hint = page.locator("#empty-hint")
    expect(hint).to_contain_text("T-1")
    expect(hint).to_contain_text(f"BizDate {yesterday}")
    shot(page, "18-empty-today")
    page.locator("#show-yesterday").click()
    expect(page).to_have_url(re.compile(rf"[?&]bizdate={yesterday}(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]env=Dev(&|$)"))
    expect(page.locator("#bizdate")).to_have_value(yesterday)
    expect(page.locator("#instances tbody tr.empty")).to_contain_text(yesterday)
    expect(hint).to_have_count(0)  # a past BizDate needs no such hint
    # A date typed the locale's way is refused, not guessed.
    page.fill("#bizdate", "12/31/2024")
    expect(page.locator("#bizdate")).to_have_attribute("aria-invalid", "true")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]bizdate={yesterday}(&|$)"))
