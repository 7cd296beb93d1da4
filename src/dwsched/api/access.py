"""Authorisation of every action, in one place, before its handler runs.

1. The caller is the user owning the request's AccessKey. A key without a user is the
   tenant's own key (like an Alibaba Cloud account's AccessKey): it may do everything.
2. The workspaces the request touches come from the action's rule (api.registry):
   its ProjectId, or the workspace of every id it names (a batch action's ids included:
   being allowed in workspace 100 does not let a caller stop an instance of 200).
3. For each workspace (or, for a tenant-level action, none), the caller's policies must
   allow `dataworks:<Action>` on `acs:dataworks:*:*:workspace/<ProjectId>`
   (domain.policies: an explicit Deny wins; no Allow is a deny).
4. For an action inside a workspace, the caller must be a member whose roles permit the
   action's kind (read, operate, develop, administer), unless the caller is a tenant
   administrator (has AdministratorAccess).
5. Every id the request names must exist, unless the caller administers the tenant (the
   tenant's own key, AdministratorAccess): an id that does not exist names no workspace to
   check, and the handler, in a transaction of its own, would act on whatever was created
   with that id meanwhile. Ids are allocated once and never change workspace, so an id
   checked here is, when the handler acts on it, still in the workspace checked.
6. An id that does not exist and an id of a workspace the caller is not a member of get the
   same denial, naming only the id: the answer does not tell an outsider which ids exist.
   Denials about workspaces the caller is a member of, or named by ProjectId, say why.
A denial is 403 Forbidden.RAM with AccessDeniedDetail. Facts are cached per process for
CACHE_MS, so a change of policy or membership applies within that time; the workspace of
an id is read for every request (never cached).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from dwsched.api import registry
from dwsched.api.params import Params
from dwsched.domain import access, alerts, policies
from dwsched.domain.errors import Forbidden
from dwsched.domain.queries import MAX_IDS
from dwsched.domain.users import Principal
from dwsched.store import Store, Tx

CACHE_MS = 2_000
ADMINISTRATOR = "AdministratorAccess"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made the request: a user's name, or `root` for the tenant's own key; and the
    workspaces it may read (None: all of them)."""

    name: str
    readable: frozenset[int] | None
    user_id: int | None = None  # None for the tenant's own key
    workspaces: frozenset[int] = frozenset()  # those the request touches
    # Ids the request names that did not exist when it was authorised (only a tenant
    # administrator's request goes on with them): their workspaces are looked up again
    # once the handler has acted (Authorizer.touched), for the audit record.
    unresolved: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Targets:
    """What a request names: workspaces by its ProjectId (`named`), and ids, in the
    request's order, each with its workspace (None: no such id); `noun` names the ids'
    kind in a denial."""

    named: frozenset[int] = frozenset()
    ids: tuple[tuple[Any, int | None], ...] = ()
    noun: str = ""
    # Alert rules on resource groups name no workspace: only tenant administrators manage
    # (and see) them.
    tenant_only: bool = False

    @property
    def workspaces(self) -> frozenset[int]:
        return self.named | {w for _, w in self.ids if w is not None}

    @property
    def missing(self) -> tuple[Any, ...]:
        return tuple(i for i, w in self.ids if w is None)


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            found = self._items.get(key)
        if found is not None and now - found[0] < CACHE_MS / 1000:
            return found[1]  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (now, value)
        return value


@dataclass(frozen=True, slots=True)
class _Subject:
    principal: Principal
    attached: tuple[tuple[str, policies.Policy], ...]
    administrator: bool


