"""Every action's declaration, pinned: its handler, whether it only reads, its authorisation
rule (the role kind it needs and where its workspace comes from), whether it is audited,
its throttle class and whether the web console may call it. The values were read from the
code before the actions were gathered in one registry; a change to any is a change of
behaviour, to be made here on purpose.

The table is checked without a server; the audit decision is also checked by running every
action through api.calls against a real database (both dialects).
"""

from __future__ import annotations

import inspect
from typing import Any

from dwsched.api import dispatch, throttle
from dwsched.api.calls import Calls, Who
from dwsched.clock import SystemClock
from dwsched.domain import access
from dwsched.domain.access import Kind, Rule, Where
from dwsched.domain.errors import DwschedError
from dwsched.store import Store
from dwsched.web import console

R, OP, D, A = Kind.READ, Kind.OPERATE, Kind.DEVELOP, Kind.ADMINISTER
W = Where
READ, WRITE = "read", "write"
# name, handler, reads only, rule kind, rule workspace, audited, throttle class, console
# fmt: off
EXPECTED: list[tuple[str, str, bool, Kind, Where, bool, str, bool]] = [
    ("ListWorkflowInstances", "workflow_instances.list_workflow_instances", True, R, W.PROJECT_ID, False, READ, True),  # noqa: E501
    ("GetWorkflowInstance", "workflow_instances.get_workflow_instance", True, R, W.WORKFLOW_INSTANCE, False, READ, True),  # noqa: E501
    ("CreateProject", "projects.create_project", False, A, W.TENANT, True, WRITE, False),
    ("GetProject", "projects.get_project", True, R, W.PROJECT, False, READ, True),
    ("ListProjects", "projects.list_projects", True, R, W.TENANT, False, READ, True),
    ("UpdateProject", "projects.update_project", False, A, W.PROJECT, True, WRITE, False),
    ("DeleteProject", "projects.delete_project", False, A, W.PROJECT, True, WRITE, False),
    ("CreateWorkflowDefinition", "workflows.create_workflow_definition", False, D, W.PROJECT_ID, True, WRITE, False),  # noqa: E501
    ("ImportWorkflowDefinition", "workflows.import_workflow_definition", False, D, W.PROJECT_ID, True, WRITE, False),  # noqa: E501
    ("UpdateWorkflowDefinition", "workflows.update_workflow_definition", False, D, W.DEFINITION, True, WRITE, False),  # noqa: E501
    ("DeleteWorkflowDefinition", "workflows.delete_workflow_definition", False, D, W.DEFINITION, True, WRITE, False),  # noqa: E501
    ("GetWorkflowDefinition", "workflows.get_workflow_definition", True, R, W.DEFINITION, False, READ, True),  # noqa: E501
    ("ListWorkflowDefinitions", "workflows.list_workflow_definitions", True, R, W.PROJECT_ID, False, READ, False),  # noqa: E501
    ("ListWorkflows", "workflows.list_workflows", True, R, W.PROJECT_ID, False, READ, True),
    ("GetWorkflow", "workflows.get_workflow", True, R, W.WORKFLOW, False, READ, True),
    ("ListTaskInstances", "task_instances.list_task_instances", True, R, W.PROJECT_ID, False, READ, True),  # noqa: E501
    ("GetTaskInstance", "task_instances.get_task_instance", True, R, W.TASK_INSTANCE, False, READ, True),  # noqa: E501
    ("GetTaskInstanceLog", "task_instances.get_task_instance_log", True, R, W.TASK_INSTANCE, False, READ, True),  # noqa: E501
    ("ListUpstreamTaskInstances", "task_instances.list_upstream_task_instances", True, R, W.TASK_INSTANCE, False, READ, True),  # noqa: E501
    ("ListDownstreamTaskInstances", "task_instances.list_downstream_task_instances", True, R, W.TASK_INSTANCE, False, READ, True),  # noqa: E501
    ("CreateWorkflowInstances", "operations.create_workflow_instances", False, OP, W.PROJECT_ID, True, WRITE, True),  # noqa: E501
    ("GetCreateWorkflowInstancesResult", "operations.get_create_workflow_instances_result", True, R, W.OPERATION, False, READ, True),  # noqa: E501
    ("StartWorkflowInstances", "operations.start_workflow_instances", False, OP, W.WORKFLOW_INSTANCES, True, WRITE, True),  # noqa: E501
    ("StopWorkflowInstances", "operations.stop_workflow_instances", False, OP, W.WORKFLOW_INSTANCES, True, WRITE, True),  # noqa: E501
    ("RerunWorkflowInstances", "operations.rerun_workflow_instances", False, OP, W.PROJECT_ID, True, WRITE, True),  # noqa: E501
    ("GetRerunWorkflowInstancesResult", "operations.get_rerun_workflow_instances_result", True, R, W.OPERATION, False, READ, True),  # noqa: E501
    ("TriggerSchedulerTaskInstance", "operations.trigger_scheduler_task_instance", False, OP, W.TASK, True, WRITE, False),  # noqa: E501
    ("ListTaskInstanceOperationLogs", "operations.list_task_instance_operation_logs", True, R, W.TASK_INSTANCE, False, READ, True),  # noqa: E501
    ("RerunTaskInstances", "operations._task_action.<locals>.handle(op=Rerun)", False, OP, W.TASK_INSTANCES, True, WRITE, True),  # noqa: E501
    ("StopTaskInstances", "operations._task_action.<locals>.handle(op=Stop)", False, OP, W.TASK_INSTANCES, True, WRITE, True),  # noqa: E501
    ("SetSuccessTaskInstances", "operations._task_action.<locals>.handle(op=SetSuccess)", False, OP, W.TASK_INSTANCES, True, WRITE, True),  # noqa: E501
    ("SuspendTaskInstances", "operations._task_action.<locals>.handle(op=Suspend)", False, OP, W.TASK_INSTANCES, True, WRITE, True),  # noqa: E501
    ("ResumeTaskInstances", "operations._task_action.<locals>.handle(op=Resume)", False, OP, W.TASK_INSTANCES, True, WRITE, True),  # noqa: E501
    ("CreateProjectMember", "members.create_project_member", False, A, W.PROJECT_ID, True, WRITE, False),  # noqa: E501
    ("DeleteProjectMember", "members.delete_project_member", False, A, W.PROJECT_ID, True, WRITE, False),  # noqa: E501
    ("GrantMemberProjectRoles", "members.grant_member_project_roles", False, A, W.PROJECT_ID, True, WRITE, False),  # noqa: E501
    ("RevokeMemberProjectRoles", "members.revoke_member_project_roles", False, A, W.PROJECT_ID, True, WRITE, False),  # noqa: E501
    ("GetProjectMember", "members.get_project_member", True, R, W.PROJECT_ID, False, READ, False),
    ("ListProjectMembers", "members.list_project_members", True, R, W.PROJECT_ID, False, READ, False),  # noqa: E501
    ("ListProjectRoles", "members.list_project_roles", True, R, W.PROJECT_ID, False, READ, False),
    ("GetProjectRole", "members.get_project_role", True, R, W.PROJECT_ID, False, READ, False),
]
# fmt: on
NAMES = [row[0] for row in EXPECTED]


