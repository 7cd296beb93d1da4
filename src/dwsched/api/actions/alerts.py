"""Custom alert rules, as DataWorks has them: CreateAlertRule, GetAlertRule, ListAlertRules,
UpdateAlertRule, DeleteAlertRule (docs/alerts.md).

TriggerCondition and Notification arrive as JSON text (the SDK's shrink requests) and are
checked by domain.alerts; what they name (users, tasks, workspaces) is resolved in the
handler's transaction. Owner and AliUid receivers are dwsched users, by name or id, stored
and answered as ids. Webhook URLs are answered masked.
"""

from __future__ import annotations

import re
from typing import Any

from dwsched.api import wire
from dwsched.api.context import Context
from dwsched.api.params import Params, to_choice
from dwsched.domain import alerts as a
from dwsched.domain.errors import InvalidArgument, MissingArgument, UserNotFound
from dwsched.domain.queries import MAX_PAGE_NUMBER
from dwsched.store import Tx

MAX_PAGE = 100
_DIGITS = re.compile(r"[0-9]{1,19}")
_TARGET = "TriggerCondition.Target"
_VALUES = "Notification.Receivers.ReceiverValues"


def _user(tx: Tx, text: str) -> int | None:
    """The id of the user named by `text` (a user id or a user name); None: no such user."""
    text = text.strip()
    if _DIGITS.fullmatch(text) and int(text) < 2**63:
        user = tx.users.by_id(int(text))
        return None if user is None else user.id
    try:
        return tx.users.get(text).id
    except UserNotFound:
        return None


def _resolved(
    ctx: Context,
    tx: Tx,
    name: str,
    owner: str | None,
    enabled: bool,
    trigger: a.Trigger,
    notification: a.Notification,
) -> a.NewRule:
    """The rule with its users as ids and its targets checked: every task or workspace it
    names exists (and every excluded task is in a watched workspace)."""
    if owner is None:
        if ctx.caller is None or ctx.caller.user_id is None:
            raise MissingArgument("Owner")  # the tenant's own key is nobody's: name one
        owner = str(ctx.caller.user_id)
    owner_id = _user(tx, owner)
    if owner_id is None:
        raise InvalidArgument("Owner", f"The parameter Owner {owner!r} names no user.")

    def user_id(value: str) -> str:
        found = _user(tx, value)
        if found is None:
            raise InvalidArgument(_VALUES, f"The parameter {_VALUES} {value!r} names no user.")
        return str(found)

    notification = a.with_values(notification, frozenset({a.ReceiverType.ALI_UID}), user_id)
    target = trigger.target
    workspaces: dict[int | str, int | None] = {}
    if target.type is a.TargetType.TASK:
        workspaces.update(_existing(tx.alerts.task_workspaces(target.ids), target.ids, "task"))
    elif target.type is a.TargetType.PROJECT:
        found = tx.projects.of("Project", list(target.ids))
        workspaces.update(_existing(found, target.ids, "workspace"))
        excluded = tx.alerts.task_workspaces(target.allow_tasks)
        for task_id in target.allow_tasks:
            if excluded.get(task_id) not in found.values():
                raise InvalidArgument(
                    f"{_TARGET}.AllowTasks",
                    f"The parameter {_TARGET}.AllowTasks names the task {task_id}, which is not "
                    "a task of the workspaces in Ids.",
                )
    else:
        workspaces.update({group: None for group in target.ids})
    return a.NewRule(name, owner_id, enabled, trigger, notification, workspaces)


def _existing(found: dict[Any, int], ids: tuple[int | str, ...], noun: str) -> dict[Any, int]:
    for i in ids:
        if i not in found:
            raise InvalidArgument(
                f"{_TARGET}.Ids",
                f"The parameter {_TARGET}.Ids names the {noun} {i}, which does not exist.",
            )
    return found


def _required_object(p: Params, name: str) -> dict[str, Any]:
    found = p.json_object(name)
    if found is None:
        raise MissingArgument(name)
    return found


