"""Authorisation of every action, in one place, before its handler runs.

1. The caller is the user owning the request's AccessKey. A key without a user is the
   tenant's own key (like an Alibaba Cloud account's AccessKey): it may do everything.
2. The workspaces the request touches come from the action's rule (domain.access.RULES):
   its ProjectId, or the workspace of every id it names (a batch action's ids included:
   being allowed in workspace 100 does not let a caller stop an instance of 200).
3. For each workspace (or, for a tenant-level action, none), the caller's policies must
   allow `dataworks:<Action>` on `acs:dataworks:*:*:workspace/<ProjectId>`
   (domain.policies: an explicit Deny wins; no Allow is a deny).
4. For an action inside a workspace, the caller must be a member whose roles permit the
   action's kind (read, operate, develop, administer), unless the caller is a tenant
   administrator (has AdministratorAccess).
A denial is 403 Forbidden.RAM with AccessDeniedDetail. Facts are cached per process for
CACHE_MS, so a change of policy or membership applies within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from dwsched.api.params import Params
from dwsched.domain import access, policies
from dwsched.domain.errors import Forbidden
from dwsched.domain.queries import MAX_IDS
from dwsched.store import Store
from dwsched.store.access import Principal

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
    policies: tuple[tuple[str, policies.Policy], ...]
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
            lambda: self._documents(self.store.principal_of_user(user_id)),
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
        rule = access.rule_of(action)
        if subject is None and rule.kind is access.Kind.READ:
            return Caller("root", None)  # the tenant's key reading: nothing to look up
        workspaces = self._workspaces(rule.where, params)
        if subject is None:  # the workspaces are for the audit record only
            return Caller("root", None, None, frozenset(workspaces))
        try:
            return self._check(subject, action, rule, workspaces, source_ip, secure, now_ms)
        except Forbidden as denied:
            denied.workspaces = frozenset(workspaces)
            raise

    def _check(
        self,
        subject: _Subject,
        action: str,
        rule: access.Rule,
        workspaces: set[int],
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
        targets: list[int | None] = [*sorted(workspaces)] or [None]
        for project_id in targets:
            here = dict(context)
            if project_id is not None:
                here["dwsched:ProjectId"] = str(project_id)
            resource = policies.workspace_resource(project_id)
            # Name the workspace only when the caller named it (ProjectId): an id's workspace
            # is not the caller's to learn.
            where = (
                f"in the workspace {project_id}"
                if project_id is not None and rule.where is access.Where.PROJECT_ID
                else "in the workspace of the ids it names"
                if project_id is not None
                else "on the tenant"
            )
            decision = policies.evaluate(
                subject.policies, access.ram_action(action), resource, here
            )
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
                continue
            roles = self._cache.get(
                ("roles", project_id, user.id),
                lambda p=project_id: self.store.member_roles(p, user.id),  # type: ignore[misc]
            )
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
                    f"the roles of {user.name!r} {where} ({shown}) do "
                    f"not permit {rule.kind} actions",
                )
        readable = None
        if not subject.administrator:
            readable = frozenset(
                self._cache.get(("member", user.id), lambda: self.store.member_projects(user.id))
            )
        return Caller(user.name, readable, user.id, frozenset(workspaces))

    def _subject(self, access_key_id: str) -> _Subject | None:
        principal = self.store.principal(access_key_id)
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

    def _workspaces(self, where: access.Where, params: Mapping[str, str]) -> set[int]:
        """The workspaces the request names (ids that exist); unreadable values are left to
        the handler, which refuses them before doing anything."""
        W = access.Where
        if where is W.TENANT:
            return set()
        found: set[int] = set()
        project = Params(params).integer("ProjectId")
        if where in (W.PROJECT_ID, W.DEFINITION) and project is not None:
            found.add(project)
        if where is W.PROJECT_ID:
            return found
        kind = {
            W.PROJECT: "Project",
            W.WORKFLOW_INSTANCE: "WorkflowInstance",
            W.WORKFLOW_INSTANCES: "WorkflowInstance",
            W.TASK_INSTANCE: "TaskInstance",
            W.TASK_INSTANCES: "TaskInstance",
            W.WORKFLOW: "Workflow",
            W.DEFINITION: "Definition",
            W.TASK: "Task",
            W.OPERATION: "Operation",
        }[where]
        # The ids exactly as the handler reads them (Params): an id the handler would act on
        # is never one this check missed; a value it refuses is refused here the same way.
        p = Params(params)
        ids: list[Any]
        if where is W.OPERATION:
            ids = [params["OperationId"]] if params.get("OperationId") else []
        elif where is W.TASK:
            ids = [i for i in [p.integer("TaskId")] if i is not None]
        elif where in (W.WORKFLOW_INSTANCES, W.TASK_INSTANCES):
            ids = p.int_list("Ids", MAX_IDS) or []
        else:
            ids = [i for i in [p.integer("Id")] if i is not None]
        if ids:
            found |= set(self.store.projects_of(kind, ids).values())
        return found

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
