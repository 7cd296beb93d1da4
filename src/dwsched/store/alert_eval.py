"""Alert evaluation (docs/alerts.md "When a rule fires"): rules matched against what
happened, alerts recorded in the outbox (store.outbox).

- `consume`: the status events after the `alerts` cursor (store.transitions), each task
  change matched against the enabled rules that watch its task (Error, ExhaustedError,
  Finished), in one transaction with the cursor's move: a change is judged once, however
  many schedulers run, and an alert is never lost to a process that dies (the events are
  read again) nor doubled (its dedupe key).
- `check`: the conditions the scheduler's tick looks at (Timeout, UnFinished,
  CycleUnfinished, InstanceErrorCount / Percentage, ResourceGroupWaitCount / Percentage),
  each condition that holds an alert keyed by its subject and repeat.

Whether an alert is sent (silence window, daily Maximum) is decided when it is recorded
(domain.alerting.verdict); its deliveries are the rule's receivers reached by its channels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import sqlalchemy as sa

from dwsched.domain import alerting
from dwsched.domain.alerting import ON_EVENTS, TaskChange, Throttle, Verdict
from dwsched.domain.alerts import (
    CHANNEL_RECEIVERS,
    AlertRule,
    Channel,
    ReceiverType,
    TargetType,
    TriggerType,
)
from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import Status
from dwsched.domain.notices import NoticeFacts, compose, parse_target, redact
from dwsched.domain.runs import RunRequest
from dwsched.domain.transitions import RUNNING_VALUES, Kind, StatusEvent
from dwsched.store import transitions
from dwsched.store.access import Users
from dwsched.store.alerts import AlertRules
from dwsched.store.outbox import (
    OVER_MAXIMUM,
    PENDING,
    SILENCED,
    UNREACHABLE,
    NewAlert,
    NewDelivery,
    Outbox,
)
from dwsched.store.schema import (
    access_keys,
    operation_instances as oi,
    operations,
    partitions,
    projects,
    resource_groups,
    task_attempts,
    task_instances as ti,
    tasks,
    users,
    workflow_instances as wi,
    workflows,
)
from dwsched.store.secrets import SecretBox

CONSUMER = "alerts"
log = logging.getLogger("dwsched.alerts")
EVENTS_PER_ROUND = 1000
_node = msgspec.json.Decoder(NodeSpec).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Facts:
    """A task instance as an alert tells of it."""

    id: int
    task_id: int
    project_id: int
    workspace: str
    zone: str
    workflow_id: int
    workflow: str
    workflow_instance_id: int
    name: str
    owner: str
    status: str
    biz_day: date
    run_number: int
    started: int | None
    finished: int | None
    retries: int
    period_number: int


def has_events(conn: sa.Connection) -> bool:
    """Whether consume has anything to do: its cursor to make, or events after it (read
    first, so that an idle scheduler's every round takes no write lock)."""
    return not transitions.registered(conn, CONSUMER) or bool(
        transitions.events_after(conn, CONSUMER, 1)
    )


def consume(conn: sa.Connection, secrets: SecretBox | None, now_ms: int, console: str) -> list[str]:
    """Judge the task changes after the `alerts` cursor; the trigger types of the alerts recorded.
    The caller's transaction commits the alerts with the cursor's move."""
    transitions.register(conn, CONSUMER, now_ms)
    events = transitions.events_after(conn, CONSUMER, EVENTS_PER_ROUND)
    if not events:
        return []
    changes = [e for e in events if e.kind is Kind.TASK and e.old != e.new]
    facts = _facts(conn, {e.instance_id for e in changes})
    rules = AlertRules(conn, secrets)
    outbox = Outbox(conn, secrets)
    recorded: list[str] = []
    watching = rules.rules_for_tasks(
        sorted({(f.task_id, f.project_id) for f in facts.values()}), ON_EVENTS
    )
    for e in changes:
        f = facts.get(e.instance_id)
        if f is None:
            continue
        change = _change(e, f)
        for rule in watching[(f.task_id, f.project_id)]:
            trigger = rule.trigger.type
            if not alerting.fires_on(trigger, change, rule.trigger.auto_rerun_alert_enabled):
                continue
            key = alerting.event_key(rule.id, trigger, change)
            recorded += _safely(
                conn,
                key,
                partial(_record, conn, outbox, secrets, rule, key, f, now_ms, console, e.at, e),
            )
    recorded += _run_alerts(conn, outbox, secrets, events, now_ms, console)
    transitions.advance(conn, CONSUMER, events[-1].id, now_ms)
    return recorded


_request = msgspec.json.Decoder(RunRequest).decode


def _run_alerts(
    conn: sa.Connection,
    outbox: Outbox,
    secrets: SecretBox | None,
    events: Sequence[StatusEvent],
    now_ms: int,
    console: str,
) -> list[str]:
    """A run's own alert (CreateWorkflowInstances' DefaultRunProperties.Alert): a workflow
    instance it made ends as its Type asks; the user who made it is told by Mail (Sms has
    no gateway here: Sms and SmsMail go by Mail too)."""
    ended = {
        e.instance_id: e
        for e in events
        if e.kind is Kind.WORKFLOW and e.old != e.new and e.new in (Status.SUCCESS, Status.FAILURE)
    }
    if not ended:
        return []
    rows = conn.execute(
        sa.select(
            oi.c.workflow_instance_id,
            operations.c.id,
            operations.c.request,
            operations.c.user,
            wi.c.name,
            wi.c.biz_day,
            wi.c.workflow_id,
            projects.c.name.label("workspace"),
            projects.c.timezone,
        )
        .join(operations, operations.c.id == oi.c.operation_id)
        .join(wi, wi.c.id == oi.c.workflow_instance_id)
        .join(projects, projects.c.id == wi.c.project_id)
        .where(oi.c.workflow_instance_id.in_(sorted(ended)))
    ).all()
    recorded: list[str] = []
    for r in rows:
        request = _request(r.request.encode())
        if request.alert is None:
            continue
        kind, _ = request.alert
        e = ended[int(r.workflow_instance_id)]
        if kind != "SuccessFailure" and kind != e.new.value:
            continue
        key = f"run:{r.id}:{r.workflow_instance_id}:{e.new.value}"
        if outbox.exists(key):
            continue
        facts = NoticeFacts(
            rule_name=f"run {request.name}",
            trigger=e.new.value,
            workspace=r.workspace,
            workflow=r.name,
            task_name="(workflow instance)",
            occurred_at=_at(e.at),
            zone=r.timezone,
            workspace_id=e.project_id,
            workflow_id=int(r.workflow_id),
            workflow_instance_id=int(r.workflow_instance_id),
            biz_date=day_from_key(int(r.biz_day)),
            status=e.new.value,
        )
        notice = compose(facts, _console_url(console, e.project_id, int(r.workflow_instance_id)))
        user_id = _owner_user(conn, r.user)
        contacts = Users(conn, secrets).contacts([user_id]) if user_id is not None else []
        deliveries = tuple(
            NewDelivery("Mail", f"{c.name} <{c.email}>", _target("Mail", c.email))
            for c in contacts
            if c.email
        )
        made = outbox.record(
            NewAlert(
                key,
                None,
                e.new.value,
                e.project_id,
                None,
                int(r.workflow_instance_id),
                _encode(notice).decode(),
                PENDING if deliveries else UNREACHABLE,
                deliveries,
            ),
            now_ms,
        )
        if made is not None:
            recorded.append(e.new.value)
    return recorded


def _safely(conn: sa.Connection, key: str, step: Callable[[], list[str]]) -> list[str]:
    """Record one alert in a savepoint: one that cannot be recorded (a rule or a receiver
    that no longer checks out) is logged and skipped, never holding the others back."""
    try:
        with conn.begin_nested():
            return step()
    except Exception:
        log.exception("the alert %s could not be recorded; it is skipped", key)
        return []


def _change(e: StatusEvent, f: Facts) -> TaskChange:
    return TaskChange(
        e.instance_id,
        f.task_id,
        e.project_id,
        e.old,
        e.new,
        e.cause,
        e.run_number or 0,
        f.retries,
    )


def check(conn: sa.Connection, secrets: SecretBox | None, now_ms: int, console: str) -> list[str]:
    """Look at the conditions of the enabled tick rules now; how many alerts were
    recorded."""
    rules = AlertRules(conn, secrets).enabled(list(alerting.ON_TICK))
    if not rules:
        return []
    outbox = Outbox(conn, secrets)
    recorded: list[str] = []
    for rule in rules:
        recorded += _safely(
            conn,
            f"rule {rule.id}",
            partial(_check_rule, conn, outbox, secrets, rule, now_ms, console),
        )
    return recorded


def _check_rule(
    conn: sa.Connection,
    outbox: Outbox,
    secrets: SecretBox | None,
    rule: AlertRule,
    now_ms: int,
    console: str,
) -> list[str]:
    """The alerts one tick rule's condition raises now."""
    recorded: list[str] = []
    trigger = rule.trigger.type
    interval = rule.notification.interval_minutes
    if trigger is TriggerType.TIMEOUT:
        limit = (rule.trigger.timeout_minutes or 0) * alerting.MINUTE_MS
        for f in _running(conn):
            if not _watches(rule, f) or f.started is None:
                continue
            due = f.started + limit
            if now_ms < due:
                continue
            repeat = alerting.repeat_of(due, now_ms, interval)
            key = alerting.condition_key(rule.id, trigger, f"{f.id}:{f.run_number}", repeat)
            recorded += _record(conn, outbox, secrets, rule, key, f, now_ms, console, due)
    elif trigger in (TriggerType.UNFINISHED, TriggerType.CYCLE_UNFINISHED):
        for f, due in _late(conn, rule, now_ms):
            repeat = alerting.repeat_of(due, now_ms, interval)
            key = alerting.condition_key(rule.id, trigger, str(f.id), repeat)
            recorded += _record(conn, outbox, secrets, rule, key, f, now_ms, console, due)
    elif trigger in (TriggerType.INSTANCE_ERROR_COUNT, TriggerType.INSTANCE_ERROR_PERCENTAGE):
        recorded += _error_share(conn, outbox, secrets, rule, now_ms, console)
    else:
        recorded += _resource_groups(conn, outbox, secrets, rule, now_ms, console)
    return recorded


def _bucket(now_ms: int, interval: int | None, zone: str = "UTC") -> int:
    """The repeat of a condition whose start is not known (a count, a share): one alert per
    interval since the local day began, or one a local day without an interval (an
    interval counts from midnight, not from when the condition began to hold)."""
    day = alerting.day_start_ms(now_ms, zone)
    if interval is None:
        return day
    return day + (now_ms - day) // (interval * alerting.MINUTE_MS)


def _error_share(
    conn: sa.Connection,
    outbox: Outbox,
    secrets: SecretBox | None,
    rule: AlertRule,
    now_ms: int,
    console: str,
) -> list[str]:
    """InstanceErrorCount / InstanceErrorPercentage over each target workspace's task
    instances of the BizDate now running (yesterday in its zone): the watched ones (a Task
    target's tasks; a Project target's but its AllowTasks)."""
    recorded: list[str] = []
    trigger = rule.trigger.type
    for project_id, name, zone in _workspaces(conn, rule):
        today = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone)).date()
        biz = day_key(today - timedelta(days=1))
        query = sa.select(ti.c.status, sa.func.count()).where(
            ti.c.partition_id.in_(_partitions(conn, project_id, [biz])),
            ti.c.workflow_instance_type == "Normal",
        )
        target = rule.trigger.target
        if target.type is TargetType.TASK:
            query = query.where(ti.c.task_id.in_([int(i) for i in target.ids]))
        elif target.allow_tasks:
            query = query.where(ti.c.task_id.not_in([int(i) for i in target.allow_tasks]))
        rows = conn.execute(query.group_by(ti.c.status)).all()
        total = sum(int(n) for _, n in rows)
        failed = sum(int(n) for s, n in rows if s == Status.FAILURE.value)
        if trigger is TriggerType.INSTANCE_ERROR_COUNT:
            holds = failed >= (rule.trigger.count or 1)
        else:
            holds = total > 0 and failed * 100 >= (rule.trigger.percentage or 100) * total
        if not holds:
            continue
        subject = f"{project_id}:{biz}"
        key = alerting.condition_key(
            rule.id, trigger, subject, _bucket(now_ms, rule.notification.interval_minutes, zone)
        )
        facts = NoticeFacts(
            rule_name=rule.name,
            trigger=trigger.value,
            workspace=name,
            workflow="-",
            task_name=f"{failed} of {total} task instances failed",
            occurred_at=_at(now_ms),
            zone=zone,
            workspace_id=project_id,
            biz_date=day_from_key(biz),
            status=Status.FAILURE.value,
        )
        recorded += _record_facts(
            conn, outbox, secrets, rule, key, facts, project_id, None, None, "", now_ms, console
        )
    return recorded