class Authorizer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache = _Cache()

    def authorize(
        self,
        access_key_id: str,
        action: str,
        params: Mapping[str, str],
        source_ip: str,
        secure: bool,
        now_ms: int,
    ) -> Caller:
        """The caller, if it may make this request; Forbidden otherwise."""
        subject = self._cache.get(("key", access_key_id), lambda: self._subject(access_key_id))
        return self._authorize(subject, action, params, source_ip, secure, now_ms)

    def authorize_user(
        self,
        user_id: int,
        action: str,
        params: Mapping[str, str],
        source_ip: str,
        secure: bool,
        now_ms: int,
    ) -> Caller:
        """As `authorize`, for a user signed in to the web console (no AccessKey): the same
        policies, roles and workspaces decide."""
        subject = self._cache.get(
            ("user", user_id),
            lambda: self._documents(self._read(lambda tx: tx.users.principal(user_id))),
        )
        return self._authorize(subject, action, params, source_ip, secure, now_ms)

    def _authorize(
        self,
        subject: _Subject | None,
        action: str,
        params: Mapping[str, str],
        source_ip: str,
        secure: bool,
        now_ms: int,
    ) -> Caller:
        rule = registry.rule_of(action)
        if subject is None and rule.kind is access.Kind.READ:
            return Caller("root", None)  # the tenant's key reading: nothing to look up
        targets = self._targets(rule.where, params)
        if subject is None:  # the workspaces are for the audit record only
            return Caller("root", None, None, targets.workspaces, targets.missing)
        try:
            return self._check(subject, action, rule, targets, source_ip, secure, now_ms)
        except Forbidden as denied:
            denied.workspaces = targets.workspaces
            raise

    def _check(
        self,
        subject: _Subject,
        action: str,
        rule: access.Rule,
        targets: Targets,
        source_ip: str,
        secure: bool,
        now_ms: int,
    ) -> Caller:
        context = {
            "acs:SourceIp": source_ip,
            "acs:CurrentTime": datetime.fromtimestamp(now_ms / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "acs:SecureTransport": "true" if secure else "false",
        }
        user = subject.principal.user
        # The workspaces the caller named (ProjectId) first: what it learns of them depends
        # on the number it gave, not on any id.
        for project_id in sorted(targets.named):
            self._permit(
                subject, action, rule, project_id, f"in the workspace {project_id}", context
            )
        if not subject.administrator:
            hidden = self._hidden(targets, user.id)
            if hidden is not None:
                what = " ".join(x for x in (targets.noun, str(hidden)) if x)
                raise self._denied(
                    action,
                    user.name,
                    "ImplicitDeny",
                    "WorkspaceRole",
                    f"the {what} does not exist, or is in a workspace where "
                    f"{user.name!r} is not a member",
                )
            if targets.tenant_only:
                raise self._denied(
                    action,
                    user.name,
                    "ImplicitDeny",
                    "WorkspaceRole",
                    "alert rules on resource groups are managed by tenant administrators only",
                )
        # An id's workspace is not the caller's to learn: not named in the message.
        for project_id in sorted(targets.workspaces - targets.named):
            where = "in the workspace of the ids it names"
            self._permit(subject, action, rule, project_id, where, context)
        if not targets.workspaces:
            self._permit(subject, action, rule, None, "on the tenant", context)
        readable = None
        if not subject.administrator:
            readable = frozenset(
                self._cache.get(
                    ("member", user.id), lambda: self._read(lambda tx: tx.members.projects(user.id))
                )
            )
        return Caller(user.name, readable, user.id, targets.workspaces, targets.missing)

    def _hidden(self, targets: Targets, user_id: int) -> Any:
        """The first id (in the request's order) that does not exist or is in a workspace
        the user is not a member of; None when there is none."""
        for named_id, project_id in targets.ids:
            if project_id is None or self._roles(project_id, user_id) is None:
                return named_id
        return None

    def _read(self, query: Callable[[Tx], T]) -> T:
        with self.store.read() as tx:
            return query(tx)

    def _roles(self, project_id: int, user_id: int) -> set[str] | None:
        return self._cache.get(
            ("roles", project_id, user_id),
            lambda: self._read(lambda tx: tx.members.roles(project_id, user_id)),
        )

    def _permit(
        self,
        subject: _Subject,
        action: str,
        rule: access.Rule,
        project_id: int | None,
        where: str,
        context: Mapping[str, str],
    ) -> None:
        """Forbidden unless the policies allow the action in the workspace (None: on the
        tenant) and, inside a workspace, the caller's roles there permit its kind."""
        user = subject.principal.user
        here = dict(context)
        if project_id is not None:
            here["dwsched:ProjectId"] = str(project_id)
        resource = policies.workspace_resource(project_id)
        decision = policies.evaluate(subject.attached, access.ram_action(action), resource, here)
        if not decision.allowed:
            raise self._denied(
                action,
                user.name,
                decision.reason,
                "AccountLevelIdentityBasedPolicy",
                f"the policies of {user.name!r} do not allow dataworks:{action} "
                f"{where} ({decision.reason}"
                + (f" by {decision.policy}" if decision.policy else "")
                + ")",
            )
        if project_id is None or subject.administrator:
            return
        roles = self._roles(project_id, user.id)
        if roles is None:
            raise self._denied(
                action,
                user.name,
                "ImplicitDeny",
                "WorkspaceRole",
                f"{user.name!r} is not a member of the workspace ({where})",
            )
        if not access.roles_permit(roles, rule.kind):
            shown = ", ".join(sorted(roles)) or "no role"
            raise self._denied(
                action,
                user.name,
                "ImplicitDeny",
                "WorkspaceRole",
                f"the roles of {user.name!r} {where} ({shown}) do not permit {rule.kind} actions",
            )

    def touched(self, caller: Caller, action: str, answer: Mapping[str, Any]) -> Caller:
        """`caller`, its workspaces completed with those of the ids that did not exist when
        it was authorised and that the handler then acted on (a batch's ids only where its
        SuccessInfo says so): the workspaces the request actually touched."""
        named = access.ID_KINDS.get(registry.rule_of(action).where)
        if not caller.unresolved or named is None:
            return caller
        ids = list(caller.unresolved)
        done = answer.get("SuccessInfo")
        if isinstance(done, Mapping):
            ids = [i for i in ids if (done.get(str(i)) or {}).get("Success") is True]
        with self.store.read() as tx:
            found = tx.projects.of(named[0], ids) if ids else {}
        return dataclasses.replace(
            caller, workspaces=caller.workspaces | frozenset(found.values()), unresolved=()
        )

    def _subject(self, access_key_id: str) -> _Subject | None:
        with self.store.read() as tx:
            principal = tx.users.principal_of_key(access_key_id)
        return None if principal is None else self._documents(principal)

    @staticmethod
    def _documents(principal: Principal) -> _Subject:
        custom = dict(principal.custom_documents)
        found: list[tuple[str, policies.Policy]] = []
        for name in principal.policy_names:
            if name in custom:
                found.append((name, policies.parse_policy(custom[name])))
            elif name in policies.BUILTIN:
                found.append((name, policies.BUILTIN[name]))
        return _Subject(principal, tuple(found), ADMINISTRATOR in principal.policy_names)

    def _targets(self, where: access.Where, params: Mapping[str, str]) -> Targets:
        """The workspaces and the ids the request names, each id with its workspace;
        unreadable values are refused here as the handler would refuse them."""
        W = access.Where
        if where is W.TENANT:
            return Targets()
        p = Params(params)
        if where in access.ALERT_WHERES:
            return self._alert_targets(where, p)
        project = p.integer("ProjectId")
        named = frozenset(
            [project] if where in (W.PROJECT_ID, W.DEFINITION) and project is not None else []
        )
        if where is W.PROJECT_ID:
            return Targets(named)
        kind, noun = access.ID_KINDS[where]
        # The ids exactly as the handler reads them (Params): an id the handler would act on
        # is never one this check missed; a value it refuses is refused here the same way.
        ids: list[Any]
        if where is W.OPERATION:
            ids = [i for i in [p.text("OperationId", max_length=64)] if i]
        elif where is W.TASK:
            ids = [i for i in [p.integer("TaskId")] if i is not None]
        elif where in (W.WORKFLOW_INSTANCES, W.TASK_INSTANCES):
            ids = list(dict.fromkeys(p.int_list("Ids", MAX_IDS) or []))
        else:
            ids = [i for i in [p.integer("Id")] if i is not None]
        with self.store.read() as tx:
            found = tx.projects.of(kind, ids) if ids else {}
        return Targets(named, tuple((i, found.get(i)) for i in ids), noun)

    def _alert_targets(self, where: access.Where, p: Params) -> Targets:
        """An alert rule's workspaces (those its targets are in: a rule may watch several)
        and those of the target a TriggerCondition names, each id labelled with its kind."""
        entries: list[tuple[Any, int | None]] = []
        tenant_only = False
        with self.store.read() as tx:
            rule_id = p.integer("Id") if where is access.Where.ALERT_RULE else None
            if rule_id is not None:
                found = tx.alerts.workspaces([rule_id])
                label = f"alert rule {rule_id}"
                if rule_id not in found:
                    entries.append((label, None))
                else:
                    entries += [(label, w) for w in sorted(found[rule_id])]
                    tenant_only = not found[rule_id]
            condition = p.json_object("TriggerCondition")
            if condition is not None and condition.get("Target") is not None:
                target = alerts.parse_target(condition["Target"])
                if target.type is alerts.TargetType.RESOURCE_GROUP:
                    tenant_only = True
                else:
                    task = target.type is alerts.TargetType.TASK
                    kind, noun = ("Task", "task") if task else ("Project", "workspace")
                    named = tx.projects.of(kind, list(target.ids))
                    entries += [(f"{noun} {i}", named.get(i)) for i in target.ids]
                    allowed = tx.projects.of("Task", list(target.allow_tasks))
                    entries += [(f"task {i}", allowed.get(i)) for i in target.allow_tasks]
        return Targets(frozenset(), tuple(entries), "", tenant_only)

    @staticmethod
    def _denied(action: str, user: str, reason: str, policy_type: str, why: str) -> Forbidden:
        return Forbidden(
            f"You are not authorized to do this action: {why}.",
            {
                "AuthAction": access.ram_action(action),
                "AuthPrincipalType": "SubUser",
                "AuthPrincipalDisplayName": user,
                "AuthPrincipalOwnerId": "",
                "NoPermissionType": reason,
                "PolicyType": policy_type,
                "EncodedDiagnosticMessage": "",
            },
        )
