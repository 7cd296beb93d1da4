"""Every action's declaration, pinned: its handler, whether it only reads, its authorisation
rule (the role kind it needs and where its workspace comes from), whether it is audited,
its throttle class and whether the web console may call it. The values were read from the
code before the actions were gathered in one registry; a change to any is a change of
behaviour, to be made here on purpose.

The table is checked without a server, as are the registry's own guarantees (every action
has a rule that fits it; the built-in policies grant what the registry says); the audit
decision is also checked by running every action through api.calls against a real database
(both dialects).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from dwsched.api import registry
from dwsched.api.calls import Calls, Who
from dwsched.api.errors import API_VERSION
from dwsched.api.registry import ACTIONS, CONSOLE, ActionSpec, lookup, rule_of
from dwsched.clock import SystemClock
from dwsched.domain import policies
from dwsched.domain.access import ALERT_WHERES, ID_KINDS, Kind, Where
from dwsched.domain.errors import DwschedError, UnknownAction
from dwsched.store import Store
from dwsched.web import views

R, OP, D, A, M = Kind.READ, Kind.OPERATE, Kind.DEVELOP, Kind.ADMINISTER, Kind.MONITOR
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
    ("RemoveTaskInstanceDependencies", "operations.remove_task_instance_dependencies", False, OP, W.TASK_INSTANCE, True, WRITE, True),  # noqa: E501
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
    ("CreateAlertRule", "alerts.create_alert_rule", False, M, W.ALERT_TARGETS, True, WRITE, True),
    ("GetAlertRule", "alerts.get_alert_rule", True, R, W.ALERT_RULE, False, READ, True),
    ("ListAlertRules", "alerts.list_alert_rules", True, R, W.TENANT, False, READ, True),
    ("UpdateAlertRule", "alerts.update_alert_rule", False, M, W.ALERT_RULE, True, WRITE, True),
    ("DeleteAlertRule", "alerts.delete_alert_rule", False, M, W.ALERT_RULE, True, WRITE, True),
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
    """The action's values as the code decides them: the registry's lookup (the dispatch and
    the event-loop choice, api.app), its rule (api.access), its audit decision (api.calls),
    its throttle class (api.throttle) and the console's allowlist (web.console)."""
    spec = lookup(name, API_VERSION)
    rule = rule_of(name)
    return (
        spec.name,
        handler_name(spec.handler),
        spec.reads,
        rule.kind,
        rule.where,
        spec.audited,
        spec.throttle,
        name in CONSOLE,
    )


def test_every_action_keeps_its_declaration() -> None:
    assert len(NAMES) == len(set(NAMES)) == 47
    for row in EXPECTED:
        assert declared(row[0]) == row


def test_only_the_declared_actions_are_served() -> None:
    assert set(ACTIONS) == set(registry.RULES) == set(NAMES)
    assert CONSOLE <= set(NAMES)
    for name in ("NoSuchAction", "getproject", ""):
        with pytest.raises(DwschedError):
            lookup(name, API_VERSION)
        with pytest.raises(DwschedError):
            rule_of(name)  # no action is authorised by a default
    with pytest.raises(UnknownAction):
        lookup("GetProject", "2020-05-18")


def test_every_action_has_a_rule_that_fits_it() -> None:
    """A rule is part of an action's declaration (there is no default to fall back on), and
    it fits: a read needs the read role kind, a write more; an action inside a workspace
    names the ids the authoriser can find the workspace of."""
    for name, spec in ACTIONS.items():
        assert isinstance(spec, ActionSpec) and spec.name == name
        assert rule_of(name) is spec.rule
        assert (spec.rule.kind is Kind.READ) is spec.reads, name
        assert spec.audited is not spec.reads, name
        where = spec.rule.where
        assert where in (Where.PROJECT_ID, Where.TENANT) or where in set(ID_KINDS) | ALERT_WHERES, (
            name
        )
    # Administering the tenant was what a forgotten rule fell back to: now declared, once.
    tenant_admin = [n for n, s in ACTIONS.items() if s.rule.kind is Kind.ADMINISTER]
    assert [n for n in tenant_admin if ACTIONS[n].rule.where is Where.TENANT] == ["CreateProject"]
    with pytest.raises(TypeError):
        ActionSpec("Unruled", ACTIONS["GetProject"].handler, True)  # type: ignore[call-arg]


@pytest.mark.parametrize("project_id", [7, None])
def test_the_builtin_policies_grant_what_the_registry_says(project_id: int | None) -> None:
    """ReadOnlyAccess grants exactly the reads, WorkspaceOperatorAccess the reads and the
    writes whose rule is OPERATE or MONITOR (alert rules), AdministratorAccess everything: a
    new action whose kind the policies' text does not follow fails here."""
    resource = policies.workspace_resource(project_id)
    reads = {n for n, s in ACTIONS.items() if s.reads}
    operations = {
        n for n, s in ACTIONS.items() if s.rule.kind in (Kind.OPERATE, Kind.MONITOR) and not s.reads
    }
    granted = {
        name: {
            n
            for n in ACTIONS
            if policies.evaluate([(name, policy)], f"dataworks:{n}", resource, {}).allowed
        }
        for name, policy in policies.BUILTIN.items()
    }
    assert granted == {
        "AdministratorAccess": set(ACTIONS),
        "ReadOnlyAccess": reads,
        "WorkspaceOperatorAccess": reads | operations,
    }


def test_console_views_are_not_actions_and_are_authorised_as_actions() -> None:
    for name, view in views.VIEWS.items():
        assert name not in ACTIONS
        assert view.authorised_as, name
        assert set(view.authorised_as) <= set(ACTIONS) | set(registry.PERMISSIONS), name
    assert not set(registry.PERMISSIONS) & set(ACTIONS)


def test_audited_actions_are_recorded_and_the_others_are_not(store: Store) -> None:
    """Every action run through api.calls with the tenant's key and no parameters: each
    that may change something is recorded, whether its handler succeeds or refuses."""
    calls = Calls(store, SystemClock(), "Asia/Shanghai")
    for name in NAMES:
        try:
            calls.run(
                ACTIONS[name].handler,
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
    with store.read() as tx:
        recorded = {e.action for e in tx.audit.entries(limit=1000)}
    assert recorded == {row[0] for row in EXPECTED if row[5]}