def _resource_groups(
    conn: sa.Connection,
    outbox: Outbox,
    secrets: SecretBox | None,
    rule: AlertRule,
    now_ms: int,
    console: str,
) -> list[str]:
    """ResourceGroupWaitCount / ResourceGroupPercentage of each target resource group (the
    slots in use are the attempts holding one, counted as claims count them)."""
    recorded: list[str] = []
    trigger = rule.trigger.type
    names = [str(i) for i in rule.trigger.target.ids]
    waiting: dict[str, int] = dict(
        conn.execute(
            sa.select(ti.c.resource_group, sa.func.count())
            .where(ti.c.status == Status.WAIT_RESOURCE.value, ti.c.resource_group.in_(names))
            .group_by(ti.c.resource_group)
        ).all()
    )
    running: dict[str, int] = dict(
        conn.execute(
            sa.select(ti.c.resource_group, sa.func.count())
            .where(ti.c.status.in_(RUNNING_VALUES), ti.c.resource_group.in_(names))
            .group_by(ti.c.resource_group)
        ).all()
    )
    slots: dict[str, int] = dict(
        conn.execute(
            sa.select(resource_groups.c.name, resource_groups.c.slots).where(
                resource_groups.c.name.in_([*names, "*"])
            )
        ).all()
    )
    for group in names:
        if trigger is TriggerType.RESOURCE_GROUP_WAIT_COUNT:
            value = int(waiting.get(group, 0))
            holds = value >= (rule.trigger.count or 1)
            what = f"{value} task instances wait for resource group {group}"
        else:
            limit = int(slots.get(group, slots.get("*", 4)) or 0)
            used = int(running.get(group, 0))
            holds = limit > 0 and used * 100 >= (rule.trigger.percentage or 100) * limit
            what = f"resource group {group} uses {used} of {limit} slots"
        if not holds:
            continue
        key = alerting.condition_key(
            rule.id, trigger, group, _bucket(now_ms, rule.notification.interval_minutes)
        )
        facts = NoticeFacts(
            rule_name=rule.name,
            trigger=trigger.value,
            workspace="-",
            workflow="-",
            task_name=what,
            occurred_at=_at(now_ms),
        )
        recorded += _record_facts(
            conn, outbox, secrets, rule, key, facts, 0, None, None, "", now_ms, console
        )
    return recorded


