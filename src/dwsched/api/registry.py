"""The actions the API serves, each declared once: what the request path needs to know of it.

An `ActionSpec` names an action's handler and says
- whether it only reads (`reads`: it changes nothing beyond the request's nonce; on SQLite
  api.app serves such a request on the event loop, anything else on a worker thread);
- who may call it and where its workspace comes from (`rule`: the role kind it needs and
  its `Where`, domain.access; api.access authorises every call by it);
- whether every call of it, successful or refused, is recorded in the audit log
  (`audited`, api.calls);
- its throttle class (`throttle`: api.throttle's READ or WRITE);
- whether the web console may call it (`console`, web.console).

Every other table is derived from `ACTIONS`: the dispatch (`lookup`), the authorisation
rules (`RULES`, `rule_of`), the console's allowlist (`CONSOLE`). An action not declared here
is not served, and an action cannot be declared without its rule. `read` and `write` build
the two shapes every action has today: a read needs the read role kind, is not audited and
is throttled as a read; a write is audited and throttled as a write.

The built-in policy WorkspaceOperatorAccess (domain.policies) grants the writes whose rule
is OPERATE or MONITOR, and ReadOnlyAccess grants Get* and List*, which are the reads:
tests/api/test_action_registry.py fails when the registry and the policies disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dwsched.api.actions import (
    alerts,
    members,
    operations,
    projects,
    task_instances,
    workflow_instances,
    workflows,
)
from dwsched.api.context import Handler
from dwsched.api.errors import API_VERSION
from dwsched.api.throttle import READ, WRITE
from dwsched.domain.access import Kind, Rule, Where
from dwsched.domain.errors import MissingArgument, UnknownAction


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: its name on the wire, its handler, and how it is served (see the module's
    docstring)."""

    name: str
    handler: Handler
    reads: bool
    rule: Rule
    audited: bool
    throttle: str
    console: bool = False


def read(name: str, handler: Handler, where: Where, *, console: bool = False) -> ActionSpec:
    """An action that only reads: the read role kind, not audited, throttled as a read."""
    return ActionSpec(name, handler, True, Rule(Kind.READ, where), False, READ, console)


def write(
    name: str, handler: Handler, kind: Kind, where: Where, *, console: bool = False
) -> ActionSpec:
    """An action that may change something: audited, throttled as a write."""
    return ActionSpec(name, handler, False, Rule(kind, where), True, WRITE, console)


def _by_name(specs: Iterable[ActionSpec]) -> dict[str, ActionSpec]:
    found: dict[str, ActionSpec] = {}
    for spec in specs:
        if spec.name in found:
            raise ValueError(f"the action {spec.name} is declared twice")
        found[spec.name] = spec
    return found


