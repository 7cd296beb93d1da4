"""Who may call what: DataWorks' built-in workspace roles, what each permits, and where each
action's workspace comes from. Pure (the API asks the store for the facts).

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

    READ = "read"  # Get*, List*
    OPERATE = "operate"  # runs and operations on instances
    DEVELOP = "develop"  # workflow definitions
    ADMINISTER = "administer"  # the workspace itself and its members


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
        Role("role_project_dev", "Developer", frozenset({Kind.READ, Kind.DEVELOP, Kind.OPERATE})),
        Role("role_project_pe", "O&M Engineer", frozenset({Kind.READ, Kind.OPERATE})),
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


@dataclass(frozen=True, slots=True)
class Rule:
    kind: Kind
    where: Where


R, OP, D, A = Kind.READ, Kind.OPERATE, Kind.DEVELOP, Kind.ADMINISTER
W = Where
RULES: dict[str, Rule] = {
    # Workspaces
    "CreateProject": Rule(A, W.TENANT),
    "ListProjects": Rule(R, W.TENANT),  # answers only the workspaces the caller may read
    "GetProject": Rule(R, W.PROJECT),
    "UpdateProject": Rule(A, W.PROJECT),
    "DeleteProject": Rule(A, W.PROJECT),
    # Members and roles
    "CreateProjectMember": Rule(A, W.PROJECT_ID),
    "DeleteProjectMember": Rule(A, W.PROJECT_ID),
    "GrantMemberProjectRoles": Rule(A, W.PROJECT_ID),
    "RevokeMemberProjectRoles": Rule(A, W.PROJECT_ID),
    "GetProjectMember": Rule(R, W.PROJECT_ID),
    "ListProjectMembers": Rule(R, W.PROJECT_ID),
    "ListProjectRoles": Rule(R, W.PROJECT_ID),
    "GetProjectRole": Rule(R, W.PROJECT_ID),
    # Workflow instances
    "ListWorkflowInstances": Rule(R, W.PROJECT_ID),
    "GetWorkflowInstance": Rule(R, W.WORKFLOW_INSTANCE),
    "CreateWorkflowInstances": Rule(OP, W.PROJECT_ID),
    "GetCreateWorkflowInstancesResult": Rule(R, W.OPERATION),
    "StartWorkflowInstances": Rule(OP, W.WORKFLOW_INSTANCES),
    "StopWorkflowInstances": Rule(OP, W.WORKFLOW_INSTANCES),
    "RerunWorkflowInstances": Rule(OP, W.PROJECT_ID),
    "GetRerunWorkflowInstancesResult": Rule(R, W.OPERATION),
    # Task instances
    "ListTaskInstances": Rule(R, W.PROJECT_ID),
    "GetTaskInstance": Rule(R, W.TASK_INSTANCE),
    "GetTaskInstanceLog": Rule(R, W.TASK_INSTANCE),
    "ListUpstreamTaskInstances": Rule(R, W.TASK_INSTANCE),
    "ListDownstreamTaskInstances": Rule(R, W.TASK_INSTANCE),
    "ListTaskInstanceOperationLogs": Rule(R, W.TASK_INSTANCE),
    "RerunTaskInstances": Rule(OP, W.TASK_INSTANCES),
    "StopTaskInstances": Rule(OP, W.TASK_INSTANCES),
    "SetSuccessTaskInstances": Rule(OP, W.TASK_INSTANCES),
    "SuspendTaskInstances": Rule(OP, W.TASK_INSTANCES),
    "ResumeTaskInstances": Rule(OP, W.TASK_INSTANCES),
    "TriggerSchedulerTaskInstance": Rule(OP, W.TASK),
    # Workflows
    "CreateWorkflowDefinition": Rule(D, W.PROJECT_ID),
    "ImportWorkflowDefinition": Rule(D, W.PROJECT_ID),
    "UpdateWorkflowDefinition": Rule(D, W.DEFINITION),
    "DeleteWorkflowDefinition": Rule(D, W.DEFINITION),
    "ListWorkflowDefinitions": Rule(R, W.PROJECT_ID),
    "GetWorkflowDefinition": Rule(R, W.DEFINITION),
    "ListWorkflows": Rule(R, W.PROJECT_ID),
    "GetWorkflow": Rule(R, W.WORKFLOW),
}
del R, OP, D, A, W


def rule_of(action: str) -> Rule:
    """The action's rule; an action without one is treated as administering the tenant
    (only administrators may call it)."""
    return RULES.get(action, Rule(Kind.ADMINISTER, Where.TENANT))


def roles_permit(role_codes: set[str], kind: Kind) -> bool:
    return any(kind in ROLES[c].kinds for c in role_codes if c in ROLES)


def ram_action(action: str) -> str:
    return f"dataworks:{action}"