def _record(
    conn: sa.Connection,
    outbox: Outbox,
    secrets: SecretBox | None,
    rule: AlertRule,
    key: str,
    f: Facts,
    now_ms: int,
    console: str,
    at_ms: int,
    event: StatusEvent | None = None,
) -> list[str]:
    """Record the alert about task instance `f` (as the status `event` left it, when one
    caused it: a consumer that lags must not tell of a later attempt)."""
    if outbox.exists(key):
        return []
    status = f.status if event is None else event.new.value
    run_number = f.run_number if event is None or event.run_number is None else event.run_number
    facts = NoticeFacts(
        rule_name=rule.name,
        trigger=rule.trigger.type.value,
        workspace=f.workspace,
        workflow=f.workflow,
        task_name=f.name,
        occurred_at=_at(at_ms),
        zone=f.zone,
        workspace_id=f.project_id,
        workflow_id=f.workflow_id,
        task_id=f.task_id,
        workflow_instance_id=f.workflow_instance_id,
        task_instance_id=f.id,
        biz_date=f.biz_day,
        status=status,
        run_number=run_number or None,
        started_at=None if f.started is None else _at(f.started),
        finished_at=None if f.finished is None else _at(f.finished),
        log_tail=_log_tail(conn, f.id, run_number),
    )
    return _record_facts(
        conn,
        outbox,
        secrets,
        rule,
        key,
        facts,
        f.project_id,
        f.id,
        f.workflow_instance_id,
        f.owner,
        now_ms,
        console,
    )