OP, D, A, M = Kind.OPERATE, Kind.DEVELOP, Kind.ADMINISTER, Kind.MONITOR
W = Where
# fmt: off
ACTIONS: Mapping[str, ActionSpec] = _by_name([
    # Workspaces
    write("CreateProject", projects.create_project, A, W.TENANT),
    # ListProjects answers only the workspaces the caller may read.
    read("ListProjects", projects.list_projects, W.TENANT, console=True),
    read("GetProject", projects.get_project, W.PROJECT, console=True),
    write("UpdateProject", projects.update_project, A, W.PROJECT),
    write("DeleteProject", projects.delete_project, A, W.PROJECT),
    # Members and roles
    write("CreateProjectMember", members.create_project_member, A, W.PROJECT_ID),
    write("DeleteProjectMember", members.delete_project_member, A, W.PROJECT_ID),
    write("GrantMemberProjectRoles", members.grant_member_project_roles, A, W.PROJECT_ID),
    write("RevokeMemberProjectRoles", members.revoke_member_project_roles, A, W.PROJECT_ID),
    read("GetProjectMember", members.get_project_member, W.PROJECT_ID),
    read("ListProjectMembers", members.list_project_members, W.PROJECT_ID),
    read("ListProjectRoles", members.list_project_roles, W.PROJECT_ID),
    read("GetProjectRole", members.get_project_role, W.PROJECT_ID),
    # Workflow instances
    read("ListWorkflowInstances", workflow_instances.list_workflow_instances, W.PROJECT_ID,
         console=True),
    read("GetWorkflowInstance", workflow_instances.get_workflow_instance,
         W.WORKFLOW_INSTANCE, console=True),
    write("CreateWorkflowInstances", operations.create_workflow_instances, OP, W.PROJECT_ID,
          console=True),
    read("GetCreateWorkflowInstancesResult", operations.get_create_workflow_instances_result,
         W.OPERATION, console=True),
    write("StartWorkflowInstances", operations.start_workflow_instances, OP,
          W.WORKFLOW_INSTANCES, console=True),
    write("StopWorkflowInstances", operations.stop_workflow_instances, OP,
          W.WORKFLOW_INSTANCES, console=True),
    write("RerunWorkflowInstances", operations.rerun_workflow_instances, OP, W.PROJECT_ID,
          console=True),
    read("GetRerunWorkflowInstancesResult", operations.get_rerun_workflow_instances_result,
         W.OPERATION, console=True),
    # Task instances
    read("ListTaskInstances", task_instances.list_task_instances, W.PROJECT_ID, console=True),
    read("GetTaskInstance", task_instances.get_task_instance, W.TASK_INSTANCE, console=True),
    read("GetTaskInstanceLog", task_instances.get_task_instance_log, W.TASK_INSTANCE,
         console=True),
    read("ListUpstreamTaskInstances", task_instances.list_upstream_task_instances,
         W.TASK_INSTANCE, console=True),
    read("ListDownstreamTaskInstances", task_instances.list_downstream_task_instances,
         W.TASK_INSTANCE, console=True),
    read("ListTaskInstanceOperationLogs", operations.list_task_instance_operation_logs,
         W.TASK_INSTANCE, console=True),
    write("RerunTaskInstances", operations.rerun_task_instances, OP, W.TASK_INSTANCES,
          console=True),
    write("StopTaskInstances", operations.stop_task_instances, OP, W.TASK_INSTANCES,
          console=True),
    write("SetSuccessTaskInstances", operations.set_success_task_instances, OP,
          W.TASK_INSTANCES, console=True),
    write("SuspendTaskInstances", operations.suspend_task_instances, OP, W.TASK_INSTANCES,
          console=True),
    write("ResumeTaskInstances", operations.resume_task_instances, OP, W.TASK_INSTANCES,
          console=True),
    write("TriggerSchedulerTaskInstance", operations.trigger_scheduler_task_instance, OP,
          W.TASK),
    write("RemoveTaskInstanceDependencies", operations.remove_task_instance_dependencies, OP,
          W.TASK_INSTANCE, console=True),
    # Workflows
    write("CreateWorkflowDefinition", workflows.create_workflow_definition, D, W.PROJECT_ID),
    write("ImportWorkflowDefinition", workflows.import_workflow_definition, D, W.PROJECT_ID),
    write("UpdateWorkflowDefinition", workflows.update_workflow_definition, D, W.DEFINITION),
    write("DeleteWorkflowDefinition", workflows.delete_workflow_definition, D, W.DEFINITION),
    read("ListWorkflowDefinitions", workflows.list_workflow_definitions, W.PROJECT_ID),
    read("GetWorkflowDefinition", workflows.get_workflow_definition, W.DEFINITION,
         console=True),
    read("ListWorkflows", workflows.list_workflows, W.PROJECT_ID, console=True),
    read("GetWorkflow", workflows.get_workflow, W.WORKFLOW, console=True),
    # Custom alert rules: a rule is in the workspaces it watches.
    write("CreateAlertRule", alerts.create_alert_rule, M, W.ALERT_TARGETS, console=True),
    read("GetAlertRule", alerts.get_alert_rule, W.ALERT_RULE, console=True),
    # ListAlertRules answers only the rules the caller may read.
    read("ListAlertRules", alerts.list_alert_rules, W.TENANT, console=True),
    write("UpdateAlertRule", alerts.update_alert_rule, M, W.ALERT_RULE, console=True),
    write("DeleteAlertRule", alerts.delete_alert_rule, M, W.ALERT_RULE, console=True),
])
# fmt: on
del OP, D, A, M, W

RULES: Mapping[str, Rule] = {name: spec.rule for name, spec in ACTIONS.items()}
CONSOLE: frozenset[str] = frozenset(name for name, spec in ACTIONS.items() if spec.console)
# Permissions that are not actions: what a console view is authorised as when no action shows
# the same data (policies grant them as `dataworks:<name>` like actions). AdministerWorkers
# (web.views' ListWorkers: hosts and process ids) is granted by no role and no built-in policy
# but AdministratorAccess.
PERMISSIONS: Mapping[str, Rule] = {"AdministerWorkers": Rule(Kind.ADMINISTER, Where.TENANT)}


def lookup(action: str | None, version: str | None) -> ActionSpec:
    """The action served as `action` in `version`; MissingArgument or UnknownAction."""
    if not action:
        raise MissingArgument("Action")
    if not version:
        raise MissingArgument("Version")
    spec = ACTIONS.get(action)
    if spec is None or version != API_VERSION:
        raise UnknownAction(
            f"The action {action!r} in version {version!r} is not found; dwsched serves "
            f"version {API_VERSION}."
        )
    return spec


def rule_of(action: str) -> Rule:
    """The rule of a served action or a declared permission; UnknownAction for any other
    name (nothing is authorised by a default)."""
    permission = PERMISSIONS.get(action)
    return permission if permission is not None else lookup(action, API_VERSION).rule