def handler_name(handler: Any) -> str:
    """`module.function` under dwsched.api.actions; a handler made by a factory also names
    the values it closes over."""
    name = f"{handler.__module__.removeprefix('dwsched.api.actions.')}.{handler.__qualname__}"
    if "<locals>" in name:
        closed = inspect.getclosurevars(handler).nonlocals
        name += "(" + ",".join(f"{k}={v!s}" for k, v in closed.items()) + ")"
    return name


def declared(name: str) -> tuple[str, str, bool, Kind, Where, bool, str, bool]:
    """The action's values as the code decides them."""
    handler = dispatch.lookup(name, "2024-05-18")
    rule = access.rule_of(name)
    reads = dispatch.reads_only(name)
    return (
        name,
        handler_name(handler),
        reads,
        rule.kind,
        rule.where,
        not reads,  # api.calls audits what does not only read
        throttle.action_class(name),
        name in console.ACTIONS,
    )


def test_every_action_keeps_its_declaration() -> None:
    assert len(NAMES) == len(set(NAMES)) == 41
    for row in EXPECTED:
        assert declared(row[0]) == row


def test_only_the_declared_actions_are_served() -> None:
    assert set(dispatch.ACTIONS) == set(NAMES)
    assert set(access.RULES) == set(NAMES)
    assert console.ACTIONS <= set(NAMES)
    assert access.rule_of("NoSuchAction") == Rule(A, W.TENANT)


def test_mutating_actions_are_audited_and_reads_are_not(store: Store) -> None:
    """Every action run through api.calls with the tenant's key and no parameters: each
    that may change something is recorded, whether its handler succeeds or refuses."""
    calls = Calls(store, SystemClock(), "Asia/Shanghai")
    for name in NAMES:
        try:
            calls.run(
                dispatch.lookup(name, "2024-05-18"),
                name,
                {},
                Who("AK-of-the-tenant"),
                "127.0.0.1",
                False,
                f"request-{name}",
                SystemClock().now_ms(),
            )
        except DwschedError:
            pass
    recorded = {e.action for e in store.audit_entries(limit=1000)}
    assert recorded == {row[0] for row in EXPECTED if row[5]}