def _record_facts(
    conn: sa.Connection,
    outbox: Outbox,
    secrets: SecretBox | None,
    rule: AlertRule,
    key: str,
    facts: NoticeFacts,
    project_id: int,
    task_instance_id: int | None,
    workflow_instance_id: int | None,
    owner: str,
    now_ms: int,
    console: str,
) -> list[str]:
    if outbox.exists(key):
        return []
    n = rule.notification
    zone = facts.zone
    verdict = alerting.verdict(
        Throttle(n.maximum, n.silence_start, n.silence_end),
        now_ms,
        zone,
        outbox.counted_since(rule.id, alerting.day_start_ms(now_ms, zone)),
    )
    url = _console_url(console, project_id, workflow_instance_id)
    notice = compose(facts, url)
    deliveries = tuple(_deliveries(conn, secrets, rule, owner))
    if verdict is Verdict.SILENCED:
        state = SILENCED
    elif verdict is Verdict.OVER_MAXIMUM:
        state = OVER_MAXIMUM
    else:
        state = PENDING if deliveries else UNREACHABLE
    made = outbox.record(
        NewAlert(
            key,
            rule.id,
            rule.trigger.type.value,
            project_id,
            task_instance_id,
            workflow_instance_id,
            _encode(notice).decode(),
            state,
            deliveries,
        ),
        now_ms,
    )
    return [] if made is None else [rule.trigger.type.value]