def create_alert_rule(ctx: Context, p: Params) -> dict[str, Any]:
    name = a.rule_name(p.text("Name", max_length=a.MAX_NAME))
    trigger = a.parse_trigger(_required_object(p, "TriggerCondition"))
    notification = a.parse_notification(_required_object(p, "Notification"))
    enabled = p.boolean("Enabled")
    owner = p.text("Owner", max_length=64)
    with ctx.store.write() as tx:
        rule = _resolved(
            ctx, tx, name, owner, True if enabled is None else enabled, trigger, notification
        )
        rule_id = tx.alerts.create(rule, ctx.user, ctx.now_ms)
    return {"Id": rule_id}


def update_alert_rule(ctx: Context, p: Params) -> dict[str, Any]:
    rule_id = p.required_integer("Id")
    name = p.text("Name", max_length=a.MAX_NAME)
    enabled = p.boolean("Enabled")
    owner = p.text("Owner", max_length=64)
    condition = p.json_object("TriggerCondition")
    notice = p.json_object("Notification")
    with ctx.store.write() as tx:
        old = tx.alerts.get(rule_id)
        trigger = old.trigger
        if condition is not None:
            trigger = a.parse_trigger(a.merged(a.trigger_document(old.trigger), condition))
        notification = old.notification
        if notice is not None:
            document = a.merged(a.notification_document(old.notification), notice)
            notification = a.parse_notification(document, previous=old.notification)
        rule = _resolved(
            ctx,
            tx,
            old.name if name is None else a.rule_name(name),
            str(old.owner) if owner is None else owner,
            old.enabled if enabled is None else enabled,
            trigger,
            notification,
        )
        tx.alerts.replace(rule_id, rule, ctx.user, ctx.now_ms)
    return {"Success": True}


def delete_alert_rule(ctx: Context, p: Params) -> dict[str, Any]:
    rule_id = p.required_integer("Id")
    with ctx.store.write() as tx:
        tx.alerts.delete(rule_id)
    return {"Success": True}


def _summary(rule: a.AlertRule) -> dict[str, Any]:
    return {
        "Id": rule.id,
        "Name": rule.name,
        "Owner": str(rule.owner),
        "Enabled": rule.enabled,
        "TriggerCondition": a.trigger_document(rule.trigger),
    }


def get_alert_rule(ctx: Context, p: Params) -> dict[str, Any]:
    rule_id = p.required_integer("Id")
    with ctx.store.read() as tx:
        rule = tx.alerts.get(rule_id)
    shown = a.notification_document(a.masked(rule.notification))
    return {"AlertRule": {**_summary(rule), "Notification": shown}}


def list_alert_rules(ctx: Context, p: Params) -> dict[str, Any]:
    number = p.integer("PageNumber", maximum=MAX_PAGE_NUMBER) or 1
    size = p.integer("PageSize", maximum=MAX_PAGE) or 10
    types = [to_choice("Types", t, a.TriggerType) for t in p.str_list("Types", 20) or []]
    task_ids = p.int_list("TaskIds", a.MAX_IDS)
    owner, receiver = p.text("Owner", max_length=64), p.text("Receiver", max_length=64)
    with ctx.store.read() as tx:
        owner_id = None if owner is None else _user(tx, owner)
        receiver_id = None if receiver is None else _user(tx, receiver)
        nobody = (owner is not None and owner_id is None) or (
            receiver is not None and receiver_id is None
        )
        query = a.RuleQuery(
            name_contains=p.text("Name", max_length=a.MAX_NAME),
            owner=owner_id,
            receiver=receiver_id,
            task_ids=task_ids,
            task_projects=sorted(set(tx.projects.of("Task", task_ids or []).values())),
            types=types or None,
        )
        found = [] if nobody else tx.alerts.find(query)
    readable = None if ctx.caller is None else ctx.caller.readable
    # Only the rules the caller may read: every workspace a rule watches must be readable
    # (resource-group rules, which watch none, only for tenant administrators).
    visible = [r for r, spaces in found if readable is None or (spaces and spaces <= readable)]
    chosen = [_summary(r) for r in visible[(number - 1) * size : number * size]]
    return {"PagingInfo": wire.paging(number, size, len(visible), "AlertRules", chosen)}
