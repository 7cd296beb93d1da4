"""The demo workspace: example workflows that really run, deployed by `dwsched demo`.

Three FlowSpec workflows (`runtime/demo_flows/*.json`, in the workspace's zone):
- `orders_chain`, every 5 minutes: extract (shell) → a branch (weekday or weekend) → a
  Python report with a data-quality check; the branch not taken is a dry run;
- `hourly_rollup`, every hour: a shell task and a virtual one;
- `flaky_load`, every 10 minutes: fails its first attempt, succeeds on the retry.

They are deployed `Immediately`, so today's later cycles run on time; the cycles of the last
half hour are made as ordinary runs too (a catch-up, as after downtime), so that a newcomer
sees tasks run, fail, retry and succeed within a minute of starting the demo.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from importlib import resources

from dwsched.domain import flowspec
from dwsched.domain.calendar import zone
from dwsched.domain.errors import NotFound
from dwsched.domain.models import NewProject, Project
from dwsched.domain.schedule import Trigger, cycles_on
from dwsched.domain.users import PrincipalType
from dwsched.store import Store
from dwsched.web import passwords

DEMO_PROJECT = "demo"
FLOWS = ("orders_chain", "hourly_rollup", "flaky_load")
CATCH_UP_MS = 30 * 60_000
OWNER = "203045001"
CONSOLE_USER = "demo"


def find_demo_project(store: Store) -> Project | None:
    with store.read() as tx:
        found = tx.projects.page(names=[DEMO_PROJECT])[1]
    return found[0] if found else None


def flow_text(name: str, timezone: str) -> str:
    text = resources.files("dwsched.runtime.demo_flows").joinpath(f"{name}.json").read_text()
    spec = json.loads(text)
    spec["spec"]["workflows"][0]["trigger"]["timezone"] = timezone
    return json.dumps(spec, indent=2)


def seed(store: Store, now_ms: int, timezone: str) -> Project:
    """Create the demo workspace, deploy the example workflows, and make the cycles of
    the last half hour as runs due now."""
    with store.write() as tx:
        project = tx.projects.create(
            NewProject(
                name=DEMO_PROJECT,
                timezone=timezone,
                display_name="dwsched demo",
                description="Example workflows deployed by `dwsched demo`; they really run.",
                owner=OWNER,
            ),
            now_ms,
        )
    today = datetime.fromtimestamp(now_ms / 1000, zone(timezone)).date()
    for name in FLOWS:
        text = flow_text(name, timezone)
        spec = flowspec.parse(text, timezone, default_owner=OWNER)
        with store.write() as tx:
            _, deployed = tx.definitions.create(project.id, text, spec, OWNER, now_ms, nodes=True)
        assert spec.trigger.cron is not None
        trigger = Trigger(spec.trigger.cron, timezone, spec.trigger.start_ms, spec.trigger.end_ms)
        # The last half hour's cycles (of today's run date, and of yesterday's just after
        # midnight) are made as ordinary runs; the scheduler then makes the rest of today
        # (the next ten minutes as expired dry runs, later cycles on time), skipping these.
        for day in (today - timedelta(days=1), today):
            recent = [
                c
                for c in cycles_on(trigger, day)
                if now_ms - CATCH_UP_MS <= c.trigger_time <= now_ms
            ]
            if recent:
                store.generate(deployed, [(day, recent)], None, now_ms)
    return project


def console_user(store: Store, now_ms: int) -> str:
    """Make sure the console user `demo` exists with AdministratorAccess, give it a new
    random password, and return it (shown once, at start)."""
    try:
        with store.read() as tx:
            tx.users.get(CONSOLE_USER)
    except NotFound:
        with store.write() as tx:
            tx.users.create(CONSOLE_USER, "demo administrator", now_ms)
            tx.policies.attach("AdministratorAccess", PrincipalType.USER, CONSOLE_USER, attach=True)
    password = secrets.token_urlsafe(9)
    with store.write() as tx:
        tx.users.set_password(CONSOLE_USER, passwords.hash_password(password))
    return password