def _deliveries(
    conn: sa.Connection, secrets: SecretBox | None, rule: AlertRule, owner: str
) -> Iterable[NewDelivery]:
    """The rule's receivers reached by its channels: Mail to each named user's (or the
    task owner's) e-mail address, each webhook channel to its URL receivers and to the
    named users' own webhooks."""
    n = rule.notification
    people: set[int] = set()
    for receiver in n.receivers:
        if receiver.type is ReceiverType.TASK_OWNER:
            user_id = _owner_user(conn, owner)
            if user_id is not None:
                people.add(user_id)
        elif receiver.type is ReceiverType.ALI_UID:
            people.update(int(v) for v in receiver.values if str(v).isdigit())
    contacts = Users(conn, secrets).contacts(sorted(people)) if people else []
    seen: set[tuple[str, str]] = set()
    for channel in n.channels:
        if channel is Channel.MAIL:
            for c in contacts:
                if c.email and ("Mail", c.email) not in seen:
                    seen.add(("Mail", c.email))
                    yield NewDelivery("Mail", f"{c.name} <{c.email}>", _target("Mail", c.email))
            continue
        kind = CHANNEL_RECEIVERS[channel]
        for receiver in n.receivers:
            if receiver.type is not kind:
                continue
            for url in receiver.values:
                if (kind.value, str(url)) not in seen:
                    seen.add((kind.value, str(url)))
                    address = _target(kind.value, str(url), receiver.extension or "")
                    yield NewDelivery(kind.value, redact(str(url)), address)
        if channel is Channel.WEBHOOK:
            for c in contacts:
                if c.webhook and ("WebhookUrl", c.webhook) not in seen:
                    seen.add(("WebhookUrl", c.webhook))
                    yield NewDelivery(
                        "WebhookUrl",
                        f"{c.name}: {redact(c.webhook)}",
                        _target("WebhookUrl", c.webhook),
                    )


