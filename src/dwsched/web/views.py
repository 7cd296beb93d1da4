"""Console views: answers that combine what several RPC actions show, for one page each.

Each is a handler like the RPC API's (Context, Params) -> dict, parses its parameters with
the same Params, and is authorised as the actions whose data it reads (`authorised_as`):
being allowed ListWorkflowInstances in a workspace is what lets a user see its status
chart. Wire names stay PascalCase, times epoch ms, as the API's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec

from dwsched.api import wire
from dwsched.api.actions.operations import run_request
from dwsched.api.actions.workflow_instances import list_workflow_instances
from dwsched.api.actions.workflows import listed_workflows
from dwsched.api.context import Context, Handler
from dwsched.api.params import Params
from dwsched.domain.alerts import mask_url
from dwsched.domain.calendar import MAX_MS, MIN_MS, day_of, day_start_ms
from dwsched.domain.errors import DwschedError
from dwsched.domain.models import EnvType, Status
from dwsched.domain.schedule import Trigger, next_runs
from dwsched.domain.users import TENANT_ACCOUNT_ID
from dwsched.domain.workers import DEFAULT_GROUP_SLOTS, OTHER_GROUPS
from dwsched.store import Tx

MAX_DAYS = 31
RECENT_DAYS = 7  # the workflows page shows each workflow's instances of this many BizDates
LATEST_PER_WORKFLOW = 5
NEXT_RUNS = 5
MAX_ALERTS = 100  # alerts a history page shows
MAX_ACCOUNTS = 20  # account ids GetAccountNames names at once
_decode_notice = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class View:
    handler: Handler
    authorised_as: tuple[str, ...]


def status_counts(ctx: Context, p: Params) -> dict[str, Any]:
    """Instances by status for the `Days` BizDates ending at `BizDate`, oldest first, and
    how many of each day's successes were dry runs (`DryRun`: every task instance a dry
    run, nothing ran; counted in `Counts.Success` too, as the API lists them) for the last
    `DryRunDays` of them (default all; null for the others). The counts read an index; the
    dry runs each success's task instances, so a page refreshing asks for one day's."""
    project_id = p.required_integer("ProjectId")
    biz_date = p.required_integer("BizDate", minimum=MIN_MS, maximum=MAX_MS)
    days = p.integer("Days", minimum=1, maximum=MAX_DAYS) or 14
    dry_days = p.integer("DryRunDays", minimum=0, maximum=MAX_DAYS)
    env = p.choice("EnvType", EnvType) or EnvType.PROD
    with ctx.store.read() as tx:
        tz = tx.projects.get(project_id).timezone
    last = day_of(biz_date, tz)
    wanted = [last - timedelta(days=n) for n in range(days - 1, -1, -1)]
    with ctx.store.read() as tx:
        counts = tx.summaries.status_counts(project_id, env, wanted)
        looked = wanted if dry_days is None else wanted[len(wanted) - dry_days :]
        dry_runs: dict[date, int | None] = dict.fromkeys(wanted)
        if looked:
            dry_runs.update(tx.summaries.dry_run_successes(project_id, env, looked))
    return {
        "TimeZone": tz,
        "Statuses": [s.value for s in Status],
        "Days": [
            {
                "BizDate": day_start_ms(day, tz),
                "Date": day.isoformat(),
                "Counts": counts[day],
                "Total": sum(counts[day].values()),
                "DryRun": dry_runs[day],
            }
            for day in wanted
        ],
    }


def instances_with_dry_runs(ctx: Context, p: Params) -> dict[str, Any]:
    """ListWorkflowInstances' answer (the same parameters, the same page), each instance
    with `DryRun`: true when every task instance of it is a dry run (it runs nothing;
    an imported instance has no task instances and is never one), and `OwnerName`: the
    name of the user whose account id `Owner` is (None when no user has it). One more
    query for the page, on the listed workspace-day's instances, and one per owner."""
    answer = list_workflow_instances(ctx, p)
    items = answer["PagingInfo"]["WorkflowInstances"]
    if items:
        project_id = p.required_integer("ProjectId")
        env = p.choice("EnvType", EnvType) or EnvType.PROD
        with ctx.store.read() as tx:
            tz = tx.projects.get(project_id).timezone
            day = day_of(p.required_integer("BizDate"), tz)
            dry = tx.summaries.dry_runs(project_id, env, day, [i["Id"] for i in items])
            names = owner_names(tx, project_id, {str(i.get("Owner") or "") for i in items})
        for item in items:
            item["DryRun"] = item["Id"] in dry
            item["OwnerName"] = names.get(str(item.get("Owner") or ""))
    return answer


