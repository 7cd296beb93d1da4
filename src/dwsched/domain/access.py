"""Who may call what: DataWorks' built-in workspace roles, what each permits, and the shape
of an action's rule: the kind of action it is and where its workspace comes from. Each
action's own rule is declared with the action (api.registry). Pure (the API asks the store
for the facts).

A call is allowed when the caller's policies allow `dataworks:<Action>` on the workspace
(domain.policies) and, for an action inside a workspace, the caller is a member of it whose
roles permit the action's kind. Tenant administrators (users with AdministratorAccess) are
not limited by membership. Every id a call names must exist, unless the caller administers
the tenant: an id keeps its workspace, so an id checked before the handler runs is in that
workspace still when the handler acts on it (docs/access.md, "The workspace of a request",
lists the exceptions, all after an administrator's action).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """What an action does inside a workspace, as the role table grants it."""

    READ = "read"  # the actions that only read
    OPERATE = "operate"  # runs and operations on instances
    DEVELOP = "develop"  # workflow definitions
    ADMINISTER = "administer"  # the workspace itself and its members
    MONITOR = "monitor"  # custom alert rules (Create/Update/DeleteAlertRule)


@dataclass(frozen=True, slots=True)
class Role:
    code: str
    name: str
    kinds: frozenset[Kind]


_ALL = frozenset(Kind)
_READ = frozenset({Kind.READ})
ROLES: dict[str, Role] = {
    r.code: r
    for r in (
        Role("role_project_owner", "Workspace Owner", _ALL),
        Role("role_project_admin", "Workspace Administrator", _ALL),
        Role(
            "role_project_dev",
            "Developer",
            frozenset({Kind.READ, Kind.DEVELOP, Kind.OPERATE, Kind.MONITOR}),
        ),
        Role("role_project_pe", "O&M Engineer", frozenset({Kind.READ, Kind.OPERATE, Kind.MONITOR})),
        Role("role_project_deploy", "Deployer", frozenset({Kind.READ, Kind.DEVELOP})),
        Role("role_project_guest", "Visitor", _READ),
        Role("role_project_security", "Security Administrator", _READ),
        Role("role_project_data_analyst", "Data Analyst", _READ),
        Role("role_project_dg_admin", "Data Governance Administrator", _READ),
        Role("role_project_erd", "Model Designer", _READ),
    )
}


class Where(enum.StrEnum):
    """Where an action's workspace comes from."""

    PROJECT_ID = "ProjectId"  # the ProjectId parameter
    PROJECT = "Project"  # Id: a workspace
    WORKFLOW_INSTANCE = "WorkflowInstance"  # Id
    WORKFLOW_INSTANCES = "WorkflowInstances"  # Ids
    TASK_INSTANCE = "TaskInstance"  # Id
    TASK_INSTANCES = "TaskInstances"  # Ids
    WORKFLOW = "Workflow"  # Id
    DEFINITION = "Definition"  # Id (and ProjectId when given)
    TASK = "Task"  # TaskId
    OPERATION = "Operation"  # OperationId
    ALERT_RULE = "AlertRule"  # Id: the workspaces the rule watches (and TriggerCondition's)
    ALERT_TARGETS = "AlertTargets"  # TriggerCondition: the workspaces its target names
    TENANT = "Tenant"  # no workspace: policies alone decide


# What the ids of each kind name: the kind `store.access.projects_of` looks up, and the
# noun a message uses.
ID_KINDS: dict[Where, tuple[str, str]] = {
    Where.PROJECT: ("Project", "workspace"),
    Where.WORKFLOW_INSTANCE: ("WorkflowInstance", "workflow instance"),
    Where.WORKFLOW_INSTANCES: ("WorkflowInstance", "workflow instance"),
    Where.TASK_INSTANCE: ("TaskInstance", "task instance"),
    Where.TASK_INSTANCES: ("TaskInstance", "task instance"),
    Where.WORKFLOW: ("Workflow", "workflow"),
    Where.DEFINITION: ("Definition", "workflow definition"),
    Where.TASK: ("Task", "task"),
    Where.OPERATION: ("Operation", "operation"),
}


# Where the workspaces are those of an alert rule's targets (api.access reads the rule or its
# TriggerCondition): a rule may watch several workspaces, or none (resource groups: the
# policies alone decide, on the tenant).
ALERT_WHERES = frozenset({Where.ALERT_RULE, Where.ALERT_TARGETS})


@dataclass(frozen=True, slots=True)
class Rule:
    """How an action is authorised: the kind a caller's roles must permit, and where its
    workspace comes from."""

    kind: Kind
    where: Where


def roles_permit(role_codes: set[str], kind: Kind) -> bool:
    return any(kind in ROLES[c].kinds for c in role_codes if c in ROLES)


def ram_action(action: str) -> str:
    return f"dataworks:{action}"