def _target(kind: str, address: str, extension: str = "") -> str:
    """A delivery's address as stored: the Target's fields as JSON (sealed by the outbox)."""
    t = parse_target(kind, address, "Receiver", extension=extension)
    return _encode(
        {"kind": t.kind.value, "address": t.address, "format": t.format.value, "atAll": t.at_all}
    ).decode()


def _owner_user(conn: sa.Connection, owner: str) -> int | None:
    """The user a task's owner names: a user name, a user id, or an AccessKeyId."""
    if not owner:
        return None
    found = conn.execute(sa.select(users.c.id).where(users.c.name == owner)).scalar()
    if found is None and owner.isascii() and owner.isdigit() and len(owner) <= 18:
        found = conn.execute(sa.select(users.c.id).where(users.c.id == int(owner))).scalar()
    if found is None:
        found = conn.execute(
            sa.select(access_keys.c.user_id).where(access_keys.c.id == owner)
        ).scalar()
    return None if found is None else int(found)


def _watches(rule: AlertRule, f: Facts) -> bool:
    target = rule.trigger.target
    ids = {str(i) for i in target.ids}
    if target.type is TargetType.TASK:
        return str(f.task_id) in ids
    if target.type is TargetType.PROJECT:
        return str(f.project_id) in ids and f.task_id not in target.allow_tasks
    return False


_FACT_COLUMNS = (
    ti.c.id,
    ti.c.task_id,
    ti.c.project_id,
    ti.c.workflow_id,
    ti.c.workflow_instance_id,
    ti.c.name,
    ti.c.owner,
    ti.c.status,
    ti.c.biz_day,
    ti.c.run_number,
    ti.c.started_time,
    ti.c.finished_time,
    ti.c.spec,
    ti.c.period_number,
    ti.c.trigger_time,
    projects.c.name.label("workspace"),
    projects.c.timezone,
    workflows.c.name.label("workflow"),
)


def _select_facts() -> sa.Select[Any]:
    return (
        sa.select(*_FACT_COLUMNS)
        .join(projects, projects.c.id == ti.c.project_id)
        .outerjoin(workflows, workflows.c.id == ti.c.workflow_id)
    )


def _fact(r: Any) -> Facts:
    node = _node(r.spec)
    return Facts(
        int(r.id),
        int(r.task_id),
        int(r.project_id),
        r.workspace,
        r.timezone,
        int(r.workflow_id),
        r.workflow or str(r.workflow_id),
        int(r.workflow_instance_id),
        r.name,
        r.owner,
        r.status,
        day_from_key(int(r.biz_day)),
        int(r.run_number),
        r.started_time,
        r.finished_time,
        int(node.rerun_times or 0) if node.rerun_mode.value != "Denied" else 0,
        int(r.period_number),
    )


def _facts(conn: sa.Connection, ids: Iterable[int]) -> dict[int, Facts]:
    wanted = sorted(ids)
    found: dict[int, Facts] = {}
    for start in range(0, len(wanted), 500):
        for r in conn.execute(_select_facts().where(ti.c.id.in_(wanted[start : start + 500]))):
            found[int(r.id)] = _fact(r)
    return found


def _running(conn: sa.Connection) -> list[Facts]:
    """The task instances running now (as many as there are slots in use; a branch node
    deciding, CheckingCondition, holds one too)."""
    rows = conn.execute(_select_facts().where(ti.c.status.in_(RUNNING_VALUES)))
    return [_fact(r) for r in rows]