def account_names(ctx: Context, p: Params) -> dict[str, Any]:
    """The names of the accounts `Ids` (account ids, as Owner and CreateUser hold them) that
    are members of the workspace `ProjectId` (and `tenant` for the tenant's own account):
    what ListProjectMembers shows of them; the others are left out."""
    project_id = p.required_integer("ProjectId")
    ids = p.str_list("Ids", MAX_ACCOUNTS, max_length=32) or []
    with ctx.store.read() as tx:
        tx.projects.get(project_id)
        names = owner_names(tx, project_id, set(ids))
    return {"Names": names}


def owner_names(tx: Tx, project_id: int, owners: set[str]) -> dict[str, str]:
    """Account id -> the name of its user (`tenant` for the tenant's own account), for the
    ids that name a member of the workspace: its readers see its members' names
    (ListProjectMembers), never those of other users an owner field may name."""
    names: dict[str, str] = {}
    for owner in owners:
        if owner == TENANT_ACCOUNT_ID:
            names[owner] = "tenant"
        elif owner.isdigit() and 0 < int(owner) < 2**63:
            if tx.members.roles(project_id, int(owner)) is None:
                continue
            user = tx.users.by_id(int(owner))
            if user is not None:
                names[owner] = user.name
    return names


def create_plan(ctx: Context, p: Params) -> dict[str, Any]:
    """What CreateWorkflowInstances with these parameters would create, creating nothing:
    the same parsing and the same planning, so a request that would fail fails here with
    the same error."""
    request = run_request(p)
    planned = ctx.store.plan_run(request, ctx.now_ms)
    per_day = Counter(i.cycle.biz_day for i in planned)
    return {
        "Count": len(planned),
        "BizDates": [{"Date": d.isoformat(), "Count": n} for d, n in per_day.items()],
    }


def workflows_overview(ctx: Context, p: Params) -> dict[str, Any]:
    """ListWorkflows' page, each workflow with its next run times, its latest instances
    of the last RECENT_DAYS BizDates (each marked `DryRun` when every task instance of it
    is a dry run), its instances of those days by status (`RecentCounts`) with the dry-run
    successes among them (`RecentDryRuns`), and its definition's id (its FlowSpec, which
    shows the tasks' code, is GetWorkflowDefinition's to show, under that action's
    permission)."""
    number, size, total, found = listed_workflows(ctx, p)
    project_id = p.required_integer("ProjectId")
    env = p.choice("EnvType", EnvType) or EnvType.PROD
    with ctx.store.read() as tx:
        tz = tx.projects.get(project_id).timezone
    today = day_of(ctx.now_ms, tz)
    days = [today - timedelta(days=n) for n in range(RECENT_DAYS)]
    with ctx.store.read() as tx:
        recent = tx.summaries.recent_by_workflow(
            project_id, env, days, [w.id for w in found], LATEST_PER_WORKFLOW, ctx.now_ms
        )
    items = []
    for deployed in found:
        trigger = deployed.spec.trigger
        mine = recent.get(deployed.id)
        runs: list[int] = []
        if trigger.cron:
            try:
                cycles = next_runs(
                    Trigger(trigger.cron, trigger.timezone, trigger.start_ms, trigger.end_ms),
                    ctx.now_ms,
                    NEXT_RUNS,
                )
                runs = [c.trigger_time for c in cycles]
            except DwschedError:
                runs = []
        items.append(
            {
                **wire.workflow(deployed),
                "TimeZone": trigger.timezone or tz,
                "NextRunTimes": runs,
                "LatestInstances": [
                    {
                        "Id": i.id,
                        "BizDate": day_start_ms(i.biz_day, tz),
                        "Status": i.status,
                        "TriggerTime": i.trigger_time,
                        "DryRun": i.dry_run,
                    }
                    for i in (mine.latest if mine else [])
                ],
                "RecentCounts": mine.counts if mine else {},
                "RecentDryRuns": mine.dry_run_successes if mine else 0,
                "DefinitionId": deployed.definition_id,
            }
        )
    return {"PagingInfo": wire.paging(number, size, total, "Workflows", items), "TimeZone": tz}


