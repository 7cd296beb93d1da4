"""Custom alert rules' storage (`Tx.alerts`): the rules, their targets indexed for the
evaluator's lookup, webhook URLs sealed with the server key (store.secrets).

A rule's trigger condition and notification are kept as their documents (domain.alerts, in
DataWorks' shape) and read back through the same checks; the URL receivers' values are
sealed on the way in and opened on the way out, so code above the store sees them whole
(and masks them itself before answering).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from dwsched.domain import alerts as a
from dwsched.domain.errors import AlertRuleNotFound
from dwsched.store.schema import alert_rule_targets as art, alert_rules as ar, tasks
from dwsched.store.secrets import SecretBox, resealed, reveal

SEALED_AS = "alert-webhook"  # the label sealed webhook URLs are kept under in this process


def seal_url(box: SecretBox | None, url: str) -> str:
    return box.seal(SEALED_AS, url) if box is not None else url


def open_url(box: SecretBox | None, stored: str) -> str:
    return reveal(box, SEALED_AS, stored)


class AlertRules:
    """Custom alert rules (`Tx.alerts`)."""

    def __init__(self, conn: sa.Connection, secrets: SecretBox | None) -> None:
        self.conn = conn
        self.secrets = secrets

    # Writing

    def create(self, rule: a.NewRule, user: str, now_ms: int) -> int:
        """Store a checked rule; its id."""
        values = self._row(rule) | {
            "create_time": now_ms,
            "modify_time": now_ms,
            "create_user": user,
            "modify_user": user,
        }
        done = self.conn.execute(sa.insert(ar).values(**values).returning(ar.c.id))
        rule_id = int(done.scalar_one())
        self._set_targets(rule_id, rule)
        return rule_id

    def replace(self, rule_id: int, rule: a.NewRule, user: str, now_ms: int) -> None:
        """Give the rule these values (an update's merged rule); AlertRuleNotFound."""
        values = self._row(rule) | {"modify_time": now_ms, "modify_user": user}
        done = self.conn.execute(sa.update(ar).where(ar.c.id == rule_id).values(**values))
        if done.rowcount == 0:
            raise AlertRuleNotFound(rule_id)
        self.conn.execute(sa.delete(art).where(art.c.rule_id == rule_id))
        self._set_targets(rule_id, rule)

    def delete(self, rule_id: int) -> None:
        """AlertRuleNotFound when there is no such rule."""
        self.conn.execute(sa.delete(art).where(art.c.rule_id == rule_id))
        if self.conn.execute(sa.delete(ar).where(ar.c.id == rule_id)).rowcount == 0:
            raise AlertRuleNotFound(rule_id)

    def _row(self, rule: a.NewRule) -> dict[str, Any]:
        box = self.secrets
        sealed = a.with_values(rule.notification, a.URL_RECEIVERS, lambda u: seal_url(box, u))
        return {
            "name": rule.name,
            "owner": rule.owner,
            "enabled": rule.enabled,
            "trigger_type": rule.trigger.type.value,
            "trigger_condition": json.dumps(a.trigger_document(rule.trigger)),
            "notification": json.dumps(a.notification_document(sealed)),
        }

    def _set_targets(self, rule_id: int, rule: a.NewRule) -> None:
        kind = rule.trigger.target.type.value
        rows = [
            {
                "rule_id": rule_id,
                "target_type": kind,
                "target": str(t),
                "project_id": rule.workspaces.get(t),
            }
            for t in rule.trigger.target.ids
        ]
        if rows:
            self.conn.execute(sa.insert(art), rows)

    def reseal(self, new: SecretBox) -> int:
        """Seal every rule's webhook URLs with `new` (a rotation of the server key, in its
        transaction); how many rules changed."""
        old = self.secrets
        if old is None:
            raise RuntimeError("no current server key to open webhook URLs with")
        urls = {t.value for t in a.URL_RECEIVERS}
        done = 0
        for rule_id, text in self.conn.execute(sa.select(ar.c.id, ar.c.notification)).all():
            document = json.loads(text)
            for r in document.get("Receivers", []):
                if r.get("ReceiverType") in urls:
                    values = r.get("ReceiverValues", [])
                    r["ReceiverValues"] = [resealed(old, new, SEALED_AS, v) for v in values]
            changed = json.dumps(document)
            if changed != text:
                self.conn.execute(
                    sa.update(ar).where(ar.c.id == rule_id).values(notification=changed)
                )
                done += 1
        return done

    # Reading

    def get(self, rule_id: int) -> a.AlertRule:
        """The rule, its URLs opened; AlertRuleNotFound."""
        row = self.conn.execute(sa.select(ar).where(ar.c.id == rule_id)).first()
        if row is None:
            raise AlertRuleNotFound(rule_id)
        return self._rule(row)

    def task_workspaces(self, task_ids: Sequence[int | str]) -> dict[int | str, int]:
        """The workspace of each task id that names a deployed task (not removed from its
        workflow); other ids are left out."""
        wanted = [int(t) for t in dict.fromkeys(task_ids)]
        if not wanted:
            return {}
        rows = self.conn.execute(
            sa.select(tasks.c.id, tasks.c.project_id).where(
                tasks.c.id.in_(wanted), tasks.c.deleted.is_(False)
            )
        )
        return {int(i): int(p) for i, p in rows}

    def workspaces(self, rule_ids: Iterable[int]) -> dict[int, frozenset[int]]:
        """The workspaces each existing rule watches (empty for a resource-group rule);
        rules that do not exist are left out."""
        wanted = list(dict.fromkeys(rule_ids))
        if not wanted:
            return {}
        found: dict[int, set[int]] = {
            int(i): set()
            for i in self.conn.execute(sa.select(ar.c.id).where(ar.c.id.in_(wanted))).scalars()
        }
        rows = self.conn.execute(
            sa.select(art.c.rule_id, art.c.project_id).where(
                art.c.rule_id.in_(list(found)), art.c.project_id.is_not(None)
            )
        )
        for rule_id, project_id in rows:
            found[int(rule_id)].add(int(project_id))
        return {k: frozenset(v) for k, v in found.items()}

    def find(self, query: a.RuleQuery) -> list[tuple[a.AlertRule, frozenset[int]]]:
        """The rules matching, by id, each with the workspaces it watches."""
        q = sa.select(ar).order_by(ar.c.id)
        if query.name_contains:
            q = q.where(
                sa.func.lower(ar.c.name).contains(query.name_contains.lower(), autoescape=True)
            )
        if query.owner is not None:
            q = q.where(ar.c.owner == query.owner)
        if query.types is not None:
            q = q.where(ar.c.trigger_type.in_([t.value for t in query.types]))
        if query.task_ids is not None:
            watching = self._watching(query.task_ids, query.task_projects, enabled_only=False)
            q = q.where(ar.c.id.in_(watching or [-1]))
        rules = [self._rule(r) for r in self.conn.execute(q)]
        if query.task_ids is not None:
            wanted = set(query.task_ids)
            rules = [r for r in rules if not wanted <= set(r.trigger.target.allow_tasks)]
        if query.receiver is not None:
            uid = str(query.receiver)
            rules = [
                r
                for r in rules
                if any(
                    x.type is a.ReceiverType.ALI_UID and uid in x.values
                    for x in r.notification.receivers
                )
            ]
        spaces = self.workspaces(r.id for r in rules)
        return [(r, spaces.get(r.id, frozenset())) for r in rules]

    def rules_for(
        self, task_id: int, project_id: int, types: Sequence[a.TriggerType] | None = None
    ) -> list[a.AlertRule]:
        """The enabled rules that watch the task `task_id` of the workspace `project_id`
        (as a Task target, or as a task of a Project target that does not exclude it), of
        `types` if given, by id: the evaluator's lookup for a task instance's event, on the
        indexed alert_rule_targets (target_type, target)."""
        return self.rules_for_tasks([(task_id, project_id)], types)[(task_id, project_id)]

    def rules_for_tasks(
        self, tasks: Sequence[tuple[int, int]], types: Sequence[a.TriggerType] | None = None
    ) -> dict[tuple[int, int], list[a.AlertRule]]:
        """rules_for of each (task id, workspace id) at once: two queries for a round's
        status changes, each rule parsed (and its URLs opened) once."""
        if not tasks:
            return {}
        c = art.c
        task_ids = sorted({str(t) for t, _ in tasks})
        project_ids = sorted({str(p) for _, p in tasks})
        q = (
            sa.select(c.rule_id, c.target_type, c.target)
            .join(ar, ar.c.id == c.rule_id)
            .where(
                sa.or_(
                    sa.and_(c.target_type == a.TargetType.TASK.value, c.target.in_(task_ids)),
                    sa.and_(c.target_type == a.TargetType.PROJECT.value, c.target.in_(project_ids)),
                ),
                ar.c.enabled.is_(True),
            )
        )
        if types is not None:
            q = q.where(ar.c.trigger_type.in_([t.value for t in types]))
        targets: dict[tuple[str, str], set[int]] = {}
        for rule_id, kind, target in self.conn.execute(q):
            targets.setdefault((kind, target), set()).add(int(rule_id))
        ids = sorted(set().union(*targets.values())) if targets else []
        parsed = {
            r.id: r
            for r in (
                self._rule(row) for row in self.conn.execute(sa.select(ar).where(ar.c.id.in_(ids)))
            )
        }
        found: dict[tuple[int, int], list[a.AlertRule]] = {}
        for task_id, project_id in tasks:
            watching = targets.get((a.TargetType.TASK.value, str(task_id)), set()) | targets.get(
                (a.TargetType.PROJECT.value, str(project_id)), set()
            )
            found[(task_id, project_id)] = [
                parsed[i]
                for i in sorted(watching)
                if i in parsed and task_id not in parsed[i].trigger.target.allow_tasks
            ]
        return found

    def enabled(self, types: Sequence[a.TriggerType]) -> list[a.AlertRule]:
        """Every enabled rule of these types, by id (the scheduler tick's deadline and
        threshold checks: UnFinished, CycleUnfinished, Timeout, InstanceError*,
        ResourceGroup*)."""
        q = (
            sa.select(ar)
            .where(ar.c.trigger_type.in_([t.value for t in types]), ar.c.enabled.is_(True))
            .order_by(ar.c.id)
        )
        return [self._rule(r) for r in self.conn.execute(q)]

    def _watching(
        self, task_ids: Sequence[int], project_ids: Sequence[int], enabled_only: bool
    ) -> list[int]:
        c = art.c
        on_tasks = sa.and_(
            c.target_type == a.TargetType.TASK.value, c.target.in_([str(t) for t in task_ids])
        )
        on_projects = sa.and_(
            c.target_type == a.TargetType.PROJECT.value,
            c.target.in_([str(p) for p in project_ids] or ["-"]),
        )
        q = sa.select(c.rule_id).where(sa.or_(on_tasks, on_projects)).distinct()
        if enabled_only:
            q = q.join(ar, ar.c.id == c.rule_id).where(ar.c.enabled.is_(True))
        return [int(i) for i in self.conn.execute(q).scalars()]

    def _rule(self, row: Any) -> a.AlertRule:
        box = self.secrets
        document = json.loads(row.notification)
        urls = {t.value for t in a.URL_RECEIVERS}
        for receiver in document.get("Receivers", []):
            if receiver.get("ReceiverType") in urls:
                values = receiver.get("ReceiverValues", [])
                receiver["ReceiverValues"] = [open_url(box, v) for v in values]
        return a.AlertRule(
            id=int(row.id),
            name=row.name,
            owner=int(row.owner),
            enabled=bool(row.enabled),
            trigger=a.parse_trigger(json.loads(row.trigger_condition)),
            notification=a.parse_notification(document),
            create_time=int(row.create_time),
            modify_time=int(row.modify_time),
            create_user=row.create_user,
            modify_user=row.modify_user,
        )