def _late(conn: sa.Connection, rule: AlertRule, now_ms: int) -> list[tuple[Facts, int]]:
    """The watched task instances of the BizDates whose deadline (UnFinished time, or a
    cycle's CycleAndTime) has passed, not Success: (facts, deadline)."""
    found: list[tuple[Facts, int]] = []
    for project_id, _, zone in _workspaces(conn, rule):
        today = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone)).date()
        days = [today - timedelta(days=k) for k in (1, 2)]  # hh up to 47: two days back
        query = _select_facts().where(
            ti.c.partition_id.in_(_partitions(conn, project_id, [day_key(d) for d in days])),
            ti.c.workflow_instance_type == "Normal",
            ti.c.status != Status.SUCCESS.value,
        )
        if rule.trigger.target.type is TargetType.TASK:
            query = query.where(ti.c.task_id.in_([int(i) for i in rule.trigger.target.ids]))
        for r in conn.execute(query):
            f = _fact(r)
            if not _watches(rule, f):
                continue
            due = _deadline(rule, f, zone)
            if due is not None and now_ms >= due:
                found.append((f, due))
    return found


def _partitions(conn: sa.Connection, project_id: int, days: list[int]) -> list[int]:
    """The partitions (workspace, environment, BizDate) of these days: a workspace-day's
    task instances are read through them (ix_ti_part_id), never by scanning history."""
    return [
        int(i)
        for i in conn.execute(
            sa.select(partitions.c.id).where(
                partitions.c.project_id == project_id, partitions.c.biz_day.in_(days)
            )
        ).scalars()
    ]


def _deadline(rule: AlertRule, f: Facts, zone: str) -> int | None:
    if rule.trigger.type is TriggerType.UNFINISHED:
        if rule.trigger.unfinished_time is None:
            return None
        return alerting.unfinished_deadline(f.biz_day, rule.trigger.unfinished_time, zone)
    for cycle in rule.trigger.cycles:
        if cycle.cycle_id == f.period_number:
            return alerting.unfinished_deadline(f.biz_day, cycle.time, zone)
    return None


def _workspaces(conn: sa.Connection, rule: AlertRule) -> list[tuple[int, str, str]]:
    """(id, name, zone) of the workspaces the rule watches: its Project targets, or the
    workspaces of its Task targets."""
    target = rule.trigger.target
    if target.type is TargetType.PROJECT:
        ids = [int(i) for i in target.ids]
    else:
        ids = sorted(
            {
                int(p)
                for p in conn.execute(
                    sa.select(tasks.c.project_id).where(
                        tasks.c.id.in_([int(i) for i in target.ids])
                    )
                ).scalars()
            }
        )
    rows = conn.execute(
        sa.select(projects.c.id, projects.c.name, projects.c.timezone).where(projects.c.id.in_(ids))
    )
    return [(int(i), n, z) for i, n, z in rows]


def _log_tail(conn: sa.Connection, task_instance_id: int, run_number: int) -> tuple[str, ...]:
    text = conn.execute(
        sa.select(task_attempts.c.log).where(
            task_attempts.c.task_instance_id == task_instance_id,
            task_attempts.c.run_number == run_number,
        )
    ).scalar()
    return tuple((text or "").splitlines()[-20:])


def _console_url(console: str, project_id: int, workflow_instance_id: int | None) -> str:
    base = console.rstrip("/")
    if workflow_instance_id is None:
        return f"{base}/console/instances?project={project_id}"
    return f"{base}/console/instances/{workflow_instance_id}?project={project_id}"


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def targets(conn: sa.Connection, secrets: SecretBox | None, rule_id: int) -> list[NewDelivery]:
    """The receivers a rule reaches now (its task owners excepted: a test has no task);
    addresses opened, as a delivery stores them (`dwsched alerts test`)."""
    rule = AlertRules(conn, secrets).get(rule_id)
    return list(_deliveries(conn, secrets, rule, ""))
