"""Who may call what: DataWorks' built-in workspace roles, what each permits, and where each
action's workspace comes from. Pure (the API asks the store for the facts).

A call is allowed when the caller's policies allow `dataworks:<Action>` on the workspace
(domain.policies) and, for an action inside a workspace, the caller is a member of it whose
roles permit the action's kind. Tenant administrators (users with AdministratorAccess) are
not limited by membership.
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


@dataclass(frozen=True, slots=True)
class Rule:
    kind: Kind
    where: Where


def _rule(kind: Kind, where: Where) -> Rule:
    return Rule(kind, where)


R, OP, D, A = Kind.READ, Kind.OPERATE, Kind.DEVELOP, Kind.ADMINISTER
W = Where
RULES: dict[str, Rule] = {
    # Workspaces
    "CreateProject": _rule(A, W.TENANT),
    "ListProjects": _rule(R, W.TENANT),  # answers only the workspaces the caller may read
    "GetProject": _rule(R, W.PROJECT),
    "UpdateProject": _rule(A, W.PROJECT),
    "DeleteProject": _rule(A, W.PROJECT),
    # Members and roles
    "CreateProjectMember": _rule(A, W.PROJECT_ID),
    "DeleteProjectMember": _rule(A, W.PROJECT_ID),
    "GrantMemberProjectRoles": _rule(A, W.PROJECT_ID),
    "RevokeMemberProjectRoles": _rule(A, W.PROJECT_ID),
    "GetProjectMember": _rule(R, W.PROJECT_ID),
    "ListProjectMembers": _rule(R, W.PROJECT_ID),
    "ListProjectRoles": _rule(R, W.PROJECT_ID),
    "GetProjectRole": _rule(R, W.PROJECT_ID),
    # Workflow instances
    "ListWorkflowInstances": _rule(R, W.PROJECT_ID),
    "GetWorkflowInstance": _rule(R, W.WORKFLOW_INSTANCE),
    "CreateWorkflowInstances": _rule(OP, W.PROJECT_ID),
    "GetCreateWorkflowInstancesResult": _rule(R, W.OPERATION),
    "StartWorkflowInstances": _rule(OP, W.WORKFLOW_INSTANCES),
    "StopWorkflowInstances": _rule(OP, W.WORKFLOW_INSTANCES),
    "RerunWorkflowInstances": _rule(OP, W.PROJECT_ID),
    "GetRerunWorkflowInstancesResult": _rule(R, W.OPERATION),
    # Task instances
    "ListTaskInstances": _rule(R, W.PROJECT_ID),
    "GetTaskInstance": _rule(R, W.TASK_INSTANCE),
    "GetTaskInstanceLog": _rule(R, W.TASK_INSTANCE),
    "ListUpstreamTaskInstances": _rule(R, W.TASK_INSTANCE),
    "ListDownstreamTaskInstances": _rule(R, W.TASK_INSTANCE),
    "ListTaskInstanceOperationLogs": _rule(R, W.TASK_INSTANCE),
    "RerunTaskInstances": _rule(OP, W.TASK_INSTANCES),
    "StopTaskInstances": _rule(OP, W.TASK_INSTANCES),
    "SetSuccessTaskInstances": _rule(OP, W.TASK_INSTANCES),
    "SuspendTaskInstances": _rule(OP, W.TASK_INSTANCES),
    "ResumeTaskInstances": _rule(OP, W.TASK_INSTANCES),
    "TriggerSchedulerTaskInstance": _rule(OP, W.TASK),
    # Workflows
    "CreateWorkflowDefinition": _rule(D, W.PROJECT_ID),
    "ImportWorkflowDefinition": _rule(D, W.PROJECT_ID),
    "UpdateWorkflowDefinition": _rule(D, W.DEFINITION),
    "DeleteWorkflowDefinition": _rule(D, W.DEFINITION),
    "ListWorkflowDefinitions": _rule(R, W.PROJECT_ID),
    "GetWorkflowDefinition": _rule(R, W.DEFINITION),
    "ListWorkflows": _rule(R, W.PROJECT_ID),
    "GetWorkflow": _rule(R, W.WORKFLOW),
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