def workers_overview(ctx: Context, _p: Params) -> dict[str, Any]:
    """The registered workers (where each runs, the resource groups it serves (null: every
    group), its last heartbeat, its state, its attempts in progress; stopped ones too) and
    the resource groups' shared slot limits (`*`: every group without one of its own)."""
    with ctx.store.read() as tx:
        limits = {g.name: g.slots for g in tx.resource_groups.all()}
        found = tx.workers.all()
    return {
        "Now": ctx.now_ms,
        "Workers": [
            {
                "Name": w.name,
                "Host": w.host,
                "Pid": w.pid,
                "Groups": None if w.groups is None else list(w.groups),
                "Slots": w.slots,
                "StartedTime": w.started_at,
                "HeartbeatTime": w.heartbeat_at,
                "StoppedTime": w.stopped_at,
                "State": w.state(ctx.now_ms).value,
                "Running": w.running,
            }
            for w in found
        ],
        "ResourceGroups": [{"Name": n, "Slots": s} for n, s in sorted(limits.items())],
        "DefaultSlots": limits.get(OTHER_GROUPS, DEFAULT_GROUP_SLOTS),
    }


def alert_history(ctx: Context, p: Params) -> dict[str, Any]:
    """The newest alerts raised about a workspace's instances, newest first (`PageSize` of
    them, older than `BeforeId` when given): rule, trigger, what it is about, whether it was
    sent (or why not), and each delivery's receiver (masked), outcome and tries."""
    project_id = p.required_integer("ProjectId")
    size = p.integer("PageSize", minimum=1, maximum=MAX_ALERTS) or 20
    before = p.integer("BeforeId")
    with ctx.store.read() as tx:
        tz = tx.projects.get(project_id).timezone
        found = tx.outbox.history([project_id], size + 1, before)
    alerts = []
    for event in found[:size]:
        notice = _notice(event["notice"])
        facts = notice.get("facts") or {}
        alerts.append(
            {
                "Id": event["id"],
                "CreateTime": event["created_at"],
                "RuleId": event["rule_id"],
                "RuleName": facts.get("rule_name"),
                "Trigger": event["trigger"],
                "State": event["state"],
                "Summary": notice.get("summary"),
                "TaskName": facts.get("task_name"),
                "WorkflowName": facts.get("workflow"),
                "TaskInstanceId": event["task_instance_id"],
                "WorkflowInstanceId": event["workflow_instance_id"],
                "Deliveries": [
                    {
                        "Channel": d["channel"],
                        "Receiver": _receiver(d["channel"], d["receiver"]),
                        "State": d["state"],
                        "Detail": d["detail"],
                        "Tries": len(d["attempts_made"]),
                        "SentTime": d["sent_at"],
                        "NextTryTime": d["next_try_at"] if d["state"] == "pending" else None,
                    }
                    for d in event["deliveries"]
                ],
            }
        )
    return {"TimeZone": tz, "Alerts": alerts, "More": len(found) > size}


def _receiver(channel: str, label: str) -> str:
    """A delivery's receiver as the history shows it to readers of the workspace: a user by
    name, without their e-mail address; a URL masked as GetAlertRule masks it (labels
    recorded before masking kept the start of the path)."""
    if channel == "Mail":
        return label.split(" <", 1)[0]
    name, sep, url = label.rpartition(": ")
    if "://" in url:
        return f"{name}{sep}{mask_url(url.rstrip('…'))}"
    return label


def _notice(text: str) -> dict[str, Any]:
    try:
        found = _decode_notice(text)
    except msgspec.DecodeError:
        return {}
    return found if isinstance(found, dict) else {}


# ListWorkers shows hosts and process ids of the whole deployment: it is authorised as
# `AdministerWorkers`, a tenant permission no workspace role and no built-in policy but
# AdministratorAccess grants (domain.access.rule_of: an action without a rule).
VIEWS: dict[str, View] = {
    "GetInstanceStatusCounts": View(status_counts, ("ListWorkflowInstances",)),
    "ListWorkflowInstancesWithDryRuns": View(instances_with_dry_runs, ("ListWorkflowInstances",)),
    "GetCreateWorkflowInstancesPlan": View(create_plan, ("CreateWorkflowInstances",)),
    "ListWorkflowsOverview": View(workflows_overview, ("ListWorkflows", "ListWorkflowInstances")),
    "ListWorkers": View(workers_overview, ("AdministerWorkers",)),
    # A workspace's members' names are shown to whoever may list its members.
    "GetAccountNames": View(account_names, ("ListProjectMembers",)),
    # The alerts raised about a workspace are shown to whoever may list its instances.
    "ListAlertHistory": View(alert_history, ("ListWorkflowInstances",)),
}
